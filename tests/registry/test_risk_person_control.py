"""附件2 risk persons under control (issue 16): edits keep a history, police check in on each person as
often as the risk level asks and see who is overdue, and a person is linked to the household they live
in; a household with children that gains one has its children raised for review and their
coordinators told, once. Volunteers and helpers never see a risk person."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts.models import User
from backend.accounts.permissions import Role
from backend.audit.models import AuditEntry
from backend.core import clock
from backend.core.config import get_settings
from backend.demo.town import DemoTown
from backend.registry.models import Household, Person, PersonRole, RiskLevel, RiskLevelChange
from tests.factories import make_town, make_user
from tests.helpers.factories import make_child, raise_risk
from tests.notifications.factories import headers_for

API = "/api/v1"
START = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


class Town:
    """A town, its users by role (police and coordinator of the town, a police station of village 1 as
    the foreign side), headers issued at the clock's now."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.town: DemoTown = make_town(session)
        self.users: dict[str, User] = {}

    def user(self, key: str) -> User:
        if key not in self.users:
            unit, role = {
                "police": (self.town.town, Role.police),
                "coordinator": (self.town.town, Role.coordinator),
                "volunteer": (self.town.villages[0], Role.volunteer),
                "helper": (self.town.town, Role.helper),
                "foreign_police": (self.town.villages[1], Role.police),
            }[key]
            self.users[key] = make_user(self.session, unit, role)
        return self.users[key]

    def h(self, key: str) -> dict[str, str]:
        return headers_for(self.session, self.user(key))

    @property
    def grid(self) -> int:
        return self.town.grids[0][0].id or 0


@pytest.fixture
def t(session: Session) -> Town:
    clock.freeze(START)
    return Town(session)


def _create(client: TestClient, t: Town, *, level: str | None = "一般风险", unit: int | None = None,
            **extra: Any) -> dict[str, Any]:
    body = {"name": "某甲", "id_number": "110105198001011238", "categories": ["6"], "risk_level": level,
            "residence": "青山村1组3号", "control_measures": "每月走访", "org_unit_id": unit or t.grid,
            **extra}
    if level is None:
        del body["risk_level"]
    resp = client.post(f"{API}/risk-persons", json=body, headers=t.h("police"))
    assert resp.status_code == 201, resp.text
    out: dict[str, Any] = resp.json()
    return out


def _get(client: TestClient, t: Town, rid: int, who: str = "police") -> dict[str, Any]:
    resp = client.get(f"{API}/risk-persons/{rid}", headers=t.h(who))
    assert resp.status_code == 200, resp.text
    out: dict[str, Any] = resp.json()
    return out


def _overdue(client: TestClient, t: Town, who: str = "police") -> list[int]:
    resp = client.get(f"{API}/risk-persons/overdue", params={"paged": "true"}, headers=t.h(who))
    assert resp.status_code == 200, resp.text
    return [item["id"] for item in resp.json()["items"]]


def _check_in(client: TestClient, t: Town, rid: int, who: str = "police", **extra: Any) -> Any:
    body = {"method": "home_visit", "place": "住所", "finding": "normal", "note": "在家，情况正常", **extra}
    return client.post(f"{API}/risk-persons/{rid}/check-ins", json=body, headers=t.h(who))


# ---------------------------------------------------------------- edits and their history


def test_an_edit_changes_only_what_it_sends_and_each_change_is_kept_in_the_history(
        client: TestClient, t: Town) -> None:
    rid = _create(client, t)["id"]
    clock.advance(timedelta(hours=1))
    resp = client.put(f"{API}/risk-persons/{rid}", headers=t.h("police"),
                      json={"version": 1, "risk_level": "severe", "note": "近期频繁接触学生", "control_status": "lost"})
    assert resp.status_code == 200, resp.text
    edited = resp.json()
    assert (edited["risk_level"], edited["note"], edited["control_status"], edited["version"]) == (
        "重大风险", "近期频繁接触学生", "lost", 2)
    # What the edit did not name is kept, the ID number above all (only its masked form ever leaves).
    assert (edited["residence"], edited["control_measures"], edited["categories"]) == (
        "青山村1组3号", "每月走访", ["6"])
    assert edited["id_number_masked"] == "110105************"
    history = _get(client, t, rid, "coordinator")["history"]
    assert {(c["field"], c["before"], c["after"]) for c in history} == {
        ("risk_level", "一般风险", "重大风险"), ("note", None, "近期频繁接触学生"),
        ("control_status", "controlled", "lost")}
    assert {c["actor_user_id"] for c in history} == {t.user("police").id}
    assert {c["changed_at"] for c in history} == {(START + timedelta(hours=1)).isoformat()}
    assert "110105198001011238" not in str(_get(client, t, rid))

    # A new address and a new ID number are recorded too, the number masked.
    resp = client.put(f"{API}/risk-persons/{rid}", headers=t.h("coordinator"),
                      json={"version": 2, "residence": "青山村2组8号", "id_number": "110105198001011318"})
    assert resp.status_code == 200, resp.text
    later = [c for c in _get(client, t, rid)["history"] if c["version"] == 3]
    assert {(c["field"], c["before"], c["after"]) for c in later} == {
        ("residence", "青山村1组3号", "青山村2组8号"), ("id_number", "110105************", "110105************")}
    assert "110105198001011318" not in str(_get(client, t, rid))


def test_an_edit_on_a_stale_version_is_a_conflict_and_changes_nothing(client: TestClient, t: Town) -> None:
    rid = _create(client, t)["id"]
    assert client.put(f"{API}/risk-persons/{rid}", headers=t.h("police"),
                      json={"version": 1, "note": "第一次"}).status_code == 200
    stale = client.put(f"{API}/risk-persons/{rid}", headers=t.h("coordinator"),
                       json={"version": 1, "note": "覆盖", "risk_level": "low"})
    assert stale.status_code == 409, stale.text
    assert stale.json()["code"] == "stale-edit"
    now = _get(client, t, rid)
    assert (now["note"], now["risk_level"], now["version"]) == ("第一次", "一般风险", 2)
    assert [c["field"] for c in now["history"]] == ["note"]


def test_a_control_status_that_does_not_exist_is_refused(client: TestClient, t: Town) -> None:
    rid = _create(client, t)["id"]
    resp = client.put(f"{API}/risk-persons/{rid}", headers=t.h("police"), json={"version": 1, "control_status": "x"})
    assert resp.status_code == 422, resp.text
    assert _get(client, t, rid)["version"] == 1


# ---------------------------------------------------------------- check-ins and the overdue list


def test_check_ins_fall_due_by_risk_level_and_the_most_overdue_come_first(client: TestClient, t: Town) -> None:
    severe = _create(client, t, level="重大风险", id_number="110105198001011254")["id"]
    general = _create(client, t, level="一般风险", id_number="110105198001011270")["id"]
    low = _create(client, t, level="低风险", id_number="110105198001011297")["id"]
    for rid in (severe, general, low):
        assert _check_in(client, t, rid).status_code == 201
    control = _get(client, t, severe)["control"]
    assert (control["check_interval_days"], control["next_due_at"], control["overdue"]) == (
        7, (START + timedelta(days=7)).isoformat(), False)
    assert _get(client, t, general)["control"]["check_interval_days"] == 30
    assert _get(client, t, low)["control"]["check_interval_days"] == 90

    clock.advance(timedelta(days=6, hours=23))
    assert _overdue(client, t) == []
    clock.advance(timedelta(hours=2))
    assert _overdue(client, t) == [severe]
    clock.advance(timedelta(days=24))  # day 31
    assert _overdue(client, t) == [severe, general]
    clock.advance(timedelta(days=60))  # day 91
    assert _overdue(client, t, "coordinator") == [severe, general, low]
    assert _get(client, t, severe)["control"]["overdue_days"] == 84

    # A check-in (made yesterday, entered today) puts the person back on time from when it was made.
    resp = _check_in(client, t, severe, checked_at=(clock.now() - timedelta(days=1)).isoformat(), finding="concern")
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["control"]["next_due_at"] == (clock.now() + timedelta(days=6)).isoformat()
    assert body["check_ins"][0]["finding"] == "concern"
    assert body["check_ins"][0]["officer_user_id"] == t.user("police").id
    assert _overdue(client, t) == [general, low]


def test_a_person_never_checked_in_falls_due_from_entry_and_released_ones_never(client: TestClient, t: Town) -> None:
    rid = _create(client, t, level=None)["id"]  # unassessed: as 一般风险
    released = _create(client, t, id_number="110105198001011254")["id"]
    assert client.put(f"{API}/risk-persons/{released}", headers=t.h("police"),
                      json={"version": 1, "control_status": "released"}).status_code == 200
    clock.advance(timedelta(days=31))
    assert _overdue(client, t) == [rid]
    assert _get(client, t, released)["control"]["next_due_at"] is None


def test_the_intervals_are_settings(client: TestClient, t: Town, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HULEI_RISK_PERSON_CHECK_DAYS_GENERAL", "3")
    get_settings.cache_clear()
    rid = _create(client, t)["id"]
    clock.advance(timedelta(days=3, minutes=1))
    assert _overdue(client, t) == [rid]


def test_a_check_in_in_the_future_is_refused(client: TestClient, t: Town) -> None:
    rid = _create(client, t)["id"]
    resp = _check_in(client, t, rid, checked_at=(clock.now() + timedelta(hours=2)).isoformat())
    assert resp.status_code == 422, resp.text
    assert resp.json()["code"] == "check-in-in-future"
    assert _get(client, t, rid)["check_ins"] == []


def test_only_police_of_the_jurisdiction_check_in_and_see_the_overdue(client: TestClient, t: Town) -> None:
    rid = _create(client, t)["id"]
    clock.advance(timedelta(days=40))
    assert _check_in(client, t, rid, "coordinator").status_code == 403  # reads the ledger, does not control
    for who in ("volunteer", "helper", "foreign_police"):
        assert _check_in(client, t, rid, who).status_code == 404, who
    for who in ("volunteer", "helper"):
        assert client.get(f"{API}/risk-persons/overdue", headers=t.h(who)).status_code == 404
    assert _overdue(client, t, "foreign_police") == []
    assert _overdue(client, t) == [rid]
    assert _check_in(client, t, rid).status_code == 201
    [entry] = t.session.execute(select(AuditEntry).where(col(AuditEntry.action) == "risk_person.check_in")).scalars()
    assert (entry.object_type, entry.object_id, entry.actor_user_id) == ("risk_person", str(rid), t.user("police").id)


# ---------------------------------------------------------------- the household a person lives in


def _household_with_children(session: Session, t: Town, n: int = 2) -> tuple[int, list[Person]]:
    first = make_child(session, t.town.grids[0][0])
    kids = [first]
    for i in range(1, n):
        kid = Person(uuid=uuid.uuid4(), role=PersonRole.child.value, household_id=first.household_id,
                     org_unit_id=first.org_unit_id, name=f"同户儿童{i}", content_hash="0" * 64, rev=0)
        session.add(kid)
        session.commit()
        kids.append(kid)
    return first.household_id or 0, kids


def _inbox(client: TestClient, t: Town, who: str) -> list[dict[str, Any]]:
    resp = client.get(f"{API}/notifications", headers=t.h(who))
    assert resp.status_code == 200, resp.text
    return [n for n in resp.json()["items"] if n["kind"] == "risk_person.household_linked"]


def _link(client: TestClient, t: Town, rid: int, household_id: int, who: str = "police") -> Any:
    return client.post(f"{API}/risk-persons/{rid}/household-link", json={"household_id": household_id},
                       headers=t.h(who))


def test_linking_a_household_raises_its_children_and_tells_their_coordinator_once(
        client: TestClient, t: Town, session: Session) -> None:
    rid = _create(client, t)["id"]
    home, (kid, already_severe) = _household_with_children(session, t)
    raise_risk(session, already_severe, RiskLevel.severe)
    t.user("coordinator")

    resp = _link(client, t, rid, home)
    assert resp.status_code == 200, resp.text
    assert resp.json()["household_id"] == home
    assert resp.json()["household_links"][0]["raised_child_ids"] == [kid.id]

    session.expire_all()
    assert session.get(Person, kid.id).risk_level == RiskLevel.major.value  # type: ignore[union-attr]
    assert session.get(Person, already_severe.id).risk_level == RiskLevel.severe.value  # type: ignore[union-attr]
    [change] = session.execute(select(RiskLevelChange).where(col(RiskLevelChange.person_id) == kid.id)).scalars()
    assert (change.source, change.previous_level, change.level) == ("risk_person_link", None, "较大风险")
    [told] = _inbox(client, t, "coordinator")
    assert told["data"]["household_id"] == str(home)
    assert told["data"]["categories"] == "6"
    assert "与继女（孙女）共同生活男性" in told["body_zh"]
    assert "某甲" not in told["body_zh"] + told["body_en"]

    # The same household again: nothing new. Unlinking keeps the levels; the link stays in the history.
    assert _link(client, t, rid, home).status_code == 200
    assert len(_inbox(client, t, "coordinator")) == 1
    resp = client.delete(f"{API}/risk-persons/{rid}/household-link", headers=t.h("police"))
    assert resp.status_code == 200, resp.text
    assert resp.json()["household_id"] is None
    [ended] = resp.json()["household_links"]
    assert (ended["household_id"], ended["current"], ended["unlinked_by"]) == (home, False, t.user("police").id)
    session.expire_all()
    assert session.get(Person, kid.id).risk_level == RiskLevel.major.value  # type: ignore[union-attr]
    assert client.delete(f"{API}/risk-persons/{rid}/household-link", headers=t.h("police")).status_code == 409

    # Linked again later: a new link, told again, levels never lowered.
    assert _link(client, t, rid, home).status_code == 200
    assert len(_inbox(client, t, "coordinator")) == 2
    assert len(list(session.execute(
        select(RiskLevelChange).where(col(RiskLevelChange.person_id) == kid.id)).scalars())) == 1


def test_a_person_lives_in_one_household_at_a_time(client: TestClient, t: Town, session: Session) -> None:
    rid = _create(client, t)["id"]
    first, _ = _household_with_children(session, t, 1)
    second, [other] = _household_with_children(session, t, 1)
    assert _link(client, t, rid, first).status_code == 200
    resp = _link(client, t, rid, second)
    assert resp.status_code == 409, resp.text
    assert resp.json()["code"] == "risk-person-linked-elsewhere"
    session.expire_all()
    assert session.get(Person, other.id).risk_level is None  # type: ignore[union-attr]


def test_a_household_without_children_is_linked_without_telling_anyone(
        client: TestClient, t: Town, session: Session) -> None:
    rid = _create(client, t)["id"]
    home = Household(uuid=uuid.uuid4(), org_unit_id=t.grid, address="无儿童户", content_hash="0" * 64, rev=0)
    session.add(home)
    session.commit()
    t.user("coordinator")
    assert _link(client, t, rid, home.id or 0).status_code == 200
    assert _inbox(client, t, "coordinator") == []


def test_a_household_outside_the_jurisdiction_is_refused(client: TestClient, t: Town, session: Session) -> None:
    rid = _create(client, t, unit=t.town.grids[1][0].id)["id"]  # in village 1, the foreign police's
    home, [kid] = _household_with_children(session, t, 1)  # in village 0
    resp = _link(client, t, rid, home, "foreign_police")
    assert resp.status_code == 404, resp.text
    assert resp.json()["code"] == "household-not-found"
    assert _get(client, t, rid)["household_links"] == []
    session.expire_all()
    assert session.get(Person, kid.id).risk_level is None  # type: ignore[union-attr]
    # Nor may police reach an entry of another station's area.
    assert _link(client, t, _create(client, t, id_number="110105198001011254")["id"], home,
                 "foreign_police").status_code == 404


def test_who_sees_what_of_a_linked_risk_person(client: TestClient, t: Town, session: Session) -> None:
    rid = _create(client, t)["id"]
    home, [kid] = _household_with_children(session, t, 1)
    assert _link(client, t, rid, home).status_code == 200
    # Police and the coordinator (whose role reads the ledger) see the entry and its link.
    for who in ("police", "coordinator"):
        assert _get(client, t, rid, who)["household_id"] == home
    assert client.get(f"{API}/risk-persons/{rid}", headers=t.h("foreign_police")).status_code == 404
    # Volunteers and helpers never see the entry, and the child's record they read names no risk person
    # and no category: only that a police link raised the child.
    for who in ("volunteer", "helper"):
        assert client.get(f"{API}/risk-persons/{rid}", headers=t.h(who)).status_code == 404
        assert _link(client, t, rid, home, who).status_code == 404
        assert client.delete(f"{API}/risk-persons/{rid}/household-link", headers=t.h(who)).status_code == 404
    child = client.get(f"{API}/persons/{kid.id}", headers=t.h("volunteer"))
    assert child.status_code == 200, child.text
    seen = str(child.json())
    assert child.json()["risk_level"] == "较大风险"
    assert "某甲" not in seen and "继女" not in seen and "110105" not in seen
    assert [r["rule"] for r in child.json()["risk_reasons"]] == ["risk_person_link"]
    assert _inbox(client, t, "volunteer") == []


def test_a_ledger_reimport_that_changes_an_entry_is_in_its_history(client: TestClient, t: Town) -> None:
    from tests.registry.test_ledgers import ANNEX2
    from tests.xlsx_support import xlsx_bytes

    rid = _create(client, t)["id"]
    row = [1, "某甲", "110105198001011238", "男", "示范县", "青山村1组3号", "", "与继女（孙女）共同生活男性",
           "重大风险", "每周走访"]
    resp = client.post(f"{API}/ledgers/2/import", params={"dry_run": False, "org_unit_id": t.grid},
                       headers=t.h("police"), files={"file": ("a2.xlsx", xlsx_bytes([ANNEX2, row]))})
    assert resp.status_code == 200, resp.text
    changed = {(c["field"], c["before"], c["after"]) for c in _get(client, t, rid)["history"]}
    assert ("risk_level", "一般风险", "重大风险") in changed
    assert ("control_measures", "每月走访", "每周走访") in changed


def test_a_sealed_entry_is_never_linked_and_never_listed_overdue(
        client: TestClient, t: Town, session: Session) -> None:
    from tests.registry.factories import born_years_ago

    minor = _create(client, t, id_number=None, birth_date=born_years_ago(16).isoformat())
    assert minor["sealed"] is True
    home, [kid] = _household_with_children(session, t, 1)
    assert _link(client, t, minor["id"], home).status_code == 404  # sealed: as if it did not exist
    opened = client.post(f"{API}/risk-persons/{minor['id']}/open-sealed", json={"reason": "办案需要，核查"},
                         headers=t.h("police"))
    assert opened.status_code == 200, opened.text
    resp = _link(client, t, minor["id"], home)
    assert resp.status_code == 409, resp.text
    assert resp.json()["code"] == "risk-person-sealed-not-linked"
    session.expire_all()
    assert session.get(Person, kid.id).risk_level is None  # type: ignore[union-attr]
    clock.advance(timedelta(days=400))
    assert _overdue(client, t) == []


def test_edits_on_one_version_sent_at_once_make_one_version_and_the_rest_conflict(client: TestClient, t: Town) -> None:
    """Found by the outside test: three PUTs on the same version at the same moment all answered 200, the
    version moved by one and the history forked."""
    from tests.cases.test_case_races import _together

    rid = _create(client, t)["id"]
    headers = [t.h("police"), t.h("coordinator"), t.h("police")]
    bodies = [{"version": 1, "note": "甲"}, {"version": 1, "note": "乙"}, {"version": 1, "control_status": "lost"}]
    answers = _together(*[(lambda c, h=h, b=b: c.put(f"{API}/risk-persons/{rid}", json=b, headers=h))
                          for h, b in zip(headers, bodies, strict=True)])
    assert sorted(a.status_code for a in answers) == [200, 409, 409], [a.text for a in answers]
    now = _get(client, t, rid)
    assert now["version"] == 2 and len(now["history"]) == 1
    # Two unlinks at once: one ends the link, the other is told there is none.
    household = t.session.execute(select(Household)).scalars().first()
    if household is None:
        household = make_child(t.session, t.town.grids[0][0])
    home_id = household.household_id if isinstance(household, Person) else household.id
    linked = client.post(f"{API}/risk-persons/{rid}/household-link", json={"household_id": home_id},
                         headers=t.h("police"))
    assert linked.status_code in (200, 201), linked.text
    unlinks = _together(*[(lambda c, h=h: c.delete(f"{API}/risk-persons/{rid}/household-link", headers=h))
                          for h in (t.h("police"), t.h("coordinator"))])
    assert sorted(a.status_code for a in unlinks) == [200, 409], [a.text for a in unlinks]
