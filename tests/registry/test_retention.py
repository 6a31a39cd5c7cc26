"""Data minimisation over time (PIPL art. 19 and 47): the worker job `registry.retention`
(backend/registry/retention.py).

A child leaves the active registry on the first day of the month after its 18th birthday (never
earlier, and never revealing more than the birth month), unless a case is open: then at the first
run after it closes. Phones that held it receive a removal. After the retention period
(HULEI_RETENTION_YEARS after retirement) its personal details are anonymised, keeping what the
monthly report counts: a past month's report is the same before and after."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text, update
from sqlmodel import Session, col

from backend.accounts.models import User
from backend.accounts.permissions import Role
from backend.audit.models import AuditEntry
from backend.campaigns import service as campaigns
from backend.core import clock
from backend.core.config import get_settings
from backend.core.db import get_engine
from backend.core.jobs import run_due_jobs
from backend.helpers.models import Assignment, AssignmentStatus, FollowUp
from backend.media.models import MediaItem, MediaState
from backend.media.storage import get_storage
from backend.referrals.models import Referral, ReferralStatus
from backend.registry import retention
from backend.registry import service as registry
from backend.registry.models import Guardianship, Household, Person, RiskLevel, RiskLevelChange
from backend.reports import service as reports
from backend.visits.models import Visit
from tests.coverage.fixture import build_world, cst
from tests.factories import SignedIn, make_town, make_user
from tests.helpers.factories import make_helper, raise_risk
from tests.notifications.factories import headers_for
from tests.registry.factories import child_id, household_item, make_child_born, push, statuses
from tests.sync.test_removals import _apply
from tests.sync.test_sync_pull import pull_all
from tests.xlsx_support import read_workbook

CST = clock.SHANGHAI


def china(*args: int) -> datetime:
    return datetime(*args, tzinfo=CST)  # type: ignore[misc]


def run_job() -> dict[str, int]:
    """One run of the job, as the worker runs it (its own session)."""
    with Session(get_engine(), expire_on_commit=False) as s:
        counts = retention.run(s)
        s.commit()
    return counts


def signed_in(session: Session, user: User) -> SignedIn:
    """Bearer headers issued now by the (moved) clock."""
    return SignedIn(user, headers_for(session, user), "")


def person(session: Session, person_id: int) -> Person:
    session.expire_all()
    p = session.get(Person, person_id)
    assert p is not None
    return p


def _guardian_item(household_uuid: str, name: str) -> dict[str, Any]:
    data = {"role": "guardian", "household_uuid": household_uuid, "name": name, "contact": "13900000001"}
    return {"kind": "person", "client_uuid": str(uuid.uuid4()), "base_version": None, "data": data}


# ---------------------------------------------------------------- retirement


def test_a_child_turning_18_leaves_the_active_registry_on_the_first_of_the_next_month_and_not_before(
    client: TestClient, session: Session
) -> None:
    town = make_town(session)
    clock.freeze(china(2026, 11, 10, 10))
    volunteer_user = make_user(session, town.villages[0], Role.volunteer)
    coordinator_user = make_user(session, town.town, Role.coordinator)
    volunteer = signed_in(session, volunteer_user)
    home = household_item(0)
    # 18 on 15 November 2026; 18 on 1 December 2026 (its birthday is the 1st); a young sibling.
    items = [home,
             *[{**item, "data": {**item["data"], "name": name}} for item, name in [
                 (_child(home, date(2008, 11, 15)), "甲"), (_child(home, date(2008, 12, 1)), "乙"),
                 (_child(home, date(2014, 5, 6)), "丙")]]]
    body = push(client, volunteer, items)
    assert statuses(body) == ["created"] * 4, body
    household_id = body["results"][0]["record"]["id"]
    nov, dec, young = (r["record"]["id"] for r in body["results"][1:])

    def members() -> set[int]:
        resp = client.get(f"/api/v1/households/{household_id}/members",
                          headers=signed_in(session, coordinator_user).headers)
        assert resp.status_code == 200, resp.text
        return {m["id"] for m in resp.json()}

    def active_children(month: str) -> int:
        figures = reports.build(session, town.town, campaigns.month_period(month)).figures
        return sum(figures["children"].values())

    clock.freeze(china(2026, 11, 30, 23, 59, 59))
    assert run_job()["retired_children"] == 0
    assert members() == {nov, dec, young} and active_children("2026-11") == 3

    clock.freeze(china(2026, 12, 1))  # midnight in China (16:00 UTC the day before)
    assert run_job()["retired_children"] == 1
    assert person(session, nov).retired_at is not None and person(session, dec).retired_at is None
    assert members() == {dec, young} and active_children("2026-12") == 2
    for who in (coordinator_user, volunteer_user):
        resp = client.get(f"/api/v1/persons/{nov}", headers=signed_in(session, who).headers)
        assert resp.status_code == 404, resp.text
    assert client.get(f"/api/v1/persons/{dec}", headers=signed_in(session, volunteer_user).headers).status_code == 200

    clock.freeze(china(2026, 12, 31, 23, 59, 59))
    assert run_job()["retired_children"] == 0
    clock.freeze(china(2027, 1, 1, 0, 0, 1))
    assert run_job()["retired_children"] == 1
    assert members() == {young}
    # Retirement says no more than the month: the record keeps its birth date, nobody is told it.
    assert person(session, dec).birth_date == date(2008, 12, 1)


def _child(home: dict[str, Any], birth: date, **extra: Any) -> dict[str, Any]:
    male = birth.day % 2 == 1
    data = {"role": "child", "household_uuid": home["client_uuid"], "name": "测试儿童",
            "id_number": child_id(birth, male=male), "in_school": True, **extra}
    return {"kind": "person", "client_uuid": str(uuid.uuid4()), "base_version": None, "data": data}


def test_a_child_with_an_open_case_stays_until_the_case_closes_then_retires_at_the_next_run(
    client: TestClient, session: Session
) -> None:
    town = make_town(session)
    clock.freeze(china(2026, 6, 10, 9))
    grid = town.grids[0][0]
    born = date(2008, 3, 3)  # 18 since March 2026
    plain = make_child_born(session, grid, born)
    referred = make_child_born(session, grid, born)
    helped = make_child_born(session, grid, born)
    at_risk = make_child_born(session, grid, born)
    household_case = make_child_born(session, grid, born)
    now = clock.now()
    referral = Referral(visit_id=9001, household_id=referred.household_id or 0, org_unit_id=grid.id or 0,
                        child_ids=[referred.id], status=ReferralStatus.received.value, created_at=now,
                        receive_due_at=now, handle_due_at=now + timedelta(hours=72))
    # A clue about the household (no child named) holds its children too.
    about_home = Referral(visit_id=9002, household_id=household_case.household_id or 0, org_unit_id=grid.id or 0,
                          child_ids=[], status=ReferralStatus.new.value, created_at=now, receive_due_at=now,
                          handle_due_at=now + timedelta(hours=72))
    helper = make_helper(session, town.town, sex="female")
    assignment = Assignment(child_id=helped.id or 0, helper_id=helper.id or 0, org_unit_id=grid.id or 0,
                            mode="one_to_one", status=AssignmentStatus.accepted.value, answered_at=now)
    session.add_all([referral, about_home, assignment])
    session.commit()
    raise_risk(session, at_risk, RiskLevel.severe)

    counts = run_job()
    assert counts["retired_children"] == 1 and counts["children_kept_open_case"] == 4
    assert person(session, plain.id or 0).retired_at is not None
    for kept in (referred, helped, at_risk, household_case):
        assert person(session, kept.id or 0).retired_at is None
    assert run_job()["retired_children"] == 0  # still open

    # The cases close: the police handle the clues, the help ends, a coordinator lowers the level.
    session.execute(update(Referral).values(status=ReferralStatus.handled.value, handled_at=now))
    session.commit()
    session.expire_all()
    ended = session.get(Assignment, assignment.id)
    assert ended is not None
    ended.status, ended.ended_at = AssignmentStatus.ended.value, now
    session.add(ended)
    session.commit()
    registry.set_risk_level(session, person_id=at_risk.id or 0, previous=RiskLevel.severe.value,
                            level=RiskLevel.general, reasons=[], source="override")
    session.commit()
    counts = run_job()
    assert counts["retired_children"] == 4 and counts["children_kept_open_case"] == 0
    assert all(person(session, p.id or 0).retired_at is not None
               for p in (referred, helped, at_risk, household_case))


def test_phones_that_held_the_child_and_its_only_guardian_receive_removals_on_their_next_pull(
    client: TestClient, session: Session
) -> None:
    town = make_town(session)
    clock.freeze(china(2026, 11, 10, 10))
    volunteer_user = make_user(session, town.villages[0], Role.volunteer)
    other_user = make_user(session, town.villages[1], Role.volunteer)
    coordinator_user = make_user(session, town.town, Role.coordinator)
    volunteer = signed_in(session, volunteer_user)
    home = household_item(0)
    only_theirs, shared = _guardian_item(home["client_uuid"], "外婆"), _guardian_item(home["client_uuid"], "母亲")
    grown = _child(home, date(2008, 11, 20), vulnerable=True,
                   guardians=[{"uuid": only_theirs["client_uuid"], "relation": "外婆"},
                              {"uuid": shared["client_uuid"], "relation": "母亲"}])
    young = _child(home, date(2015, 2, 2), guardians=[{"uuid": shared["client_uuid"], "relation": "母亲"}])
    body = push(client, volunteer, [home, only_theirs, shared, grown, young])
    assert statuses(body) == ["created"] * 5, body
    grown_record = body["results"][3]["record"]
    phones: dict[str, tuple[User, dict[tuple[str, str], dict[str, Any]], str]] = {}
    for name, user in (("volunteer", volunteer_user), ("coordinator", coordinator_user), ("other", other_user)):
        store: dict[tuple[str, str], dict[str, Any]] = {}
        items, cursor = pull_all(client, signed_in(session, user), limit=2)
        _apply(store, items)
        phones[name] = (user, store, cursor)
    assert ("person", grown["client_uuid"]) in phones["volunteer"][1]

    clock.freeze(china(2026, 11, 1, 0, 0, 1) + timedelta(days=30))  # 1 December
    counts = run_job()
    assert counts["retired_children"] == 1 and counts["retired_guardians"] == 1

    gone = {("person", grown["client_uuid"]), ("person", only_theirs["client_uuid"])}
    kept = {("household", home["client_uuid"]), ("person", shared["client_uuid"]), ("person", young["client_uuid"])}
    for name in ("volunteer", "coordinator"):
        user, store, cursor = phones[name]
        who = signed_in(session, user)
        items, _ = pull_all(client, who, cursor, limit=2)
        removals = {(i["record"]["kind"], i["record"]["uuid"]) for i in items if i["kind"] == "removal"}
        assert removals == gone, (name, items)
        _apply(store, items)
        assert not gone & set(store) and kept <= set(store)
        fresh: dict[tuple[str, str], dict[str, Any]] = {}
        _apply(fresh, pull_all(client, who, limit=2)[0])
        assert {k for k in fresh if k[0] != "template"} == {k for k in store if k[0] != "template"}
    # A phone that never held the family hears nothing of it.
    user, _, cursor = phones["other"]
    assert [i for i in pull_all(client, signed_in(session, user), cursor)[0] if i["kind"] == "removal"] == []

    # The volunteer's phone had not pulled yet when it edited the child: the edit finds no record.
    stale = {**grown, "base_version": grown_record["version"], "data": {"in_school": False}}
    assert statuses(push(client, signed_in(session, volunteer_user), [stale])) == ["rejected"]
    # Nor do the lists: the 附件3 child no longer waits for a helper.
    resp = client.get("/api/v1/helpers/children-without-helper", headers=signed_in(session, coordinator_user).headers)
    assert resp.status_code == 200, resp.text
    assert grown_record["id"] not in {c["child_id"] for c in resp.json()["items"]}


# ---------------------------------------------------------------- anonymisation


def _sheets(xlsx: bytes) -> dict[str, list[tuple[Any, ...]]]:
    book = read_workbook(xlsx)
    return {ws.title: [tuple(r) for r in ws.iter_rows(values_only=True)] for ws in book.worksheets}


def _report(session: Session, unit: Any, month: str) -> tuple[dict[str, Any], dict[str, list[tuple[Any, ...]]]]:
    session.expire_all()
    files = reports.build(session, unit, campaigns.month_period(month))
    return files.figures, _sheets(files.xlsx)


@pytest.fixture
def media_root(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "media"
    monkeypatch.setenv("HULEI_MEDIA_ROOT", str(root))
    monkeypatch.setenv("HULEI_MEDIA_STORAGE", "local")
    get_settings.cache_clear()
    return root


def test_after_the_retention_period_personal_details_are_anonymised_and_past_reports_do_not_change(
    client: TestClient, session: Session, media_root: Path
) -> None:
    world = build_world(session)  # March 2026, "today" 5 April 2026
    kids = world.children
    leaving = [kids[k] for k in ("severe", "major", "low", "none")]
    staying = kids["general"]  # village 1, born 2015
    for child in leaving:
        child.birth_date = date(2008, 1, 15)
        child.hukou_place, child.residence, child.contact = "示范县护蕾镇", "青山村1组", "13700000000"
        child.signs, child.assistance, child.task_force = "情绪低落", "心理疏导", "护蕾专班"
        session.add(child)
    staying.birth_date, staying.contact = date(2015, 6, 1), "13600000000"
    session.add(staying)
    sealed = registry.seal_id(child_id(date(2008, 1, 15)))
    severe = kids["severe"]
    severe.id_cipher, severe.id_key_id, severe.id_index, severe.id_masked = (
        sealed.cipher, sealed.key_id, sealed.index, sealed.masked)
    session.add(severe)
    # A guardian of the two H1 children, and the guardian of the child who stays.
    h1, h7 = world.households["H1"], world.households["H7"]
    mother = _guardian_row(session, h1, "王母")
    other = _guardian_row(session, h7, "李父")
    session.add_all([Guardianship(child_id=kids["severe"].id or 0, guardian_id=mother.id or 0, relation="母亲"),
                     Guardianship(child_id=kids["major"].id or 0, guardian_id=mother.id or 0, relation="母亲"),
                     Guardianship(child_id=staying.id or 0, guardian_id=other.id or 0, relation="父亲")])
    # Free text about the child: a coordinator's override reason in March, visit notes and a photo,
    # a helper's follow-up notes, the police's outcome note.
    h1_visit = session.execute(select(Visit).where(col(Visit.household_id) == h1.id, col(Visit.outcome) == "visited")
                               ).scalar_one()
    photo = uuid.uuid4()
    h1_visit.answers = {"look1": {"value": "yes", "note": "孩子说晚上害怕", "photos": [str(photo)]},
                        "look2": {"value": "no", "note": None, "photos": []}}
    h1_visit.note, h1_visit.children_seen = "邻居反映常有争吵", [str(kids["severe"].uuid)]
    h1_visit.lon, h1_visit.lat = h1.lon, h1.lat
    session.add(h1_visit)
    session.add(RiskLevelChange(person_id=kids["low"].id or 0, previous_level=None, level=RiskLevel.low.value,
                                source="override", visit_id=h1_visit.id, created_at=cst(3, 20),
                                reasons=[{"rule": "override", "reason_zh": "父亲酗酒", "reason_en": "father drinks"}]))
    storage = get_storage()
    keys = [f"media/{photo}/{variant}.jpg" for variant in ("original", "display", "thumb")]
    for key in keys:
        storage.put_bytes(key, b"\xff\xd8 a face", "image/jpeg")
    assert world.recorder.id is not None and h1.id is not None
    session.add(MediaItem(client_uuid=photo, parent_kind="visit", parent_uuid=h1_visit.client_uuid,
                          org_unit_id=h1.org_unit_id, uploader_user_id=world.recorder.id,
                          uploader_org_unit_id=world.recorder.org_unit_id, state=MediaState.ready.value,
                          total_bytes=10, received_bytes=10, original_key=keys[0], display_key=keys[1],
                          thumbnail_key=keys[2], gps_lon=h1.lon, gps_lat=h1.lat, linked_at=cst(3, 10)))
    session.execute(update(FollowUp).values(note="谈心，情绪好转"))
    # The cases close in April (the helps end, the clues are handled, the levels come down).
    session.execute(update(Assignment).where(col(Assignment.status).in_(("accepted", "offered")))
                    .values(status="ended", ended_at=cst(4, 5, 9)))
    session.execute(update(Referral).values(status=ReferralStatus.handled.value, handled_at=cst(4, 5, 9)))
    referral = session.execute(select(Referral).where(col(Referral.household_id) == h1.id)).scalar_one()
    referral.child_ids, referral.outcome_note = [kids["severe"].id, kids["major"].id], "已核实，家长已训诫"
    session.add(referral)
    session.commit()
    for child in (kids["severe"], kids["major"]):
        registry.set_risk_level(session, person_id=child.id or 0, previous=child.risk_level,
                                level=RiskLevel.general, reasons=[], source="override")
    session.commit()

    clock.freeze(china(2026, 4, 6, 3))
    counts = run_job()
    assert counts["retired_children"] == 4 and counts["retired_guardians"] == 1

    clock.freeze(china(2029, 4, 6, 2))  # not yet three years
    assert run_job()["anonymised_persons"] == 0
    clock.freeze(china(2029, 4, 6, 4))
    months = ("2026-02", "2026-03", "2026-04")
    before = {m: _report(session, world.town.town, m) for m in months}
    counts = run_job()
    assert counts["anonymised_persons"] == 5 and counts["visits_scrubbed"] >= 1 and counts["photos_deleted"] == 1
    after = {m: _report(session, world.town.town, m) for m in months}
    for month in months:
        assert after[month][0] == before[month][0], month
        assert after[month][1] == before[month][1], month
    # The March report still counts what it counted (not vacuous).
    assert before["2026-03"][0]["households"] == 7 and before["2026-03"][1]["风险变化"][1:]

    session.expire_all()
    for p in (*leaving, mother):
        gone = person(session, p.id or 0)
        assert gone.anonymised_at is not None and gone.name == retention.ANONYMISED_NAME
        for field in ("id_cipher", "id_key_id", "id_index", "id_masked", "contact", "hukou_place", "residence",
                      "signs", "assistance", "task_force", "birth_date", "household_id"):
            assert getattr(gone, field) is None, field
        assert all(set(r) <= {"rule", "item", "level"} for r in gone.risk_reasons)
    # What reports count stays on the record.
    assert person(session, kids["low"].id or 0).risk_level == RiskLevel.low.value
    assert person(session, kids["severe"].id or 0).org_unit_id == h1.org_unit_id
    left = session.execute(select(Guardianship)).scalars().all()
    assert [(g.child_id, g.guardian_id) for g in left] == [(staying.id, other.id)]
    changes = session.execute(select(RiskLevelChange).where(col(RiskLevelChange.person_id) == kids["low"].id)
                              ).scalars().all()
    assert changes and all(c.visit_id is None and "reason_zh" not in str(c.reasons) for c in changes)
    visit = session.get(Visit, h1_visit.id)
    assert visit is not None
    assert visit.answers == {"look1": {"value": "yes", "note": None, "photos": []},
                             "look2": {"value": "no", "note": None, "photos": []}}
    assert visit.note is None and visit.children_seen == [] and visit.outcome == "visited"
    assert session.execute(select(func.count()).select_from(MediaItem)).scalar_one() == 0
    assert not any(storage.exists(k) for k in keys)
    assert all(f.note is None for f in session.execute(select(FollowUp)).scalars()
               if f.assignment_id in {a.id for a in world.assignments.values() if a.child_id != staying.id})
    referral_now = session.get(Referral, referral.id)
    assert referral_now is not None and referral_now.outcome_note is None and referral_now.child_ids == []
    # The household that lost every member keeps the dwelling (its unit, address and point) and loses
    # the family's names and numbers; the household whose child stays is untouched.
    household = session.get(Household, h1.id)
    assert household is not None and household.head_name is None and household.contact is None
    assert household.org_unit_id == h1.org_unit_id
    assert session.get(Household, h7.id).head_name == "王H7"  # type: ignore[union-attr]
    kept = person(session, staying.id or 0)
    assert kept.anonymised_at is None and kept.retired_at is None and kept.contact == "13600000000"
    assert person(session, other.id or 0).name == "李父"


def _guardian_row(session: Session, household: Household, name: str) -> Person:
    g = Person(uuid=uuid.uuid4(), role="guardian", household_id=household.id, org_unit_id=household.org_unit_id,
               name=name, contact="13900000000", content_hash="0" * 64, rev=0)
    session.add(g)
    session.flush()
    return g


# ---------------------------------------------------------------- the job itself


def _snapshot(session: Session) -> dict[str, Any]:
    session.expire_all()
    tables = ("person", "household", "guardianship", "visit", "risk_level_change", "referral", "sync_removal",
              "sync_counter", "helper_assignment", "media_item")
    return {t: session.execute(text(f"SELECT * FROM {t} ORDER BY 1")).all() for t in tables}


def test_the_job_is_idempotent_bounded_in_batches_and_audited_once_per_run(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HULEI_RETENTION_BATCH_SIZE", "2")
    monkeypatch.setenv("HULEI_RETENTION_YEARS", "1")
    get_settings.cache_clear()
    town = make_town(session)
    clock.freeze(china(2026, 9, 9, 9))
    grid = town.grids[0][0]
    children = [make_child_born(session, grid, date(2008, 1, 1) + timedelta(days=30 * n)) for n in range(5)]
    make_child_born(session, grid, date(2012, 1, 1))
    guardian = _guardian_row(session, session.get(Household, children[0].household_id), "赵母")  # type: ignore[arg-type]
    session.add_all([Guardianship(child_id=children[0].id or 0, guardian_id=guardian.id or 0),
                     Guardianship(child_id=children[1].id or 0, guardian_id=guardian.id or 0)])
    session.commit()

    # One batch is bounded by the setting (and takes along the guardian whose wards are all gone).
    with Session(get_engine()) as s:
        batch = retention.retire_batch(s, limit=get_settings().retention_batch_size)
        s.commit()
    assert len(batch.children) == 2 and len(batch.guardians) == 1
    counts = run_job()
    assert counts["retired_children"] == 3 and counts["retired_guardians"] == 0 and counts["batches"] == 2
    assert session.execute(select(func.count()).select_from(Person).where(col(Person.retired_at).is_not(None))
                           ).scalar_one() == 6
    settled = _snapshot(session)
    assert run_job() == dict.fromkeys(counts, 0)
    assert _snapshot(session) == settled

    clock.freeze(china(2027, 9, 10, 9))  # one year on (the setting)
    counts = run_job()
    assert counts["anonymised_persons"] == 6 and counts["batches"] == 3
    settled = _snapshot(session)
    assert run_job() == dict.fromkeys(counts, 0)
    assert _snapshot(session) == settled
    entries = session.execute(select(AuditEntry).where(col(AuditEntry.action) == retention.AUDIT_ACTION)
                              .order_by(col(AuditEntry.id))).scalars().all()
    assert len(entries) == 4  # one per run (the bare batch above is not a run)
    assert entries[0].details["retired_children"] == 3 and entries[2].details["anonymised_persons"] == 6
    assert entries[1].details["retired_children"] == 0 and entries[0].actor_user_id is None


def test_the_worker_knows_the_job_and_runs_it(session: Session, database_url: str) -> None:
    from tests.test_registries import _registries_of

    town = make_town(session)
    child = make_child_born(session, town.grids[0][0], date(2000, 1, 1))
    assert retention.JOB_NAME in run_due_jobs()
    assert person(session, child.id or 0).retired_at is not None
    # A fresh `hulei worker` process holds it too (not only this test's imports).
    assert retention.JOB_NAME in _registries_of("worker")["loaded"]["jobs"]
