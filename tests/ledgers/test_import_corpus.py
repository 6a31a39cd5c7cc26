"""Ledgers as clerks keep them: every file of tests/ledgers/fixtures/ (made by make_fixtures.py) goes
through a dry run and then the real import over HTTP, and the outcome is asserted row by row: which rows
are created, matched or refused (and in which column, saying what), that the dry run's verdict is the
real import's, and what the registry holds afterwards."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlmodel import Session, col

from backend.ledgers.sheets import HEADERS, Annex
from backend.registry import idnumber
from backend.registry.models import Person, PersonRole, RiskPerson
from tests.registry.factories import make_world
from tests.xlsx_support import new_sheet, saved, xlsx_bytes

FIXTURES = Path(__file__).parent / "fixtures"
ID = "身份证号码"


@dataclass
class Case:
    annex: str
    created: list[int] = field(default_factory=list)
    matched: list[int] = field(default_factory=list)
    # (row, column) -> words the reason must hold
    errors: dict[tuple[int, str | None], tuple[str, ...]] = field(default_factory=dict)
    police: bool = False
    stored: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> fields after the real import


NUMERIC = ("文本", "数字", "重新输入")
CASES: dict[str, Case] = {
    "a1_clean.xlsx": Case("1", created=[4, 5, 6, 7], stored={
        "赵一": {"categories": ["心理困境"], "risk_level": "一般风险", "in_school": True},
        "赵二": {"categories": ["不良行为", "生活困境"], "sex": "female"},
        "赵三": {"categories": ["严重不良行为"]}, "赵四": {"categories": ["心理困境", "家庭监护困境"]}}),
    # Fault 1: a number cell in the ID column is refused, never turned into (other) digits.
    "a1_numeric_id.xlsx": Case("1", created=[2], errors={(3, ID): NUMERIC}),
    # Fault 3: one sheet per village, all of them imported; a merged 分类 reaches every row it covers.
    "a1_villages.xlsx": Case("1", created=[4, 5, 4, 5], stored={n: {} for n in ("孙20", "孙21", "孙30", "孙31")}),
    "a1_merged.xlsx": Case("1", created=[2, 3, 4], stored={
        n: {"categories": ["家庭监护困境"]} for n in ("李一", "李二", "李三")}),
    "a1_merged.ods": Case("1", created=[2, 3, 4], stored={
        n: {"categories": ["生活困境"]} for n in ("李四", "李五", "李六")}),
    # Fault 3: an extra 出生日期 or a 性别 that contradicts the ID number is a row error.
    "a1_extra_columns.xlsx": Case("1", created=[2], errors={(3, "出生日期"): ("出生日期",), (4, "性别"): ("男", "女")}),
    # Fault 4: the layouts clerks use.
    "a1_clerk_layout.xlsx": Case("1", created=[5, 7], stored={"吴一": {"categories": ["心理困境"]}, "吴二": {}}),
    "a3_two_row_header.xlsx": Case("3", created=[3, 4], stored={
        "褚一": {"contact": "13800000002"}, "褚二": {"in_school": True}}),
    "a1_missing_column.xlsx": Case("1", errors={(1, None): ("缺少列", ID, "性别", "无法识别的列", "证件")}),
    # Fault 5: formats and spellings.
    "a2_clean.xlsx": Case("2", created=[4, 5, 6], police=True, stored={
        "冯一": {"categories": ["2"], "risk_level": "较大风险"}, "冯二": {"categories": ["3", "5"]},
        "冯三": {"categories": ["4"], "risk_level": "一般风险"}}),
    "a2_table.ods": Case("2", created=[2, 3], police=True, stored={
        "秦一": {"categories": ["1", "2"], "risk_level": "重大风险"}, "秦二": {"categories": ["6"]}}),
    "a3_clean.xlsx": Case("3", created=[4, 5], stored={"陈一": {"vulnerable": True}, "陈二": {"in_school": False}}),
    "a3_wps.xlsx": Case("3", created=[2, 3], stored={"许一": {"contact": "13800000002"}, "许二": {"sex": "female"}}),
    "a3_old.xls": Case("3", created=[2], errors={(3, ID): NUMERIC}),
    "a3_gbk.csv": Case("3", created=[2, 3], stored={"杨一": {"in_school": True}, "杨二": {"in_school": False}}),
    "a3_utf8_bom.csv": Case("3", created=[2], errors={(3, ID): NUMERIC}),
    "a3_spellings.xlsx": Case("3", created=[2, 3, 4], errors={
        (5, "性别"): ("男", "女", "男性"), (5, "是否在读"): ("是", "否", "辍学")}),
}


def _post(client: TestClient, who: Any, name: str, annex: str, *, dry_run: bool, **params: Any) -> Any:
    return client.post(f"/api/v1/ledgers/{annex}/import", params={"dry_run": dry_run, **params},
                       headers=who.headers, files={"file": (name, (FIXTURES / name).read_bytes())})


def _count(session: Session) -> tuple[int, int]:
    session.expire_all()
    return (session.execute(select(func.count()).select_from(Person)).scalar_one(),
            session.execute(select(func.count()).select_from(RiskPerson)).scalar_one())


def _verdict(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "dry_run"}


def _check(case: Case, body: dict[str, Any]) -> None:
    errors = {(e["row"], e["column"]): e["reason"] for e in body["errors"]}
    assert set(errors) == set(case.errors), body["errors"]
    for key, words in case.errors.items():
        assert all(w in errors[key] for w in words), (key, errors[key])
    assert sorted(body["created_rows"]) == sorted(case.created), body
    assert body["matched_rows"] == case.matched
    assert (body["created"], body["matched"]) == (len(case.created), len(case.matched))


def _stored(session: Session, case: Case) -> None:
    session.expire_all()
    model: Any = RiskPerson if case.annex == "2" else Person
    for name, fields in case.stored.items():
        found = session.execute(select(model).where(model.name == name)).scalars().all()
        assert len(found) == 1, (name, len(found))
        for key, value in fields.items():
            assert getattr(found[0], key) == value, (name, key, getattr(found[0], key))


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_file_dry_run_predicts_the_real_import_row_by_row(client: TestClient, session: Session,
                                                                name: str) -> None:
    case = CASES[name]
    w = make_world(client, session)
    who = w.police if case.police else w.coordinator
    before = _count(session)
    dry = _post(client, who, name, case.annex, dry_run=True)
    assert dry.status_code == 200, dry.text
    _check(case, dry.json())
    assert dry.json()["ok"] is (not case.errors)
    assert _count(session) == before  # the dry run wrote nothing
    real = _post(client, who, name, case.annex, dry_run=False)
    if case.errors:
        assert real.status_code == 422, real.text
        assert real.json()["errors"] == dry.json()["errors"]
        assert _count(session) == before
    else:
        assert real.status_code == 200, real.text
        assert _verdict(real.json()) == _verdict(dry.json())
        _stored(session, case)


def test_a_workbook_with_a_sheet_per_village_reports_every_sheet(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    body = _post(client, w.coordinator, "a1_villages.xlsx", "1", dry_run=True).json()
    assert [(s["name"], s["read"], s["header_row"], s["rows"]) for s in body["sheets"]] == [
        ("青山村", True, 3, 2), ("溪口村", True, 3, 2)]


def test_an_instructions_sheet_is_skipped_and_said_so(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    body = _post(client, w.coordinator, "a1_clerk_layout.xlsx", "1", dry_run=True).json()
    notes, ledger = body["sheets"]
    assert notes["name"] == "填表说明" and notes["read"] is False and "未导入" in notes["reason"]
    assert ledger["read"] is True and ledger["header_row"] == 4


def test_columns_the_importer_does_not_use_are_reported(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    body = _post(client, w.coordinator, "a1_extra_columns.xlsx", "1", dry_run=True).json()
    assert [(u["column"], u["header"]) for u in body["unused_columns"]] == [("Q", "备注")]


def test_merged_ranges_are_counted_in_the_answer(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    body = _post(client, w.coordinator, "a1_merged.xlsx", "1", dry_run=True).json()
    assert body["sheets"][0]["merged_ranges"] == 1


def _children(session: Session, name: str) -> list[Person]:
    session.expire_all()
    return list(session.execute(select(Person).where(Person.name == name,
                                                     Person.role == PersonRole.child.value)).scalars())


def test_full_width_digits_match_the_same_child_and_never_create_it_twice(client: TestClient,
                                                                          session: Session) -> None:
    w = make_world(client, session)
    assert _post(client, w.coordinator, "a3_clean.xlsx", "3", dry_run=False).status_code == 200
    body = _post(client, w.coordinator, "a3_fullwidth.xlsx", "3", dry_run=True).json()
    assert body["matched_rows"] == [2] and body["created_rows"] == [3]
    assert [(e["row"], e["column"]) for e in body["errors"]] == [(4, ID)]
    assert "第3行" in body["errors"][0]["reason"]
    assert _post(client, w.coordinator, "a3_fullwidth.xlsx", "3", dry_run=False).status_code == 422
    assert len(_children(session, "陈一")) == 1 and _children(session, "陈五") == []


def test_a_match_in_another_village_and_every_change_are_shown_before_they_are_made(
    client: TestClient, session: Session
) -> None:
    w = make_world(client, session)
    held_in = w.town.villages[1]
    resp = _post(client, w.coordinator, "a3_clean.xlsx", "3", dry_run=False, org_unit_id=held_in.id)
    assert resp.status_code == 200, resp.text
    into = w.town.villages[0]
    dry = _post(client, w.coordinator, "a3_moved.xlsx", "3", dry_run=True, org_unit_id=into.id).json()
    assert dry["matched_rows"] == [2, 3] and dry["created"] == 0 and dry["unchanged"] == 1
    assert dry["changes"] == [{"row": 2, "changes": [
        {"field": "residence", "column": "常住地", "before": "溪口村", "after": "青山村8组"}]}]
    assert [(e["row"], e["org_unit_id"], e["org_unit_name"]) for e in dry["elsewhere"]] == [
        (2, held_in.id, held_in.name), (3, held_in.id, held_in.name)]
    [child] = _children(session, "陈一")
    assert child.residence == "溪口村"  # the dry run changed nothing
    real = _post(client, w.coordinator, "a3_moved.xlsx", "3", dry_run=False, org_unit_id=into.id).json()
    assert _verdict(real) == _verdict(dry)
    [child] = _children(session, "陈一")
    assert child.residence == "青山村8组" and child.org_unit_id == held_in.id
    again = _post(client, w.coordinator, "a3_moved.xlsx", "3", dry_run=True, org_unit_id=into.id).json()
    assert again["changes"] == [] and again["unchanged"] == 2


def test_an_unknown_format_is_refused_in_the_callers_language_with_the_formats_named(
    client: TestClient, session: Session
) -> None:
    w = make_world(client, session)
    for lang, words in (("zh-CN", ".xlsx、.xls、.ods 或 .csv"), ("en", "an .xlsx, .xls, .ods or .csv")):
        resp = client.post("/api/v1/ledgers/3/import", params={"dry_run": True},
                           headers={**w.coordinator.headers, "Accept-Language": lang},
                           files={"file": ("a3.pdf", b"%PDF-1.4 not a ledger")})
        assert resp.status_code == 422 and words in resp.json()["detail"], resp.text
        assert "zip" not in resp.json()["detail"]



def test_a_masked_id_number_is_refused_as_masked_not_as_a_typo(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    content = xlsx_bytes([list(HEADERS[Annex.vulnerable_minors]),
                          [1, "某一", "990101************", "男", "", "", "", "是", "", "", "", ""]])
    resp = client.post("/api/v1/ledgers/3/import", params={"dry_run": True}, headers=w.coordinator.headers,
                       files={"file": ("masked.xlsx", content)})
    [error] = resp.json()["errors"]
    assert (error["row"], error["column"]) == (2, ID) and "脱敏" in error["reason"] and "完整" in error["reason"]


@pytest.mark.parametrize("second", ["身份证号（旧）", "公民身份号码", "身份证号", "性别"])
def test_two_columns_naming_one_field_are_refused_and_nothing_is_stored(
    client: TestClient, session: Session, second: str
) -> None:
    """A sheet with an old ID column beside the printed one, or a second 性别: which column holds the
    value cannot be guessed, and guessing once stored a child with its old, wrong ID number."""
    w = make_world(client, session)
    header = list(HEADERS[Annex.vulnerable_minors])
    header.insert(2, second)
    row = [1, "双号一", "990101201311028847", "990101201311018825", "男", "", "", "是", "", "", "", ""]
    if second == "性别":
        row = [1, "双号一", "女", "990101201311018825", "男", "", "", "是", "", "", "", ""]
    content = xlsx_bytes([header, row])
    before = _count(session)
    for dry_run in (True, False):
        resp = client.post("/api/v1/ledgers/3/import", params={"dry_run": dry_run}, headers=w.coordinator.headers,
                           files={"file": ("two.xlsx", content)})
        body = resp.json()
        errors = body.get("errors", [])
        pair = "C列和E列" if second == "性别" else "C列和D列"
        assert any(pair in e["reason"] for e in errors), body
        assert not body.get("ok", False), body
    assert _count(session) == before


CHILDREN = 300


def test_one_file_imported_three_times_at_once_stores_each_child_once_and_never_answers_500(
    client: TestClient, session: Session
) -> None:
    """Two clerks, or a double click: the same new children imported by concurrent requests. One import
    stores them; the others are told to import again (409), never a server error, never a duplicate."""
    import threading

    from backend.main import create_app

    w = make_world(client, session)
    rows = [_child_row(n, f"并发{n}", f"99010120130101{n:03d}") for n in range(1, CHILDREN + 1)]
    content = xlsx_bytes([list(HEADERS[Annex.vulnerable_minors]), *rows])
    barrier = threading.Barrier(3)
    codes: list[int] = []
    headers = w.coordinator.headers  # the user is made here, not by three threads on one session

    def send() -> None:
        with TestClient(create_app()) as own:
            barrier.wait()
            codes.append(own.post("/api/v1/ledgers/3/import", params={"dry_run": False}, headers=headers,
                                  files={"file": ("same.xlsx", content)}).status_code)

    threads = [threading.Thread(target=send) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(codes) == 3 and set(codes) <= {200, 409} and 200 in codes, codes
    session.expire_all()
    names = session.execute(select(Person.name).where(col(Person.name).like("并发%"))).scalars().all()
    assert sorted(names) == sorted(f"并发{n}" for n in range(1, CHILDREN + 1))


def _child_row(n: int, name: str, first17: str, cells: dict[int, Any] | None = None) -> list[Any]:
    """A 附件3 row of a child whose ID number is `first17` and its check character, the sex it says;
    `cells` puts other values in columns by index."""
    number = first17 + idnumber.check_character(first17)
    row: list[Any] = [n, name, number, "男" if int(number[16]) % 2 else "女", "", "", "", "是", "", "", "", ""]
    for index, value in (cells or {}).items():
        row[index] = value
    return row


def test_an_over_long_cell_is_a_row_error_naming_its_column_and_limit(client: TestClient, session: Session) -> None:
    """Clerks type whole addresses and every contact into one cell: a cell longer than its field holds
    is refused at its row and column with the limit, on both backends alike, never as a vague refusal
    of the whole file (or, on SQLite, stored whole)."""
    w = make_world(client, session)
    contact = "父亲：13800000001；母亲：13900000002；微信同号，晚上打，周末打手机"
    row = _child_row(1, "长一", "99010120130101777", {4: "户" * 201, 6: contact, 11: "帮" * 1001})
    content = xlsx_bytes([list(HEADERS[Annex.vulnerable_minors]), row])
    for dry_run in (True, False):
        resp = client.post("/api/v1/ledgers/3/import", params={"dry_run": dry_run}, headers=w.coordinator.headers,
                           files={"file": ("long.xlsx", content)})
        errors = {(e["row"], e["column"]): e["reason"] for e in resp.json()["errors"]}
        assert set(errors) == {(2, "户籍地"), (2, "联系电话"), (2, "帮扶措施")}, resp.json()
        assert "最多 200 字" in errors[(2, "户籍地")] and "最多 1000 字" in errors[(2, "帮扶措施")]


def test_a_hidden_sheet_is_listed_as_not_read_and_nothing_of_it_is_stored(client: TestClient,
                                                                           session: Session) -> None:
    """Clerks hide last year's sheet rather than delete it: what nobody looking at the file sees is not
    imported, and the answer says so."""
    w = make_world(client, session)
    wb, shown = new_sheet()
    shown.title = "本村"
    for ws, name, seq in ((shown, "看得见", "551"), (wb.create_sheet("旧数据2024"), "藏起来", "552"),
                          (wb.create_sheet("底稿"), "更深", "553")):
        ws.append(list(HEADERS[Annex.vulnerable_minors]))
        ws.append(_child_row(1, name, f"99010120130101{seq}"))
    wb["旧数据2024"].sheet_state = "hidden"
    wb["底稿"].sheet_state = "veryHidden"
    resp = client.post("/api/v1/ledgers/3/import", params={"dry_run": False}, headers=w.coordinator.headers,
                       files={"file": ("hidden.xlsx", saved(wb))})
    body = resp.json()
    assert resp.status_code == 200 and body["created"] == 1, body
    sheets = {s["name"]: s for s in body["sheets"]}
    assert sheets["本村"]["read"] is True
    for hidden in ("旧数据2024", "底稿"):
        assert not sheets[hidden].get("read") and "隐藏" in sheets[hidden]["reason"], sheets[hidden]
    session.expire_all()
    assert session.execute(select(Person.name).where(col(Person.name).in_(["藏起来", "更深"]))).first() is None
