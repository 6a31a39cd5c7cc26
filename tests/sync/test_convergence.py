"""The proof of issue 12: whatever phones record reaches the server exactly once, and after any
sequence of pulls each phone holds exactly what the server says its user may see.

Real processes: two `hulei serve` and one `hulei worker` on the test database (scripts/cluster.py),
never the in-process app. Four field phones (a volunteer and a grid worker in each of two villages)
register households, children and guardians with valid synthetic ID numbers, record visits and
amendments, and edit records the way an app does (sending back every field they hold, on the version
they hold); some answers are lost and the same client UUIDs resent. Meanwhile a coordinator edits
households, children and guardians over REST (a web form sends no ID number: it never held one),
moves households between the two villages, raises children's risk so helpers are proposed and
confirmed, and two helpers accept or decline from their phones (a decline re-proposes the child to
the other helper), and ends help under way. A helper's phone holds only the children it accepted,
their households and those households' visits (issue 13): accepting brings them, and ending takes
them away again, through the same pulls. Every phone pulls incrementally in small pages throughout.
Cases and services (issue 16): the coordinator plans services of the cases the matcher opened and
closes a case (its help ends); the helpers' phones pull their children's cases and services, and push
follow-ups and service steps offline (answers lost and resent like the field phones'); the cases and
services leave a helper's phone with the help.

At the end, for every phone (the coordinator's and the helpers' too): its store equals a
from-scratch pull and the database read directly with the user's jurisdiction (no missing, no
extra, no stale copy; no household without its members; visits follow their household); every
record pushed and accepted is stored once; every ID number given is still stored, unchanged; no
server process logged a traceback.

Replay: the failure message prints the seed; HULEI_CONVERGENCE_SEED=<seed> runs the same plan again.
The seed fixes what each actor does (its steps, the records it makes, the answers it loses); the
threads interleave as the machine runs them, so a replay repeats the plan, not the interleaving.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import random
import threading
import time
import traceback
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlmodel import Session, col

from backend.accounts.models import User, UserRole
from backend.accounts.permissions import PERMISSIONS, Action, Role
from backend.cases.models import Case
from backend.checklists.models import ChecklistTemplate
from backend.core import crypto
from backend.demo.town import DemoTown, grid_box
from backend.helpers.models import Assignment, FollowUp, HelperProfile
from backend.orgunits.models import OrgUnit
from backend.prevention.models import Activity
from backend.prevention.service import local_today
from backend.prevention.sync_kinds import PULL_DAYS as ACTIVITY_DAYS
from backend.registry import idnumber
from backend.registry.models import Household, Person, RiskLevel
from backend.service_plans.models import CaseService, ServiceStep
from backend.visits.models import Visit
from scripts.cluster import Cluster
from tests.factories import make_town, make_user
from tests.helpers.factories import make_helper
from tests.institutions.factories import make_institution
from tests.registry.factories import fine_answers
from tests.sync.phone import PULL_KINDS, Journal, LocalStore, Loss, Phone, Problem
from tests.sync.test_case_sync import ensure_service_kinds

SEED_ENV = "HULEI_CONVERGENCE_SEED"
FIELD_STEPS = 10  # per field phone
COORDINATOR_STEPS = 13
DEADLINE_S = 75.0  # for the concurrent part; the whole test stays under 90 s per backend
# Pull items carry a bounded recent visit history per household. The test stays well inside any
# sensible bound (a few visits per household, all from today) so the whole history is expected.
MAX_VISITS_PER_HOUSEHOLD = 3
# A helper's phone keeps the assignments it can act on; a coordinator's also those waiting for
# confirmation in its jurisdiction (every assignment still holding a place for the child).
LIVE_ASSIGNMENTS = ("offered", "accepted")
OPEN_ASSIGNMENTS = ("proposed", "offered", "accepted")
# Roles that see the children of their whole area; a user with none of them sees children only as a helper.
AREA_WIDE = {Role.volunteer.value, Role.grid_worker.value, Role.police.value, Role.coordinator.value}
# Refusals a phone may meet when the coordinator moved the household out of its area meanwhile.
LEFT_THE_AREA = {"household-not-found", "person-not-found", "visit-not-found"}
# Refusals a helper's phone may meet when the help ended or the case closed meanwhile (a follow-up of
# help no longer under way; a step of a service no longer the helper's, or declined with its case).
HELP_OVER = {"assignment-state", "not-found", "service-not-found", "service-transition-invalid"}
EXAMPLES_PER_CLASS = 6


def _id_number(rng: random.Random, sequence: Iterator[int], *, adult: bool) -> str:
    """A checksum-valid synthetic ID number (region 990101) of a minor or of an adult; the sequence
    code is unique in the test, so no two people share a number."""
    n = next(sequence)
    assert n < 1000, "the three-digit sequence code ran out"
    born = date(1975, 1, 1) if adult else date(2010, 1, 1)
    return idnumber.make("990101", born + timedelta(days=rng.randrange(0, 20 * 365 if adult else 3650)), n)


def _point_in(box: tuple[float, float, float, float], rng: random.Random) -> tuple[float, float]:
    west, south, east, north = box
    return (round(west + (east - west) * rng.uniform(0.2, 0.8), 6),
            round(south + (north - south) * rng.uniform(0.2, 0.8), 6))


@dataclass
class Pushed:
    """One record a phone created, and the last answer it read for it."""

    phone: str
    kind: str  # household | person | visit | amendment | followup | service_step | activity
    uuid: str
    household_uuid: str | None
    id_number: str | None = None
    amends_uuid: str | None = None
    status: str | None = None
    problem: str | None = None


@dataclass
class World:
    """What every actor shares: the town, the journal, and what was pushed and moved."""

    town: DemoTown
    journal: Journal
    deadline: float
    pushed: list[Pushed] = field(default_factory=list)
    moved: set[str] = field(default_factory=set)  # household uuids the coordinator moved (or is moving)
    visits_per_household: Counter[str] = field(default_factory=Counter)
    schools: list[int] = field(default_factory=list)  # one school per village, for activities (宣传教育)
    id_sequence: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def left_the_area(self, household_uuid: str | None, problem: str | None, kind: str = "edit") -> bool:
        """An edit of a household that left the editor's view meanwhile may be refused; a new record
        (a visit, an amendment, a child) made for it offline may not: nothing entered is lost."""
        with self.lock:
            return kind == "edit" and problem in LEFT_THE_AREA and household_uuid in self.moved

    def take_visit_slot(self, household_uuid: str) -> bool:
        with self.lock:
            if self.visits_per_household[household_uuid] >= MAX_VISITS_PER_HOUSEHOLD:
                return False
            self.visits_per_household[household_uuid] += 1
            return True

    def late(self) -> bool:
        return time.monotonic() > self.deadline


def _problem_code(result: dict[str, Any]) -> str | None:
    problem = result.get("problem") or {}
    return str(problem.get("code")) if problem.get("code") else None


# ---------------------------------------------------------------------------------- field phones


class FieldPhone:
    """A volunteer's or grid worker's phone working through its seeded plan."""

    def __init__(self, phone: Phone, world: World, rng: random.Random, grids: list[tuple[int, int]]) -> None:
        self.phone, self.world, self.rng, self.grids = phone, world, rng, grids
        self.my_visits: list[dict[str, Any]] = []  # visit items this phone had stored (amendable)

    @property
    def name(self) -> str:
        return self.phone.name

    def new_uuid(self) -> str:
        """A client UUID (v4) drawn from the plan's generator, so a replay makes the same ones."""
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def loss(self) -> Loss:
        return self.rng.choices([Loss.none, Loss.dropped, Loss.timeout, Loss.reserialised],
                                weights=[55, 15, 15, 15])[0]

    def run(self) -> None:
        self.phone.pull()
        steps: list[Callable[[], None]] = [self.register]
        options = [self.register, self.visit, self.amend, self.edit_household, self.edit_person, self.activity]
        steps += self.rng.choices(options, weights=[22, 30, 12, 16, 20, 12], k=FIELD_STEPS - 1)
        for step in steps:
            if self.world.late():
                self.world.journal.problem(self.name, "DEADLINE", f"stopped at {DEADLINE_S:.0f} s, plan unfinished")
                return
            step()
            if self.rng.random() < 0.7:
                self.phone.pull(lose_first_page=self.rng.random() < 0.1)
            time.sleep(self.rng.uniform(0, 0.08))

    def _record(self, entries: list[Pushed], results: list[dict[str, Any]] | None, loss: Loss) -> None:
        if results is None:
            return
        for entry, result in zip(entries, results, strict=True):
            entry.status, entry.problem = result["status"], _problem_code(result)
            if result["status"] == "conflict":
                self.world.journal.problem(self.name, "CONFLICT ON RESEND", f"{entry.kind} {entry.uuid} answered "
                                           f"conflict (answer lost: {loss.value}); the same record resent must be "
                                           "a duplicate")
            elif result["status"] == "rejected" and not self.world.left_the_area(
                entry.household_uuid, entry.problem, "new"
            ):
                detail = (result.get("problem") or {}).get("detail")
                self.world.journal.problem(self.name, "REFUSED",
                                           f"{entry.kind} {entry.uuid}: {detail} ({entry.problem})")
            elif result["status"] == "rejected":
                self.world.journal.note("records refused because their household left the area meanwhile")

    # A household with one or two children and often a guardian, pushed in one batch.
    def register(self) -> None:
        rng = self.rng
        village, grid = rng.choice(self.grids)
        lon, lat = _point_in(grid_box(village, grid), rng)
        n = rng.randrange(1, 99)
        home: dict[str, Any] = {"kind": "household", "client_uuid": self.new_uuid(),
                "base_version": None,
                "data": {"address": f"村{village + 1}第{grid + 1}网格{n}号", "head_name": f"户主{n}",
                         "contact": f"1380000{rng.randrange(10000):04d}", "lon": lon, "lat": lat}}
        huid: str = home["client_uuid"]
        items = [home]
        entries = [Pushed(self.name, "household", huid, huid)]
        guardian_uuid: str | None = None
        if rng.random() < 0.6:
            guardian_uuid = self.new_uuid()
            gid = _id_number(rng, self.world.id_sequence, adult=True) if rng.random() < 0.5 else None
            data: dict[str, Any] = {"role": "guardian", "household_uuid": huid, "name": f"监护人{n}",
                                    "contact": f"1390000{rng.randrange(10000):04d}"}
            if gid:
                data["id_number"] = gid
            items.append({"kind": "person", "client_uuid": guardian_uuid, "base_version": None, "data": data})
            entries.append(Pushed(self.name, "person", guardian_uuid, huid, id_number=gid))
        for k in range(rng.choice([1, 1, 2])):
            cuid = self.new_uuid()
            data = {"role": "child", "household_uuid": huid, "name": f"儿童{n}-{k}", "in_school": True}
            cid: str | None = None
            if rng.random() < 0.85:
                cid = _id_number(rng, self.world.id_sequence, adult=False)
                data["id_number"] = cid
            else:
                data |= {"sex": rng.choice(["male", "female"]), "birth_date": "2015-03-04"}
            if rng.random() < 0.3:
                data["groups"] = ["留守"]
            if guardian_uuid:
                data["guardians"] = [{"uuid": guardian_uuid, "relation": rng.choice(["母亲", "祖母", "父亲"])}]
            items.append({"kind": "person", "client_uuid": cuid, "base_version": None, "data": data})
            entries.append(Pushed(self.name, "person", cuid, huid, id_number=cid))
        with self.world.lock:
            self.world.pushed.extend(entries)
        loss = self.loss()
        self._record(entries, self.phone.push(items, loss), loss)

    def _visit_data(self, household: dict[str, Any]) -> dict[str, Any]:
        rng = self.rng
        children = [p["uuid"] for p in self.phone.store.members_of(household["id"]) if p.get("role") == "child"]
        seen = rng.sample(children, k=rng.randint(0, len(children))) if children else []
        stamp = (datetime.now(UTC) - timedelta(minutes=rng.randrange(1, 90))).replace(microsecond=0)
        # Phones write their local offset (China Standard Time).
        device_time = stamp.astimezone(datetime.fromisoformat("2026-01-01T00:00:00+08:00").tzinfo).isoformat()
        outcome = rng.choices(["visited", "nobody_home"], weights=[80, 20])[0]
        data: dict[str, Any] = {"household_uuid": household["uuid"], "device_time": device_time,
                                "outcome": outcome, "answers": fine_answers() if outcome == "visited" else {},
                                "children_seen": seen}
        if household.get("lon") is not None and household.get("lat") is not None:
            data["gps"] = {"lon": household["lon"], "lat": household["lat"], "accuracy_m": 10.0, "crs": "wgs84"}
        if rng.random() < 0.4:
            data["note"] = f"走访备注{rng.randrange(1000)}"
        return data

    def _household(self) -> dict[str, Any] | None:
        homes = sorted(self.phone.store.records["household"].values(), key=lambda h: str(h["uuid"]))
        self.rng.shuffle(homes)
        return next((h for h in homes if self.world.take_visit_slot(str(h["uuid"]))), None)

    def visit(self) -> None:
        home = self._household()
        if home is None:
            self.world.journal.note("visit steps with no household left to visit")
            return
        item: dict[str, Any] = {"kind": "visit", "client_uuid": self.new_uuid(), "data": self._visit_data(home)}
        entry = Pushed(self.name, "visit", item["client_uuid"], str(home["uuid"]))
        with self.world.lock:
            self.world.pushed.append(entry)
        loss = self.loss()
        self._record([entry], self.phone.push([item], loss), loss)
        if entry.status in ("created", "duplicate"):
            self.my_visits.append(item)

    def amend(self) -> None:
        held = self.phone.store.records["household"]
        candidates = [v for v in self.my_visits if v["data"]["household_uuid"] in held]
        self.rng.shuffle(candidates)
        original = next((v for v in candidates if self.world.take_visit_slot(v["data"]["household_uuid"])), None)
        if original is None:
            self.world.journal.note("amend steps with nothing to amend")
            return
        data = {**self._visit_data(held[original["data"]["household_uuid"]]), "amends_uuid": original["client_uuid"],
                "note": "更正：补充记录"}
        item: dict[str, Any] = {"kind": "amendment", "client_uuid": self.new_uuid(), "data": data}
        entry = Pushed(self.name, "amendment", item["client_uuid"], data["household_uuid"],
                       amends_uuid=original["client_uuid"])
        with self.world.lock:
            self.world.pushed.append(entry)
        loss = self.loss()
        self._record([entry], self.phone.push([item], loss), loss)

    def activity(self) -> None:
        """A prevention activity (宣传教育) or two recorded offline in the phone's village: at its school
        or in the village, dated up to a week back; resent like everything else when the answer is lost."""
        rng = self.rng
        village = self.grids[0][0]
        items: list[dict[str, Any]] = []
        for _ in range(rng.choice([1, 1, 2])):
            held = (local_today() - timedelta(days=rng.randrange(0, 8))).isoformat()
            stamp = datetime.now(UTC).astimezone(datetime.fromisoformat("2026-01-01T00:00:00+08:00").tzinfo)
            data: dict[str, Any] = {"held_date": held, "device_time": stamp.replace(microsecond=0).isoformat(),
                                    "audience": {"parents": rng.randrange(0, 40), "villagers": rng.randrange(0, 90)}}
            if rng.random() < 0.5:
                data |= {"type_code": "campus", "place_kind": "school", "institution_id": self.world.schools[village]}
                data["audience"]["students"] = rng.randrange(20, 400)
            else:
                data |= {"type_code": "door_to_door", "place_kind": "village",
                         "org_unit_id": self.world.town.villages[village].id}
            if rng.random() < 0.4:
                data["note"] = f"宣传活动{rng.randrange(1000)}"
            items.append({"kind": "activity", "client_uuid": self.new_uuid(), "data": data})
        entries = [Pushed(self.name, "activity", i["client_uuid"], None) for i in items]
        with self.world.lock:
            self.world.pushed.extend(entries)
        loss = self.loss()
        self._record(entries, self.phone.push(items, loss), loss)
        for entry in entries:
            self.world.journal.note(f"activities pushed ({entry.status})")

    def _edit(self, kind: str, build: Callable[[dict[str, Any]], dict[str, Any] | None],
              household_uuid: Callable[[dict[str, Any]], str | None], label: str) -> None:
        """Edit a held record; on a conflict, edit the server's copy once more (as the user would)."""
        held = sorted(self.phone.store.records[kind].values(), key=lambda r: str(r["uuid"]))
        self.rng.shuffle(held)
        for record in held:
            item = build(record)
            if item is None:
                continue
            loss = self.loss()
            for _ in range(2):
                results = self.phone.push([item], loss if loss is not Loss.reserialised else Loss.dropped)
                if results is None:
                    return
                [result] = results
                status, problem = result["status"], _problem_code(result)
                self.world.journal.note(f"{label} answered {status}")
                if status == "conflict" and result.get("record"):
                    self.world.journal.note(f"{kind} edits that met a newer version")
                    again = build(result["record"])
                    if again is None:
                        return
                    item, loss = again, Loss.none
                    continue
                if status == "rejected":
                    if self.world.left_the_area(household_uuid(record), problem):
                        self.world.journal.note("edits refused because the household left the area meanwhile")
                    else:
                        detail = (result.get("problem") or {}).get("detail")
                        self.world.journal.problem(
                            self.name, "EDIT REFUSED", f"{label}: {kind} {record['uuid']} v{record['version']}, sent "
                            f"back as the app holds it: {detail} ({problem})")
                return
            return
        self.world.journal.note(f"{kind} edit steps with nothing to edit")

    def edit_household(self) -> None:
        tag = self.rng.randrange(1000)
        send_grid = self.rng.random() < 0.5
        self._edit("household",
                   lambda r: self.phone.household_edit(r, {"note": f"现场核实{tag}"}, send_grid=send_grid),
                   lambda r: str(r["uuid"]), "phone household edits")

    def edit_person(self) -> None:
        tag = self.rng.randrange(1000)
        id_mode = self.rng.choice(["absent", "null", "masked"])
        field_name = self.rng.choice(["residence", "contact", "signs"])
        value = f"1370000{tag:04d}" if field_name == "contact" else f"核实{tag}"

        def household_of(record: dict[str, Any]) -> str | None:
            home = self.phone.store.household_by_id(record.get("household_id"))
            return str(home["uuid"]) if home else None

        self._edit("person", lambda r: self.phone.person_edit(r, {field_name: value}, id_number=id_mode),
                   household_of, f"phone person edits with id_number {id_mode}")


# ---------------------------------------------------------------------------------- coordinator


class Coordinator:
    """The town's coordinator: edits, moves and helper confirmations over REST; pulls like a phone."""

    def __init__(self, phone: Phone, world: World, rng: random.Random) -> None:
        self.phone, self.world, self.rng = phone, world, rng
        town = world.town
        self.village_of_grid = {g.id: v for v in (0, 1) for g in town.grids[v]}

    @property
    def name(self) -> str:
        return self.phone.name

    def _ok(self, resp: Any, what: str, *expected: int) -> bool:
        if resp is None:
            return False
        if resp.status_code not in (expected or (200,)):
            self.world.journal.problem(self.name, "REST REFUSED", f"{what} answered {resp.status_code}: "
                                                                  f"{resp.text[:300]}")
            return False
        return True

    def households(self) -> list[dict[str, Any]]:
        """The households of the two villages, through the paged list."""
        out: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            resp = self.phone.call("GET", "/api/v1/households", params={"limit": 500, **(
                {"cursor": cursor} if cursor else {})})
            if not self._ok(resp, "GET /households"):
                return out
            assert resp is not None
            body = resp.json()
            out += [h for h in body["items"] if h["org_unit_id"] in self.village_of_grid]
            cursor = body.get("next_cursor")
            if not cursor:
                return sorted(out, key=lambda h: int(h["id"]))

    def run(self) -> None:
        plan = ["move"] * 4 + ["edit_household"] * 3 + ["edit_person"] * 2 + ["edit_guardian"] + ["raise_risk"] * 3
        self.rng.shuffle(plan)
        plan = plan[:COORDINATOR_STEPS]
        # Help under way ends twice: once while the phones still work, once near the end.
        plan.insert(len(plan) * 2 // 3, "end_help")
        # Services are planned for the cases the matcher opened; one case is closed near the end.
        plan.insert(len(plan) // 2, "plan_service")
        plan.insert(len(plan) * 3 // 4, "plan_service")
        plan.insert(len(plan) * 5 // 6, "plan_service")
        plan.append("close_case")
        plan.append("end_help")
        # Wait until the phones have registered a few households to work on.
        while len(self.households()) < 4 and not self.world.late():
            time.sleep(0.3)
        for step in plan:
            if self.world.late():
                self.world.journal.problem(self.name, "DEADLINE", f"stopped at {DEADLINE_S:.0f} s, plan unfinished")
                return
            getattr(self, step)()
            self.confirm_proposals()
            self.phone.pull()
            time.sleep(self.rng.uniform(0.1, 0.4))

    def _put_household(self, pick: Callable[[list[dict[str, Any]]], dict[str, Any] | None],
                       change: Callable[[dict[str, Any]], dict[str, Any]], what: str) -> None:
        """PUT a household as a web form does (everything it shows, on its version); a 409 re-reads."""
        target = pick(self.households())
        if target is None:
            self.world.journal.note(f"coordinator {what} steps with nothing to do")
            return
        current = target
        for _ in range(3):
            body = {k: current.get(k) for k in ("address", "head_name", "contact", "lon", "lat", "note")}
            body |= {"grid_id": current["org_unit_id"], "version": current["version"]} | change(current)
            resp = self.phone.call("PUT", f"/api/v1/households/{current['id']}", json=body)
            if resp is not None and resp.status_code == 409:
                fresh = self.phone.call("GET", f"/api/v1/households/{current['id']}")
                if not self._ok(fresh, "GET /households/{id}"):
                    return
                assert fresh is not None
                current = fresh.json()
                continue
            if self._ok(resp, f"{what} PUT /households/{current['id']}"):
                self.world.journal.note(f"coordinator household {what}s done")
            return

    def move(self) -> None:
        rng = self.rng

        def pick(homes: list[dict[str, Any]]) -> dict[str, Any] | None:
            if not homes:
                return None
            home = rng.choice(homes)
            with self.world.lock:
                self.world.moved.add(str(home["uuid"]))  # before the PUT: phones may meet it at once
            return home

        def change(home: dict[str, Any]) -> dict[str, Any]:
            to_village = 1 - self.village_of_grid[home["org_unit_id"]]
            grid = rng.randrange(0, 3)
            lon, lat = _point_in(grid_box(to_village, grid), rng)
            return {"grid_id": self.world.town.grids[to_village][grid].id, "lon": lon, "lat": lat,
                    "address": f"迁入村{to_village + 1}第{grid + 1}网格{rng.randrange(99)}号"}

        self._put_household(pick, change, "move")

    def edit_household(self) -> None:
        tag = self.rng.randrange(1000)
        self._put_household(lambda homes: self.rng.choice(homes) if homes else None,
                            lambda _h: {"note": f"专班核实{tag}", "contact": f"1360000{tag:04d}"}, "edit")

    def _members(self, role: str | None = None) -> list[dict[str, Any]]:
        """The members (of `role`, if given) of a household picked at random among the first that has any."""
        homes = self.households()
        self.rng.shuffle(homes)
        for home in homes[:8]:
            resp = self.phone.call("GET", f"/api/v1/households/{home['id']}/members")
            if resp is not None and resp.status_code == 200:
                members = [m for m in resp.json() if role is None or m["role"] == role]
                if members:
                    return members
        return []

    def edit_guardian(self) -> None:
        """Correct a guardian's phone number: the children's records show it too."""
        self.edit_person("guardian")

    def edit_person(self, role: str | None = None) -> None:
        members = self._members(role)
        if not members:
            self.world.journal.note(f"coordinator edit_person ({role or 'any'}) steps with nothing to do")
            return
        person = self.rng.choice(members)
        tag = self.rng.randrange(1000)
        for _ in range(3):
            got = self.phone.call("GET", f"/api/v1/persons/{person['id']}")
            if got is None or got.status_code == 404:
                return  # moved out of the town meanwhile: nothing to edit
            if not self._ok(got, "GET /persons/{id}"):
                return
            current = got.json()
            fresh_home = self.phone.call("GET", f"/api/v1/households/{current['household_id']}")
            if not self._ok(fresh_home, "GET /households/{id}"):
                return
            assert fresh_home is not None
            # A web form sends back what it shows; it never held the full ID number, so sends none.
            body = {k: current.get(k) for k in ("role", "name", "sex", "birth_date", "hukou_place", "residence",
                                                 "in_school", "contact", "categories", "groups", "signs",
                                                 "task_force", "assistance", "key_minor", "vulnerable")}
            body |= {"household_uuid": fresh_home.json()["uuid"], "version": current["version"]}
            if current["role"] == "guardian":
                body["contact"] = f"1350000{tag:04d}"  # a corrected phone number (children show it)
            else:
                body |= {"task_force": f"专班{tag}", "assistance": f"帮扶措施{tag}"}
            if current["role"] == "child":
                body["guardians"] = [{"uuid": g["uuid"], "relation": g.get("relation")}
                                     for g in current.get("guardians") or []]
            resp = self.phone.call("PUT", f"/api/v1/persons/{current['id']}", json=body)
            if resp is not None and resp.status_code == 409:
                continue
            if self._ok(resp, f"PUT /persons/{current['id']}"):
                self.world.journal.note(f"coordinator {current['role']} edits done (no id_number sent)")
            return

    def raise_risk(self) -> None:
        """A coordinator's judgement puts a child at 较大风险; helpers are proposed and confirmed."""
        children = [p for p in self._members("child") if not p.get("risk_level")]
        if not children:
            self.world.journal.note("coordinator raise_risk steps with no child to raise")
            return
        child = self.rng.choice(children)
        resp = self.phone.call("POST", f"/api/v1/persons/{child['id']}/risk-level",
                               json={"level": RiskLevel.major.value, "reason": "专班研判：需一对一帮扶"})
        if not self._ok(resp, "POST /persons/{id}/risk-level"):
            return
        proposals = self.phone.call("POST", "/api/v1/helpers/proposals")
        if self._ok(proposals, "POST /helpers/proposals"):
            assert proposals is not None
            self.world.journal.note("helper proposals made", len(proposals.json()))

    def end_help(self) -> None:
        """End one helper's accepted assignment: the child, its household and their visits leave the
        helper's phone (unless another accepted child keeps the household there)."""
        resp = self.phone.call("GET", "/api/v1/helpers/assignments", params={"status": "accepted"})
        if not self._ok(resp, "GET /helpers/assignments?status=accepted"):
            return
        assert resp is not None
        accepted = sorted(resp.json(), key=lambda a: int(a["id"]))
        if not accepted:
            self.world.journal.note("coordinator end_help steps with no help under way")
            return
        chosen = self.rng.choice(accepted)
        done = self.phone.call("POST", f"/api/v1/helpers/assignments/{chosen['id']}/end")
        if self._ok(done, f"POST /helpers/assignments/{chosen['id']}/end"):
            self.world.journal.note("help ended by the coordinator")

    def _cases(self, status: str) -> list[dict[str, Any]]:
        resp = self.phone.call("GET", "/api/v1/cases", params={"status": status})
        if not self._ok(resp, f"GET /cases?status={status}"):
            return []
        assert resp is not None
        return sorted(resp.json(), key=lambda c: int(c["id"]))

    def plan_service(self) -> None:
        """Plan a service of a case under way (one a helper took on, if any)."""
        cases = self._cases("active") or self._cases("open")
        if not cases:
            self.world.journal.note("coordinator plan_service steps with no case")
            return
        case = self.rng.choice(cases)
        kind = self.rng.choice(["legal_aid", "psychological", "living_aid"])
        resp = self.phone.call("POST", f"/api/v1/cases/{case['id']}/services", json={"kind": kind})
        if resp is not None and resp.status_code == 409:  # the case closed meanwhile
            self.world.journal.note("services not planned: the case closed meanwhile")
        elif self._ok(resp, f"POST /cases/{case['id']}/services", 201):
            self.world.journal.note("services planned")

    def close_case(self) -> None:
        """Close a case under way: every help of it ends, its open services are declined, and it leaves
        its helpers' phones."""
        cases = self._cases("active")
        if not cases:
            self.world.journal.note("coordinator close_case steps with no case under way")
            return
        case = self.rng.choice(cases)
        resp = self.phone.call("POST", f"/api/v1/cases/{case['id']}/close", json={"reason": "risk_lowered"})
        if resp is not None and resp.status_code == 409:
            return
        if self._ok(resp, f"POST /cases/{case['id']}/close"):
            self.world.journal.note("cases closed by the coordinator")

    def confirm_proposals(self) -> None:
        resp = self.phone.call("GET", "/api/v1/helpers/assignments", params={"status": "proposed"})
        if not self._ok(resp, "GET /helpers/assignments"):
            return
        assert resp is not None
        for a in resp.json():
            done = self.phone.call("POST", f"/api/v1/helpers/assignments/{a['id']}/confirm")
            if done is not None and done.status_code == 200:
                self.world.journal.note("helper offers confirmed")
            elif done is not None and done.status_code != 409:
                self._ok(done, "POST /helpers/assignments/{id}/confirm")


def helper_loop(phone: Phone, world: World, rng: random.Random, stop: threading.Event, first_declines: bool) -> None:
    """A helper's phone: pull, answer each new offer (accept or decline), record a follow-up or a
    service step now and then (offline records pushed, answers sometimes lost), again until told to stop."""
    answered: set[int] = set()
    while not stop.is_set() and not world.late():
        phone.pull()
        if rng.random() < 0.5:
            helper_records(phone, world, rng)
        offers = [a for a in phone.store.records["assignment"].values()
                  if a["status"] == "offered" and a["id"] not in answered]
        for offer in sorted(offers, key=lambda a: int(a["id"])):
            answered.add(offer["id"])
            # The first offer: one helper declines (the child is proposed to the other), the other accepts.
            decline = first_declines if len(answered) == 1 else rng.random() < 0.4
            verb = "decline" if decline else "accept"
            resp = phone.call("POST", f"/api/v1/helpers/assignments/{offer['id']}/{verb}")
            if resp is not None and resp.status_code in (200, 204):
                world.journal.note(f"offers {'declined' if decline else 'accepted'} by helpers")
            elif resp is not None:
                world.journal.problem(phone.name, "REST REFUSED", f"{verb} of assignment {offer['id']} answered "
                                                                  f"{resp.status_code}: {resp.text[:200]}")
        stop.wait(0.25)


def helper_records(phone: Phone, world: World, rng: random.Random) -> None:
    """A follow-up of a child the helper holds, or a step of a service of its cases, pushed as an app
    queues them offline: a client UUID each, the answer sometimes lost and the same item resent."""
    store = phone.store.records
    helping = sorted((a for a in store["assignment"].values() if a["status"] == "accepted"), key=lambda a: a["id"])
    services = sorted((s for s in store["service"].values() if s["status"] in ("planned", "in_progress")),
                      key=lambda s: s["id"])
    items: list[dict[str, Any]] = []
    uid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    if services and (not helping or rng.random() < 0.5):
        service = rng.choice(services)
        data: dict[str, Any] = {"service_id": service["id"], "note": f"服务进展{rng.randrange(1000)}"}
        if service["status"] == "planned":
            data["to_status"] = "in_progress"
        else:
            data |= {"to_status": "done", "outcome": "已完成服务"}
        if rng.random() < 0.5:
            # A phone's time, a little slow at most: the step was made after the service reached it.
            at = (datetime.now(UTC) - timedelta(seconds=rng.randrange(0, 240))).replace(microsecond=0)
            data["at"] = at.isoformat()
        items.append({"kind": "service_step", "client_uuid": uid, "base_version": None, "data": data})
    elif helping:
        assignment = rng.choice(helping)
        stamp = (datetime.now(UTC) - timedelta(minutes=rng.randrange(1, 90))).replace(microsecond=0)
        items.append({"kind": "followup", "client_uuid": uid, "base_version": None,
                      "data": {"assignment_id": assignment["id"], "visited_at": stamp.isoformat(),
                               "note": f"上门随访{rng.randrange(1000)}" if rng.random() < 0.7 else None}})
    if not items:
        return
    entry = Pushed(phone.name, items[0]["kind"], uid, None)
    with world.lock:
        world.pushed.append(entry)
    loss = rng.choices([Loss.none, Loss.dropped, Loss.timeout], weights=[60, 20, 20])[0]
    results = phone.push(items, loss)
    if results is None:
        return
    [result] = results
    entry.status, entry.problem = result["status"], _problem_code(result)
    if entry.status == "conflict":
        world.journal.problem(phone.name, "CONFLICT ON RESEND", f"{entry.kind} {uid} answered conflict (answer "
                              f"lost: {loss.value}); the same record resent must be a duplicate")
    elif entry.status == "rejected" and entry.problem in HELP_OVER:
        world.journal.note(f"{entry.kind}s refused: the help or the service was over meanwhile ({entry.problem})")
    elif entry.status == "rejected":
        world.journal.problem(phone.name, "REFUSED", f"{entry.kind} {uid}: {result.get('problem')}")
    else:
        world.journal.note(f"{entry.kind}s pushed by helpers ({entry.status})")


# ---------------------------------------------------------------------------------- the server's view


def _describe(kind: str, record: dict[str, Any] | None) -> str:
    if record is None:
        return ""
    if kind == "household":
        return f"(id {record.get('id')}, unit {record.get('org_unit_id')}, v{record.get('version')})"
    if kind == "person":
        return (f"({record.get('role')} id {record.get('id')}, household {record.get('household_id')}, "
                f"unit {record.get('org_unit_id')}, v{record.get('version')})")
    if kind == "visit":
        return f"(household {record.get('household_uuid') or record.get('household_id')})"
    if kind == "assignment":
        return f"(child {record.get('child_id')}, helper {record.get('helper_id')}, {record.get('status')})"
    if kind == "case":
        return f"(child {record.get('child_id')}, {record.get('status')})"
    if kind == "service":
        return f"(case {record.get('case_id')}, {record.get('status')})"
    return ""


def _short(value: Any, width: int = 90) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _first_difference(path: str, mine: Any, theirs: Any) -> str:
    """Where two JSON values first differ, e.g. "guardians[0].contact: phone '139…' / server '135…'"."""
    if isinstance(mine, dict) and isinstance(theirs, dict):
        for k in sorted(mine.keys() | theirs.keys()):
            if mine.get(k) != theirs.get(k):
                return _first_difference(f"{path}.{k}", mine.get(k), theirs.get(k))
    if isinstance(mine, list) and isinstance(theirs, list) and len(mine) == len(theirs):
        for i, (a, b) in enumerate(zip(mine, theirs, strict=True)):
            if a != b:
                return _first_difference(f"{path}[{i}]", a, b)
    return f"{path}: phone {_short(mine)} / server {_short(theirs)}"


def compare_with_pull(who: str, store: LocalStore, truth: LocalStore) -> list[Problem]:
    """The phone's store against a from-scratch pull of the same user: missing, extra, stale."""
    out: list[Problem] = []
    for kind in PULL_KINDS:
        mine, theirs = store.records[kind], truth.records[kind]
        for key in sorted(theirs.keys() - mine.keys()):
            out.append(Problem(f"MISSING {kind} (vs fresh pull)", who, f"{key} {_describe(kind, theirs[key])}: "
                               "a from-scratch pull has it, the phone's incremental pulls never delivered it"))
        for key in sorted(mine.keys() - theirs.keys()):
            out.append(Problem(f"EXTRA {kind} (vs fresh pull)", who, f"{key} {_describe(kind, mine[key])}: on the "
                               "phone, but a from-scratch pull does not have it (no removal reached the phone)"))
        for key in sorted(mine.keys() & theirs.keys()):
            if mine[key] != theirs[key]:
                fields = sorted(k for k in mine[key].keys() | theirs[key].keys()
                                if mine[key].get(k) != theirs[key].get(k))
                shown = "; ".join(_first_difference(f, mine[key].get(f), theirs[key].get(f)) for f in fields[:3])
                out.append(Problem(f"STALE {kind} (vs fresh pull)", who, f"{key} {_describe(kind, theirs[key])} "
                                   f"differs in {', '.join(fields)}: {shown}"))
    return out


@dataclass
class ScopedView:
    """What the database says a user may see: keys per kind with the value a phone must hold."""

    path: str
    records: dict[str, dict[str, str]]  # kind -> key -> "v<version>" / status / household uuid


def scoped_view(session: Session, user: User) -> ScopedView:
    """The user's view read from the tables with the user's jurisdiction (the org path subtree); for a
    user who sees children only as their helper, the children it accepted, their households and those
    households' visits, inside the jurisdiction (issue 13)."""
    unit = session.get(OrgUnit, user.org_unit_id)
    assert unit is not None
    path = unit.path
    under = col(OrgUnit.path).startswith(path)
    roles = set(user_roles(session, user))
    helper_ids = select(col(HelperProfile.id)).where(col(HelperProfile.user_id) == user.id)
    persons_of: list[ColumnElement[bool]] = []
    households_of: list[ColumnElement[bool]] = []
    if Role.helper.value in roles and not roles & AREA_WIDE:
        taken = select(col(Assignment.child_id)).where(col(Assignment.helper_id).in_(helper_ids),
                                                      col(Assignment.status) == "accepted")
        persons_of = [col(Person.id).in_(taken)]
        households_of = [col(Household.id).in_(select(col(Person.household_id)).where(col(Person.id).in_(taken)))]
    households = {str(u): f"v{v}" for u, v in session.execute(
        select(col(Household.uuid), col(Household.version)).join(OrgUnit, col(OrgUnit.id) == col(Household.org_unit_id))
        .where(under, *households_of))}
    persons = {str(u): f"v{v}" for u, v in session.execute(
        select(col(Person.uuid), col(Person.version)).join(OrgUnit, col(OrgUnit.id) == col(Person.org_unit_id))
        .where(under, *persons_of))}
    visits = {str(u): str(h) for u, h in session.execute(
        select(col(Visit.client_uuid), col(Household.uuid))
        .join(Household, col(Household.id) == col(Visit.household_id))
        .join(OrgUnit, col(OrgUnit.id) == col(Household.org_unit_id)).where(under, *households_of))}
    templates = {f"{c}@{v}": f"v{v}" for c, v in session.execute(
        select(col(ChecklistTemplate.code), col(ChecklistTemplate.version)))}
    mine = and_(col(Assignment.helper_id).in_(helper_ids), col(Assignment.status).in_(LIVE_ASSIGNMENTS))
    scope: ColumnElement[bool] | None = None
    if Role.coordinator.value in roles:
        scope = or_(mine, and_(col(Assignment.org_unit_id).in_(select(col(OrgUnit.id)).where(under)),
                               col(Assignment.status).in_(OPEN_ASSIGNMENTS)))
    elif Role.helper.value in roles:
        scope = mine
    assignments = {} if scope is None else {str(i): s for i, s in session.execute(
        select(col(Assignment.id), col(Assignment.status)).where(scope))}
    # Cases: a coordinator's every case of its jurisdiction; a helper's those of the children it took
    # on (closed ones too while the help lasts); services follow their case.
    cases_of: list[ColumnElement[bool]] = []
    if Role.coordinator.value not in roles:
        taken_children = select(col(Assignment.child_id)).where(col(Assignment.helper_id).in_(helper_ids),
                                                                col(Assignment.status) == "accepted")
        cases_of = [col(Case.child_id).in_(taken_children)]
    case_rows = session.execute(
        select(col(Case.id), col(Case.status)).join(OrgUnit, col(OrgUnit.id) == col(Case.org_unit_id))
        .where(under, *cases_of)).all()
    cases = {str(i): s for i, s in case_rows} if roles & {Role.coordinator.value, Role.helper.value} else {}
    services = {str(i): s for i, s in session.execute(
        select(col(CaseService.id), col(CaseService.status)).where(col(CaseService.case_id).in_(
            [int(c) for c in cases])))} if cases else {}
    # Activities (宣传教育): those held in the window whose place lies in the jurisdiction, and the user's own.
    since = local_today() - timedelta(days=ACTIVITY_DAYS)
    reads_activities = any(Action.activity_read in PERMISSIONS[Role(r)] for r in roles)
    activities = {str(u): d.isoformat() for u, d in session.execute(
        select(col(Activity.client_uuid), col(Activity.held_date))
        .join(OrgUnit, col(OrgUnit.id) == col(Activity.org_unit_id))
        .where(col(Activity.held_date) >= since, or_(under, col(Activity.recorded_by) == user.id)))
    } if reads_activities else {}
    return ScopedView(path, {"household": households, "person": persons, "visit": visits,
                             "template": templates, "assignment": assignments, "case": cases, "service": services,
                             "activity": activities})


def user_roles(session: Session, user: User) -> list[str]:
    return [r for (r,) in session.execute(select(col(UserRole.role)).where(col(UserRole.user_id) == user.id))]


def _held_value(kind: str, record: dict[str, Any]) -> str:
    if kind in ("household", "person", "template"):
        return f"v{record.get('version')}"
    if kind in ("assignment", "case", "service"):
        return str(record.get("status"))
    if kind == "activity":
        return str(record.get("held_date"))
    return str(record.get("household_uuid"))


def compare_with_database(who: str, store: LocalStore, view: ScopedView, session: Session) -> list[Problem]:
    """The phone's store against the tables read with the user's jurisdiction."""
    out: list[Problem] = []
    for kind in PULL_KINDS:
        mine = {k: _held_value(kind, r) for k, r in store.records[kind].items()}
        theirs = view.records[kind]
        for key in sorted(theirs.keys() - mine.keys()):
            out.append(Problem(f"MISSING {kind} (vs database)", who, f"{key} ({theirs[key]}): in the user's "
                               f"jurisdiction ({view.path}) in the database, not on the phone"))
        for key in sorted(mine.keys() - theirs.keys()):
            where = _where(session, kind, key)
            out.append(Problem(f"EXTRA {kind} (vs database)", who, f"{key} {_describe(kind, store.records[kind][key])}"
                               f": on the phone, outside the user's view in the database ({where})"))
        for key in sorted(mine.keys() & theirs.keys()):
            if mine[key] != theirs[key]:
                out.append(Problem(f"STALE {kind} (vs database)", who, f"{key}: phone holds {mine[key]}, database has "
                                   f"{theirs[key]}"))
    # A household travels with its people: none on the phone without its members (those the user may
    # see: a helper holds only the children it helps), nor a member alone.
    held = store.records["household"]
    by_id = {h["id"]: str(uid) for uid, h in held.items()}
    if by_id:
        rows = session.execute(select(col(Person.uuid), col(Person.household_id), col(Person.org_unit_id))
                               .where(col(Person.household_id).in_(list(by_id)))).all()
        for puid, hid, unit_id in rows:
            if str(puid) not in store.records["person"] and str(puid) in view.records["person"]:
                out.append(Problem("HOUSEHOLD WITHOUT ITS MEMBER", who, f"household {by_id[hid]} (id {hid}) is on the "
                                   f"phone, its member {puid} (unit {unit_id}) is not"))
    for puid, person in store.records["person"].items():
        if person.get("household_id") is not None and person["household_id"] not in by_id:
            out.append(Problem("MEMBER WITHOUT ITS HOUSEHOLD", who, f"person {puid} is on the phone, its household "
                               f"(id {person['household_id']}) is not"))
    return out


def _where(session: Session, kind: str, key: str) -> str:
    """Where the database holds a record now (for messages about extras)."""
    if kind in ("household", "person"):
        model: Any = Household if kind == "household" else Person
        row = session.execute(select(col(model.org_unit_id), col(model.version))
                              .where(col(model.uuid) == uuid.UUID(key))).first()
        return f"now in unit {row[0]} at v{row[1]}" if row else "deleted"
    if kind == "assignment":
        status = session.execute(select(col(Assignment.status)).where(col(Assignment.id) == int(key))).scalar()
        return f"status {status}" if status else "deleted"
    if kind in ("case", "service"):
        model = Case if kind == "case" else CaseService
        status = session.execute(select(col(model.status)).where(col(model.id) == int(key))).scalar()
        return f"status {status}" if status else "deleted"
    if kind == "visit":
        unit = session.execute(select(col(Household.org_unit_id)).join(Visit, col(Visit.household_id) == col(
            Household.id)).where(col(Visit.client_uuid) == uuid.UUID(key))).scalar()
        return f"its household now in unit {unit}" if unit else "deleted"
    return "not in the database"


def check_pushed(session: Session, world: World) -> list[Problem]:
    """Every accepted record stored exactly once; refused ones not stored; members where their
    household is; ID numbers all kept."""
    out: list[Problem] = []
    by_kind: dict[str, list[Pushed]] = defaultdict(list)
    for p in world.pushed:
        by_kind["visit" if p.kind == "amendment" else p.kind].append(p)
    models: dict[str, Any] = {"household": (Household, Household.uuid), "person": (Person, Person.uuid),
                              "visit": (Visit, Visit.client_uuid), "followup": (FollowUp, FollowUp.client_uuid),
                              "service_step": (ServiceStep, ServiceStep.client_uuid),
                              "activity": (Activity, Activity.client_uuid)}
    for kind, entries in by_kind.items():
        _model, key = models[kind]
        wanted = [uuid.UUID(p.uuid) for p in entries]
        counts = {str(u): n for u, n in session.execute(
            select(col(key), func.count()).where(col(key).in_(wanted)).group_by(col(key)))}
        for p in entries:
            n = counts.get(p.uuid, 0)
            if p.status in ("created", "duplicate", "updated") and n != 1:
                out.append(Problem("NOT STORED ONCE", p.phone, f"{p.kind} {p.uuid} answered {p.status}, stored {n} "
                                   "times"))
            elif p.status is None and n != 1:
                out.append(Problem("NOT STORED ONCE", p.phone, f"{p.kind} {p.uuid} got no answer, stored {n} times"))
            elif p.status == "rejected" and n > 1:
                out.append(Problem("NOT STORED ONCE", p.phone, f"{p.kind} {p.uuid} was refused ({p.problem}), "
                                   f"stored {n} times"))
    # Amendments point at the visit they correct.
    amendments = [p for p in world.pushed if p.kind == "amendment" and p.status in ("created", "duplicate")]
    if amendments:
        ids = dict(session.execute(select(col(Visit.client_uuid), col(Visit.id))).all())
        links = dict(session.execute(select(col(Visit.client_uuid), col(Visit.amends_id))
                                     .where(col(Visit.amends_id).is_not(None))).all())
        for p in amendments:
            want = ids.get(uuid.UUID(p.amends_uuid or ""))
            got = links.get(uuid.UUID(p.uuid))
            if want is None or got != want:
                out.append(Problem("AMENDMENT MISLINKED", p.phone, f"amendment {p.uuid} corrects visit id {got}, "
                                   f"not {p.amends_uuid} (id {want})"))
    # Children and guardians live where their household lives, whatever was written during a move.
    for puid, unit, home, home_unit in session.execute(
        select(col(Person.uuid), col(Person.org_unit_id), col(Household.uuid), col(Household.org_unit_id))
        .join(Household, col(Household.id) == col(Person.household_id))
        .where(col(Person.org_unit_id) != col(Household.org_unit_id))
    ):
        out.append(Problem("MEMBER LEFT BEHIND", "-", f"person {puid} is in unit {unit}, its household {home} in "
                           f"unit {home_unit}"))
    # No stored ID number is erased or altered by any edit of anyone.
    given = {p.uuid: p for p in world.pushed if p.kind == "person" and p.id_number and p.status != "rejected"}
    if given:
        rows = session.execute(select(col(Person.uuid), col(Person.id_cipher), col(Person.id_masked),
                                      col(Person.version)).where(col(Person.uuid).in_([uuid.UUID(u) for u in given])))
        for puid, cipher, masked, version in rows:
            p = given[str(puid)]
            if cipher is None:
                out.append(Problem("ID NUMBER ERASED", p.phone, f"person {puid} was registered by this phone with an "
                                   f"ID number; at v{version} the database holds none (id_masked {masked!r})"))
            elif crypto.decrypt(cipher) != p.id_number:
                out.append(Problem("ID NUMBER CHANGED", p.phone, f"person {puid} at v{version} no longer holds the "
                                   "number given"))
    return out


# ---------------------------------------------------------------------------------- the test


def server_tracebacks(cluster: Cluster) -> list[Problem]:
    """Every server process's log must be free of tracebacks (a failed job never reaches a phone)."""
    out: list[Problem] = []
    for proc in cluster.api_procs + cluster.worker_procs:
        text = proc.log.read_text(encoding="utf-8", errors="replace") if proc.log.exists() else ""
        count = text.count("Traceback (most recent call last)")
        if count:
            out.append(Problem("SERVER TRACEBACK", proc.name, f"{count} in {proc.log}; it ends:\n{proc.tail(12)}"))
    return out


# Classes listed first in a failure report: the promise's gravest breaches.
REPORT_ORDER = ("SIMULATION CRASHED", "ID NUMBER ERASED", "ID NUMBER CHANGED", "NOT STORED ONCE", "HTTP 5xx",
                "SERVER TRACEBACK", "CONFLICT ON RESEND", "REFUSED", "EDIT REFUSED", "AMENDMENT MISLINKED")


def _report(seed: int, backend: str, problems: list[Problem], journal: Journal, phones: list[Phone],
            timings: dict[str, float]) -> str:
    """Every class of problem with its count and its first examples, gravest classes first."""
    by_kind: dict[str, list[Problem]] = defaultdict(list)
    for p in problems:
        by_kind[p.kind].append(p)
    order = sorted(by_kind, key=lambda k: (REPORT_ORDER.index(k) if k in REPORT_ORDER else len(REPORT_ORDER), k))
    lines = [f"convergence failed on {backend}: {len(problems)} problems in {len(by_kind)} classes (seed {seed}; "
             f"replay with {SEED_ENV}={seed}; the seed fixes each actor's plan, not the threads' interleaving)",
             "classes: " + ", ".join(f"{k} x{len(by_kind[k])}" for k in order),
             "events: " + ", ".join(f"{k} x{n}" for k, n in sorted(journal.notes.items())),
             "phones: " + "; ".join(f"{p.name} (limit {p.limit}) {p.pages} pages, {p.resets} resets, removals "
                                    f"applied {p.store.removals_applied}, unknown kinds {dict(p.store.unknown_kinds)}"
                                    for p in phones),
             "seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items())]
    for kind in order:
        shown = by_kind[kind][:EXAMPLES_PER_CLASS]
        lines.append(f"-- {kind} ({len(by_kind[kind])}):")
        lines += [f"   {p}" for p in shown]
        if len(by_kind[kind]) > len(shown):
            lines.append(f"   ... and {len(by_kind[kind]) - len(shown)} more")
    return "\n".join(lines)


@contextlib.contextmanager
def booting(cluster: Cluster) -> Iterator[Cluster]:
    """The cluster's processes spawned at once, stopped on the way out; the caller waits for them
    (`wait_ready`) after preparing its data, so the imports overlap the setup."""
    try:
        for _ in range(cluster.apis):
            cluster.add_api()
        for _ in range(cluster.workers):
            cluster.add_worker()
        yield cluster
    finally:
        cluster.stop()


def test_every_phone_ends_with_exactly_its_users_view_and_every_record_stored_once(
    database_url: str, session: Session, backend_name: str, tmp_path: Path
) -> None:
    seed = int(os.environ.get(SEED_ENV) or random.SystemRandom().randrange(1, 1_000_000))
    print(f"convergence seed {seed} ({SEED_ENV}={seed} replays the plan)")
    master = random.Random(seed)
    timings: dict[str, float] = {}
    begun = time.monotonic()
    with booting(Cluster(database_url, tmp_path / "cluster", apis=2, workers=1)) as cluster:
        # The town and its users are made while the server processes import and start.
        town = make_town(session)
        field_users = {
            "village1-volunteer": (make_user(session, town.villages[0], Role.volunteer), [(0, g) for g in range(3)]),
            "village1-grid-worker": (make_user(session, town.grids[0][0], Role.grid_worker), [(0, 0)]),
            "village2-volunteer": (make_user(session, town.villages[1], Role.volunteer), [(1, g) for g in range(3)]),
            "village2-grid-worker": (make_user(session, town.grids[1][0], Role.grid_worker), [(1, 0)]),
        }
        coordinator_user = make_user(session, town.town, Role.coordinator)
        schools = [make_institution(session, town.villages[v].id or 0).id or 0 for v in (0, 1)]
        ensure_service_kinds(session)
        helper_profiles = [make_helper(session, town.town, sex="female", capacity=10,
                                       at=_point_in(grid_box(v, 1), master)) for v in (0, 1)]
        helper_users = [session.get(User, h.user_id) for h in helper_profiles]
        journal = Journal()
        cluster.wait_ready()
        timings["servers started"] = time.monotonic() - begun
        world = World(town, journal, deadline=time.monotonic() + DEADLINE_S, schools=schools)
        started = time.monotonic()
        phones: list[Phone] = []

        def phone(name: str, user: User | None, n: int) -> Phone:
            assert user is not None
            p = Phone(name, user, cluster.urls, journal, limit=master.randint(3, 20), first_api=n)
            p.sign_in()
            phones.append(p)
            return p

        field_phones = [FieldPhone(phone(name, user, n), world, random.Random(master.random()), grids)
                        for n, (name, (user, grids)) in enumerate(field_users.items())]
        coordinator = Coordinator(phone("coordinator", coordinator_user, 0), world, random.Random(master.random()))
        helper_phones = [phone(f"helper-{n + 1}", u, n) for n, u in enumerate(helper_users)]
        stop_helpers = threading.Event()
        failures: list[Problem] = []

        def guarded(name: str, work: Callable[[], None]) -> Callable[[], None]:
            def run() -> None:
                try:
                    work()
                except Exception:  # a crash of the simulation itself is reported, not swallowed
                    failures.append(Problem("SIMULATION CRASHED", name, traceback.format_exc(limit=-4)))
            return run

        workers = [threading.Thread(target=guarded(f.name, f.run), name=f.name) for f in field_phones]
        workers.append(threading.Thread(target=guarded("coordinator", coordinator.run), name="coordinator"))
        helpers = [threading.Thread(target=guarded(p.name, functools.partial(
            helper_loop, p, world, random.Random(master.random()), stop_helpers, first_declines=n == 0)), name=p.name)
            for n, p in enumerate(helper_phones)]
        for t in workers + helpers:
            t.start()
        for t in workers:
            t.join(max(1.0, world.deadline - time.monotonic() + 5))
        # Let the helpers answer what the coordinator confirmed last, then confirm what they declined.
        time.sleep(1.0)
        stop_helpers.set()
        for t in helpers:
            t.join(10)
        coordinator.confirm_proposals()
        hung = [t.name for t in workers + helpers if t.is_alive()]
        assert not hung, f"actors still running after the deadline: {hung} (seed {seed})"
        timings["concurrent part"] = time.monotonic() - started

        # Writers are done: every phone catches up once more, then a new install of each user pulls.
        problems = list(failures)
        fresh: dict[str, LocalStore] = {}
        for p in phones:
            p.pull()
            fresh[p.name] = p.pull_from_scratch()
        assert all(proc.alive() for proc in cluster.api_procs + cluster.worker_procs), "a server process died"
        timings["final pulls"] = time.monotonic() - started - timings["concurrent part"]

    problems += server_tracebacks(cluster)
    session.rollback()
    session.expire_all()
    for p in phones:
        problems += compare_with_pull(p.name, p.store, fresh[p.name])
        problems += compare_with_database(p.name, p.store, scoped_view(session, p.user), session)
    problems += check_pushed(session, world)
    problems += journal.problems
    for p in phones:
        p.close()
    print("events: " + ", ".join(f"{k} x{n}" for k, n in sorted(journal.notes.items())))
    print("seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
    assert sum(1 for p in world.pushed if p.status == "created") > 0, "the phones stored nothing at all"
    if problems:
        pytest.fail(_report(seed, backend_name, problems, journal, phones, timings), pytrace=False)
    assert timings["concurrent part"] < DEADLINE_S

