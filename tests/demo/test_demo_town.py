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


def test_a_fresh_demo_town_shows_varied_coverage_on_the_map(client: TestClient, session: Session) -> None:
    """Issue 17: a new user's first map is not all red: the demo coordinator's visits of the last day
    cover each village to a different degree, every legend class appears, none is flagged."""
    assert CliRunner().invoke(app, ["seed-demo"]).exit_code == 0
    coordinator = next(a for a in DEMO_ACCOUNTS if a.name == "演示乡镇协调员")
    token = client.post("/api/v1/auth/login", json={"phone": coordinator.phone, "password": DEMO_PASSWORD}).json()
    resp = client.get("/api/v1/coverage", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert resp.status_code == 200, resp.text
    units = [f["properties"] for f in resp.json()["features"] if f["properties"]["kind"] == "unit"]
    percents = sorted(u["percent"] or 0.0 for u in units)
    classes = {next(i for i, bound in enumerate((90, 70, 50, 30, 0)) if p >= bound) for p in percents}
    assert len(units) == 8 and percents[0] == 0.0 and percents[-1] >= 90.0, percents
    assert classes == {0, 1, 2, 3, 4}, percents
    assert all(u["mismatch_visits"] == 0 for u in units)
    assert sum(u["children"]["severe"] + u["children"]["major"] for u in units) > 0  # the seeded levels stay


def test_the_demo_visits_fall_where_their_households_already_exist(session: Session) -> None:
    """Seeded at any hour (01:00 China time too), no demo visit is placed before its household: the
    month before shows its visits against their households, not visits of households counted 0."""
    from backend.registry.models import Household
    from backend.visits.models import Visit

    assert CliRunner().invoke(app, ["seed-demo"]).exit_code == 0
    session.expire_all()
    early = session.execute(select(func.count()).select_from(Visit).join(Household, Household.id == Visit.household_id)
                            .where(Visit.counted_at < Household.counted_at)).scalar_one()
    total = session.execute(select(func.count()).select_from(Visit)).scalar_one()
    assert total > 1000 and early == 0
