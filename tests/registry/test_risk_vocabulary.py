"""Risk levels have one spelling everywhere: a stable code (low, general, major, severe) beside the
Chinese label v1 fields carry, in records, the risk API, pushes, pulls, helpers' lists and coverage;
inputs take either the code or the label."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session

from backend.main import create_app
from backend.registry.models import RiskLevel, RiskLevelCode
from tests.registry.factories import fine_answers, grid_centre, make_world, push, seed_household, visit_item

CODES = {"low", "general", "major", "severe"}
LABELS = {"低风险": "low", "一般风险": "general", "较大风险": "major", "重大风险": "severe"}


def _dicts(value: Any, path: str = "$") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(value, dict):
        yield path, value
        for key, item in value.items():
            yield from _dicts(item, f"{path}.{key}")
    elif isinstance(value, list):
        for n, item in enumerate(value):
            yield from _dicts(item, f"{path}[{n}]")


def _check_one_vocabulary(body: Any) -> set[str]:
    """Every risk label in `body` sits beside its code (`<field>_code`); returns the fields seen."""
    seen: set[str] = set()
    for path, d in _dicts(body):
        for key, value in d.items():
            if key in ("risk_level", "level", "previous_level") and (value in LABELS or value is None) and (
                key == "risk_level" or f"{key}_code" in d or value is not None
            ):
                assert f"{key}_code" in d, f"{path}.{key} = {value!r} has no {key}_code beside it"
                assert d[f"{key}_code"] == (LABELS[value] if value is not None else None), f"{path}.{key}"
                seen.add(key)
            if key.endswith("_code") and key.removesuffix("_code") in ("risk_level", "level", "previous_level"):
                assert value is None or value in CODES, f"{path}.{key} = {value!r}"
            assert value != "elevated", f"{path}.{key}: another spelling of 较大风险"
    return seen


def test_the_vocabulary_is_defined_once_with_codes_and_labels() -> None:
    assert [level.code for level in RiskLevel] == [code.value for code in RiskLevelCode] == [
        "low", "general", "major", "severe"]
    assert {level.value: level.code for level in RiskLevel} == LABELS
    assert [level.label_en for level in RiskLevel] == ["Low risk", "General risk", "Major risk", "Severe risk"]
    assert all(RiskLevel.parse(level.code) is RiskLevel.parse(level.value) is level for level in RiskLevel)


def test_every_risk_level_in_the_api_carries_its_code(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    home, kids = seed_household(client, w.volunteer_a)
    child = kids[0]
    answers = {**fine_answers(), "look3": {"value": "yes"}}  # rents a room alone: 较大风险
    pushed = push(client, w.volunteer_a, [visit_item(home["uuid"], at=grid_centre(0), answers=answers,
                                                      children_seen=[child["uuid"]])])
    assert pushed["results"][0]["status"] == "created", pushed
    # Inputs take the code as well as the Chinese label.
    raised = client.post(f"/api/v1/persons/{child['id']}/risk-level", json={"level": "severe", "reason": "核实后上调"},
                         headers=w.coordinator.headers)
    assert raised.status_code == 200, raised.text
    assert (raised.json()["risk_level"], raised.json()["risk_level_code"]) == ("重大风险", "severe")
    for level in ("general", "较大风险"):
        created = client.post("/api/v1/risk-persons", json={"name": "某乙", "categories": ["2"], "risk_level": level},
                              headers=w.police.headers)
        assert created.status_code == 201, created.text
        assert created.json()["risk_level_code"] == RiskLevel.parse(level).code

    bodies: dict[str, Any] = {"push": pushed}
    c = w.coordinator.headers
    for name, url in {
        "person": f"/api/v1/persons/{child['id']}",
        "risk history": f"/api/v1/persons/{child['id']}/risk-history",
        "members": f"/api/v1/households/{home['id']}/members",
        "visits": "/api/v1/visits",
        "risk persons": "/api/v1/risk-persons",
        "pull": "/api/v1/sync/pull",
        "children without helper": "/api/v1/helpers/children-without-helper",
        "coverage": "/api/v1/coverage?month=2026-11",
    }.items():
        resp = client.get(url, headers=c)
        assert resp.status_code == 200, (name, resp.text)
        bodies[name] = resp.json()
    seen = _check_one_vocabulary(bodies)
    assert seen == {"risk_level", "level", "previous_level"}
    history = bodies["risk history"]
    assert [(h["previous_level_code"], h["level_code"]) for h in history] == [(None, "major"), ("major", "severe")]
    assert {r["level_code"] for r in history[0]["reasons"]} == {"major"}
    for feature in bodies["coverage"]["features"]:
        assert set(feature["properties"]["children"]) == CODES | {"none"}


def test_openapi_gives_every_risk_level_field_its_code_and_inputs_either_spelling() -> None:
    spec = create_app().openapi()
    schemas = spec["components"]["schemas"]
    assert schemas["RiskLevelCode"]["enum"] == ["low", "general", "major", "severe"]
    assert schemas["RiskLevel"]["enum"] == list(LABELS)
    level_ref, code_ref = "#/components/schemas/RiskLevel", "#/components/schemas/RiskLevelCode"
    outputs = inputs = 0
    for name, schema in schemas.items():
        props = schema.get("properties", {})
        for prop, prop_schema in props.items():
            if level_ref not in str(prop_schema):
                continue
            if code_ref in str(prop_schema):  # an input: code or label
                inputs += 1
                continue
            outputs += 1
            assert code_ref in str(props.get(f"{prop}_code")), f"{name}.{prop} has no {prop}_code"
    assert inputs >= 2 and outputs >= 2, (inputs, outputs)
