"""A resend is recognised by what the record says, not by how its JSON is written: any
re-serialisation of a pushed record (number forms, null or absent optional fields, empty or absent
lists, the same instant in another offset, key order, escapes) is a `duplicate`; any real change of
content is a `conflict`. Visits stored before this rule (digest of the JSON as sent) still match."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from sqlalchemy import update
from sqlmodel import Session, col

from backend.core import crypto
from backend.inspections.models import Inspection
from backend.inspections.schemas import InspectionSubmit
from backend.inspections.service import payload_digest
from backend.venues.models import VenueType
from backend.visits.models import Visit
from backend.visits.schemas import AmendmentData, VisitGpsFix
from backend.visits.service import canonical_record
from tests.factories import SignedIn
from tests.registry.factories import child_item, fine_answers, grid_centre, household_item, make_world, seed_household
from tests.venues.factories import inspection_body, make_venue
from tests.venues.factories import make_world as venue_world

DEVICE_TIME = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


# --- writing the same JSON value in other words -------------------------------------------------

def _instant_forms(at: datetime) -> st.SearchStrategy[str]:
    """The same instant as a phone might write it."""
    utc = at.astimezone(UTC)
    return st.sampled_from([
        utc.isoformat(),
        utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        utc.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        utc.strftime("%Y-%m-%dT%H:%M:%S.000000+00:00"),
        at.astimezone(timezone(timedelta(hours=8))).isoformat(),
        at.astimezone(timezone(timedelta(hours=8))).strftime("%Y-%m-%dT%H:%M:%S.000+08:00"),
        at.astimezone(timezone(timedelta(hours=-5))).isoformat(),
    ])


def _number_forms(x: float) -> st.SearchStrategy[str]:
    forms = [repr(float(x)), f"{x:.12f}", f"{x:e}".replace("e+0", "e+").replace("e-0", "e-"), f"{x:.17g}"]
    if float(x).is_integer():
        forms.append(str(int(x)))
    return st.sampled_from([f for f in forms if float(f) == x])


class Raw(str):
    """JSON text to be written as it is (a number in a chosen form, an instant in a chosen offset)."""


def _dump(value: Any, rnd: Any, ascii_only: bool) -> str:
    """JSON text of `value` with object keys in a random order."""
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, dict):
        keys = list(value)
        rnd.shuffle(keys)
        return "{" + ", ".join(f"{json.dumps(k, ensure_ascii=ascii_only)}: {_dump(value[k], rnd, ascii_only)}"
                               for k in keys) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_dump(v, rnd, ascii_only) for v in value) + "]"
    return json.dumps(value, ensure_ascii=ascii_only)


def _matches(pattern: tuple[str, ...], path: tuple[str, ...]) -> bool:
    return len(pattern) == len(path) and all(p in ("*", q) for p, q in zip(pattern, path, strict=True))


@st.composite
def rewritten(draw: st.DrawFn, item: dict[str, Any], defaults: dict[str, Any]) -> str:
    """The push body of `item` written again: every number, instant and UUID in some equal form,
    optional members holding their default either written out or left out, keys in any order."""
    optional = [(tuple(name.split(".")), value) for name, value in defaults.items()]

    def again(value: Any, path: tuple[str, ...]) -> Any:  # path relative to data
        name = path[-1] if path else ""
        if isinstance(value, bool) or value is None:
            return value
        if isinstance(value, int | float):
            forms = st.sampled_from([str(value), f"{value}.0"]) if name == "template_version" else (
                _number_forms(float(value)))
            return Raw(draw(forms))
        if isinstance(value, str) and name in ("device_time", "started_at"):
            return Raw(json.dumps(draw(_instant_forms(datetime.fromisoformat(value)))))
        if isinstance(value, str) and (name.endswith("uuid") or path[-2:-1] in (("children_seen",), ("photos",))):
            return draw(st.sampled_from([value.lower(), value.upper()]))
        if isinstance(value, dict):
            out = {k: again(v, (*path, k)) for k, v in value.items()}
            for pattern, default in optional:
                if not _matches(pattern[:-1], path):
                    continue
                member = pattern[-1]
                if member not in out and draw(st.booleans()):
                    out[member] = default
                elif member in out and value.get(member) == default and draw(st.booleans()):
                    del out[member]
            return out
        if isinstance(value, list):
            return [again(v, (*path, str(i))) for i, v in enumerate(value)]
        return value

    data = again(item["data"], ())
    body = {"items": [{**{k: v for k, v in item.items() if k != "data"}, "data": data}]}
    return _dump(body, draw(st.randoms()), draw(st.booleans()))


# Optional members and the value that means "not given" (paths under data; * = any key).
VISIT_DEFAULTS: dict[str, Any] = {
    "note": None, "children_seen": [], "template_code": "six-looks-six-asks", "template_version": 1,
    "gps.crs": "wgs84", "answers.*.note": None, "answers.*.photos": [], "answers.*.value": None,
}
HOUSEHOLD_DEFAULTS: dict[str, Any] = {"note": None, "crs": "wgs84", "grid_id": None, "head_name": None}
PERSON_DEFAULTS: dict[str, Any] = {
    "categories": [], "groups": [], "guardians": [], "signs": None, "task_force": None, "key_minor": False,
    "vulnerable": False, "contact": None, "residence": None, "role": "child", "sex": None, "birth_date": None,
    "hukou_place": None, "assistance": None, "org_unit_id": None,
}

SETTINGS = settings(max_examples=25, deadline=None, database=None, phases=[Phase.explicit, Phase.generate],
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def _send(client: TestClient, who: SignedIn, body: str) -> dict[str, Any]:
    resp = client.post("/api/v1/sync/push", content=body.encode(),
                       headers={**who.headers, "Content-Type": "application/json"})
    assert resp.status_code == 200, resp.text
    result: dict[str, Any] = resp.json()["results"][0]
    return result


def _visit(home_uuid: str, child_uuid: str | None, **extra: Any) -> dict[str, Any]:
    answers = fine_answers()
    answers["look1"] = {"value": "no", "note": "正常", "photos": [str(uuid.uuid4())]}
    answers["ask1"] = {"value": "yes", "photos": []}
    lon, lat = grid_centre(0)
    data = {
        "household_uuid": home_uuid, "device_time": DEVICE_TIME.isoformat(), "outcome": "visited",
        "answers": answers, "children_seen": [child_uuid] if child_uuid else [],
        "gps": {"lon": lon, "lat": lat, "accuracy_m": 8.0},
        **extra,
    }
    return {"kind": "visit", "client_uuid": str(uuid.uuid4()), "data": data}


def test_any_rewriting_of_a_pushed_visit_is_a_duplicate(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    home, kids = seed_household(client, w.volunteer_a)
    visit = _visit(home["uuid"], None)
    amendment = _visit(home["uuid"], kids[0]["uuid"], note="更正", amends_uuid=visit["client_uuid"])
    amendment["kind"] = "amendment"
    for item in (visit, amendment):
        assert _send(client, w.volunteer_a, json.dumps({"items": [item]}))["status"] == "created"

    @seed(8)
    @SETTINGS
    @given(st.sampled_from([visit, amendment]).flatmap(lambda item: rewritten(item, VISIT_DEFAULTS)))
    def resend(body: str) -> None:
        result = _send(client, w.volunteer_a, body)
        assert result["status"] == "duplicate", body

    resend()


def _changes(item: dict[str, Any], other_child: str) -> list[Callable[[dict[str, Any]], None]]:
    def set_(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
        def apply(data: dict[str, Any]) -> None:
            *where, last = path.split(".")
            for p in where:
                data = data[p]
            data[last] = value
        return apply

    answers = item["data"]["answers"]
    return [
        set_("outcome", "refused"),
        set_("note", "孩子不在家"),
        set_("note", ""),
        set_("device_time", (DEVICE_TIME + timedelta(seconds=1)).isoformat()),
        set_("device_time", (DEVICE_TIME + timedelta(microseconds=1)).isoformat()),
        set_("gps.accuracy_m", 9),
        set_("gps.lon", item["data"]["gps"]["lon"] + 1e-9),
        set_("gps.crs", "gcj02"),
        set_("children_seen", [*item["data"]["children_seen"], other_child]),
        set_("children_seen", []),
        set_("answers.look1.value", "unknown"),
        set_("answers.look1.note", "正常。"),
        set_("answers.look1.photos", [*answers["look1"]["photos"], str(uuid.uuid4())]),
        set_("answers.ask1.note", ""),
    ]


def test_a_real_change_of_a_pushed_visit_is_a_conflict(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    home, kids = seed_household(client, w.volunteer_a, children=2)
    visit = _visit(home["uuid"], kids[0]["uuid"])
    assert _send(client, w.volunteer_a, json.dumps({"items": [visit]}))["status"] == "created"
    changes = _changes(visit, kids[1]["uuid"])

    @seed(9)
    @SETTINGS
    @given(st.integers(0, len(changes) - 1).flatmap(lambda n: st.tuples(st.just(n), rewritten(
        _changed(visit, changes[n]), VISIT_DEFAULTS))))
    def resend(case: tuple[int, str]) -> None:
        n, body = case
        assert _send(client, w.volunteer_a, body)["status"] == "conflict", (n, body)

    resend()


def _changed(item: dict[str, Any], change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    copy: dict[str, Any] = json.loads(json.dumps(item))
    change(copy["data"])
    return copy


def test_a_visit_stored_with_the_digest_of_its_json_as_sent_still_answers_duplicate(
    client: TestClient, session: Session
) -> None:
    # Visits stored before digests were normalised carry the keyed digest of the data as sent.
    w = make_world(client, session)
    home, kids = seed_household(client, w.volunteer_a)
    visit = _visit(home["uuid"], kids[0]["uuid"])
    assert _send(client, w.volunteer_a, json.dumps({"items": [visit]}))["status"] == "created"
    legacy = crypto.keyed_digest(orjson.dumps(visit["data"], option=orjson.OPT_SORT_KEYS))
    session.execute(update(Visit).where(col(Visit.client_uuid) == uuid.UUID(visit["client_uuid"]))
                    .values(content_hash=legacy))
    session.commit()
    assert _send(client, w.volunteer_a, json.dumps({"items": [visit]}))["status"] == "duplicate"
    changed = _changed(visit, lambda d: d.update(note="改过的"))
    assert _send(client, w.volunteer_a, json.dumps({"items": [changed]}))["status"] == "conflict"


def test_any_rewriting_of_a_pushed_household_or_child_is_a_duplicate(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    home = household_item(0)
    child = child_item(home["client_uuid"], birth_date=None, sex=None, categories=["生活困境"], groups=[],
                       guardians=[])
    for item in (home, child):
        assert _send(client, w.volunteer_a, json.dumps({"items": [item]}))["status"] == "created"

    @seed(10)
    @SETTINGS
    @given(st.one_of(rewritten(home, HOUSEHOLD_DEFAULTS), rewritten(child, PERSON_DEFAULTS)))
    def resend_create(body: str) -> None:
        assert _send(client, w.volunteer_a, body)["status"] == "duplicate", body

    resend_create()


def test_any_rewriting_of_an_applied_registry_edit_is_a_duplicate(client: TestClient, session: Session) -> None:
    # In an edit a field left out keeps its stored value and null clears it (sync.md): null and
    # absent mean different edits there, so only the writing varies, not which members are sent.
    w = make_world(client, session)
    home = household_item(0)
    assert _send(client, w.volunteer_a, json.dumps({"items": [home]}))["status"] == "created"
    edit = {**home, "base_version": 1, "data": {**home["data"], "address": "青山村1组5号", "note": None}}
    assert _send(client, w.volunteer_a, json.dumps({"items": [edit]}))["status"] == "updated"

    @seed(11)
    @SETTINGS
    @given(rewritten(edit, {}))
    def resend_edit(body: str) -> None:
        assert _send(client, w.volunteer_a, body)["status"] == "duplicate", body

    resend_edit()


def test_every_field_of_a_visit_counts_in_its_digest() -> None:
    # The canonical record is written out field by field (for speed): a field added to the models
    # must be added there too, or a change of it would pass for a resend.
    amendment = AmendmentData.model_validate({
        "household_uuid": str(uuid.uuid4()), "amends_uuid": str(uuid.uuid4()), "device_time": DEVICE_TIME,
        "outcome": "visited", "gps": {"lon": 108.3, "lat": 30.0},
    })
    record = canonical_record(amendment)
    assert set(record) == set(AmendmentData.model_fields)
    assert len(record["gps"]) == len(VisitGpsFix.model_fields)


INSPECTION_DEFAULTS: dict[str, Any] = {
    "finished_at": None, "inspector_ids": [], "fix": None, "findings": [], "rechecks": [], "penalties": [],
    "notes": "", "photo_ids": [], "fix.crs": "wgs84", "fix.accuracy_m": None,
}


def test_any_rewriting_of_a_pushed_inspection_is_a_duplicate(client: TestClient, session: Session) -> None:
    w = venue_world(client, session)
    hotel = make_venue(session, w.town, venue_type=VenueType.hotel)
    body = inspection_body(hotel, at=grid_centre(0), started_at=DEVICE_TIME.astimezone(timezone(timedelta(hours=8))))
    item = {"kind": "inspection", "client_uuid": body.pop("client_uuid"), "data": body}
    assert _send(client, w.police, json.dumps({"items": [item]}))["status"] == "created"

    @seed(12)
    @SETTINGS
    @given(rewritten(item, INSPECTION_DEFAULTS))
    def resend(raw: str) -> None:
        assert _send(client, w.police, raw)["status"] == "duplicate", raw

    resend()
    # Inspections stored before digests were normalised carry the digest of the body as sent.
    as_sent = payload_digest(InspectionSubmit.model_validate({**body, "client_uuid": item["client_uuid"]}),
                             as_sent=True)
    session.execute(update(Inspection).where(col(Inspection.client_uuid) == item["client_uuid"])
                    .values(payload_hash=as_sent))
    session.commit()
    assert _send(client, w.police, json.dumps({"items": [item]}))["status"] == "duplicate"
