"""Staff lists in .xlsx through the project's reader and writer: an export re-imported changes
nothing, a dry run writes nothing, and a file with formulas, wrong headers, repeated or invalid ID
numbers writes nothing and names every bad row."""

from __future__ import annotations

import io
import zipfile
from datetime import date
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlmodel import Session, col

from backend.accounts.models import Agency
from backend.accounts.permissions import Role
from backend.audit.models import AuditEntry
from backend.core import crypto
from backend.institutions.models import Institution
from backend.staff_checks.models import StaffMember, StaffStatus
from tests.factories import make_town, make_user
from tests.institutions.factories import make_institution
from tests.notifications.factories import headers_for
from tests.staff_checks.factories import make_member, staff_number
from tests.xlsx_support import read_workbook, saved, xlsx_bytes

API = "/api/v1"
HEADER = ["编号", "姓名", "身份证号码", "岗位", "入职日期", "状态"]


def book(rows: list[list[Any]], header: list[str] = HEADER) -> bytes:
    """A clerk's workbook (openpyxl playing the spreadsheet program; ID numbers typed as text)."""
    return xlsx_bytes([header, *rows])


def _setup(session: Session) -> tuple[dict[str, str], Institution]:
    town = make_town(session)
    school = make_institution(session, town.villages[0].id or 0)
    # The town's education clerk: the school's supervising agency, above the school's village.
    h = headers_for(session, make_user(session, town.town, Role.agency_staff, agency=Agency.education))
    return h, school


def _import(client: TestClient, h: dict[str, str], school: Institution, content: bytes, **params: Any) -> Any:
    return client.post(f"{API}/institutions/{school.id}/staff/import", headers=h, params=params,
                       files={"file": ("staff.xlsx", content)})


def _members(session: Session, school: Institution) -> list[StaffMember]:
    return list(session.execute(select(StaffMember).where(col(StaffMember.institution_id) == school.id)
                                .order_by(col(StaffMember.id))).scalars())


def test_a_staff_list_imports_after_a_dry_run_and_its_export_imports_unchanged(client: TestClient,
                                                                               session: Session) -> None:
    h, school = _setup(session)
    numbers = [staff_number() for _ in range(3)]
    content = book([[None, "张老师", numbers[0], "语文", date(2019, 9, 1), None],
                    [None, "李老师", numbers[1], "数学", "2020/9/1", "在职"],
                    [None, "王某", "'" + numbers[2], "门卫", None, "拟聘用"]])
    dry = _import(client, h, school, content, dry_run="true")
    assert dry.status_code == 200, dry.text
    # A dry run answers the valid rows only, never how many are new (H1: no oracle of listed numbers).
    assert dry.json() == {"dry_run": True, "rows": 3, "created": 0, "updated": 0, "unchanged": 0}
    assert _members(session, school) == []
    done = _import(client, h, school, content)
    assert done.json()["created"] == 3
    stored = _members(session, school)
    assert [crypto.decrypt(m.id_cipher) for m in stored] == numbers
    assert [m.status for m in stored] == ["employed", "employed", "candidate"]
    assert stored[1].hire_date == date(2020, 9, 1)

    exported = client.get(f"{API}/institutions/{school.id}/staff/export.xlsx", headers=h)
    assert exported.status_code == 200
    with zipfile.ZipFile(io.BytesIO(exported.content)) as z:
        xml = "".join(z.read(n).decode() for n in z.namelist() if n.endswith(".xml"))
    assert all(n not in xml and n[6:17] not in xml for n in numbers)  # masked: the region only
    again = _import(client, h, school, exported.content)
    assert again.status_code == 200, again.text
    assert again.json() == {"dry_run": False, "rows": 3, "created": 0, "updated": 0, "unchanged": 3}
    # Edited in the exported file: a position changes, nothing else.
    wb = read_workbook(exported.content)
    ws = wb.active
    assert ws is not None
    ws.cell(row=2, column=4, value="语文组长")
    assert _import(client, h, school, saved(wb)).json()["updated"] == 1
    session.expire_all()
    assert _members(session, school)[0].position == "语文组长"
    actions = session.execute(select(col(AuditEntry.action)).where(
        col(AuditEntry.action).in_(["staff.import", "staff.export"])).order_by(col(AuditEntry.id))).scalars().all()
    assert actions == ["staff.import", "staff.import", "staff.export", "staff.import", "staff.import"]


def test_bad_rows_are_all_named_and_nothing_is_written(client: TestClient, session: Session) -> None:
    h, school = _setup(session)
    good, twice = staff_number(), staff_number()
    wrong_check = good[:-1] + ("0" if good[-1] != "0" else "1")
    content = book([
        [None, "好人", good, None, None, "拟聘用"],  # row 2: fine on its own
        [None, "重复甲", twice, None, None, "拟聘用"],  # row 3
        [None, "重复乙", twice.lower(), None, None, "拟聘用"],  # row 4: repeats row 3
        [None, "校验错", wrong_check, None, None, None],  # row 5
        [None, "数字格", 990101198503141000, None, None, None],  # row 6: typed as a number
        [None, "脱敏号", "990101************", None, None, None],  # row 7: a masked number
        [None, "公式", "=A2&B2", None, None, None],  # row 8: a formula (no cached value)
        [None, "日期错", staff_number(), None, "去年", None],  # row 9
        [None, "状态错", staff_number(), None, None, "试用"],  # row 10
        [None, "已解聘", staff_number(), None, None, "已解聘"],  # row 11: not a status to register with
        [None, "", staff_number(), None, None, "拟聘用"],  # row 12: no name
    ])
    resp = _import(client, h, school, content)
    assert resp.status_code == 422, resp.text
    errors = [(e["row"], e["column"]) for e in resp.json()["errors"]]
    assert errors == [(4, "身份证号码"), (5, "身份证号码"), (6, "身份证号码"), (7, "身份证号码"),
                      (8, "身份证号码"), (9, "入职日期"), (10, "状态"), (11, "状态"), (12, "姓名")]
    assert _members(session, school) == []
    refused = session.execute(select(AuditEntry).where(col(AuditEntry.action) == "staff.import")).scalars().all()
    assert len(refused) == 1 and refused[0].details["errors"] == 9  # a refused import is audited too


def test_a_csv_keeps_numbers_as_text_the_way_clerks_wrap_them(client: TestClient, session: Session) -> None:
    h, school = _setup(session)
    numbers = [staff_number(), staff_number()]
    csv = (f'姓名,身份证号码,岗位,入职日期\n赵老师,="{numbers[0]}",音乐,2019-09-01\n'
           f'钱老师,\'{numbers[1]},,2019-09-01\n').encode("gb18030")
    resp = client.post(f"{API}/institutions/{school.id}/staff/import", headers=h,
                       files={"file": ("staff.csv", csv)})
    assert resp.status_code == 200, resp.text
    assert sorted(crypto.decrypt(m.id_cipher) for m in _members(session, school)) == sorted(numbers)


def test_wrong_headers_are_refused_before_any_row(client: TestClient, session: Session) -> None:
    h, school = _setup(session)
    number = staff_number()
    for header in (["编号", "名字", "身份证号码"], ["姓名", "岗位"], ["姓名", "身份证号码", "姓名"]):
        resp = _import(client, h, school, book([[None, "某", number][: len(header)]], header=header))
        assert resp.status_code == 422 and resp.json()["code"] == "import-file-unreadable", header
    assert _members(session, school) == []


def test_a_row_naming_a_member_cannot_change_its_number_or_hire_a_flagged_one(client: TestClient,
                                                                             session: Session) -> None:
    h, school = _setup(session)
    member = make_member(session, school, status=StaffStatus.candidate)
    member.flagged = True
    session.add(member)
    session.commit()
    other_number = staff_number()
    resp = _import(client, h, school, book([[member.id, "某", other_number, None, None, None]]))
    assert resp.status_code == 422 and resp.json()["errors"][0]["column"] == "身份证号码"
    hire = _import(client, h, school, book([[member.id, "某", member.id_masked, None, None, "在职"]]))
    assert hire.status_code == 422 and hire.json()["errors"][0]["column"] == "状态"
    foreign = make_institution(session, school.org_unit_id, name="别的学校")
    stranger = make_member(session, foreign)
    resp = _import(client, h, school, book([[stranger.id, "某", stranger.id_masked, None, None, None]]))
    assert resp.status_code == 422 and resp.json()["errors"][0]["column"] == "编号"
    session.refresh(member)
    assert member.status == "candidate" and member.flagged
    assert session.execute(select(func.count()).select_from(StaffMember)).scalar_one() == 2
