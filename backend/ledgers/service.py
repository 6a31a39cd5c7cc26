"""Ledger export (streamed .xlsx, scoped, audited) and import (dry run, then all-or-nothing)."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

from openpyxl import Workbook
from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts import scope
from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.audit import disclosure
from backend.core import clock, crypto, identifiers, spreadsheet
from backend.core.config import get_settings
from backend.core.errors import DomainError, InvalidInput
from backend.core.spreadsheet import xlsx_row
from backend.ledgers.sheets import HEADERS, TITLES, Annex, header_key
from backend.orgunits import service as orgunits
from backend.registry import duplicates, idnumber
from backend.registry import service as registry
from backend.registry.models import (
    RISK_PERSON_CATEGORY_ZH,
    ChildCategory,
    Guardianship,
    Person,
    PersonRole,
    RiskLevel,
    RiskPerson,
    RiskPersonCategory,
)
from backend.registry.schemas import RiskPersonData
from backend.sealing import service as sealing
from backend.sync import revisions

# The printed sheets have a title row or two above the header.
_HEADER_ROWS = 3
_SPLIT = re.compile(r"[、,，;；/\s]+")


class LedgerInvalid(InvalidInput):
    code = "ledger-invalid"
    title_zh = "台账内容有误"
    title_en = "The ledger has errors"


def _require(principal: Principal, annex: Annex, *, write: bool) -> None:
    # The hidden actions first: whoever may not see the records learns nothing (404), not even a 403.
    if annex is Annex.risk_persons:
        principal.require(Action.risk_person_read)
        principal.require(Action.risk_person_write if write else Action.ledger_export)
    else:
        principal.require(Action.child_read)
        principal.require(Action.child_write if write else Action.ledger_export)
    principal.require(Action.ledger_import if write else Action.ledger_export)


# ---------------------------------------------------------------- export


def _yes_no(value: bool | None) -> str:
    return "" if value is None else ("是" if value else "否")


def _sex(value: str | None) -> str:
    return {"male": "男", "female": "女"}.get(value or "", "")


def _id_cell(cipher: str | None, masked: str | None, reveal: bool) -> str:
    if reveal and cipher:
        return crypto.decrypt(cipher)
    return masked or ""


def _child_rows(session: Session, principal: Principal, annex: Annex, reveal: bool) -> Iterator[list[Any]]:
    flag = col(Person.key_minor) if annex is Annex.key_minors else col(Person.vulnerable)
    query = (
        select(Person)
        .where(
            col(Person.role) == PersonRole.child.value,
            col(Person.retired_at).is_(None),  # grown up and gone (backend/registry/retention.py)
            flag.is_(True),
            scope.visible(principal, Person),
        )
        .order_by(col(Person.id))
        .execution_options(yield_per=1000)
    )
    n = 0
    batch: list[Person] = []

    def flush(people: list[Person]) -> Iterator[list[Any]]:
        nonlocal n
        ids = [p.id for p in people if p.id is not None]
        guardians = registry.guardians_of(session, ids)
        disclosure.record(disclosure.PERSON, ids)  # the children, and their guardians by name below
        disclosure.record(disclosure.PERSON, session.execute(
            select(col(Guardianship.guardian_id)).where(col(Guardianship.child_id).in_(ids))).scalars())
        for p in people:
            n += 1
            gs = guardians.get(p.id or 0, [])
            g_names = "、".join(g["name"] for g in gs)
            g_contacts = "、".join(g["contact"] or "" for g in gs if g["contact"])
            idc = _id_cell(p.id_cipher, p.id_masked, reveal)
            if annex is Annex.key_minors:
                yield [
                    n,
                    p.name,
                    idc,
                    _sex(p.sex),
                    p.hukou_place,
                    p.residence,
                    _yes_no(p.in_school),
                    p.contact,
                    "、".join(p.categories),
                    p.signs,
                    g_names,
                    g_contacts,
                    p.task_force,
                    p.assistance,
                    p.risk_level,
                ]
            else:
                yield [
                    n,
                    p.name,
                    idc,
                    _sex(p.sex),
                    p.hukou_place,
                    p.residence,
                    p.contact,
                    _yes_no(p.in_school),
                    g_names,
                    g_contacts,
                    p.task_force,
                    p.assistance,
                ]

    for person in session.execute(query).scalars():
        batch.append(person)
        if len(batch) == 1000:
            yield from flush(batch)
            batch = []
    if batch:
        yield from flush(batch)


def _risk_person_rows(session: Session, principal: Principal, reveal: bool) -> Iterator[list[Any]]:
    query = (
        select(RiskPerson)
        .where(orgunits.in_jurisdiction(principal, col(RiskPerson.org_unit_id)), sealing.unsealed(RiskPerson))
        .order_by(col(RiskPerson.id))
        .execution_options(yield_per=1000)
    )
    for n, r in enumerate(session.execute(query).scalars(), start=1):
        disclosure.record(disclosure.RISK_PERSON, [r.id])
        cats = "、".join(RISK_PERSON_CATEGORY_ZH[RiskPersonCategory(c)] for c in r.categories)
        yield [
            n,
            r.name,
            _id_cell(r.id_cipher, r.id_masked, reveal),
            _sex(r.sex),
            r.hukou_place,
            r.residence,
            r.contact,
            cats,
            r.risk_level,
            r.control_measures,
        ]


@dataclass
class ExportResult:
    path: Path
    filename: str
    rows: int


def export(session: Session, principal: Principal, annex: Annex) -> ExportResult:
    """Write the ledger to a temporary .xlsx, row by row (write-only workbook: constant memory)."""
    _require(principal, annex, write=False)
    reveal = principal.can(Action.child_reveal_id)
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(TITLES[annex])
    sheet.append(list(HEADERS[annex]))
    rows = (
        _risk_person_rows(session, principal, reveal)
        if annex is Annex.risk_persons
        else _child_rows(session, principal, annex, reveal)
    )
    count = 0
    for row in rows:
        sheet.append(xlsx_row(row))
        count += 1
    handle = tempfile.NamedTemporaryFile(prefix="hulei-ledger-", suffix=".xlsx", delete=False)  # noqa: SIM115
    handle.close()
    workbook.save(handle.name)
    disclosure.event(session, "ledger.export", actor=principal, object_type="ledger", object_id=annex.value,
                     org_unit_id=principal.org_unit_id, details={"rows": count, "full_id_numbers": reveal})
    stamp = clock.now().astimezone(clock.SHANGHAI).strftime("%Y%m%d")
    return ExportResult(Path(handle.name), f"附件{annex.value}-{TITLES[annex]}-{stamp}.xlsx", count)


# ---------------------------------------------------------------- import


@dataclass
class ImportReport:
    annex: str
    dry_run: bool
    rows: int = 0
    created: int = 0
    matched: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    matched_rows: list[int] = field(default_factory=list)
    # Audits the rows refused for an ID number registered elsewhere and tells the coordinators
    # (registry/duplicates.py); run by raise_if_failed's refusal after its rollback.
    aftermath: Callable[[Session], None] | None = field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "annex": self.annex,
            "dry_run": self.dry_run,
            "rows": self.rows,
            "created": self.created,
            "matched": self.matched,
            "matched_rows": self.matched_rows,
            **spreadsheet.capped_errors(self.errors),
            "ok": not self.errors,
        }


@dataclass
class _Row:
    number: int
    values: dict[str, Any]


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    if isinstance(value, float) and value.is_integer():
        text = str(int(value))
    return text or None


def _read_rows(stream: BinaryIO, annex: Annex, report: ImportReport) -> list[_Row]:
    """The data rows below the header (found in the first three rows). A file over the byte or row
    cap, or one that is not a plain .xlsx (backend/core/spreadsheet.py), is refused as a whole."""
    settings = get_settings()
    content = spreadsheet.read_upload(stream, settings.ledger_import_max_bytes)
    max_rows = settings.ledger_import_max_rows
    sheet = spreadsheet.read_sheet(content, max_rows=max_rows, header_rows=_HEADER_ROWS)
    expected = [header_key(h) for h in HEADERS[annex]]
    header_row = next((number for number, cells in enumerate(sheet[:_HEADER_ROWS], start=1)
                       if [header_key(c) for c in cells[: len(expected)]] == expected), 0)
    if not header_row:
        report.errors.append(
            {"row": 1, "column": None, "reason": f"表头与附件{annex.value}不符，应为：{'、'.join(HEADERS[annex])}"}
        )
        return []
    out: list[_Row] = []
    for number, cells in enumerate(sheet[header_row:], start=header_row + 1):
        padded = list(cells[: len(expected)]) + [None] * max(0, len(expected) - len(cells))
        if all(_text(c) is None for c in padded[1:]):
            continue
        out.append(_Row(number, {f"{i}": padded[i] for i in range(len(expected))}))
    if len(out) > max_rows:
        raise spreadsheet.too_many_rows(max_rows, f"共 {len(out)} 行", f"{len(out)} rows")
    return out


def _cell(row: _Row, annex: Annex, index: int) -> str | None:
    return _text(row.values[str(index)])


class _RowErrors:
    def __init__(self, report: ImportReport, annex: Annex, row: _Row) -> None:
        self.report, self.annex, self.row, self.failed = report, annex, row, False

    def add(self, index: int, reason: str) -> None:
        self.failed = True
        self.report.errors.append({"row": self.row.number, "column": HEADERS[self.annex][index], "reason": reason})


def _parse_bool(value: str | None, errs: _RowErrors, index: int) -> bool | None:
    if value is None:
        return None
    if value in ("是", "在读", "Y", "y", "1"):
        return True
    if value in ("否", "不在读", "N", "n", "0"):
        return False
    errs.add(index, f"应填“是”或“否”，而不是“{value}”")
    return None


def _parse_contact(value: str | None, errs: _RowErrors, index: int) -> str | None:
    """A contact cell in its canonical form (a phone number as ASCII digits, backend/core/identifiers.py)."""
    if value is None:
        return None
    try:
        return identifiers.contact(value)
    except ValueError:
        errs.add(index, f"联系方式中的数字只能是0-9，而不是“{value}”")
        return None


def _parse_level(value: str | None, errs: _RowErrors, index: int) -> RiskLevel | None:
    if value is None:
        return None
    try:
        return RiskLevel.parse(value)  # the label the sheet shows, or its code
    except ValueError:
        errs.add(index, f"风险等级应为{'/'.join(lv.value for lv in RiskLevel)}之一，而不是“{value}”")
        return None


def _parse_id(value: str | None, errs: _RowErrors, sex: str | None, *, minor: bool) -> idnumber.IdNumber | None:
    if value is None:
        errs.add(2, "身份证号码必填")
        return None
    expected_sex = {"男": idnumber.Sex.male, "女": idnumber.Sex.female}.get(sex or "")
    if sex is not None and expected_sex is None:
        errs.add(3, f"性别应填“男”或“女”，而不是“{sex}”")
    try:
        return idnumber.parse_for_person(value, today=clock.now().date(), sex=expected_sex, minor=minor)
    except DomainError as exc:
        errs.add(3 if exc.extensions.get("field") == "sex" else 2, exc.detail_zh or exc.title_zh)
        return None


def import_ledger(
    session: Session, principal: Principal, annex: Annex, stream: BinaryIO, *, dry_run: bool, org_unit_id: int | None
) -> ImportReport:
    """Check every row; a dry run only reports. A real import writes nothing unless every row is good."""
    _require(principal, annex, write=True)
    unit = orgunits.get_visible_unit(session, principal, org_unit_id or principal.org_unit_id)
    assert unit.id is not None
    report = ImportReport(annex=annex.value, dry_run=dry_run)
    rows = _read_rows(stream, annex, report)
    report.rows = len(rows)
    planned: list[tuple[_Row, dict[str, Any], Any]] = []
    seen: dict[str, int] = {}
    model: type[Person] | type[RiskPerson] = RiskPerson if annex is Annex.risk_persons else Person
    collisions: list[duplicates.Collision] = []
    for row in rows:
        errs = _RowErrors(report, annex, row)
        values = _row_values(row, annex, errs)
        if values is None or errs.failed:
            continue
        index = crypto.blind_index(values["id_number"])
        if index in seen:
            errs.add(2, f"与第{seen[index]}行的身份证号码重复")
            continue
        seen[index] = row.number
        # A sealed 附件2 entry is never matched (the answer would show it exists): a row of its number is a
        # new entry, sealed again if its person is still a minor.
        unsealed = [sealing.unsealed(RiskPerson)] if model is RiskPerson else []
        existing = session.execute(select(model).where(col(model.id_index) == index, *unsealed)).scalar_one_or_none()
        if existing is not None:
            # A row updates the record of its number when that record is a child (or 附件2 entry) of
            # the caller's area, which the importer (police, coordinators) may read with its full
            # number anyway. Any other holder, elsewhere or a guardian, refuses the row in the words of
            # every other refusal of a registered number, audited and told (registry/duplicates.py).
            path = orgunits.unit_path(session, existing.org_unit_id)
            if (path is None or not principal.covers(path)
                    or (isinstance(existing, Person) and existing.role != PersonRole.child.value)):
                errs.add(2, duplicates.REFUSAL_ZH)
                collisions.append(duplicates.collision(session, model, index, unit_id=unit.id, operation="import"))
                continue
        planned.append((row, values, existing))
    if collisions:
        report.aftermath = partial(duplicates.report, principal=principal, found=collisions)
        if dry_run:  # a dry run answers 200 and commits: the refusals are kept with it
            duplicates.report(session, principal=principal, found=collisions)
    report.matched = sum(1 for _, _, e in planned if e is not None)
    report.created = len(planned) - report.matched
    report.matched_rows = [row.number for row, _, e in planned if e is not None]
    # Every import is audited, a dry run and a refused one too: the answer tells which ID numbers are
    # registered already (those records are named as read).
    disclosure.event(session, "ledger.import", actor=principal, object_type="ledger", object_id=annex.value,
                     org_unit_id=unit.id, details={"rows": report.rows, "created": report.created,
                                                   "matched": report.matched, "dry_run": dry_run,
                                                   "errors": len(report.errors)})
    kind = disclosure.RISK_PERSON if annex is Annex.risk_persons else disclosure.PERSON
    disclosure.record(kind, [e.id for _, _, e in planned if e is not None])
    if dry_run or report.errors:
        if report.errors:
            report.created = report.matched = 0 if not dry_run else report.created
        return report
    for _row, values, existing in planned:
        if annex is Annex.risk_persons:
            _write_risk_person(session, principal, unit.id, values, existing)
        else:
            _write_child(session, principal, annex, unit.id, values, existing)
    session.flush()
    return report


def _row_values(row: _Row, annex: Annex, errs: _RowErrors) -> dict[str, Any] | None:
    def c(index: int) -> str | None:
        return _cell(row, annex, index)

    name = c(1)
    if name is None:
        errs.add(1, "姓名必填")
    if name is not None and len(name) > 60:
        errs.add(1, "姓名过长")
    parsed = _parse_id(c(2), errs, c(3), minor=annex is not Annex.risk_persons)
    values: dict[str, Any] = {"name": name, "hukou_place": c(4), "residence": c(5)}
    if annex is Annex.key_minors:
        cats: list[str] = []
        for part in _SPLIT.split(c(8) or ""):
            if not part:
                continue
            try:
                cats.append(ChildCategory(part).value)
            except ValueError:
                errs.add(8, f"分类“{part}”不在{'、'.join(x.value for x in ChildCategory)}之中")
        values.update(
            contact=_parse_contact(c(7), errs, 7),
            in_school=_parse_bool(c(6), errs, 6),
            categories=cats,
            signs=c(9),
            guardian_name=c(10),
            guardian_contact=_parse_contact(c(11), errs, 11),
            task_force=c(12),
            assistance=c(13),
            risk_level=_parse_level(c(14), errs, 14),
        )
    elif annex is Annex.vulnerable_minors:
        values.update(
            contact=_parse_contact(c(6), errs, 6),
            in_school=_parse_bool(c(7), errs, 7),
            guardian_name=c(8),
            guardian_contact=_parse_contact(c(9), errs, 9),
            task_force=c(10),
            assistance=c(11),
        )
    else:
        cats = []
        by_zh = {v: k.value for k, v in RISK_PERSON_CATEGORY_ZH.items()}
        for part in re.split(r"[、,，;；/]+", c(7) or ""):
            part = part.strip().lstrip("0123456789.、 ")
            if not part:
                continue
            if part in by_zh:
                cats.append(by_zh[part])
            else:
                errs.add(7, f"分类“{part}”不是附件2的7类之一")
        if not cats and c(7) is None:
            errs.add(7, "分类必填")
        values.update(contact=_parse_contact(c(6), errs, 6), categories=cats, risk_level=_parse_level(c(8), errs, 8),
                      control_measures=c(9))
    if parsed is None or errs.failed:
        return None
    values["id_number"] = parsed.value
    values["sex"] = parsed.sex
    values["birth_date"] = parsed.birth_date
    return values


def _write_child(
    session: Session, principal: Principal, annex: Annex, unit_id: int, values: dict[str, Any], existing: Person | None
) -> None:
    now = clock.now()
    fields: dict[str, Any] = {
        k: values[k]
        for k in ("name", "hukou_place", "residence", "contact", "in_school", "task_force", "assistance")
        if values.get(k) is not None
    }
    if annex is Annex.key_minors:
        fields["key_minor"] = True
        if values.get("categories"):
            fields["categories"] = values["categories"]
        if values.get("signs"):
            fields["signs"] = values["signs"]
    else:
        fields["vulnerable"] = True
    if existing is None:
        sealed = registry.seal_id(values["id_number"])
        person = Person(
            uuid=registry.new_uuid(),
            role=PersonRole.child.value,
            org_unit_id=unit_id,
            sex=values["sex"].value,
            birth_date=values["birth_date"],
            id_cipher=sealed.cipher,
            id_key_id=sealed.key_id,
            id_index=sealed.index,
            id_masked=sealed.masked,
            content_hash=registry.content_hash({"import": values["id_number"], "at": now.isoformat()}),
            rev=revisions.allocate(session),
            created_by=principal.user_id,
            created_at=now,
            updated_at=now,
            **fields,
        )
        session.add(person)
        session.flush()
    else:
        person = existing
        for key, value in fields.items():
            setattr(person, key, value)
        person.rev = revisions.allocate(session)
        person.version += 1
        person.updated_at = now
        session.add(person)
        session.flush()
    assert person.id is not None
    disclosure.changed(disclosure.PERSON, [person.id], unit_id=person.org_unit_id)
    if values.get("guardian_name"):
        known = registry.guardians_of(session, [person.id])[person.id]
        if not any(g["name"] == values["guardian_name"] for g in known):
            guardian = Person(
                uuid=registry.new_uuid(),
                role=PersonRole.guardian.value,
                org_unit_id=person.org_unit_id,
                household_id=person.household_id,
                name=values["guardian_name"],
                contact=values.get("guardian_contact"),
                content_hash=registry.content_hash({"guardian_of": str(person.uuid)}),
                rev=revisions.allocate(session),
                created_by=principal.user_id,
                created_at=now,
                updated_at=now,
            )
            session.add(guardian)
            session.flush()
            disclosure.changed(disclosure.PERSON, [guardian.id], unit_id=guardian.org_unit_id)
            session.add(Guardianship(child_id=person.id, guardian_id=guardian.id or 0, relation=None))
    level: RiskLevel | None = values.get("risk_level")
    if level is not None and level.value != person.risk_level:
        registry.set_risk_level(
            session,
            person_id=person.id,
            previous=person.risk_level,
            level=level,
            reasons=[
                {
                    "rule": "ledger_import",
                    "reason_zh": "台账导入综合研判",
                    "reason_en": "Assessed on the imported ledger",
                }
            ],
            source="import",
            actor_user_id=principal.user_id,
        )


def _write_risk_person(
    session: Session, principal: Principal, unit_id: int, values: dict[str, Any], existing: RiskPerson | None
) -> None:
    data = RiskPersonData(
        name=values["name"],
        id_number=values["id_number"],
        sex=values["sex"],
        hukou_place=values["hukou_place"],
        residence=values["residence"],
        contact=values["contact"],
        categories=[RiskPersonCategory(c) for c in values["categories"]],
        risk_level=values["risk_level"],
        control_measures=values["control_measures"],
        org_unit_id=unit_id,
    )
    if existing is None:
        existing = RiskPerson(created_by=principal.user_id, **registry.risk_person_values(session, principal, data))
        session.add(existing)
    else:  # judged against the entry's own day, as every edit is
        fields = registry.risk_person_values(session, principal, data, record_at=existing.created_at,
                                             sealed_if_unknown=existing.sealed)
        for key, value in fields.items():
            setattr(existing, key, value)
        existing.version += 1
        existing.updated_at = clock.now()
        session.add(existing)
    session.flush()
    disclosure.changed(disclosure.RISK_PERSON, [existing.id], unit_id=unit_id)


def raise_if_failed(report: ImportReport) -> None:
    """A real import with errors answers 422 listing the bad rows and columns (the first
    import_max_errors of them, with their total); nothing was written."""
    if report.errors and not report.dry_run:
        raise LedgerInvalid(
            f"台账有{len(report.errors)}处错误，未导入任何数据",
            f"The ledger has {len(report.errors)} errors; nothing was imported",
            **spreadsheet.capped_errors(report.errors),
            aftermath=report.aftermath,
        )
