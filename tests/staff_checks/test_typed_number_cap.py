"""The daily cap on full ID numbers typed into staff writes (outside tester: a sealed number recovered by
importing 1,000 candidates). A POST of a member and every number-bearing row of a real import take from
the clerk's allowance for the China day, all of a request's numbers or none: over it the request is 429
with Retry-After to Beijing midnight and writes nothing. A dry run, a refused import and the police
revealing a number never count; two imports at once never pass the cap together."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlmodel import Session, col

from backend.accounts.models import Agency, User
from backend.accounts.permissions import Role
from backend.audit.models import AuditEntry
from backend.core import clock
from backend.core.config import get_settings
from backend.institutions.models import Institution
from backend.staff_checks.models import StaffMember
from tests.factories import make_town, make_user
from tests.institutions.factories import make_institution
from tests.notifications.factories import headers_for
from tests.races import together
from tests.staff_checks.factories import make_member, staff_number
from tests.xlsx_support import xlsx_bytes

API = "/api/v1"
HEADER = ["编号", "姓名", "身份证号码", "岗位", "入职日期", "状态"]
CAP = 5


@pytest.fixture
def capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HULEI_STAFF_TYPED_NUMBERS_PER_DAY", str(CAP))
    get_settings.cache_clear()


def _setup(session: Session) -> tuple[User, dict[str, str], Institution]:
    town = make_town(session)
    school = make_institution(session, town.villages[0].id or 0)
    # The town's education clerk supervises the village school; the town's police run its checks.
    clerk = make_user(session, town.town, Role.agency_staff, agency=Agency.education)
    police = headers_for(session, make_user(session, town.town, Role.police, agency=Agency.police))
    return clerk, police, school


def _book(numbers: list[str], *, bad: int = 0) -> bytes:
    rows: list[list[Any]] = [[None, f"候选{i}", n, None, None, "拟聘用"] for i, n in enumerate(numbers)]
    rows += [[None, f"错{i}", "99010119850314000", None, None, "拟聘用"] for i in range(bad)]  # 17 characters
    return xlsx_bytes([HEADER, *rows])


def _import(client: TestClient, h: dict[str, str], school: Institution, content: bytes, **params: Any) -> Any:
    return client.post(f"{API}/institutions/{school.id}/staff/import", headers=h, params=params,
                       files={"file": ("staff.xlsx", content)})


def _post(client: TestClient, h: dict[str, str], school: Institution, number: str) -> Any:
    return client.post(f"{API}/institutions/{school.id}/staff", headers=h, json={"name": "候选", "id_number": number})


def _listed(session: Session, school: Institution) -> int:
    session.expire_all()
    return int(session.execute(select(func.count()).select_from(StaffMember)
                               .where(col(StaffMember.institution_id) == school.id)).scalar_one())


def test_a_clerk_types_at_most_the_days_cap_of_numbers_and_may_again_the_next_china_day(
        client: TestClient, session: Session, capped: None) -> None:
    clock.freeze(datetime(2026, 6, 1, 10, 0, tzinfo=UTC))  # 18:00 in Beijing
    user, _, school = _setup(session)
    clerk = headers_for(session, user)
    first = staff_number()
    assert _post(client, clerk, school, first).status_code == 201
    # A 409 answered whether the typed number is listed: it is counted like a 201.
    assert _post(client, clerk, school, first).json()["code"] == "staff-exists"
    four = [staff_number() for _ in range(4)]
    refused = _import(client, clerk, school, _book(four))
    assert refused.status_code == 429, refused.text
    body = refused.json()
    assert body["code"] == "staff-typed-numbers-capped" and body["type"].endswith(":staff-typed-numbers-capped")
    assert (body["limit"], body["remaining"]) == (CAP, 3)
    assert refused.headers["Retry-After"] == str(6 * 3600)  # Beijing midnight is 16:00 UTC
    assert _listed(session, school) == 1  # refused whole: none of the four written
    session.expire_all()
    entry = session.execute(select(AuditEntry).where(col(AuditEntry.action) == "staff.import")
                            .order_by(col(AuditEntry.id).desc())).scalars().first()
    assert entry is not None and entry.details["refused"] == "staff-typed-numbers-capped"
    # A dry run and an import refused for a bad row tell nothing and take nothing.
    assert _import(client, clerk, school, _book(four), dry_run="true").status_code == 200
    assert _import(client, clerk, school, _book(four[:3], bad=1)).status_code == 422
    done = _import(client, clerk, school, _book(four[:3]))
    assert done.status_code == 200 and done.json()["created"] == 3, done.text
    # The day's five are used: even a number already listed is refused, not answered 409.
    over = _post(client, clerk, school, first)
    assert over.status_code == 429 and over.json()["remaining"] == 0
    assert _post(client, clerk, school, four[3]).status_code == 429
    assert _listed(session, school) == 4

    clock.freeze(datetime(2026, 6, 1, 16, 0, 1, tzinfo=UTC))  # the next China day
    clerk = headers_for(session, user)  # signed in again: the morning's token has expired
    again = _import(client, clerk, school, _book([four[3], *(staff_number() for _ in range(4))]))
    assert again.status_code == 200 and again.json()["created"] == 5, again.text


def test_two_imports_at_once_that_together_pass_the_cap_let_exactly_one_through(
        client: TestClient, session: Session, capped: None) -> None:
    user, _, school = _setup(session)
    clerk = headers_for(session, user)
    files = [_book([staff_number() for _ in range(3)]) for _ in range(2)]
    answers = together(*(lambda c, f=f: _import(c, clerk, school, f) for f in files))
    assert sorted(a.status_code for a in answers) == [200, 429], [a.text[:200] for a in answers]
    assert _listed(session, school) == 3


def test_the_police_reveal_numbers_whatever_the_cap(client: TestClient, session: Session,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HULEI_STAFF_TYPED_NUMBERS_PER_DAY", "1")
    get_settings.cache_clear()
    user, police, school = _setup(session)
    clerk = headers_for(session, user)
    members = [make_member(session, school) for _ in range(3)]
    assert _post(client, clerk, school, staff_number()).status_code == 201
    assert _post(client, clerk, school, staff_number()).status_code == 429
    for member in members:
        revealed = client.post(f"{API}/staff/{member.id}/reveal-id", headers=police, json={"reason": "入职查询比对"})
        assert revealed.status_code == 200, revealed.text
