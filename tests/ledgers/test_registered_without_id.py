"""A child registered without an ID number (a volunteer's sync push, the number to follow) is listed in
the town's export with an empty 身份证号码; importing that export again is still the identity: the row
is reported in skipped_rows, nothing is created or changed. A row without an ID number that names no
such child stays an error (a new child comes with its number), on both backends, dry run and real."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlmodel import Session, col

from backend.registry.models import Guardianship, Person
from tests.ledgers.test_breaker_round2 import A1, A3, _base, _post
from tests.registry.factories import child_item, household_item, make_world, push, statuses
from tests.xlsx_support import sheet_rows, xlsx_bytes


def _pending(client: TestClient, who: Any, names: list[str], village: int = 0) -> None:
    """Children pushed through sync without an ID number, on both ledgers."""
    h = household_item(village)
    kids = [child_item(h["client_uuid"], name=n, id_number="", key_minor=True, vulnerable=True) for n in names]
    body = push(client, who, [h, *kids])
    assert statuses(body) == ["created"] * (1 + len(names)), body


def _counts(session: Session) -> tuple[Any, ...]:
    session.expire_all()
    return (session.execute(select(func.count()).select_from(Person)).scalar_one(),
            session.execute(select(func.count()).select_from(Guardianship)).scalar_one(),
            session.execute(select(func.sum(Person.version))).scalar_one())


def _rows(content: bytes) -> list[list[Any]]:
    return [list(r) for r in sheet_rows(content)]


@pytest.mark.parametrize("annex", ["1", "3"])
def test_the_export_of_a_child_without_an_id_number_reimports_unchanged(client: TestClient, session: Session,
                                                                        annex: str) -> None:
    w = make_world(client, session)
    header = A1 if annex == "1" else A3
    ok = _post(client, w.coordinator, annex, "a.xlsx", xlsx_bytes([header, _base(annex, "有号")]), dry_run=False)
    assert ok.json()["errors"] == [], ok.text
    _pending(client, w.volunteer_a, ["待补号"])
    exported = client.get(f"/api/v1/ledgers/{annex}.xlsx", headers=w.coordinator.headers)
    assert exported.status_code == 200, exported.text
    [pending] = [n for n, r in enumerate(_rows(exported.content), start=1) if "待补号" in r]
    assert _rows(exported.content)[pending - 1][2] in (None, ""), "the export lists it without a number"
    before = _counts(session)
    for dry_run in (True, False):
        for lang in (None, "en"):
            resp = _post(client, w.coordinator, annex, "export.xlsx", exported.content, dry_run=dry_run, lang=lang)
            assert resp.status_code == 200, resp.text
            body = resp.json()
            assert body["ok"] and body["errors"] == [] and body["created"] == 0 and body["changes"] == [], body
            assert body["matched"] == body["unchanged"] == 1, body
            [skipped] = body["skipped_rows"]
            assert skipped["row"] == pending and skipped["kind"] == "registered_without_id_number", skipped
            if lang == "en":
                assert "without an ID number" in skipped["reason"] and "app" in skipped["reason"], skipped
            else:
                assert "未登记身份证号码" in skipped["reason"] and "未导入" in skipped["reason"], skipped
    assert _counts(session) == before


def test_a_row_without_an_id_number_naming_no_registered_child_is_still_refused(client: TestClient,
                                                                                session: Session) -> None:
    """A new child comes with its number; so does a child whose namesake holds one, and a child
    registered without a number in another village the import does not cover."""
    w = make_world(client, session)
    _pending(client, w.volunteer_b, ["别村无号"], village=1)
    registered = _base("3", "已有号")
    assert _post(client, w.coordinator, "3", "a.xlsx", xlsx_bytes([A3, registered]),
                 dry_run=False).json()["errors"] == []
    village = w.town.villages[0].id
    for name in ("新来的", "已有号", "别村无号"):
        row = _base("3", name)
        row[2] = None
        for dry_run in (True, False):
            resp = client.post("/api/v1/ledgers/3/import", params={"dry_run": dry_run, "org_unit_id": village},
                               headers=w.coordinator.headers, files={"file": ("b.xlsx", xlsx_bytes([A3, row]))})
            body = resp.json()
            assert resp.status_code == (200 if dry_run else 422), resp.text
            errors = [(e["row"], e["column"], e["reason"]) for e in body["errors"]]
            assert errors == [(2, "身份证号码", "身份证号码必填")], body
            assert body["skipped_rows"] == [], body
    session.expire_all()
    assert session.execute(select(col(Person.id)).where(col(Person.name) == "新来的")).first() is None


def test_namesakes_without_id_numbers_are_all_skipped_and_a_numbered_row_creates_a_new_child(
    client: TestClient, session: Session
) -> None:
    """Two children of one name, both without a number: both rows are skipped (nothing is written, so
    nothing is matched wrongly). A row of that name WITH a number is handled as every numbered row: a
    new child (the number is added in the app, not in the ledger, as the skipped row's reason says)."""
    w = make_world(client, session)
    _pending(client, w.volunteer_a, ["同名", "同名"])
    rows = [A3, *([n, "同名", None, "男", "", "", "", "", "", "", "", ""] for n in (1, 2))]
    before = _counts(session)
    for dry_run in (True, False):
        body = _post(client, w.coordinator, "3", "same.xlsx", xlsx_bytes(rows), dry_run=dry_run).json()
        assert body["errors"] == [] and body["created"] == body["matched"] == 0, body
        assert [(s["row"], s["kind"]) for s in body["skipped_rows"]] == [
            (2, "registered_without_id_number"), (3, "registered_without_id_number")], body
    assert _counts(session) == before
    numbered = _base("3", "同名")
    body = _post(client, w.coordinator, "3", "numbered.xlsx", xlsx_bytes([A3, numbered]), dry_run=False).json()
    assert body["errors"] == [] and body["created"] == 1 and body["skipped_rows"] == [], body
