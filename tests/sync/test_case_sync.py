"""Issue 16 on the phone: a helper pulls only the cases (and their services) of the children it helps,
and gets their removal when the help ends; it records follow-ups and service steps offline, each
stored exactly once however often it is resent (same UUID and content: duplicate; other content:
conflict; concurrent pushes of one UUID: one created, the others duplicates)."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlmodel import Session, col

from backend.accounts.models import User
from backend.cases import service as cases
from backend.cases.models import Case, CaseSource
from backend.core import clock
from backend.helpers.models import Assignment, FollowUp, HelperProfile
from backend.main import create_app
from backend.registry.models import Person, RiskLevel
from backend.service_plans.models import SEED_KINDS, CaseService, ServiceKind, ServiceStep
from tests.factories import SignedIn
from tests.helpers.factories import make_child, make_helper, raise_risk
from tests.notifications.factories import headers_for
from tests.registry.factories import World, make_world, push, statuses
from tests.service_plans.factories import plan
from tests.sync.test_sync_pull import pull_all

API = "/api/v1"


def _signed(session: Session, profile: HelperProfile) -> SignedIn:
    user = session.get(User, profile.user_id)
    assert user is not None
    return SignedIn(user, headers_for(session, user), "")


def _helped(client: TestClient, session: Session, w: World, child: Person) -> tuple[SignedIn, dict[str, Any]]:
    """The child raised to 较大风险, a helper proposed, confirmed and accepted over HTTP: its case is active."""
    helper = _signed(session, make_helper(session, w.town.town, sex="female"))
    raise_risk(session, child, RiskLevel.major)
    proposed = client.post(f"{API}/helpers/proposals", headers=w.coordinator.headers)
    assert proposed.status_code == 200, proposed.text
    [offer] = [a for a in proposed.json() if a["child_id"] == child.id]
    assert client.post(f"{API}/helpers/assignments/{offer['id']}/confirm", headers=w.coordinator.headers).is_success
    accepted = client.post(f"{API}/helpers/assignments/{offer['id']}/accept", headers=helper.headers)
    assert accepted.status_code == 200, accepted.text
    return helper, accepted.json()


def _of(items: list[dict[str, Any]], kind: str) -> dict[int, dict[str, Any]]:
    """The last record of each id of `kind` in pulled items (as a phone keeps them)."""
    return {i["record"]["id"]: i["record"] for i in items if i["kind"] == kind}


def _removed(items: list[dict[str, Any]], kind: str) -> set[int]:
    return {i["record"]["id"] for i in items if i["kind"] == "removal" and i["record"]["kind"] == kind}


def _count(session: Session, model: Any) -> int:
    session.expire_all()
    return int(session.execute(select(func.count()).select_from(model)).scalar_one())


# ---------------------------------------------------------------- cases on the phone


def test_a_helper_pulls_the_case_of_its_child_only_as_rest_shows_it_and_its_removal_when_help_ends(
    client: TestClient, session: Session
) -> None:
    w = make_world(client, session)
    child, other = make_child(session, w.town.grids[0][0]), make_child(session, w.town.grids[0][0])
    helper, assignment = _helped(client, session, w, child)
    foreign = client.post(f"{API}/cases", json={"child_id": other.id, "reason": "学校反映"},
                          headers=w.coordinator.headers).json()
    items, cursor = pull_all(client, helper)
    held = _of(items, "case")
    assert list(held) == [assignment["case_id"]] and foreign["id"] not in held
    rest = client.get(f"{API}/cases/{assignment['case_id']}", headers=helper.headers).json()
    assert held[assignment["case_id"]] == {k: v for k, v in rest.items() if k not in ("history", "assignments")}
    assert held[assignment["case_id"]]["status"] == "active"

    ended = client.post(f"{API}/helpers/assignments/{assignment['id']}/end", json={"reason": "need_met"},
                        headers=w.coordinator.headers)
    assert ended.status_code == 200, ended.text
    later, _ = pull_all(client, helper, cursor)
    assert _removed(later, "case") == {assignment["case_id"]}
    assert not _of(later, "case")
    fresh, _ = pull_all(client, helper)
    assert not _of(fresh, "case")


def test_closing_a_case_shows_it_closed_to_the_coordinator_and_takes_it_off_the_helpers_phone(
    client: TestClient, session: Session
) -> None:
    w = make_world(client, session)
    child = make_child(session, w.town.grids[0][0])
    helper, assignment = _helped(client, session, w, child)
    _, helper_cursor = pull_all(client, helper)
    first, coordinator_cursor = pull_all(client, w.coordinator)
    assert _of(first, "case")[assignment["case_id"]]["status"] == "active"
    closed = client.post(f"{API}/cases/{assignment['case_id']}/close", json={"reason": "risk_lowered"},
                         headers=w.coordinator.headers)
    assert closed.status_code == 200, closed.text

    seen, _ = pull_all(client, w.coordinator, coordinator_cursor)
    case = _of(seen, "case")[assignment["case_id"]]
    assert (case["status"], case["close_reason"], case["allowed"]) == ("closed", "risk_lowered", ["reopen"])
    gone, _ = pull_all(client, helper, helper_cursor)
    assert _removed(gone, "case") == {assignment["case_id"]}
    assert assignment["id"] in _removed(gone, "assignment")


def test_police_pull_the_referred_cases_of_their_jurisdiction_only(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    reported, by_hand = make_child(session, w.town.grids[0][0]), make_child(session, w.town.grids[0][1])
    referred, _ = cases.open_case(session, child_id=reported.id or 0, source=CaseSource.mandatory_report, actor=None)
    session.commit()
    plain = client.post(f"{API}/cases", json={"child_id": by_hand.id, "reason": "专班研判"},
                        headers=w.coordinator.headers).json()
    items, _ = pull_all(client, w.police)
    assert set(_of(items, "case")) == {referred.id}
    assert plain["id"] in _of(pull_all(client, w.coordinator)[0], "case")


def test_a_helper_who_accepts_a_child_with_an_old_case_pulls_it_from_its_cursor(client: TestClient,
                                                                                 session: Session) -> None:
    """The case is older than the helper's cursor: accepting gives it a new revision (migration 0024)."""
    w = make_world(client, session)
    child = make_child(session, w.town.grids[0][0])
    opened = client.post(f"{API}/cases", json={"child_id": child.id, "reason": "学校反映"},
                         headers=w.coordinator.headers).json()
    client.post(f"{API}/cases/{opened['id']}/activate", headers=w.coordinator.headers)
    helper = _signed(session, make_helper(session, w.town.town, sex="female"))
    _, cursor = pull_all(client, helper)
    raise_risk(session, child, RiskLevel.major)
    [offer] = [a for a in client.post(f"{API}/helpers/proposals", headers=w.coordinator.headers).json()
               if a["child_id"] == child.id]
    client.post(f"{API}/helpers/assignments/{offer['id']}/confirm", headers=w.coordinator.headers)
    assert client.post(f"{API}/helpers/assignments/{offer['id']}/accept", headers=helper.headers).is_success
    items, _ = pull_all(client, helper, cursor)
    assert set(_of(items, "case")) == {opened["id"]}


# ---------------------------------------------------------------- follow-ups pushed from the phone


def _followup(assignment_id: int, *, note: str | None = "上门随访，情况稳定", at: datetime | None = None,
              uid: str | None = None) -> dict[str, Any]:
    when = at or (clock.now() - timedelta(hours=2)).replace(microsecond=0)
    return {"kind": "followup", "client_uuid": uid or str(uuid.uuid4()), "base_version": None,
            "data": {"assignment_id": assignment_id, "visited_at": when.isoformat(), "note": note}}


def test_a_followup_pushed_again_is_a_duplicate_and_moves_the_next_due_date_once(
    client: TestClient, session: Session
) -> None:
    w = make_world(client, session)
    child = make_child(session, w.town.grids[0][0])
    helper, assignment = _helped(client, session, w, child)
    _, cursor = pull_all(client, helper)
    item = _followup(assignment["id"])
    first = push(client, helper, [item])
    assert statuses(first) == ["created"]
    record = first["results"][0]["record"]
    assert (record["assignment_id"], record["client_uuid"], record["clock_suspect"]) == (
        assignment["id"], item["client_uuid"], False)
    # The same follow-up as another app writes it (another offset, key order): a duplicate.
    at = datetime.fromisoformat(item["data"]["visited_at"]).astimezone(timezone(timedelta(hours=8)))
    again = {**item, "data": {"note": item["data"]["note"], "visited_at": at.isoformat(),
                              "assignment_id": assignment["id"]}}
    second = push(client, helper, [again, item])
    assert statuses(second) == ["duplicate", "duplicate"]
    assert {r["record"]["id"] for r in second["results"]} == {record["id"]}
    assert _count(session, FollowUp) == 1
    # The same effects as the REST endpoint: the next follow-up falls due from it, and the phone
    # pulls the assignment again with it.
    stored = session.get(Assignment, assignment["id"])
    assert stored is not None and stored.last_followup_at is not None
    assert clock.as_utc(stored.last_followup_at) == datetime.fromisoformat(item["data"]["visited_at"])
    items, _ = pull_all(client, helper, cursor)
    pulled = _of(items, "assignment")[assignment["id"]]
    assert pulled["last_followup_at"] is not None and pulled["followup_due_at"] is not None

    changed = {**item, "data": {**item["data"], "note": "改过的"}}
    conflict = push(client, helper, [changed])
    assert statuses(conflict) == ["conflict"]
    assert conflict["results"][0]["record"]["note"] == item["data"]["note"]
    assert conflict["results"][0]["problem"]["code"] == "followup-conflict"
    assert _count(session, FollowUp) == 1


def test_a_followup_on_another_helpers_assignment_is_refused_as_one_that_does_not_exist(
    client: TestClient, session: Session
) -> None:
    w = make_world(client, session)
    child = make_child(session, w.town.grids[0][0])
    _, assignment = _helped(client, session, w, child)
    stranger = _signed(session, make_helper(session, w.town.town, sex="female"))
    body = push(client, stranger, [_followup(assignment["id"]), _followup(10_000_000)])
    assert statuses(body) == ["rejected", "rejected"]
    assert body["results"][0]["problem"]["code"] == body["results"][1]["problem"]["code"]
    assert body["results"][0]["problem"]["status"] == 404
    assert _count(session, FollowUp) == 0


def test_a_followup_made_offline_while_the_help_lasted_is_kept_after_the_help_ended(
    client: TestClient, session: Session
) -> None:
    """A helper visits, stays offline, and the coordinator ends the help meanwhile: the visit happened,
    so it is stored; one dated after the end (or on a phone clock not to be trusted) is refused."""
    w = make_world(client, session)
    child = make_child(session, w.town.grids[0][0])
    helper, assignment = _helped(client, session, w, child)
    before_end = (clock.now() - timedelta(hours=3)).replace(microsecond=0)
    ended = client.post(f"{API}/helpers/assignments/{assignment['id']}/end", json={"reason": "need_met"},
                        headers=w.coordinator.headers)
    assert ended.status_code == 200, ended.text
    clock.advance(timedelta(hours=1))
    helper = SignedIn(helper.user, headers_for(session, helper.user), "")  # a token of the new hour
    during = _followup(assignment["id"], at=before_end)
    after = _followup(assignment["id"], at=(clock.now() - timedelta(minutes=10)).replace(microsecond=0))
    ahead = _followup(assignment["id"], at=(clock.now() + timedelta(days=365)).replace(microsecond=0))
    body = push(client, helper, [during, after, ahead])
    assert statuses(body) == ["created", "rejected", "rejected"]
    assert body["results"][1]["problem"]["code"] == body["results"][2]["problem"]["code"] == "assignment-state"
    assert statuses(push(client, helper, [during])) == ["duplicate"]
    assert _count(session, FollowUp) == 1
    stored = session.get(Assignment, assignment["id"])
    assert stored is not None and stored.status == "ended"


def test_a_followup_from_a_phone_clock_far_ahead_counts_at_receipt_and_is_flagged(
    client: TestClient, session: Session
) -> None:
    w = make_world(client, session)
    child = make_child(session, w.town.grids[0][0])
    helper, assignment = _helped(client, session, w, child)
    ahead = (clock.now() + timedelta(days=365)).replace(microsecond=0)
    item = _followup(assignment["id"], at=ahead)
    body = push(client, helper, [item])
    assert statuses(body) == ["created"]
    record = body["results"][0]["record"]
    assert record["clock_suspect"] is True
    assert datetime.fromisoformat(record["visited_at"]) <= clock.now()
    assert datetime.fromisoformat(record["device_time"]) == ahead
    assert statuses(push(client, helper, [item])) == ["duplicate"]
    stored = session.get(Assignment, assignment["id"])
    assert stored is not None and stored.last_followup_at is not None
    assert clock.as_utc(stored.last_followup_at) <= clock.now()  # follow-ups keep falling due


def test_two_concurrent_pushes_of_one_followup_store_it_once(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    child = make_child(session, w.town.grids[0][0])
    helper, assignment = _helped(client, session, w, child)
    answers = _at_once(helper, _followup(assignment["id"]))
    assert sorted(a["results"][0]["status"] for a in answers) == ["created", "duplicate"]
    assert answers[0]["results"][0]["record"]["id"] == answers[1]["results"][0]["record"]["id"]
    assert _count(session, FollowUp) == 1


def _at_once(who: SignedIn, item: dict[str, Any]) -> list[dict[str, Any]]:
    """The same item pushed by two independent HTTP clients at the same moment."""
    barrier = threading.Barrier(2)
    answers: list[dict[str, Any]] = []

    def send() -> None:
        with TestClient(create_app()) as own:
            barrier.wait()
            resp = own.post(f"{API}/sync/push", json={"items": [item]}, headers=who.headers)
            assert resp.status_code == 200, resp.text
            answers.append(resp.json())

    threads = [threading.Thread(target=send) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(answers) == 2
    return answers


# ---------------------------------------------------------------- services and their steps


def ensure_service_kinds(session: Session) -> None:
    """The seeds' kinds of service (written by migration 0021; emptied between PostGIS tests)."""
    for code, zh, en, agency in SEED_KINDS:
        if session.get(ServiceKind, code) is None:
            session.add(ServiceKind(code=code, name_zh=zh, name_en=en, default_agency=agency))
    session.commit()


def _service_of_helped_child(client: TestClient, session: Session, w: World
                             ) -> tuple[SignedIn, dict[str, Any], dict[str, Any]]:
    ensure_service_kinds(session)
    child = make_child(session, w.town.grids[0][0])
    helper, assignment = _helped(client, session, w, child)
    return helper, assignment, plan(client, w.coordinator, assignment["case_id"])


def _step(service_id: int, to_status: str, *, uid: str | None = None, **data: Any) -> dict[str, Any]:
    return {"kind": "service_step", "client_uuid": uid or str(uuid.uuid4()), "base_version": None,
            "data": {"service_id": service_id, "to_status": to_status, **data}}


def test_a_helper_pulls_the_services_of_its_cases_and_their_removal_when_help_ends(
    client: TestClient, session: Session
) -> None:
    w = make_world(client, session)
    helper, assignment, service = _service_of_helped_child(client, session, w)
    ensure_service_kinds(session)
    other_case = client.post(f"{API}/cases", json={"child_id": make_child(session, w.town.grids[0][0]).id,
                                                   "reason": "学校反映"}, headers=w.coordinator.headers).json()
    other = plan(client, w.coordinator, other_case["id"])
    items, cursor = pull_all(client, helper)
    held = _of(items, "service")
    assert set(held) == {service["id"]} and other["id"] not in held
    assert held[service["id"]]["status"] == "planned" and held[service["id"]]["case_id"] == assignment["case_id"]
    assert {service["id"], other["id"]} <= set(_of(pull_all(client, w.coordinator)[0], "service"))

    client.post(f"{API}/helpers/assignments/{assignment['id']}/end", json={"reason": "need_met"},
                headers=w.coordinator.headers)
    later, _ = pull_all(client, helper, cursor)
    assert _removed(later, "service") == {service["id"]}
    assert not _of(pull_all(client, helper)[0], "service")


def test_a_service_step_pushed_again_is_a_duplicate_and_other_content_a_conflict(
    client: TestClient, session: Session
) -> None:
    w = make_world(client, session)
    helper, _, service = _service_of_helped_child(client, session, w)
    _, cursor = pull_all(client, helper)
    at = clock.now().replace(microsecond=0)
    item = _step(service["id"], "in_progress", note="已联系司法所", at=at.isoformat())
    first = push(client, helper, [item])
    assert statuses(first) == ["created"]
    record = first["results"][0]["record"]
    assert (record["from_status"], record["to_status"], record["client_uuid"]) == ("planned", "in_progress",
                                                                                  item["client_uuid"])
    resent = {**item, "data": {**item["data"], "at": at.astimezone(UTC).isoformat().replace("+00:00", "Z")}}
    assert statuses(push(client, helper, [resent, item])) == ["duplicate", "duplicate"]
    conflict = push(client, helper, [{**item, "data": {**item["data"], "to_status": "declined",
                                                        "reason": "家长拒绝"}}])
    assert statuses(conflict) == ["conflict"]
    assert conflict["results"][0]["record"]["to_status"] == "in_progress"
    assert _count(session, ServiceStep) == 2  # planned, in_progress
    # The phone pulls the service in its new status.
    items, _ = pull_all(client, helper, cursor)
    assert _of(items, "service")[service["id"]]["status"] == "in_progress"


def test_a_refused_service_step_carries_the_refusal_of_record_step(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    helper, _, service = _service_of_helped_child(client, session, w)
    stranger = _signed(session, make_helper(session, w.town.town, sex="female"))
    body = push(client, helper, [_step(service["id"], "done"), _step(service["id"], "closed_now")])
    assert statuses(body) == ["rejected", "rejected"]
    assert body["results"][0]["problem"]["code"] == "service-transition-invalid"
    assert body["results"][1]["problem"]["code"] == "service-step-invalid"
    ahead = (clock.now() + timedelta(days=2)).isoformat()
    body = push(client, helper, [_step(service["id"], "in_progress", at=ahead)])
    assert body["results"][0]["problem"]["code"] == "service-step-invalid"
    body = push(client, stranger, [_step(service["id"], "in_progress")])
    assert body["results"][0]["problem"]["code"] == "service-not-found"
    session.expire_all()
    assert session.execute(select(col(CaseService.status)).where(col(CaseService.id) == service["id"])
                           ).scalar_one() == "planned"


def test_two_concurrent_pushes_of_one_service_step_store_it_once(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    helper, _, service = _service_of_helped_child(client, session, w)
    answers = _at_once(helper, _step(service["id"], "in_progress", note="开始服务"))
    assert sorted(a["results"][0]["status"] for a in answers) == ["created", "duplicate"]
    assert answers[0]["results"][0]["record"]["id"] == answers[1]["results"][0]["record"]["id"]
    assert _count(session, ServiceStep) == 2


def test_each_case_has_a_revision_of_its_own_and_the_cursor_names_how_the_view_is_narrowed(
    client: TestClient, session: Session
) -> None:
    """A police officer or helper made a coordinator too sees more cases: its phone is rebuilt, not patched."""
    import base64
    import json

    def decode_cursor(cursor: str) -> dict[str, Any]:
        """The cursor's position, without its signature (bound to the request that checks it)."""
        payload = cursor.partition(".")[0]
        return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))

    w = make_world(client, session)
    child = make_child(session, w.town.grids[0][0])
    helper, _ = _helped(client, session, w, child)
    revs = session.execute(select(col(Case.rev))).scalars().all()
    assert revs and all(r > 0 for r in revs) and len(set(revs)) == len(revs)
    tags = {}
    for name, who in (("helper", helper), ("police", w.police), ("coordinator", w.coordinator)):
        cursor = decode_cursor(pull_all(client, who)[1])
        tags[name] = {k for k in str(cursor["k"]).split(",") if k.split("@")[0] in ("case", "service")}
    assert tags == {"helper": {"case@assigned", "service@assigned"}, "police": {"case@referred", "service@referred"},
                    "coordinator": {"case", "service"}}


def test_migration_0024_gives_existing_cases_revisions_after_every_cursor(session: Session,
                                                                         database_url: str) -> None:
    """Cases made before their kind was pulled get revisions after every revision handed out (so a
    stored cursor picks them up), one each; it downgrades and upgrades cleanly."""
    from alembic import command
    from sqlalchemy import text

    from backend.core.migrate import alembic_config, upgrade
    from tests.factories import make_town
    from tests.helpers.factories import assign

    town = make_town(session)
    children = [make_child(session, town.grids[0][n]) for n in range(3)]
    helper = make_helper(session, town.town, sex="female")
    for child in children:
        assign(session, child, helper)
        cases.open_case(session, child_id=child.id or 0, source=CaseSource.by_hand, actor=None)
    session.commit()
    session.close()
    command.downgrade(alembic_config(database_url), "0023")
    session.close()
    before = int(session.execute(text("SELECT value FROM sync_counter WHERE id = 1")).scalar_one())
    session.close()
    upgrade(database_url)
    revs = [int(r) for r in session.execute(text("SELECT rev FROM child_case ORDER BY id")).scalars()]
    assert len(revs) == 3 and len(set(revs)) == 3 and min(revs) > before
    assert int(session.execute(text("SELECT value FROM sync_counter WHERE id = 1")).scalar_one()) >= max(revs)
