"""What the breaker found in the ledger import, each as a class of file, over HTTP, dry run and real
import alike: a minor's 附件2 row re-imported, ID numbers Excel cut to 15 digits, hidden rows, rows
named without their sheet, a merged title row, the before of a change, totals rows, UTF-16 CSV, the
clerk's text wrappers in a CSV, and row reasons in English."""

from __future__ import annotations

import codecs
import io
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from odf.opendocument import OpenDocumentSpreadsheet
from odf.table import CoveredTableCell, Table, TableCell, TableRow
from odf.text import P
from sqlalchemy import func, select
from sqlmodel import Session, col

from backend.ledgers.sheets import HEADERS, Annex
from backend.registry import idnumber
from backend.registry.models import RISK_PERSON_CATEGORY_ZH, Person, PersonRole, RiskPerson, RiskPersonCategory
from tests.registry.factories import make_world
from tests.xlsx_support import new_sheet, saved, xlsx_bytes

FIXTURES = Path(__file__).parent / "fixtures"
A2 = list(HEADERS[Annex.risk_persons])
A3 = list(HEADERS[Annex.vulnerable_minors])
ID = "身份证号码"


def _number(birth: date, sequence: int) -> str:
    return idnumber.make("990101", birth, sequence)


def _a3(n: int, name: str, number: str, *, contact: str = "13800000002", guardian: str = "",
        school: str = "是") -> list[Any]:
    sex = "女" if number[16:17] in tuple("02468") else "男"
    return [n, name, number, sex, "示范县", "溪口村", contact, school, guardian, "", "", ""]


def _a2(n: int, name: str, number: str) -> list[Any]:
    sex = "男" if int(number[16]) % 2 else "女"
    return [n, name, number, sex, "示范县", "溪口村", "13800000009", "社区矫正对象", "一般风险", "走访"]


def _post(client: TestClient, who: Any, annex: str, name: str, content: bytes, *, dry_run: bool,
          lang: str | None = None) -> Any:
    headers = {**who.headers, **({"Accept-Language": lang} if lang else {})}
    return client.post(f"/api/v1/ledgers/{annex}/import", params={"dry_run": dry_run}, headers=headers,
                       files={"file": (name, content)})


def _both(client: TestClient, who: Any, annex: str, name: str, content: bytes, **kw: Any) -> list[dict[str, Any]]:
    """The dry run's and the real import's answers (both 200)."""
    out = []
    for dry_run in (True, False):
        resp = _post(client, who, annex, name, content, dry_run=dry_run, **kw)
        assert resp.status_code == 200, resp.text
        out.append(resp.json())
    return out


def _count(session: Session, model: Any) -> int:
    session.expire_all()
    return int(session.execute(select(func.count()).select_from(model)).scalar_one())


# ---------------------------------------------------------------- 1. sealed 附件2 rows


def test_a_minors_risk_person_row_is_answered_as_sealed_and_reimporting_it_creates_nothing(
    client: TestClient, session: Session
) -> None:
    """Export → re-import is the identity, and a minor's 附件2 row is no exception: the first import
    seals the entry, every later one leaves it alone, and all of them answer the same (the answer never
    tells that a sealed entry was there already)."""
    w = make_world(client, session)
    minor = _number(date(2012, 5, 6), 301)
    adult = _number(date(1980, 5, 6), 303)
    content = xlsx_bytes([A2, _a2(1, "封少一", minor), _a2(2, "成年一", adult)])
    answers = []
    for _ in range(3):
        dry, real = _both(client, w.police, "2", "a2.xlsx", content)
        answers.append((dry, real))
        for body in (dry, real):
            assert body["sealed_rows"] == [{"row": 2, "sheet": "Sheet"}], body
            assert 2 not in body["created_rows"] + body["matched_rows"], body
            assert body["errors"] == [] and body["changes"] == [], body
    assert answers[0][1]["created_rows"] == [3] and answers[1][1]["matched_rows"] == [3]
    session.expire_all()
    assert session.execute(select(func.count()).select_from(RiskPerson).where(
        col(RiskPerson.name) == "封少一")).scalar_one() == 1
    assert session.execute(select(func.count()).select_from(RiskPerson).where(
        col(RiskPerson.name) == "成年一")).scalar_one() == 1
    # Only the minor's row: the first answer (the entry sealed now) is the later ones' (sealed before).
    only = xlsx_bytes([A2, _a2(1, "封少二", _number(date(2013, 2, 3), 305))])
    first = _both(client, w.police, "2", "only.xlsx", only)
    again = _both(client, w.police, "2", "only.xlsx", only)
    assert first == again, (first, again)
    assert first[1]["created"] == 0 and first[1]["sealed_rows"] == [{"row": 2, "sheet": "Sheet"}]
    session.expire_all()
    assert session.execute(select(func.count()).select_from(RiskPerson).where(
        col(RiskPerson.name) == "封少二")).scalar_one() == 1


# ---------------------------------------------------------------- 2. Excel's 15 digits


def _excel_15(*, passes: bool, start: int = 0) -> str:
    """An ID number as Excel writes it after keeping 15 significant digits: 15 digits then 000, its
    check character right (`passes`) or wrong."""
    for sequence in range(start, 1000):
        first15 = f"990101{date(2013, 1, 1) + timedelta(days=sequence):%Y%m%d}0"
        candidate = first15 + "000"
        if (idnumber.check_character(candidate[:17]) == "0") is passes:
            return candidate
    raise AssertionError("no such number")


def _csv(rows: list[list[Any]], *, encoding: str = "utf-8-sig", delimiter: str = ",") -> bytes:
    out = io.StringIO()
    import csv

    csv.writer(out, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode(encoding)


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_an_id_number_excel_cut_to_15_digits_is_named_as_such_or_warned_of(
    client: TestClient, session: Session, kind: str
) -> None:
    w = make_world(client, session)
    wrong, right = _excel_15(passes=False), _excel_15(passes=True)
    rows = [A3, _a3(1, "截一", wrong), _a3(2, "截二", right)]
    content = _csv(rows) if kind == "csv" else xlsx_bytes(rows)
    for dry_run in (True, False):
        body = _post(client, w.coordinator, "3", f"cut.{kind}", content, dry_run=dry_run).json()
        [error] = body["errors"]
        assert (error["row"], error["column"]) == (2, ID) and "Excel" in error["reason"], body
        assert "15" in error["reason"] and "文本" in error["reason"] and "抄错" not in error["reason"]
    dry = _post(client, w.coordinator, "3", f"cut.{kind}", content, dry_run=True, lang="en").json()
    assert "Excel" in dry["errors"][0]["reason"] and "15" in dry["errors"][0]["reason"]
    # The number whose check character passes is imported, never silently: a warning names its row.
    ok = xlsx_bytes([A3, _a3(1, "截二", right)]) if kind == "xlsx" else _csv([A3, _a3(1, "截二", right)])
    for body in _both(client, w.coordinator, "3", f"ok.{kind}", ok):
        assert body["created_rows"] == [2] and body["errors"] == [], body
        [warning] = body["warnings"]
        assert warning["row"] == 2 and warning["column"] == ID and warning["sheet"], warning
        assert warning["kind"] == "id_number_excel_15" and "Excel" in warning["reason"], warning
    [en] = _post(client, w.coordinator, "3", f"ok.{kind}", ok, dry_run=True, lang="en").json()["warnings"]
    assert "Excel" in en["reason"] and not re.search(r"[\u4e00-\u9fff]", en["reason"]), en


# ---------------------------------------------------------------- 3. hidden rows


def _ods(rows: list[list[Any]], *, hidden: frozenset[int] = frozenset(), title_span: int = 0) -> bytes:
    doc = OpenDocumentSpreadsheet()
    table = Table(name="附件3")
    for r, row in enumerate(rows, start=1):
        tr = TableRow(**({"visibility": "collapse"} if r in hidden else {}))
        for c, value in enumerate(row):
            if title_span and r == 1 and c > 0:
                if c < title_span:
                    tr.addElement(CoveredTableCell())
                continue
            spanned = {"numbercolumnsspanned": title_span} if title_span and r == 1 else {}
            if isinstance(value, int):
                cell = TableCell(valuetype="float", value=value)
            else:
                cell = TableCell(valuetype="string", **spanned)
            if value not in (None, ""):
                cell.addElement(P(text=str(value)))
            tr.addElement(cell)
        table.addElement(tr)
    doc.spreadsheet.addElement(table)
    out = io.BytesIO()
    doc.write(out)
    return out.getvalue()


@pytest.mark.parametrize("kind", ["xlsx", "ods"])
def test_a_hidden_row_is_imported_and_listed_as_a_warning(client: TestClient, session: Session, kind: str) -> None:
    w = make_world(client, session)
    rows = [A3, _a3(1, "显一", _number(date(2013, 3, 3), 311)), _a3(2, "藏一", _number(date(2013, 3, 4), 313)),
            _a3(3, "显二", _number(date(2013, 3, 5), 315))]
    if kind == "xlsx":
        wb, ws = new_sheet(rows)
        ws.row_dimensions[3].hidden = True
        content = saved(wb)
    else:
        content = _ods(rows, hidden=frozenset({3}))
    for body in _both(client, w.coordinator, "3", f"hidden.{kind}", content):
        assert body["created_rows"] == [2, 3, 4], body
        assert [(x["row"], x["kind"]) for x in body["warnings"]] == [(3, "hidden_row")], body
        assert "隐藏" in body["warnings"][0]["reason"] and body["warnings"][0]["sheet"]


# ---------------------------------------------------------------- 4. rows with their sheet


def test_created_and_matched_rows_name_their_sheet(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    content = (FIXTURES / "a1_villages.xlsx").read_bytes()
    for body in _both(client, w.coordinator, "1", "a1_villages.xlsx", content):
        assert body["created_rows"] == [4, 5, 4, 5]  # kept as it was
        assert body["created_entries"] == [{"row": 4, "sheet": "青山村"}, {"row": 5, "sheet": "青山村"},
                                           {"row": 4, "sheet": "溪口村"}, {"row": 5, "sheet": "溪口村"}], body
    again = _post(client, w.coordinator, "1", "a1_villages.xlsx", content, dry_run=True).json()
    assert again["matched_entries"] == [{"row": 4, "sheet": "青山村"}, {"row": 5, "sheet": "青山村"},
                                        {"row": 4, "sheet": "溪口村"}, {"row": 5, "sheet": "溪口村"}], again


# ---------------------------------------------------------------- 5. a merged title row


@pytest.mark.parametrize("kind", ["xlsx", "ods", "xlsx-unmerged", "csv"])
def test_a_merged_title_row_never_labels_an_unused_column(client: TestClient, session: Session, kind: str) -> None:
    """Merged or not (a title typed in A1 only, the CSV a clerk saved), the title is not the first half
    of a two-row header: 序号 keeps its name and no column is named after the title."""
    w = make_world(client, session)
    title = "附件3 易受性侵风险的未成年人摸排台账"
    rows = [[title] + [None] * 13, [*A3, "备注", None],
            [*_a3(1, "题一", _number(date(2013, 4, 4), 321)), "无", "另记"]]
    if kind == "xlsx-unmerged":
        content = xlsx_bytes(rows)
    elif kind == "csv":
        content = _csv(rows)
    elif kind == "xlsx":
        wb, ws = new_sheet(rows)
        ws.merge_cells("A1:N1")
        content = saved(wb)
    else:
        content = _ods(rows, title_span=14)
    for body in _both(client, w.coordinator, "3", f"titled.{kind.split('-')[0]}", content):
        assert body["created_rows"] == [3], body
        assert [(u["column"], u["header"]) for u in body["unused_columns"]] == [("M", "备注"), ("N", "")], body


# ---------------------------------------------------------------- 6. the before of each change


def _displayed(field: str, value: Any) -> Any:
    """A value the API returns, as the import's changes show it."""
    if isinstance(value, bool):
        return "是" if value else "否"
    if field == "sex" and value in ("male", "female"):
        return idnumber.Sex(value).zh
    if isinstance(value, list):
        if field == "categories" and value and all(v in {c.value for c in RiskPersonCategory} for v in value):
            return "、".join(RISK_PERSON_CATEGORY_ZH[RiskPersonCategory(v)] for v in value)
        return "、".join(str(v) for v in value)
    return value


def test_every_change_shows_the_value_the_api_held_before(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    number = _number(date(2012, 6, 7), 331)
    header = list(HEADERS[Annex.key_minors])
    first = [1, "前一", number, "男", "示范县", "溪口村", "是", "13800000001", "心理困境", "情绪低落", "前母",
             "13900000001", "专班甲", "心理疏导", "一般风险"]
    then = [1, "前一改", number, "男", "示范县二", "青山村", "否", "13800000003", "不良行为、生活困境", "逃学",
            "前父", "13900000003", "专班乙", "送教上门", "较大风险"]
    assert _post(client, w.coordinator, "1", "a1.xlsx", xlsx_bytes([header, first]), dry_run=False).status_code == 200
    session.expire_all()
    [person] = session.execute(select(Person).where(col(Person.name) == "前一",
                                                    col(Person.role) == PersonRole.child.value)).scalars()
    shown = client.get(f"/api/v1/persons/{person.id}", headers=w.coordinator.headers).json()
    shown["guardian"] = "、".join(g["name"] for g in shown["guardians"])
    dry, real = _both(client, w.coordinator, "1", "a1.xlsx", xlsx_bytes([header, then]))
    assert dry["changes"] == real["changes"]
    [entry] = real["changes"]
    changes = {c["field"]: c for c in entry["changes"]}
    assert set(changes) >= {"name", "hukou_place", "residence", "in_school", "contact", "categories", "signs",
                            "task_force", "assistance", "risk_level", "guardian"}, changes
    for field, change in changes.items():
        assert change["before"] == _displayed(field, shown[field]), (field, change, shown[field])
    assert changes["guardian"]["before"] == "前母" and changes["guardian"]["after"] == "前母、前父"
    after = client.get(f"/api/v1/persons/{person.id}", headers=w.coordinator.headers).json()
    after["guardian"] = "、".join(g["name"] for g in after["guardians"])
    for field, change in changes.items():
        assert change["after"] == _displayed(field, after[field]), (field, change, after[field])


def test_a_risk_person_change_shows_the_value_the_api_held_before(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    number = _number(date(1979, 6, 7), 333)
    first = [1, "前二", number, "男", "示范县", "溪口村", "13800000001", "社区矫正对象", "一般风险", "走访"]
    then = [1, "前二改", number, "男", "示范县二", "青山村", "13800000004", "2、3", "重大风险", "每周走访"]
    assert _post(client, w.police, "2", "a2.xlsx", xlsx_bytes([A2, first]), dry_run=False).status_code == 200
    session.expire_all()
    [entry_id] = session.execute(select(col(RiskPerson.id)).where(col(RiskPerson.name) == "前二")).scalars()
    shown = client.get(f"/api/v1/risk-persons/{entry_id}", headers=w.police.headers).json()
    dry, real = _both(client, w.police, "2", "a2.xlsx", xlsx_bytes([A2, then]))
    assert dry["changes"] == real["changes"]
    [entry] = real["changes"]
    changes = {c["field"]: c for c in entry["changes"]}
    assert set(changes) >= {"name", "hukou_place", "residence", "contact", "categories", "risk_level",
                            "control_measures"}, changes
    for field, change in changes.items():
        assert change["before"] == _displayed(field, shown[field]), (field, change, shown[field])


# ---------------------------------------------------------------- 7. totals rows


@pytest.mark.parametrize("label", ["合计", "总  计", "小计：2人"])
def test_a_totals_row_is_skipped_and_said_so(client: TestClient, session: Session, label: str) -> None:
    w = make_world(client, session)
    rows = [A3, _a3(1, "合一", _number(date(2013, 5, 5), 341)), _a3(2, "合二", _number(date(2013, 5, 6), 343)),
            [label, "2人", None, None, None, None, None, None, None, None, None, None]]
    for body in _both(client, w.coordinator, "3", "totals.xlsx", xlsx_bytes(rows)):
        assert body["errors"] == [] and body["created_rows"] == [2, 3] and body["rows"] == 2, body
        assert [(s["row"], s["sheet"], s["kind"]) for s in body["skipped_rows"]] == [(4, "Sheet", "totals")], body


# ---------------------------------------------------------------- 8. UTF-16 text


@pytest.mark.parametrize(("encoding", "bom", "delimiter", "suffix"), [
    ("utf-16-le", codecs.BOM_UTF16_LE, "\t", "txt"), ("utf-16-le", codecs.BOM_UTF16_LE, "\t", "csv"),
    ("utf-16-be", codecs.BOM_UTF16_BE, ",", "csv"), ("utf-16-le", codecs.BOM_UTF16_LE, ",", "csv")])
def test_a_utf16_text_file_is_read(client: TestClient, session: Session, encoding: str, bom: bytes,
                                   delimiter: str, suffix: str) -> None:
    """Excel's "Unicode text" (UTF-16 LE with a BOM, tab separated) and UTF-16 CSVs."""
    w = make_world(client, session)
    rows = [A3, _a3(1, "统一", _number(date(2013, 6, 6), 351)), _a3(2, "统二", _number(date(2013, 6, 7), 353))]
    content = bom + _csv(rows, encoding=encoding, delimiter=delimiter)
    for body in _both(client, w.coordinator, "3", f"unicode.{suffix}", content):
        assert body["errors"] == [] and body["created_rows"] == [2, 3] and body["format"] == "csv", body
    session.expire_all()
    assert session.execute(select(col(Person.contact)).where(col(Person.name) == "统一")).scalar_one() == "13800000002"


# ---------------------------------------------------------------- 9. text wrappers in a CSV


def test_a_csv_clerks_text_wrappers_are_accepted_for_identifiers_and_contacts(client: TestClient,
                                                                              session: Session) -> None:
    w = make_world(client, session)
    one, two = _number(date(2013, 7, 7), 361), _number(date(2013, 7, 8), 363)
    rows = [A3, _a3(1, "引一", one, contact="'13800000005"), _a3(2, "引二", two, contact='="13800000006"')]
    rows[1][2], rows[2][2] = f"'{one}", f'="{two}"'
    # As a clerk types them (and Excel writes them): no CSV quoting around the wrapper.
    content = "\r\n".join(",".join(str(v) for v in row) for row in rows).encode("utf-8-sig")
    for body in _both(client, w.coordinator, "3", "wrapped.csv", content):
        assert body["errors"] == [] and body["created_rows"] == [2, 3], body
    session.expire_all()
    stored = {name: contact for name, contact in session.execute(select(col(Person.name), col(Person.contact)).where(
        col(Person.name).in_(["引一", "引二"]))).all()}
    assert stored == {"引一": "13800000005", "引二": "13800000006"}
    plain = _csv([A3, _a3(1, "引一", one, contact="13800000005"), _a3(2, "引二", two, contact="13800000006")])
    again = _post(client, w.coordinator, "3", "plain.csv", plain, dry_run=True).json()
    assert again["matched_rows"] == [2, 3] and again["changes"] == [], again


# ---------------------------------------------------------------- 10. reasons in English

_CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")
_QUOTED = re.compile(r"“[^”]*”")


def _english_files() -> list[tuple[str, str, bytes, bool]]:
    """(annex, name, content, police) for every fixture and every file of this module that gives
    errors, warnings or skipped rows."""
    from tests.ledgers.test_import_corpus import CASES

    out = [(case.annex, name, (FIXTURES / name).read_bytes(), case.police) for name, case in CASES.items()]
    out.append(("3", "a3_fullwidth.xlsx", (FIXTURES / "a3_fullwidth.xlsx").read_bytes(), False))
    out.append(("3", "a3_moved.xlsx", (FIXTURES / "a3_moved.xlsx").read_bytes(), False))
    bad = [A3, _a3(1, "", "990101201301010000"), _a3(2, "坏二", "99010120130101001", school="也许"),
           _a3(3, "坏三", "990101************"), _a3(4, "坏四", _excel_15(passes=False)),
           _a3(5, "坏五", _excel_15(passes=True)), _a3(6, "坏六", "9.90101E+17"),
           _a3(7, "坏七", _number(date(1990, 1, 1), 371)), _a3(8, "坏八", "990101201399990011"),
           _a3(9, "坏九", _number(date(2013, 8, 8), 373), contact="١٣٨٠٠٠٠٠٠٠١"),
           [*_a3(10, "坏十", _number(date(2013, 8, 9), 375))[:4], "户" * 201, *_a3(10, "", "")[5:]],
           _a3(11, "坏十一", _number(date(2013, 8, 9), 375)),
           ["合计", "11人"]]
    bad[2][3] = "未知"
    out.append(("3", "bad.xlsx", xlsx_bytes(bad), False))
    a1: list[list[Any]] = [list(HEADERS[Annex.key_minors]),
          [1, "坏甲", _number(date(2012, 1, 1), 381), "男", "", "", "是", "", "不存在的类", "", "", "", "", "",
           "超大风险"],
          [2, "坏乙", _number(date(2012, 1, 2), 383), "男", "", "", "是", "", "9", "", "", "", "", "", ""]]
    out.append(("1", "bad1.xlsx", xlsx_bytes(a1), False))
    a2: list[list[Any]] = [A2, [1, "坏丙", _number(date(1970, 1, 1), 391), "男", "", "", "", "", "", ""],
          [2, "坏丁", _number(date(1970, 1, 2), 393), "男", "", "", "", "第八类", "", ""]]
    out.append(("2", "bad2.xlsx", xlsx_bytes(a2), True))
    header = list(A3)
    header.insert(2, "身份证号")
    out.append(("3", "two.xlsx", xlsx_bytes([header]), False))
    out.append(("3", "nohead.xlsx", xlsx_bytes([["序号", "姓名", "证件", "户籍地"], [1, "某", "x", "y"]]), False))
    return out


def test_every_row_reason_is_answered_in_english_when_asked_and_in_chinese_by_default(
    client: TestClient, session: Session
) -> None:
    w = make_world(client, session)
    assert _post(client, w.coordinator, "3", "a3_clean.xlsx", (FIXTURES / "a3_clean.xlsx").read_bytes(),
                 dry_run=False, lang="en").status_code == 200
    kinds: set[str] = set()
    for annex, name, content, police in _english_files():
        who = w.police if police else w.coordinator
        for dry_run in (True, False):
            en = _post(client, who, annex, name, content, dry_run=dry_run, lang="en")
            zh = _post(client, who, annex, name, content, dry_run=dry_run)
            assert en.status_code == zh.status_code, (name, en.text, zh.text)
            for listing in ("errors", "warnings", "skipped_rows"):
                en_items, zh_items = en.json().get(listing, []), zh.json().get(listing, [])
                assert len(en_items) == len(zh_items), (name, listing)
                for e, z in zip(en_items, zh_items, strict=True):
                    kinds.add(f"{listing}:{_QUOTED.sub('', z['reason'])[:8]}")
                    assert not _CJK.search(_QUOTED.sub("", e["reason"])), (name, e["reason"])
                    assert _CJK.search(z["reason"]), (name, z["reason"])
                    assert {k: v for k, v in e.items() if k != "reason"} == {
                        k: v for k, v in z.items() if k != "reason"}
    assert len(kinds) >= 20, sorted(kinds)
