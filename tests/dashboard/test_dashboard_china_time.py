"""The dashboard's dates are China dates at every hour, whatever the browser's zone.

The server's clock (in a uvicorn subprocess) and the browser's clock are both moved to the same instant:
07:30 China time on Monday 2026-06-01 (still Sunday 31 May in UTC) and 23:30 China time on Sunday
2026-05-31 (already Monday 1 June at UTC+14). At desktop and phone widths the 下周 panel must find next
week's published plan and the report panel must show the previous China month with the API's states.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session

from backend.campaigns import service as campaigns
from backend.core import clock
from backend.demo.town import DEMO_PASSWORD, seed_demo
from tests.dashboard.conftest import PROJECT_ROOT, _free_port

COORDINATOR_PHONE = "19900000003"
SCREENSHOTS = PROJECT_ROOT / "var" / "screenshots"

# (instant in UTC, browser zone, China today, next week's Monday, report month: the current China month
# under the default due rule, same_month)
CASES = {
    "0730": (datetime(2026, 5, 31, 23, 30, tzinfo=UTC), "UTC", date(2026, 6, 1), date(2026, 6, 8), "2026-06"),
    "2330": (datetime(2026, 5, 31, 15, 30, tzinfo=UTC), "Pacific/Kiritimati", date(2026, 5, 31), date(2026, 6, 1),
             "2026-05"),
}
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
# Set HULEI_DASHBOARD_SHOTS to a folder to keep the full-page screenshots there as well (for viewing).
SHOTS_ENV = "HULEI_DASHBOARD_SHOTS"

_SERVE = (
    "import sys\n"
    "from datetime import UTC, datetime\n"
    "import uvicorn\n"
    "from backend.core import clock\n"
    "clock.advance(datetime.fromisoformat(sys.argv[1]) - datetime.now(UTC))\n"
    "uvicorn.run('backend.main:create_app', factory=True, host='127.0.0.1', port=int(sys.argv[2]),"
    " log_level='warning')\n"
)


def _serve_at(database_url: str, tmp_path: Path, at: datetime) -> Iterator[str]:
    """The app in uvicorn with its clock moved to `at` (still ticking)."""
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "HULEI_MEDIA_ROOT": str(tmp_path / "media")}
    log = (tmp_path / "uvicorn.log").open("w")
    proc = subprocess.Popen([sys.executable, "-c", _SERVE, at.isoformat(), str(port)], cwd=PROJECT_ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start: " + (tmp_path / "uvicorn.log").read_text())
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(params=sorted(CASES))
def china_case(request: pytest.FixtureRequest, database_url: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    at = CASES[request.param][0]
    clock.advance(at - clock.now())  # the test's own writes happen at the same instant (reset after the test)
    for base in _serve_at(database_url, tmp_path, at):
        yield request.param, base


def _login(base: str) -> dict[str, str]:
    token = httpx.post(base + "/api/v1/auth/login",
                       json={"phone": COORDINATOR_PHONE, "password": DEMO_PASSWORD}).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def test_panels_use_china_dates_at_0730_and_2330_at_desktop_and_phone_width(
    china_case: tuple[str, str], browser: Any, session: Session, tmp_path: Path
) -> None:
    name, base = china_case
    at, zone, today, monday, month = CASES[name]
    town = seed_demo(session)
    session.commit()
    headers = _login(base)

    config = httpx.get(base + "/api/v1/dashboard/config").json()
    assert (config["china_today"], config["next_monday"], config["report_month"]) == (
        today.isoformat(), monday.isoformat(), month)

    # Next week's plan, generated and published by the server for its own next Monday.
    plan = httpx.post(base + "/api/v1/schedules/generate", json={"org_unit_id": town.town.id}, headers=headers,
                      timeout=60)
    assert plan.status_code == 201, plan.text
    plan_body = plan.json()
    assert plan_body["week_start_date"] == monday.isoformat()
    published = httpx.post(base + f"/api/v1/schedules/{plan_body['id']}/publish", headers=headers)
    assert published.status_code == 200, published.text
    teams = published.json()["teams"]
    assert teams

    states = httpx.get(base + "/api/v1/reports/monthly/status", params={"month": month, "unit_id": town.town.id},
                       headers=headers).json()
    assert len(states) == 8
    expected_states = [s["state"] for s in states]
    if campaigns.due_date_for_month(month) >= today:
        assert "late" not in expected_states  # not yet due: nobody is 逾期未报送

    for width, viewport in VIEWPORTS.items():
        context = browser.new_context(viewport=viewport, timezone_id=zone, locale="zh-CN")
        try:
            page = context.new_page()
            page.clock.set_fixed_time(at)
            page.goto(base + "/dashboard/")
            page.wait_for_selector("body[data-ready=true]")
            # The browser really is in another day than China.
            browser_day = page.evaluate("() => { const d = new Date(); return d.getDate(); }")
            assert browser_day != today.day
            page.fill("#phone", COORDINATOR_PHONE)
            page.fill("#password", DEMO_PASSWORD)
            page.click("#login-form button[type=submit]")

            page.wait_for_function(
                f"() => document.querySelectorAll('#panel-schedule li[data-team]').length === {len(teams)}"
                " || document.querySelector('#panel-schedule li.hint')", timeout=15000)
            shown_teams = page.locator("#panel-schedule li").all_inner_texts()
            assert len(shown_teams) == len(teams), shown_teams
            for team, text in zip(teams, shown_teams, strict=True):
                day, label, venues = text.split(" · ")
                assert day == team["day_date"]
                assert label.startswith("周") and "组" in label, label  # "Mon-1" reads 周一 第1组
                assert venues == f"{len(team['visits'])} 处场所"

            page.wait_for_function(
                f"() => document.querySelectorAll('#panel-reports li[data-state]').length === {len(states)}",
                timeout=15000)
            shown_states = page.eval_on_selector_all("#panel-reports li[data-state]",
                                                     "els => els.map(e => e.dataset.state)")
            assert shown_states == expected_states
            report_texts = page.locator("#panel-reports li").all_inner_texts()
            assert all(f"({month}," in t for t in report_texts), report_texts
            assert [t.split(" · ")[0] for t in report_texts] == [s["unit_name"] for s in states]
            page.wait_for_function("() => document.getElementById('unit-total').dataset.unitId"
                                   " && !document.querySelector('.leaflet-zoom-anim')"
                                   " && ![...document.querySelectorAll('.panel-body')]"
                                   ".some(b => b.textContent.includes('加载中'))", timeout=15000)
            page.screenshot(path=str(tmp_path / f"china-{name}-{width}.png"), full_page=True)
            for panel in ("schedule", "reports"):
                page.locator(f"#panel-{panel}").screenshot(path=str(tmp_path / f"china-{name}-{width}-{panel}.png"))

            if width == "desktop":
                # English: the venue count, the team label and the period label are translated too.
                page.wait_for_function("() => document.getElementById('period-label').textContent.length > 0")
                period_zh = page.locator("#period-label").inner_text()
                page.click("#lang")
                page.wait_for_function("() => document.querySelector('#panel-schedule li[data-team]')"
                                       " && document.querySelector('#panel-schedule li[data-team]')"
                                       ".textContent.includes('venues')", timeout=15000)
                first = page.locator("#panel-schedule li").first.inner_text()
                assert first.split(" · ")[1].startswith(("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"))
                assert "team" in first.split(" · ")[1]
                assert first.endswith(f"{len(teams[0]['visits'])} venues")
                assert page.locator("#period-label").inner_text() != period_zh
        finally:
            context.close()

    # Without the server's dates (an older server), the page's own China arithmetic gives the same days.
    context = browser.new_context(viewport=VIEWPORTS["desktop"], timezone_id=zone, locale="zh-CN")
    try:
        page = context.new_page()
        page.clock.set_fixed_time(at)
        page.route("**/api/v1/dashboard/config", lambda route: route.fulfill(
            json={"default_locale": "zh-CN", "base_layer": None}))
        page.goto(base + "/dashboard/")
        page.wait_for_selector("body[data-ready=true]")
        page.fill("#phone", COORDINATOR_PHONE)
        page.fill("#password", DEMO_PASSWORD)
        page.click("#login-form button[type=submit]")
        page.wait_for_function(
            f"() => document.querySelectorAll('#panel-schedule li[data-team]').length === {len(teams)}"
            f" && document.querySelectorAll('#panel-reports li[data-state]').length === {len(states)}",
            timeout=15000)
        assert all(f"({month}," in t for t in page.locator("#panel-reports li").all_inner_texts()), \
            page.locator("#panel-reports li").all_inner_texts()
    finally:
        context.close()

    targets = [SCREENSHOTS] + ([Path(os.environ[SHOTS_ENV])] if os.environ.get(SHOTS_ENV) else [])
    for folder in targets:
        folder.mkdir(parents=True, exist_ok=True)
        for png in tmp_path.glob("china-*.png"):
            (folder / png.name).write_bytes(png.read_bytes())
    assert timedelta(0) <= clock.now() - at < timedelta(minutes=5)
