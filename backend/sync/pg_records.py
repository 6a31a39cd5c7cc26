"""The pull's records written as JSON by PostgreSQL, for the pages that carry a town.

A coordinator's first pull carries every household, child, guardian and recent visit of a town:
over a hundred thousand records. Building each as a Python dict from a database row costs more than
everything else in the pull together, so on PostgreSQL the database writes each record's JSON text
(json_build_object over the row) and the page splices the texts in unparsed (orjson.Fragment).

These builders are a second spelling of the Python ones (registry.household_public,
registry.person_public, pull._visit_record); tests/sync/test_pull_records.py pulls the same rows
through both and requires the same JSON, so a field added to one and not the other fails there.
Values are written exactly as Python writes them: timestamps as datetime.isoformat() of the UTC
instant (microseconds only when there are any), dates as YYYY-MM-DD, UUIDs in lower-case hex.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Text, case, cast, func, literal_column, null
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col

from backend.registry.models import Household, Person, RiskLevel


def _key(name: str) -> Any:
    # Keys are constants of this module: written into the statement, not bound per query.
    return literal_column(f"'{name}'")


def json_object(fields: dict[str, Any]) -> ColumnElement[Any]:
    """json_build_object('k1', v1, 'k2', v2, ...) in the order given."""
    args: list[Any] = []
    for name, value in fields.items():
        args += [_key(name), value]
    return func.json_build_object(*args)


def iso_utc(column: Any) -> ColumnElement[str]:
    """A timestamptz as Python's datetime.isoformat() writes the UTC instant:
    2026-11-30T08:05:03+00:00, or 2026-11-30T08:05:03.120000+00:00 when there are microseconds."""
    utc = func.timezone(literal_column("'UTC'"), column)
    whole = func.to_char(utc, literal_column("'YYYY-MM-DD\"T\"HH24:MI:SS'"))
    fraction = case(
        (func.to_char(utc, literal_column("'US'")) == literal_column("'000000'"), literal_column("''")),
        else_=func.to_char(utc, literal_column("'.US'")),
    )
    return case((column.is_(None), None), else_=func.concat(whole, fraction, literal_column("'+00:00'")))


def risk_level_code(column: Any) -> ColumnElement[str]:
    """A stored level (its Chinese label) as its code, as registry.models.risk_level_code."""
    return case(*[(column == literal_column(f"'{level.value}'"), literal_column(f"'{level.code}'"))
                  for level in RiskLevel], else_=None)


def _risk_reasons() -> ColumnElement[Any]:
    """registry.models.risk_reasons_public of the person row: each reason that names a level gets
    its code beside it, in the stored order."""
    codes = " ".join(f"WHEN '{level.value}' THEN '{level.code}'" for level in RiskLevel)
    # Text, not SQLAlchemy constructs: jsonb_agg(... ORDER BY ordinality) over a correlated
    # set-returning function reads better in SQL. The only interpolation is the enum's constants.
    statement = (
        "(SELECT coalesce(jsonb_agg(CASE WHEN reason.value ? 'level' "  # noqa: S608
        f"THEN reason.value || jsonb_build_object('level_code', CASE reason.value ->> 'level' {codes} END) "
        "ELSE reason.value END ORDER BY reason.n), '[]'::jsonb) "
        "FROM jsonb_array_elements(person.risk_reasons::jsonb) WITH ORDINALITY AS reason(value, n))"
    )
    return literal_column(statement)


def household_json() -> ColumnElement[Any]:
    """registry.household_public of the household row."""
    h = Household
    return json_object({
        "id": col(h.id),
        "uuid": col(h.uuid),
        "org_unit_id": col(h.org_unit_id),
        "address": col(h.address),
        "head_name": col(h.head_name),
        "contact": col(h.contact),
        "lon": col(h.lon),
        "lat": col(h.lat),
        "note": col(h.note),
        "version": col(h.version),
        "updated_at": iso_utc(col(h.updated_at)),
        "counted_at": iso_utc(col(h.counted_at)),
        "clock_suspect": func.coalesce(col(h.clock_suspect), False),
    })


def _guardians() -> ColumnElement[Any]:
    """registry.guardians_of for the person row: its guardians by their id, [] for a guardian."""
    return literal_column(
        "CASE WHEN person.role = 'child' THEN (SELECT coalesce(json_agg(json_build_object("
        "'uuid', guardian.uuid, 'name', guardian.name, 'contact', guardian.contact, 'relation', link.relation) "
        "ORDER BY guardian.id), '[]'::json) "
        "FROM guardianship AS link JOIN person AS guardian ON guardian.id = link.guardian_id "
        "WHERE link.child_id = person.id) ELSE '[]'::json END"
    )


def person_json(*, birth_date: bool) -> ColumnElement[Any]:
    """registry.person_public of the person row, with its guardians; the exact birth date only when
    `birth_date` (registry.sees_birth_date of the caller)."""
    p = Person
    return json_object({
        "id": col(p.id),
        "uuid": col(p.uuid),
        "role": col(p.role),
        "household_id": col(p.household_id),
        "org_unit_id": col(p.org_unit_id),
        "name": col(p.name),
        "id_number_masked": col(p.id_masked),
        "sex": col(p.sex),
        "birth_date": func.to_char(col(p.birth_date), literal_column("'YYYY-MM-DD'")) if birth_date else null(),
        "birth_month": func.to_char(col(p.birth_date), literal_column("'YYYY-MM'")),
        "hukou_place": col(p.hukou_place),
        "residence": col(p.residence),
        "in_school": col(p.in_school),
        "contact": col(p.contact),
        "categories": col(p.categories),
        "groups": col(p.groups),
        "signs": col(p.signs),
        "task_force": col(p.task_force),
        "assistance": col(p.assistance),
        "key_minor": col(p.key_minor),
        "vulnerable": col(p.vulnerable),
        "risk_level": col(p.risk_level),
        "risk_level_code": risk_level_code(col(p.risk_level)),
        "risk_reasons": _risk_reasons(),
        "version": col(p.version),
        "updated_at": iso_utc(col(p.updated_at)),
        "counted_at": iso_utc(col(p.counted_at)),
        "clock_suspect": func.coalesce(col(p.clock_suspect), False),
        "guardians": _guardians(),
    })


def as_text(record: ColumnElement[Any]) -> ColumnElement[str]:
    """The record's JSON as text: the driver hands it over as one string, not parsed."""
    return cast(record, Text)
