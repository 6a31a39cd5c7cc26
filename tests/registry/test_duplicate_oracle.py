"""A registered ID number is refused without saying where it is registered; the attempt is audited
and the coordinators who may see both records are told.

Three numbers are tried by a volunteer of village 0 through every way a person's ID number is
written: one held by a child of the volunteer's own village, one held by a child of a neighbouring
county, and a new one. The two refusals must be indistinguishable to the caller (status, headers,
body, and the work the server does for them, counted in SQL statements as a stand-in for time); the
new number is accepted. Each refusal leaves an audit entry and a notification to the coordinators
of the lowest unit covering both records (the town for the own village, the city for the other
county), never to the caller.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import event, func, select
from sqlmodel import Session

from backend.accounts.permissions import Role
from backend.audit.models import AuditEntry
from backend.core.db import get_engine
from backend.notifications.models import Notification
from backend.orgunits import service as orgunits
from backend.orgunits.models import OrgLevel
from backend.registry import idnumber
from tests.factories import SignedIn, user_client
from tests.registry.factories import World, child_item, household_item, make_world, push, xlsx_bytes

AUDIT_ACTION = "registry.duplicate_id_number"
NOTIFICATION_KIND = "registry.duplicate_id_number"
REFUSED_ZH = "该身份证号码已登记，已通知您的协调人"
_serial = iter(range(300, 1000))


def _number(*, adult: bool = False) -> str:
    birth = date(1980, 2, 3) if adult else date(2012, 9, 10)
    return idnumber.make("990101", birth, next(_serial))


class Scene:
    """Village 0 of the demo town (county A) and a village of a neighbouring county B."""

    def __init__(self, client: TestClient, session: Session, *, city_coordinator: bool = True) -> None:
        self.client, self.session = client, session
        self.w: World = make_world(client, session)
        town = self.w.town
        county_b = orgunits.create_unit(session, code="990102000000", name="邻县", level=OrgLevel.county,
                                        parent=town.city)
        town_b = orgunits.create_unit(session, code="990102100000", name="邻镇", level=OrgLevel.town, parent=county_b)
        self.village_b = orgunits.create_unit(session, code="990102100001", name="邻村", level=OrgLevel.village,
                                              parent=town_b)
        session.commit()
        self.coordinator_b = user_client(client, session, town_b, Role.coordinator)
        self.police_b = user_client(client, session, town_b, Role.police)
        self.county_coordinator = user_client(client, session, town.county, Role.coordinator)
        self.city_coordinator = (
            user_client(client, session, town.city, Role.coordinator) if city_coordinator else None
        )
        self.caller = self.w.volunteer_a
        self.town_coordinator = self.w.coordinator
        # A child registered in the caller's village, one in county B, and a household to add to.
        h = household_item(0)
        self.own_id, self.foreign_id = _number(), _number()
        body = push(client, self.caller, [h, child_item(h["client_uuid"], name="本村儿童", id_number=self.own_id)])
        self.home = body["results"][0]["record"]
        self.own_child = body["results"][1]["record"]
        resp = client.post("/api/v1/persons", json={"name": "邻县儿童", "id_number": self.foreign_id,
                                                    "org_unit_id": self.village_b.id},
                           headers=self.coordinator_b.headers)
        assert resp.status_code == 201, resp.text
        self.foreign_child = resp.json()

    def notified(self, who: SignedIn | None) -> list[dict[str, str]]:
        if who is None:
            return []
        self.session.expire_all()
        rows = self.session.execute(
            select(Notification).where(Notification.user_id == who.user.id, Notification.kind == NOTIFICATION_KIND)
            .order_by(Notification.id)
        ).scalars()
        return [dict(n.data) for n in rows]

    def audited(self) -> list[AuditEntry]:
        self.session.expire_all()
        return list(self.session.execute(
            select(AuditEntry).where(AuditEntry.action == AUDIT_ACTION).order_by(AuditEntry.id)
        ).scalars())


@contextmanager
def counting_statements() -> Iterator[list[str]]:
    """The SQL statements the app runs inside the block."""
    seen: list[str] = []
    engine = get_engine()

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


def _answer(resp: Response) -> tuple[int, dict[str, str], Any]:
    headers = {k: v for k, v in resp.headers.items() if k.lower() not in ("date", "content-length")}
    return resp.status_code, headers, resp.json()


def _push_answer(body: dict[str, Any]) -> Any:
    results = [{k: v for k, v in r.items() if k not in ("client_uuid", "index")} for r in body["results"]]
    return results, body["counts"]


Attempt = Callable[[str], Any]


def _ways(scene: Scene, language: str) -> dict[str, Attempt]:
    """Every way a volunteer writes a person's ID number, each giving what the caller observes."""
    c, caller, home = scene.client, scene.caller, scene.home
    headers = {**caller.headers, "Accept-Language": language}

    def rest_create(number: str) -> Any:
        return _answer(c.post("/api/v1/persons", json={"household_uuid": home["uuid"], "name": "新儿童",
                                                       "id_number": number}, headers=headers))

    # One record without a number per language for the edits: a refused edit leaves it at version 1.
    bare_rest = c.post("/api/v1/persons", json={"household_uuid": home["uuid"], "name": "待补号"}, headers=headers)
    item = child_item(home["uuid"], name="待补号")
    del item["data"]["id_number"]
    bare_sync = push(c, caller, [item])["results"][0]["record"]

    def rest_edit(number: str) -> Any:
        return _answer(c.put(f"/api/v1/persons/{bare_rest.json()['id']}", json={"version": 1, "id_number": number},
                             headers=headers))

    def sync_create(number: str) -> Any:
        resp = c.post("/api/v1/sync/push", json={"items": [child_item(home["uuid"], id_number=number)]},
                      headers=headers)
        return resp.status_code, _push_answer(resp.json())

    def sync_edit(number: str) -> Any:
        resp = c.post("/api/v1/sync/push", json={"items": [{"kind": "person", "client_uuid": bare_sync["uuid"],
                                                            "base_version": 1, "data": {"id_number": number}}]},
                      headers=headers)
        return resp.status_code, _push_answer(resp.json())

    return {"rest_create": rest_create, "rest_edit": rest_edit, "sync_create": sync_create, "sync_edit": sync_edit}


WAYS = ("rest_create", "rest_edit", "sync_create", "sync_edit")


@pytest.mark.parametrize("way", WAYS)
def test_a_registered_id_number_gets_one_answer_wherever_it_is_registered(
    client: TestClient, session: Session, way: str
) -> None:
    scene = Scene(client, session)
    before = len(scene.audited())
    for language in ("zh-CN", "en"):
        attempt = _ways(scene, language)[way]
        own, foreign = attempt(scene.own_id), attempt(scene.foreign_id)
        assert own == foreign, (own, foreign)
        new = attempt(_number())
        assert new != own
        if way.startswith("rest"):
            status, headers, problem = own
            assert status == 409 and headers["content-type"] == "application/problem+json"
            assert problem["code"] == "id-number-registered"
            assert set(problem) <= {"type", "code", "title", "status", "detail", "instance", "field"}
            assert new[0] in (200, 201)
        else:
            results, _ = own[1]
            assert results[0]["status"] == "rejected" and results[0]["record"] is None
            assert results[0]["problem"]["code"] == "id-number-registered"
            assert new[1][0][0]["status"] in ("created", "updated")
        title = problem["title"] if way.startswith("rest") else results[0]["problem"]["title"]
        assert title == ("This ID number is already registered; your coordinator has been notified"
                         if language == "en" else REFUSED_ZH)
    # Two refusals per language, each audited with the caller as actor and the record it collided with.
    entries = scene.audited()[before:]
    assert len(entries) == 4
    assert {e.actor_user_id for e in entries} == {scene.caller.user.id}
    assert sorted(e.object_id or "" for e in entries) == sorted(
        [str(scene.own_child["id"])] * 2 + [str(scene.foreign_child["id"])] * 2)
    # The town's coordinator sees the own village; only the city covers both sides of the other.
    assert [n["record_id"] for n in scene.notified(scene.town_coordinator)] == [str(scene.own_child["id"])] * 2
    assert [n["record_id"] for n in scene.notified(scene.city_coordinator)] == [str(scene.foreign_child["id"])] * 2
    for bystander in (scene.county_coordinator, scene.coordinator_b, scene.caller):
        assert scene.notified(bystander) == []


def test_both_refusals_cost_the_same_statements(client: TestClient, session: Session) -> None:
    scene = Scene(client, session)
    rest_create = _ways(scene, "zh-CN")["rest_create"]
    rest_create(_number())  # warm caches (principal, templates) before counting
    counts = []
    for number in (scene.own_id, scene.foreign_id, scene.own_id, scene.foreign_id):
        with counting_statements() as seen:
            rest_create(number)
        counts.append(len(seen))
    assert counts[0] == counts[1] and counts[2] == counts[3], counts


def test_without_a_coordinator_over_both_the_nearest_of_each_side_is_told(
    client: TestClient, session: Session
) -> None:
    scene = Scene(client, session, city_coordinator=False)
    status, _, problem = _ways(scene, "zh-CN")["rest_create"](scene.foreign_id)
    assert status == 409 and problem["code"] == "id-number-registered"
    assert [n["record_id"] for n in scene.notified(scene.town_coordinator)] == [str(scene.foreign_child["id"])]
    assert [n["record_id"] for n in scene.notified(scene.coordinator_b)] == [str(scene.foreign_child["id"])]
    assert scene.notified(scene.county_coordinator) == [] and scene.notified(scene.caller) == []
    assert len(scene.audited()) == 1


def test_a_coordinator_trying_a_number_is_not_told_of_their_own_attempt(client: TestClient, session: Session) -> None:
    scene = Scene(client, session)
    resp = client.post("/api/v1/persons", json={"household_uuid": scene.home["uuid"], "name": "重复",
                                                "id_number": scene.own_id}, headers=scene.town_coordinator.headers)
    assert resp.status_code == 409
    assert scene.notified(scene.town_coordinator) == []
    assert [n["record_id"] for n in scene.notified(scene.county_coordinator)] == [str(scene.own_child["id"])]


ANNEX3 = ["序号", "姓名", "身份证号码", "性别", "户籍地", "常住地", "联系电话", "是否在读", "监护人姓名", "联系电话",
          "专班人员及联系方式", "帮扶措施"]
ANNEX2 = ["序号", "姓名", "身份证号码", "性别", "户籍地", "常住地", "联系方式", "分类", "综合研判风险等级", "管控措施"]


@pytest.mark.parametrize("dry_run", [True, False])
def test_a_ledger_row_registered_elsewhere_says_no_more_and_is_audited_even_when_nothing_is_imported(
    client: TestClient, session: Session, dry_run: bool
) -> None:
    scene = Scene(client, session)
    rows = [ANNEX3, [1, "邻县儿童", scene.foreign_id, "", "", "", "", "是", "", "", "", ""],
            [2, "新儿童", _number(), "", "", "", "", "是", "", "", "", ""]]
    resp = client.post("/api/v1/ledgers/3/import", params={"dry_run": dry_run},
                       headers=scene.town_coordinator.headers, files={"file": ("a3.xlsx", xlsx_bytes(rows))})
    assert resp.status_code == (200 if dry_run else 422), resp.text
    assert resp.json()["errors"] == [{"row": 2, "column": "身份证号码", "reason": REFUSED_ZH}]
    [entry] = scene.audited()
    assert entry.actor_user_id == scene.town_coordinator.user.id and entry.object_id == str(scene.foreign_child["id"])
    assert [n["record_id"] for n in scene.notified(scene.city_coordinator)] == [str(scene.foreign_child["id"])]


def test_a_risk_person_registered_elsewhere_gets_the_same_answer_as_one_in_the_callers_area(
    client: TestClient, session: Session
) -> None:
    scene = Scene(client, session)
    own, foreign = _number(adult=True), _number(adult=True)
    body = {"name": "某甲", "categories": ["3"]}
    assert client.post("/api/v1/risk-persons", json={**body, "id_number": own},
                       headers=scene.w.police.headers).status_code == 201
    held = client.post("/api/v1/risk-persons", json={**body, "id_number": foreign, "org_unit_id": scene.village_b.id},
                       headers=scene.police_b.headers)
    assert held.status_code == 201, held.text

    def attempt(number: str) -> Any:
        return _answer(client.post("/api/v1/risk-persons", json={**body, "id_number": number},
                                   headers=scene.w.police.headers))

    first, second = attempt(own), attempt(foreign)
    assert first == second and first[0] == 409 and first[2]["code"] == "id-number-registered"
    rows = [ANNEX2, [1, "某乙", foreign, "", "", "", "", "流浪乞讨人员", "", ""]]
    resp = client.post("/api/v1/ledgers/2/import", params={"dry_run": True}, headers=scene.w.police.headers,
                       files={"file": ("a2.xlsx", xlsx_bytes(rows))})
    assert resp.json()["errors"][0]["reason"] == REFUSED_ZH
    assert len(scene.audited()) == 3
    assert [n["record_type"] for n in scene.notified(scene.city_coordinator)] == ["risk_person"] * 2
    assert session.execute(select(func.count()).select_from(Notification).where(
        Notification.user_id == scene.w.police.user.id)).scalar_one() == 0


def test_notifications_name_ids_only(client: TestClient, session: Session) -> None:
    scene = Scene(client, session)
    _ways(scene, "zh-CN")["rest_create"](scene.foreign_id)
    [data] = scene.notified(scene.city_coordinator)
    assert scene.foreign_id not in str(data) and "邻县儿童" not in str(data)
    assert data["actor_user_id"] == str(scene.caller.user.id)
    assert set(data) == {"actor_user_id", "record_type", "record_id", "unit_id", "attempts"}
