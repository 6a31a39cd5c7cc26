"""What the breaker found in the ledger import, second round, each as a class, over HTTP, dry run and
real import alike: a value longer than the field it is written to, guardian names and phones that do
not pair up, a phone typed as a number, a NUL in a UTF-8 CSV, a refused import without its report, and
the wording of a numeric ID number in every format."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

import pytest
from annotated_types import MaxLen
from fastapi.testclient import TestClient
from pydantic import BaseModel
from sqlalchemy import select
from sqlmodel import Session, col

from backend.ledgers.sheets import HEADERS, Annex
from backend.registry import idnumber
from backend.registry.models import Guardianship, Person
from backend.registry.schemas import PersonCreate, RiskPersonData
from tests.ledgers.test_breaker_faults import _ods
from tests.registry.factories import make_world
from tests.xlsx_support import new_sheet, saved, sheet_rows, xlsx_bytes

A1, A2, A3 = (list(HEADERS[a]) for a in (Annex.key_minors, Annex.risk_persons, Annex.vulnerable_minors))
_sequence = iter(range(401, 999, 2))


def _number(birth: date) -> str:
    return idnumber.make("990101", birth, next(_sequence))  # odd sequence: a male


def _base(annex: str, name: str) -> list[Any]:
    if annex == "1":
        return [1, name, _number(date(2012, 3, 4)), "男", "示范县", "溪口村", "是", "13800000001", "心理困境",
                "情绪低落", "监母", "13900000001", "专班甲", "心理疏导", "一般风险"]
    if annex == "2":
        return [1, name, _number(date(1980, 3, 4)), "男", "示范县", "溪口村", "13800000009", "社区矫正对象",
                "一般风险", "走访"]
    return [1, name, _number(date(2013, 3, 4)), "男", "示范县", "溪口村", "13800000002", "是", "监父",
            "13900000002", "专班乙", "送教上门"]


def _header(annex: str) -> list[str]:
    return {"1": A1, "2": A2, "3": A3}[annex]


def _post(client: TestClient, who: Any, annex: str, name: str, content: bytes, *, dry_run: bool,
          lang: str | None = None) -> Any:
    headers = {**who.headers, **({"Accept-Language": lang} if lang else {})}
    return client.post(f"/api/v1/ledgers/{annex}/import", params={"dry_run": dry_run}, headers=headers,
                       files={"file": (name, content)})


def _refused(client: TestClient, who: Any, annex: str, name: str, content: bytes,
             lang: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The dry run's 200 and the real import's 422 (a ledger-invalid problem, never a generic one)."""
    dry = _post(client, who, annex, name, content, dry_run=True, lang=lang)
    assert dry.status_code == 200, dry.text
    real = _post(client, who, annex, name, content, dry_run=False, lang=lang)
    assert real.status_code == 422 and real.json()["code"] == "ledger-invalid", real.text
    assert real.json()["errors"] == dry.json()["errors"]
    return dry.json(), real.json()


def _limit(model: type[BaseModel], field: str) -> int:
    return next(m.max_length for m in model.model_fields[field].metadata if isinstance(m, MaxLen))


# The fields each free-text column is written to (the API's own schemas).
_WRITTEN: dict[str, dict[str, tuple[type[BaseModel], str]]] = {
    "1": {"未成年人姓名": (PersonCreate, "name"), "户籍地": (PersonCreate, "hukou_place"),
          "常住地": (PersonCreate, "residence"), "联系方式": (PersonCreate, "contact"),
          "具体表现": (PersonCreate, "signs"), "监护人姓名": (PersonCreate, "name"),
          "监护人联系方式": (PersonCreate, "contact"), "专班人员及联系方式": (PersonCreate, "task_force"),
          "帮扶措施": (PersonCreate, "assistance")},
    "2": {"姓名": (RiskPersonData, "name"), "户籍地": (RiskPersonData, "hukou_place"),
          "常住地": (RiskPersonData, "residence"), "联系方式": (RiskPersonData, "contact"),
          "管控措施": (RiskPersonData, "control_measures")},
    "3": {"姓名": (PersonCreate, "name"), "户籍地": (PersonCreate, "hukou_place"),
          "常住地": (PersonCreate, "residence"), 6: (PersonCreate, "contact"),
          "监护人姓名": (PersonCreate, "name"), 9: (PersonCreate, "contact"),
          "专班人员及联系方式": (PersonCreate, "task_force"), "帮扶措施": (PersonCreate, "assistance")},
}


def _written(annex: str, index: int) -> tuple[type[BaseModel], str] | None:
    table = _WRITTEN[annex]
    return table.get(index) or table.get(_header(annex)[index])  # type: ignore[call-overload]


# ---------------------------------------------------------------- 1. every column over its limit


@pytest.mark.parametrize("annex", ["1", "2", "3"])
def test_every_column_over_its_limit_is_a_row_error_naming_it(client: TestClient, session: Session,
                                                              annex: str) -> None:
    """Each column of each annex, one row at a time: a value one character over the limit of the field
    it is written to (the API schema's), and a value of 5,000 characters, are a row error at that row
    and column, in the dry run and the real import alike; never a refusal of the whole file."""
    w = make_world(client, session)
    who = w.police if annex == "2" else w.coordinator
    header = _header(annex)
    for index in range(1, len(header)):
        written = _written(annex, index)
        values = ["长" * 5000]
        if written is not None:
            values.insert(0, "长" * (_limit(*written) + 1))
        for value in values:
            row = _base(annex, "长一")
            row[index] = value
            dry, _ = _refused(client, who, annex, "long.xlsx", xlsx_bytes([header, row]))
            errors = [(e["row"], e["column"]) for e in dry["errors"]]
            assert (2, header[index]) in errors, (index, header[index], dry["errors"])
            if written is not None:
                [error] = [e for e in dry["errors"] if e["column"] == header[index]]
                assert "内容过长" in error["reason"] and f"最多 {_limit(*written)} 字" in error["reason"], error
    session.expire_all()
    assert session.execute(select(Person).where(col(Person.name).like("长%"))).first() is None


def test_the_limit_fits_what_is_written_not_what_is_typed(client: TestClient, session: Session) -> None:
    """A value that fits once written is accepted: 60 characters of name, a phone in full-width digits
    with +86 and spaces (longer typed than stored)."""
    w = make_world(client, session)
    row = _base("3", "名" * 60)
    row[8], row[9] = "监" * 60, "＋８６ １３９ ０００ ００００ ２"
    for dry_run in (True, False):
        body = _post(client, w.coordinator, "3", "fits.xlsx", xlsx_bytes([A3, row]), dry_run=dry_run).json()
        assert body["errors"] == [] and body["created_rows"] == [2], body
    session.expire_all()
    assert session.execute(select(col(Person.contact)).where(col(Person.name) == "监" * 60)).scalar_one() \
        == "13900000002"


# ---------------------------------------------------------------- 2. guardians and their phones


def _guardians(session: Session, child: str) -> list[tuple[str, str | None]]:
    session.expire_all()
    [child_id] = session.execute(select(col(Person.id)).where(col(Person.name) == child)).scalars()
    rows = session.execute(select(col(Person.name), col(Person.contact)).join(
        Guardianship, col(Guardianship.guardian_id) == col(Person.id)).where(
        col(Guardianship.child_id) == child_id).order_by(col(Person.id))).all()
    return [(name, contact) for name, contact in rows]


@pytest.mark.parametrize(("annex", "names", "phones"), [
    ("3", "甲、乙、丙", "13800138000"),
    ("3", "甲", "13800138000、13900139000"),
    ("1", "甲、乙", "13800138000、13900139000、13700137000"),
    ("1", "", "13800138000"),
])
def test_guardian_phones_that_do_not_pair_with_the_names_are_a_row_error(
    client: TestClient, session: Session, annex: str, names: str, phones: str
) -> None:
    w = make_world(client, session)
    header = _header(annex)
    name_at, phone_at = (10, 11) if annex == "1" else (8, 9)
    row = _base(annex, "配一")
    row[name_at], row[phone_at] = names, phones
    for body in _refused(client, w.coordinator, annex, "pair.xlsx", xlsx_bytes([header, row])):
        [error] = body["errors"]
        assert (error["row"], error["column"]) == (2, header[phone_at]), body
        assert "无" in error["reason"], error  # how to write a guardian without a phone
    en = _post(client, w.coordinator, annex, "pair.xlsx", xlsx_bytes([header, row]), dry_run=True, lang="en")
    assert "无" in en.json()["errors"][0]["reason"], en.text


def test_guardian_phones_pair_in_order_and_wu_is_no_phone(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    row = _base("3", "配二")
    row[8], row[9] = "甲、乙、丙", "13800138000、无、0571-12345678"
    for dry_run in (True, False):
        body = _post(client, w.coordinator, "3", "pair.xlsx", xlsx_bytes([A3, row]), dry_run=dry_run).json()
        assert body["errors"] == [] and body["created_rows"] == [2], body
    assert _guardians(session, "配二") == [("甲", "13800138000"), ("乙", None), ("丙", "057112345678")]
    # The export writes them the same way, and importing it again changes nothing.
    exported = client.get("/api/v1/ledgers/3.xlsx", headers=w.coordinator.headers)
    rows = [list(r) for r in sheet_rows(exported.content)]
    [mine] = [r for r in rows if "配二" in r]
    assert mine[8:10] == ["甲、乙、丙", "13800138000、无、057112345678"], mine
    again = _post(client, w.coordinator, "3", "again.xlsx", exported.content, dry_run=True).json()
    assert again["errors"] == [] and again["changes"] == [] and again["matched"] >= 1, again


def test_a_registered_guardians_new_phone_is_changed_and_shown_never_dropped(client: TestClient,
                                                                            session: Session) -> None:
    """The ledger gives 甲 another phone than the one registered: the dry run shows it before → after,
    the import stores it, and importing the same file again changes nothing; “无” clears nothing."""
    w = make_world(client, session)
    row = _base("3", "换号")
    row[8], row[9] = "甲、乙", "13800138000、13900139000"
    assert _post(client, w.coordinator, "3", "a.xlsx", xlsx_bytes([A3, row]), dry_run=False).json()["errors"] == []
    row[9] = "13700137000、无"
    dry, real = (_post(client, w.coordinator, "3", "b.xlsx", xlsx_bytes([A3, row]), dry_run=d).json()
                 for d in (True, False))
    for body in (dry, real):
        assert body["errors"] == [], body
        [entry] = body["changes"]
        assert {"field": "guardian_contact", "before": "甲：13800138000", "after": "甲：13700137000"}.items() \
            <= entry["changes"][0].items(), entry
    assert _guardians(session, "换号") == [("甲", "13700137000"), ("乙", "13900139000")]
    again = _post(client, w.coordinator, "3", "b.xlsx", xlsx_bytes([A3, row]), dry_run=True).json()
    assert again["changes"] == [] and again["unchanged"] == 1, again


def test_more_guardians_than_the_api_allows_is_a_row_error(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    most = PersonCreate.model_fields["guardians"].metadata
    limit = next(m.max_length for m in most if isinstance(m, MaxLen))
    row = _base("3", "配三")
    row[8], row[9] = "、".join(f"监{n}" for n in range(limit + 2)), ""
    for body in _refused(client, w.coordinator, "3", "many.xlsx", xlsx_bytes([A3, row])):
        [error] = body["errors"]
        assert (error["row"], error["column"]) == (2, "监护人姓名") and str(limit) in error["reason"], body
    row[8] = "、".join(f"监{n}" for n in range(limit))
    for dry_run in (True, False):
        body = _post(client, w.coordinator, "3", "ten.xlsx", xlsx_bytes([A3, row]), dry_run=dry_run).json()
        assert body["errors"] == [], body
    assert len(_guardians(session, "配三")) == limit
    # A re-import naming others on top of those stored: the child would hold more than the API allows.
    row[8] = "另一"
    for body in _refused(client, w.coordinator, "3", "more.xlsx", xlsx_bytes([A3, row])):
        [error] = body["errors"]
        assert (error["row"], error["column"]) == (2, "监护人姓名") and str(limit) in error["reason"], body


# ---------------------------------------------------------------- 3. a phone typed as a number


def _typed(rows: list[list[Any]], kind: str) -> bytes:
    return _ods(rows) if kind == "ods" else xlsx_bytes(rows)


@pytest.mark.parametrize("kind", ["xlsx", "ods"])
@pytest.mark.parametrize(("annex", "index"), [("1", 7), ("1", 11), ("1", 12), ("2", 6), ("3", 6), ("3", 9)])
def test_a_number_cell_in_a_contact_column_is_refused_unless_a_mobile_number(
    client: TestClient, session: Session, kind: str, annex: str, index: int
) -> None:
    w = make_world(client, session)
    who = w.police if annex == "2" else w.coordinator
    header = _header(annex)
    row = _base(annex, "数一")
    row[index] = 5711234567  # 0571 1234567 typed in a General column: the 0 is gone
    for body in _refused(client, who, annex, f"number.{kind}", _typed([header, row], kind)):
        [error] = body["errors"]
        assert (error["row"], error["column"]) == (2, header[index]), body
        assert "数字格式" in error["reason"] and "文本" in error["reason"], error
    en = _post(client, who, annex, f"number.{kind}", _typed([header, row], kind), dry_run=True, lang="en").json()
    assert "number" in en["errors"][0]["reason"] and "Text" in en["errors"][0]["reason"], en
    row[index] = 13912345678  # a mobile number: a number cell keeps it whole
    for dry_run in (True, False):
        body = _post(client, who, annex, f"mobile.{kind}", _typed([header, row], kind), dry_run=dry_run).json()
        assert body["errors"] == [], body


# ---------------------------------------------------------------- 4. a NUL in a UTF-8 CSV


def _csv(rows: list[list[Any]], encoding: str = "utf-8") -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode(encoding)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_a_nul_in_a_csv_cell_is_a_row_error_not_an_encoding_refusal(client: TestClient, session: Session,
                                                                     encoding: str) -> None:
    w = make_world(client, session)
    good, bad = _base("3", "零一"), _base("3", "零\x00二")
    for body in _refused(client, w.coordinator, "3", "nul.csv", _csv([A3, good, bad], encoding)):
        [error] = body["errors"]
        assert (error["row"], error["column"]) == (3, "姓名") and "U+0000" in error["reason"], body
        assert body["format"] == "csv" and body["rows"] == 2


def test_a_utf16_csv_without_its_bom_is_still_refused_as_an_encoding(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    content = _csv([A3, _base("3", "Zero")], "utf-16-le")
    resp = _post(client, w.coordinator, "3", "nobom.csv", content, dry_run=True)
    assert resp.status_code == 422 and "编码" in resp.json()["detail"], resp.text


# ---------------------------------------------------------------- 5. a refused import's report


def test_a_refused_import_answers_the_dry_runs_report(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    wb, ws = new_sheet([[*A3, "备注"], [*_base("3", "报一"), "另记"], _base("3", "")])
    ws.title = "附件3"
    ws.row_dimensions[2].hidden = True
    notes = wb.create_sheet("说明")
    notes.append(["填表说明"])
    content = saved(wb)
    for lang in (None, "en"):
        dry, real = _refused(client, w.coordinator, "3", "report.xlsx", content, lang=lang)
        assert dry["sheets"] and dry["warnings"] and dry["unused_columns"], dry
        assert real["dry_run"] is False and real["ok"] is False
        for key, value in dry.items():
            if key != "dry_run":
                assert real[key] == value, (key, real.get(key), value)


# ---------------------------------------------------------------- 6. a numeric ID in every format


@pytest.mark.parametrize("kind", ["xlsx", "ods"])
def test_a_numeric_id_number_is_explained_in_words_that_fit_every_format(client: TestClient, session: Session,
                                                                         kind: str) -> None:
    w = make_world(client, session)
    row = _base("3", "数二")
    row[2] = 990101201303040011
    for lang, words in ((None, ("Excel", "WPS", "LibreOffice", "文本")), ("en", ("Excel", "WPS", "LibreOffice"))):
        for body in _refused(client, w.coordinator, "3", f"id.{kind}", _typed([A3, row], kind), lang=lang):
            [error] = body["errors"]
            assert error["column"] == "身份证号码" and all(x in error["reason"] for x in words), error


# ---------------------------------------------------------------- second outside test


@pytest.mark.parametrize("typed", ["13800138000.0", "5.71889E+09", "1.38001e+10"])
def test_a_phone_a_spreadsheet_wrote_as_a_number_is_a_row_error(client: TestClient, session: Session,
                                                                typed: str) -> None:
    """13800138000.0 once became the 12 digits 138001380000 (the dot read as a separator), and the
    scientific form was kept as text: a wrong number stored with ok."""
    w = make_world(client, session)
    row = _base("3", "浮点号")
    row[9] = typed
    for body in _refused(client, w.coordinator, "3", "float.csv", _csv([A3, row])):
        [error] = body["errors"]
        assert (error["row"], error["column"]) == (2, A3[9]) and "文本" in error["reason"], body
    en = _post(client, w.coordinator, "3", "float.csv", _csv([A3, row]), dry_run=True, lang="en").json()
    assert "Text" in en["errors"][0]["reason"], en


def test_an_extension_after_a_mobile_number_is_kept_as_written_not_glued_on(client: TestClient,
                                                                           session: Session) -> None:
    w = make_world(client, session)
    row = _base("3", "分机号")
    row[8], row[9] = "甲、乙", "13800138000-8001、-"
    body = _post(client, w.coordinator, "3", "ext.csv", _csv([A3, row]), dry_run=False).json()
    assert body["errors"] == [], body
    # “-” is a guardian without a phone, like “无”.
    assert _guardians(session, "分机号") == [("甲", "13800138000-8001"), ("乙", None)]


def test_line_breaks_stored_as_cr_lf_come_back_from_the_export_unchanged(client: TestClient,
                                                                        session: Session) -> None:
    """A phone may send CR LF; the export writes LF. Re-importing the export changes nothing."""
    w = make_world(client, session)
    assert _post(client, w.coordinator, "1", "a.xlsx", xlsx_bytes([A1, _base("1", "换行")]),
                 dry_run=False).json()["errors"] == []
    person = session.execute(select(Person).where(col(Person.name) == "换行")).scalar_one()
    person.signs = "第一行\r\n第二行\r第三行"
    session.add(person)
    session.commit()
    exported = client.get("/api/v1/ledgers/1.xlsx", headers=w.coordinator.headers)
    for dry_run in (True, False):
        again = _post(client, w.coordinator, "1", "again.xlsx", exported.content, dry_run=dry_run).json()
        assert again["errors"] == [] and again["changes"] == [], again
    session.expire_all()
    assert session.get(Person, person.id).signs == "第一行\r\n第二行\r第三行"  # type: ignore[union-attr]
