"""The dashboard in a real browser: sign in as the demo coordinator, see the villages, click one and
read the same numbers the API returns; the GCJ-02 shift in the page matches the server's."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts.models import User
from backend.core import clock
from backend.core.geo import wgs84_to_gcj02
from backend.demo.town import DEMO_PASSWORD, VILLAGE_NAMES, grid_box, seed_demo
from backend.orgunits.models import OrgUnit
from backend.registry.models import Household, RiskLevel
from tests.coverage.fixture import add_child, add_household, add_visit

COORDINATOR_PHONE = "19900000003"
SCREENSHOT = Path(__file__).resolve().parents[2] / "var" / "screenshots" / "dashboard.png"


def _seed(session: Session) -> None:
    town = seed_demo(session)
    volunteer = session.execute(select(User).where(col(User.phone) == "19900000006")).scalar_one()
    now = clock.now()
    # On top of whatever the demo seeds: visited and unvisited households in villages 0 and 1.
    for v, g, k, visited in [(0, 0, 0, True), (0, 0, 1, True), (0, 1, 0, True), (0, 2, 0, False),
                             (1, 0, 0, True), (1, 3, 0, False)]:
        west, south, east, north = grid_box(v, g)
        lon, lat = west + (east - west) * (0.3 + 0.2 * k), (south + north) / 2
        h = add_household(session, town.grids[v][g], f"{v}{g}{k}", lon, lat, now - timedelta(days=3))
        if visited:
            add_visit(session, h, volunteer, now - timedelta(days=1))
        if (v, g, k) == (0, 0, 0):
            add_child(session, h, RiskLevel.severe)
    # Visit a different share of each village's demo households so the map shows every colour.
    for v, village in enumerate(town.villages):
        rows = session.execute(
            select(Household).join(OrgUnit, col(OrgUnit.id) == col(Household.org_unit_id))
            .where(col(OrgUnit.parent_id) == village.id).order_by(col(Household.id))
        ).scalars().all()
        share = [0.95, 0.1, 0.75, 0.55, 0.35, 1.0, 0.6, 0.2][v]
        for h in rows[: int(len(rows) * share)]:
            add_visit(session, h, volunteer, now - timedelta(days=2))
    session.commit()


def _api_get(base: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
    token = httpx.post(base + "/api/v1/auth/login",
                       json={"phone": COORDINATOR_PHONE, "password": DEMO_PASSWORD}).json()["access_token"]
    resp = httpx.get(base + path, params=params, headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def _api_coverage(base: str) -> dict[str, Any]:
    return _api_get(base, "/api/v1/coverage", {"zoom": 12})


def test_coordinator_sees_villages_clicks_one_and_reads_the_api_numbers(
    live_server: str, browser: Any, session: Session, tmp_path: Path
) -> None:
    _seed(session)
    expected = {f["properties"]["name"]: f["properties"] for f in _api_coverage(live_server)["features"]}
    assert expected["青山村"]["households"] >= 4 and expected["青山村"]["visited"] >= 3

    # Waits are written as functions: the page's CSP (no 'unsafe-eval') refuses expression strings.
    page = browser.new_page(viewport={"width": 1400, "height": 900}, locale="zh-CN")
    console_errors: list[str] = []
    failed: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.goto(live_server + "/dashboard")
    page.wait_for_selector("body[data-ready=true]")
    assert page.locator("h1").inner_text() == "护蕾 · 走访覆盖"
    page.fill("#phone", COORDINATOR_PHONE)
    page.fill("#password", DEMO_PASSWORD)
    page.click("#login-form button[type=submit]")

    page.wait_for_function("() => document.querySelectorAll('path[data-unit-name]').length === 8")
    names = page.eval_on_selector_all("path[data-unit-name]", "els => els.map(e => e.dataset.unitName)")
    assert sorted(names) == sorted(VILLAGE_NAMES)

    box = page.locator('path[data-unit-name="青山村"]').bounding_box()
    assert box is not None and box["width"] > 50
    # Wait for the map to settle: data loaded and no zoom animation running (Leaflet drops
    # clicks that land mid-animation). Locator clicks also wait for the polygon to stop moving
    # and check the click would land on it, away from its label. On a loaded machine a click can
    # still arrive while the first fit animates; like a person, click again.
    page.wait_for_function("() => document.getElementById('map').hasAttribute('data-loaded-unit')")
    page.wait_for_function("() => !document.querySelector('.leaflet-zoom-anim')")
    for _attempt in range(3):
        page.locator('path[data-unit-name="青山村"]').click(position={"x": 15, "y": 15})
        try:
            page.wait_for_selector("#details-body:not([hidden])", timeout=5000)
            break
        except PlaywrightTimeout:
            continue
    page.wait_for_selector("#details-body:not([hidden])")
    assert page.locator("#d-name").inner_text() == "青山村"
    shown = {
        field: page.locator(f'#details-body [data-field="{field}"]').inner_text()
        for field in ("households", "visited", "percent", "never_visited", "high_risk_children", "problems_open")
    }
    village = expected["青山村"]
    assert shown == {
        "households": str(village["households"]),
        "visited": str(village["visited"]),
        "percent": f"{village['percent']:.1f}%",
        "never_visited": str(village["never_visited"]),
        "high_risk_children": str(village["high_risk_children"]),
        "problems_open": str(village["problems_open"]),
    }
    # The never-visited panel follows the selection (the coordinator may see addresses).
    page.wait_for_function(
        "() => document.querySelector('#panel-not-visited .panel-body').textContent.includes('青山村第3网格')")
    page.wait_for_timeout(500)  # any older answer (the whole town's list) must not replace it
    listed = page.locator("#panel-not-visited li").all_inner_texts()
    assert listed and all(t.startswith("青山村") for t in listed if not t.startswith("还有"))

    page.screenshot(path=str(tmp_path / "dashboard.png"))
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(tmp_path / "dashboard.png", SCREENSHOT)
    assert (tmp_path / "dashboard.png").stat().st_size > 20_000

    # Drill down to the village's five grids.
    page.click("#drill")
    page.wait_for_function("() => document.querySelectorAll('path[data-unit-name]').length === 5")
    assert page.locator("#breadcrumb").inner_text() == "青山村"

    # English is one click away.
    page.click("#lang")
    assert page.locator("#details-body th").first.inner_text() in ("Households", "户数")
    assert page.locator("h1").inner_text() == "Hulei · Visit coverage"
    # Every panel's API answers; the helpers panel lists the API's children at risk without a helper
    # of the village drilled into, in its order (重大风险 first), names masked.
    village_id = expected["青山村"]["id"]
    api_items = _api_get(live_server, "/api/v1/helpers/children-without-helper",
                         {"limit": 20, "unit_id": village_id})["items"]
    assert api_items
    # The language switch reloads the panels (and a reload may still be on its way): wait until the
    # helpers panel lists exactly the API's children, in its order.
    wanted = [str(c["child_id"]) for c in api_items]
    page.wait_for_function(
        "ids => JSON.stringify(Array.from(document.querySelectorAll('#panel-helpers li[data-child-id]'),"
        " e => e.dataset.childId)) === JSON.stringify(ids)", arg=wanted)
    assert failed == [], failed
    assert page.locator("#panel-helpers [data-unavailable]").count() == 0
    assert api_items[0]["risk_level"] == "重大风险"
    texts = page.locator("#panel-helpers li[data-child-id]").all_inner_texts()
    assert all("*" in t.split(" · ")[1] for t in texts)


def test_page_gcj02_shift_matches_published_reference_and_the_server(live_server: str, browser: Any) -> None:
    page = browser.new_page()
    page.goto(live_server + "/dashboard/")
    page.wait_for_selector("body[data-ready=true]")
    lon, lat = page.evaluate("HuleiGeo.wgs84ToGcj02(123, 45)")
    # Reference point from the gcoord project's tests: WGS-84 (123, 45) -> GCJ-02 (123.00607541, 45.00197815).
    assert abs(lon - 123.00607541) < 1e-8 and abs(lat - 45.00197815) < 1e-8
    for point in [(108.34, 30.02), (116.397, 39.909), (121.4737, 31.2304)]:
        js = page.evaluate(f"HuleiGeo.wgs84ToGcj02({point[0]}, {point[1]})")
        py = wgs84_to_gcj02(*point)
        assert abs(js[0] - py[0]) < 1e-12 and abs(js[1] - py[1]) < 1e-12
        back = page.evaluate(f"HuleiGeo.gcj02ToWgs84({js[0]}, {js[1]})")
        assert abs(back[0] - point[0]) < 1e-9 and abs(back[1] - point[1]) < 1e-9
    # Outside China nothing moves.
    assert page.evaluate("HuleiGeo.wgs84ToGcj02(2.35, 48.85)") == [2.35, 48.85]
