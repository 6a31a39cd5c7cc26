"""The request-scoped disclosure audit (backend/audit/disclosure.py): one entry per request naming
the caller, the operation and the records; in the transaction of the change; nothing sent without it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlmodel import Session, col

from backend.accounts.deps import current_principal
from backend.accounts.permissions import Role
from backend.audit import disclosure
from backend.audit.models import AuditEntry
from backend.ledgers.sheets import HEADERS, Annex
from backend.main import create_app
from backend.registry.models import Household, Person
from tests.factories import make_town, user_client
from tests.registry.factories import child_id, child_item, household_item, push, seed_household, statuses
from tests.xlsx_support import xlsx_bytes

API = "/api/v1"


def _last_id(session: Session) -> int:
    return int(session.execute(select(func.coalesce(func.max(col(AuditEntry.id)), 0))).scalar_one())


def _since(session: Session, last: int) -> list[AuditEntry]:
    return list(session.execute(select(AuditEntry).where(col(AuditEntry.id) > last)
                                .order_by(col(AuditEntry.id))).scalars())


def test_ids_are_kept_as_ranges() -> None:
    assert disclosure.compact([9, 1, 2, 3, 7, 10, 3]) == "1-3,7,9-10"
    assert disclosure.expand("1-3,7,9-10") == {1, 2, 3, 7, 9, 10}
    assert disclosure.compact([]) == "" and disclosure.expand("") == set()
    assert disclosure.expand(disclosure.compact(range(1, 5001))) == set(range(1, 5001))


def test_one_entry_per_request_names_the_caller_the_operation_and_everyone_in_the_answer(
    client: TestClient, session: Session
) -> None:
    town = make_town(session)
    volunteer = user_client(client, session, town.villages[0], Role.volunteer)
    coordinator = user_client(client, session, town.town, Role.coordinator)
    home, kids = seed_household(client, volunteer, children=2)
    guardian = {"kind": "person", "client_uuid": "6f1d5c8e-0000-4000-8000-000000000001", "base_version": None,
                "data": {"role": "guardian", "household_uuid": home["uuid"], "name": "审计母亲"}}
    body = push(client, volunteer, [guardian])
    assert statuses(body) == ["created"], body
    guardian_id = body["results"][0]["record"]["id"]
    edit = {**child_item(home["uuid"], name=kids[0]["name"]), "client_uuid": kids[0]["uuid"],
            "base_version": kids[0]["version"]}
    edit["data"] = {"guardians": [{"uuid": guardian["client_uuid"], "relation": "母亲"}]}
    assert statuses(push(client, volunteer, [edit])) == ["updated"]

    last = _last_id(session)
    resp = client.get(f"{API}/households/{home['id']}/members", headers={**coordinator.headers, "X-Device-Id": "p-7"})
    assert resp.status_code == 200 and "审计母亲" in resp.text
    [entry] = _since(session, last)
    assert (entry.actor_user_id, entry.actor_roles, entry.device_id) == (coordinator.user.id, "coordinator", "p-7")
    assert entry.action == disclosure.READ_ACTION
    assert entry.details["operation"] == "GET /api/v1/households/{household_id}/members"
    named = disclosure.named_records(entry)
    assert {("person", k["id"]) for k in kids} | {("person", guardian_id), ("household", home["id"])} <= named

    # A sync push that changes a child is one entry too, the child under "changed".
    last = _last_id(session)
    again = {**edit, "base_version": kids[0]["version"] + 1, "data": {"in_school": False}}
    assert statuses(push(client, volunteer, [again])) == ["updated"]
    [entry] = _since(session, last)
    assert entry.action == "sync.push" and entry.details["changed"] == {"person": str(kids[0]["id"])}
    assert entry.details["items"] == 1 and entry.actor_user_id == volunteer.user.id


def test_a_pull_of_many_people_is_one_entry_with_their_ids_as_ranges(client: TestClient, session: Session) -> None:
    town = make_town(session)
    volunteer = user_client(client, session, town.villages[0], Role.volunteer)
    h = household_item(0)
    kids = [child_item(h["client_uuid"], name=f"拉取儿童{i}") for i in range(40)]
    body = push(client, volunteer, [h, *kids])
    ids = sorted(r["record"]["id"] for r in body["results"][1:])
    last = _last_id(session)
    assert client.get(f"{API}/sync/pull", params={"limit": 500}, headers=volunteer.headers).status_code == 200
    naming = [e for e in _since(session, last) if disclosure.named_records(e)]
    assert len(naming) == 1
    [entry] = naming
    assert entry.details["read"]["person"] == f"{ids[0]}-{ids[-1]}"
    assert ("household", body["results"][0]["record"]["id"]) in disclosure.named_records(entry)


def test_a_refusal_carrying_the_current_copy_is_audited_and_changes_nothing(
    client: TestClient, session: Session
) -> None:
    town = make_town(session)
    volunteer = user_client(client, session, town.villages[0], Role.volunteer)
    _, [kid] = seed_household(client, volunteer)
    url = f"{API}/persons/{kid['id']}"
    assert client.put(url, json={"version": kid["version"], "name": "新名"}, headers=volunteer.headers).is_success
    last = _last_id(session)
    stale = client.put(url, json={"version": kid["version"], "name": "改名"}, headers=volunteer.headers)
    assert stale.status_code == 409 and "新名" in stale.text
    [entry] = _since(session, last)
    assert entry.details["read"] == {"person": str(kid["id"])} and "changed" not in entry.details
    session.expire_all()
    assert session.get(Person, kid["id"]).name == "新名"  # type: ignore[union-attr]


def _ledger(annex: Annex, rows: list[list[Any]]) -> bytes:
    return xlsx_bytes([list(HEADERS[annex]), *rows])


def test_a_ledger_dry_run_is_audited_naming_the_children_it_matched(client: TestClient, session: Session) -> None:
    town = make_town(session)
    volunteer = user_client(client, session, town.villages[0], Role.volunteer)
    coordinator = user_client(client, session, town.town, Role.coordinator)
    number = child_id(date(2013, 2, 3))
    h = household_item(0)
    body = push(client, volunteer, [h, child_item(h["client_uuid"], name="台账儿童", id_number=number)])
    kid_id = body["results"][1]["record"]["id"]
    row = [1, "台账儿童", number, "", "", "", "", "", "心理困境", "", "", "", "", "", ""]
    last = _last_id(session)
    resp = client.post(f"{API}/ledgers/1/import", params={"dry_run": True}, headers=coordinator.headers,
                       files={"file": ("a1.xlsx", _ledger(Annex.key_minors, [row]))})
    assert resp.status_code == 200 and resp.json()["matched_rows"] == [2], resp.text  # the sheet's row 2
    [entry] = _since(session, last)
    assert entry.action == "ledger.import" and entry.details["dry_run"] is True
    assert entry.details["read"] == {"person": str(kid_id)} and "changed" not in entry.details


@pytest.fixture
def refused_audit(session: Session, backend_name: str) -> Iterator[None]:
    """The database refuses every new audit entry (what a full disk or a broken log table would do)."""
    conn = session.connection()
    if backend_name == "postgis":
        conn.execute(text("CREATE FUNCTION test_refuse_audit() RETURNS trigger AS $$ BEGIN "
                          "RAISE EXCEPTION 'audit refused'; END $$ LANGUAGE plpgsql"))
        conn.execute(text("CREATE TRIGGER test_refuse_audit BEFORE INSERT ON audit_entry "
                          "FOR EACH ROW EXECUTE FUNCTION test_refuse_audit()"))
    else:
        conn.execute(text("CREATE TRIGGER test_refuse_audit BEFORE INSERT ON audit_entry "
                          "BEGIN SELECT RAISE(ABORT, 'audit refused'); END"))
    session.commit()
    try:
        yield
    finally:
        session.rollback()
        conn = session.connection()
        conn.execute(text("DROP TRIGGER test_refuse_audit" + (" ON audit_entry" if backend_name == "postgis" else "")))
        if backend_name == "postgis":
            conn.execute(text("DROP FUNCTION test_refuse_audit()"))
        session.commit()


def test_without_its_audit_entry_a_change_is_not_kept_and_nothing_is_sent(
    session: Session, database_url: str, request: pytest.FixtureRequest
) -> None:
    with TestClient(create_app(), raise_server_exceptions=False) as c:
        town = make_town(session)
        volunteer = user_client(c, session, town.villages[0], Role.volunteer)
        home, [kid] = seed_household(c, volunteer)
        request.getfixturevalue("refused_audit")
        edited = c.put(f"{API}/households/{home['id']}",
                       json={"version": home["version"], "address": "审计失败路1号"}, headers=volunteer.headers)
        assert edited.status_code == 500 and "审计失败路" not in edited.text
        read = c.get(f"{API}/persons/{kid['id']}", headers=volunteer.headers)
        assert read.status_code == 500 and kid["name"] not in read.text and kid["uuid"] not in read.text
        pulled = c.get(f"{API}/sync/pull", headers=volunteer.headers)
        assert pulled.status_code == 500 and kid["uuid"] not in pulled.text
        session.close()  # before the app's shutdown disposes the engine its connection came from
    stored = session.get(Household, home["id"])
    assert stored is not None and stored.address == home["address"] and stored.version == home["version"]


def _late_disclosing_app() -> FastAPI:
    """The app with two made-up operations that disclose outside the request's session: a streamed body
    that names a child as it streams, and an answer built without a database session."""
    app = create_app()
    extra = APIRouter(prefix=API)

    @extra.get("/test-only/streamed/{person_id}/{name}")
    def streamed(person_id: int, name: str) -> StreamingResponse:
        def body() -> Iterator[bytes]:
            yield b"name,"
            disclosure.record(disclosure.PERSON, [person_id])
            yield name.encode()

        return StreamingResponse(body(), media_type="text/csv")

    public = APIRouter(prefix=API)

    @public.get("/test-only/sessionless/{person_id}")
    def sessionless(person_id: int) -> dict[str, Any]:
        disclosure.record(disclosure.PERSON, [person_id])
        return {"id": person_id}

    app.include_router(extra, dependencies=[Depends(current_principal)])
    app.include_router(public)
    return app


def test_streamed_and_sessionless_answers_are_audited_before_their_bytes_leave(
    session: Session, database_url: str, request: pytest.FixtureRequest
) -> None:
    with TestClient(_late_disclosing_app(), raise_server_exceptions=False) as c:
        town = make_town(session)
        volunteer = user_client(c, session, town.villages[0], Role.volunteer)
        for path, actor in (("streamed/41/某童", volunteer.user.id), ("sessionless/42", None)):
            last = _last_id(session)
            resp = c.get(f"{API}/test-only/{path}", headers=volunteer.headers)
            assert resp.status_code == 200 and resp.text in ("name,某童", '{"id":42}')
            [entry] = _since(session, last)
            assert entry.actor_user_id == actor and entry.details["read"] == {"person": path.split("/")[1]}
            assert entry.details["operation"].startswith(f"GET {API}/test-only/")
        request.getfixturevalue("refused_audit")
        refused = c.get(f"{API}/test-only/sessionless/43", headers=volunteer.headers)
        assert refused.status_code == 500 and "id" not in refused.json()
        try:  # the stream stops before the name
            cut = c.get(f"{API}/test-only/streamed/44/某童", headers=volunteer.headers).text
        except Exception:  # the connection broke off: nothing more arrived
            cut = ""
        assert "某童" not in cut
        session.close()
