"""The demo town that `make run` seeds."""

from __future__ import annotations

from fastapi.testclient import TestClient
from shapely.geometry import box
from sqlmodel import Session, func, select
from typer.testing import CliRunner

from backend.cli import app
from backend.demo.town import DEMO_ACCOUNTS, DEMO_PASSWORD, grid_box, village_box
from backend.orgunits.models import OrgUnit


def test_seed_builds_the_town_once_and_the_coordinator_signs_in(client: TestClient, session: Session) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["seed-demo"]).exit_code == 0
    again = runner.invoke(app, ["seed-demo"])
    assert "not seeded" in again.output
    levels = dict(session.exec(select(OrgUnit.level, func.count()).group_by(OrgUnit.level)).all())
    assert levels == {"province": 1, "city": 1, "county": 1, "town": 1, "village": 8, "grid": 40}
    coordinator = next(a for a in DEMO_ACCOUNTS if a.name == "演示乡镇协调员")
    resp = client.post("/api/v1/auth/login", json={"phone": coordinator.phone, "password": DEMO_PASSWORD})
    assert resp.status_code == 200
    assert resp.json()["user"]["roles"] == ["coordinator"]


def test_every_grid_lies_inside_its_village() -> None:
    for v in range(8):
        village = box(*village_box(v))
        for g in range(5):
            assert village.contains(box(*grid_box(v, g)).buffer(-1e-9))


def test_volunteers_are_in_two_different_villages() -> None:
    units = {a.unit for a in DEMO_ACCOUNTS if "volunteer" in [r.value for r in a.roles]}
    assert units == {"village:0", "village:1"}
