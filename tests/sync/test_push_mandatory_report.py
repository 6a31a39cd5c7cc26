"""The "mandatory_report" push kind: a report filed offline lands exactly once, like a visit. A resend
(however re-serialised) is a duplicate carrying the stored report, the same uuid with other content a
conflict, an invalid item is rejected alone; the police are told once, also when two pushes of one
uuid race."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlmodel import Session, col

from backend.accounts.models import Agency
from backend.accounts.permissions import Role
from backend.audit.models import AuditEntry
from backend.core import clock
from backend.main import create_app
from backend.notifications.models import Notification
from backend.referrals.models import Referral
from tests.factories import SignedIn, make_town, make_user
from tests.notifications.factories import headers_for
from tests.registry.factories import child_item, household_item, push, statuses

API = "/api/v1"


def report_item(uid: uuid.UUID | None = None, **extra: Any) -> dict[str, Any]:
    seen = clock.now().replace(microsecond=0) - timedelta(hours=5)
    data = {"description": "网吧里有未成年人深夜滞留，神情害怕", "seen_at": seen.astimezone(clock.SHANGHAI).isoformat(),
            "place": "镇上网吧", "lon": 108.301, "lat": 30.001, **extra}
    return {"kind": "mandatory_report", "client_uuid": str(uid or uuid.uuid4()), "data": data}


def _count(session: Session) -> int:
    session.expire_all()
    return int(session.execute(select(func.count()).select_from(Referral)).scalar_one())


def _told(session: Session) -> list[Notification]:
    session.expire_all()
    return list(session.execute(select(Notification).where(col(Notification.kind) == "referral.created")).scalars())


class Phones:
    def __init__(self, session: Session) -> None:
        self.town = make_town(session)
        self.police = make_user(session, self.town.town, Role.police, agency=Agency.police)
        grid = make_user(session, self.town.villages[0], Role.grid_worker)
        other = make_user(session, self.town.villages[0], Role.volunteer, agency=Agency.womens_federation)
        self.grid = SignedIn(grid, headers_for(session, grid), "")
        self.other = SignedIn(other, headers_for(session, other), "")


def test_a_report_pushed_again_in_any_spelling_is_a_duplicate_and_the_police_are_told_once(
    client: TestClient, session: Session
) -> None:
    p = Phones(session)
    item = report_item()
    first = push(client, p.grid, [item])
    assert statuses(first) == ["created"]
    record = first["results"][0]["record"]
    assert record["status"] == "filed" and record["source_kind"] == "grid" and record["client_uuid"] == item[
        "client_uuid"]
    assert record["org_unit_id"] == p.town.grids[0][0].id  # the grid of the caller's containing the point
    again = push(client, p.grid, [item])
    assert statuses(again) == ["duplicate"] and again["results"][0]["record"] == record
    data = item["data"]
    seen = clock.as_utc(__import__("datetime").datetime.fromisoformat(data["seen_at"]))
    respelled = {**item, "data": {**data, "seen_at": seen.isoformat().replace("+00:00", "Z"), "lon": 108.301000,
                                  "child": None, "org_unit_id": None}}
    assert statuses(push(client, p.grid, [respelled, item])) == ["duplicate", "duplicate"]
    assert _count(session) == 1
    assert [n.user_id for n in _told(session)] == [p.police.id]
    # A report filed online with the same uuid is the same report.
    online = client.post(f"{API}/mandatory-reports", json={**data, "client_uuid": item["client_uuid"]},
                         headers=p.grid.headers)
    assert online.status_code == 200 and online.json()["id"] == record["id"], online.text
    entries = session.execute(select(AuditEntry).where(col(AuditEntry.action) == "sync.push")).scalars().all()
    assert entries and all(e.details.get("changed", {}).get("referral") or e.details.get("read", {}).get("referral")
                           for e in entries)


def test_the_same_uuid_with_other_content_is_a_conflict_that_keeps_the_stored_report(
    client: TestClient, session: Session
) -> None:
    p = Phones(session)
    item = report_item()
    stored = push(client, p.grid, [item])["results"][0]["record"]
    changed = {**item, "data": {**item["data"], "description": "改过的描述"}}
    body = push(client, p.grid, [changed])
    [result] = body["results"]
    assert result["status"] == "conflict" and result["problem"]["code"] == "mandatory-report-conflict"
    assert result["record"]["description"] == stored["description"]
    # Someone else's uuid: a conflict that says nothing about the stored report.
    theirs = push(client, p.other, [item])["results"][0]
    assert theirs["status"] == "conflict" and theirs["record"] is None
    assert "report_id" not in theirs["problem"] and stored["description"] not in str(theirs)
    online = client.post(f"{API}/mandatory-reports", json={**changed["data"], "client_uuid": item["client_uuid"]},
                         headers=p.grid.headers)
    assert online.status_code == 409 and online.json()["code"] == "mandatory-report-conflict"
    assert _count(session) == 1 and len(_told(session)) == 1


def test_an_invalid_report_is_rejected_alone(client: TestClient, session: Session) -> None:
    p = Phones(session)
    future = (clock.now() + timedelta(days=1)).isoformat()
    body = push(client, p.grid, [
        report_item(seen_at=future), report_item(), {**report_item(), "data": {"seen_at": future}},
        report_item(child_id=424242), report_item(org_unit_id=p.town.villages[1].id),
    ])
    assert statuses(body) == ["rejected", "created", "rejected", "rejected", "rejected"]
    problems = [r["problem"] for r in body["results"]]
    assert problems[0]["code"] == "mandatory-report-seen-in-future"
    assert problems[2]["code"] == "invalid-input" and "description" in str(problems[2])
    assert problems[3]["code"] == "mandatory-report-child-invalid"
    assert problems[4]["status"] == 404
    assert _count(session) == 1
    # A fixed item sent again with its uuid is stored.
    fixed = {**body["results"][0], "kind": "mandatory_report", "data": report_item()["data"]}
    again = push(client, p.grid, [{k: fixed[k] for k in ("kind", "client_uuid", "data")}])
    assert statuses(again) == ["created"]
    market = make_user(session, p.town.town, Role.market_officer)
    admin = make_user(session, p.town.province, Role.admin)
    assert statuses(push(client, SignedIn(market, headers_for(session, market), ""), [report_item()])) == ["created"]
    refused = push(client, SignedIn(admin, headers_for(session, admin), ""), [report_item()])
    assert statuses(refused) == ["rejected"] and refused["results"][0]["problem"]["status"] == 403


def test_a_report_names_a_child_pushed_in_the_same_batch(client: TestClient, session: Session) -> None:
    p = Phones(session)
    home = household_item(0)
    kid = child_item(home["client_uuid"], name="同批儿童")
    body = push(client, p.grid, [report_item(child_uuid=kid["client_uuid"]), kid, home])
    assert statuses(body) == ["created"] * 3, body
    assert body["results"][0]["record"]["child_id"] == body["results"][1]["record"]["id"]
    assert "同批儿童" not in str(body["results"][0])


def test_two_concurrent_pushes_of_one_report_store_it_once_and_tell_the_police_once(
    client: TestClient, session: Session
) -> None:
    p = Phones(session)
    item = report_item()
    barrier = threading.Barrier(2)
    answers: list[dict[str, Any]] = []

    def send() -> None:
        with TestClient(create_app()) as own:  # a second, independent HTTP client and connection pool
            barrier.wait()
            resp = own.post(f"{API}/sync/push", json={"items": [item]}, headers=p.grid.headers)
            assert resp.status_code == 200, resp.text
            answers.append(resp.json())

    threads = [threading.Thread(target=send) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(a["results"][0]["status"] for a in answers) == ["created", "duplicate"]
    assert answers[0]["results"][0]["record"]["id"] == answers[1]["results"][0]["record"]["id"]
    assert _count(session) == 1 and len(_told(session)) == 1


def test_a_pushed_report_seen_before_1970_is_rejected_naming_seen_at(client: TestClient, session: Session) -> None:
    p = Phones(session)
    body = push(client, p.grid, [report_item(seen_at="0001-01-01T00:00:00+00:00"),
                                 report_item(seen_at="1900-01-01T00:00:00+14:00"),
                                 report_item(seen_at="1995-03-01T09:00:00+08:00")])
    assert statuses(body) == ["rejected", "rejected", "created"]
    for result in body["results"][:2]:
        assert [e["field"] for e in result["problem"]["errors"]] == ["seen_at"], result
    assert _count(session) == 1
