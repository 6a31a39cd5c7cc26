"""Weekly plans over HTTP and the CLI: the demo town's plan passes the checker, publishing
notifies officers and fills their calendars, compliance, carry-over and the .xlsx export."""

from __future__ import annotations

from datetime import date, timedelta

from fastapi.testclient import TestClient
from icalendar import Calendar
from sqlalchemy import func, select
from sqlmodel import Session
from typer.testing import CliRunner

from backend.cli import app
from backend.core import clock
from backend.demo.town import DEMO_ACCOUNTS, DEMO_PASSWORD
from backend.orgunits.models import OrgUnit
from backend.schedules.models import SchedulePlan
from backend.venues.models import Venue
from tests.venues.factories import inspection_body
from tests.xlsx_support import sheet_rows


def _login(client: TestClient, name: str) -> dict[str, str]:
    account = next(a for a in DEMO_ACCOUNTS if a.name == name)
    resp = client.post("/api/v1/auth/login", json={"phone": account.phone, "password": DEMO_PASSWORD})
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['access_token']}"}


def _seed(session: Session) -> int:
    assert CliRunner().invoke(app, ["seed-demo"]).exit_code == 0
    session.expire_all()
    town = session.execute(select(OrgUnit).where(OrgUnit.level == "town")).scalar_one()
    assert town.id is not None
    return town.id


def _next_monday() -> date:
    today = clock.now().astimezone(clock.SHANGHAI).date()
    return today + timedelta(days=7 - today.weekday())


def test_the_demo_towns_plan_passes_the_checker_and_visits_every_key_venue(
        client: TestClient, session: Session) -> None:
    town_id = _seed(session)
    coordinator = _login(client, "演示乡镇协调员")
    resp = client.post("/api/v1/schedules/generate", json={"org_unit_id": town_id}, headers=coordinator)
    assert resp.status_code == 201, resp.text
    plan = resp.json()
    assert plan["violations"] == [] and plan["status"] == "draft"
    assert plan["week_start_date"] == _next_monday().isoformat()
    planned = {v["venue_id"] for t in plan["teams"] for v in t["visits"]}
    keys = set(session.execute(select(Venue.id).where(Venue.is_key, Venue.status == "open")).scalars())
    assert keys and keys <= planned
    assert plan["joint_ops_planned"] >= plan["joint_ops_required"] >= 1
    for team in plan["teams"]:
        assert len({m["agency"] for m in team["members"]}) >= 2 or not team["is_joint"]
        assert len(team["visits"]) <= 6
        assert abs(sum(v["leg_distance_m"] for v in team["visits"]) - team["route_distance_m"]) < 1
    assert client.get(f"/api/v1/schedules/{plan['id']}/check", headers=coordinator).json() == []


def test_publishing_notifies_officers_and_their_calendar_feed_parses(client: TestClient, session: Session) -> None:
    town_id = _seed(session)
    coordinator = _login(client, "演示乡镇协调员")
    plan = client.post("/api/v1/schedules/generate", json={"org_unit_id": town_id}, headers=coordinator).json()
    police = _login(client, "演示民警")
    assert client.post(f"/api/v1/schedules/{plan['id']}/publish", headers=police).status_code == 403
    published = client.post(f"/api/v1/schedules/{plan['id']}/publish", headers=coordinator)
    assert published.status_code == 200 and published.json()["status"] == "published"
    inbox = client.get("/api/v1/notifications", headers=police)
    assert inbox.status_code == 200 and "schedule.published" in inbox.text

    url = client.get("/api/v1/schedules/feed-url", headers=police).json()["url"]
    feed = client.get(url.split("testserver", 1)[1])  # no bearer token: the URL is the credential
    assert feed.status_code == 200 and feed.headers["content-type"].startswith("text/calendar")
    calendar = Calendar.from_ical(feed.content)
    events = calendar.walk("VEVENT")
    me = next(a for a in DEMO_ACCOUNTS if a.name == "演示民警")
    mine = [v for t in published.json()["teams"] if any(m["display_name"] == me.name for m in t["members"])
            for v in t["visits"]]
    assert len(events) == len(mine) > 0
    first = events[0]
    assert str(first["summary"]).startswith("检查：")
    assert first.decoded("dtstart").date() >= _next_monday()
    assert client.get(url.split("testserver", 1)[1].replace(".ics", "x.ics")).status_code == 404


def test_compliance_shows_done_and_missed_and_missed_venues_carry_over(client: TestClient, session: Session) -> None:
    clock.freeze(clock.now() - timedelta(days=21))  # plan in the past, then walk forward to today
    town_id = _seed(session)
    coordinator = _login(client, "演示乡镇协调员")
    plan = client.post("/api/v1/schedules/generate", json={"org_unit_id": town_id}, headers=coordinator).json()
    client.post(f"/api/v1/schedules/{plan['id']}/publish", headers=coordinator)
    monday = date.fromisoformat(plan["week_start_date"])
    first_team = plan["teams"][0]
    done_venue = first_team["visits"][0]["venue_id"]
    clock.freeze(clock.as_utc(clock.now().replace(year=monday.year, month=monday.month, day=monday.day, hour=3)))
    police = _login(client, "演示民警")
    venue = session.get(Venue, done_venue)
    assert venue is not None
    assert client.post("/api/v1/inspections", json=inspection_body(venue), headers=police).status_code == 201

    clock.advance(timedelta(days=7))
    coordinator = _login(client, "演示乡镇协调员")
    view = client.get(f"/api/v1/schedules/{plan['id']}/compliance", headers=coordinator).json()
    assert view["done"] == 1 and view["missed"] == view["planned"] - 1 and view["pending"] == 0
    missed = {v["venue_id"] for v in view["visits"] if v["state"] == "missed"}
    following = client.post("/api/v1/schedules/generate", headers=coordinator,
                            json={"org_unit_id": town_id, "week_start_date": (monday + timedelta(7)).isoformat()})
    carried = {v["venue_id"] for t in following.json()["teams"] for v in t["visits"] if v["carried_over"]}
    assert carried and carried <= missed and done_venue not in carried
    reasons = {v["reason"] for t in following.json()["teams"] for v in t["visits"] if v["carried_over"]}
    assert reasons == {"carried_over"}


def test_plan_exports_as_xlsx_and_the_cli_generates_next_weeks_plan(client: TestClient, session: Session) -> None:
    town_id = _seed(session)
    result = CliRunner().invoke(app, ["plan-week", "--unit", "990101100000"])
    assert result.exit_code == 0, result.output
    assert "violations: none" in result.output
    plan_id = session.execute(select(func.max(SchedulePlan.id))).scalar_one()
    coordinator = _login(client, "演示乡镇协调员")
    resp = client.get(f"/api/v1/schedules/{plan_id}/export.xlsx", headers=coordinator)
    assert resp.status_code == 200
    rows = sheet_rows(resp.content)
    assert rows[0][:3] == ("日期", "小组", "联合执法") and len(rows) > 20
    again = client.post("/api/v1/schedules/generate", json={"org_unit_id": town_id}, headers=coordinator)
    assert again.status_code == 201  # a draft may be regenerated
    client.post(f"/api/v1/schedules/{again.json()['id']}/publish", headers=coordinator)
    locked = client.post("/api/v1/schedules/generate", json={"org_unit_id": town_id}, headers=coordinator)
    assert locked.status_code == 409 and locked.json()["code"] == "plan-already-published"
