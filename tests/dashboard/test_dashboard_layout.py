"""The dashboard tells the truth about the unit shown, at desktop and phone width (issue 17).

A county coordinator drills county → town → village. At every level the page shows the unit's own
total as the API sends it (`totals`), the child units' names (on the map only where they fit, never
over each other; all of them in the list beside the map), and every panel (review, cases, overdue,
reports, next week's plan, children without a helper, the lists behind the counts) holds the figures
the API gives for that unit, not for the county. At 390 px the page has no horizontal scroll and
its controls can be tapped. Every visible string is in the page's language, walking the whole DOM
in both languages.
"""

from __future__ import annotations

import os
import re
import time
from datetime import timedelta
from typing import Any

import httpx
from playwright.sync_api import Page
from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts.models import User
from backend.core import clock
from backend.demo.town import DEMO_PASSWORD, VILLAGE_NAMES, grid_box
from backend.orgunits.models import OrgUnit
from backend.registry.models import RiskLevel
from tests.coverage.fixture import add_child, add_household, add_visit
from tests.dashboard.test_dashboard_browser import _seed

COUNTY_PHONE = "19900000002"
TOWN_PHONE = "19900000003"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
REVIEW_STATES = ("pending_flagged", "has_issues", "amended_waiting", "rejected", "approved")
SHOTS = os.environ.get("HULEI_DASHBOARD_SHOTS")  # a folder: keep screenshots there (for viewing)
REPORT_STATES = ("pending", "generated", "submitted", "submitted_late", "approved", "returned", "late")


def _seed_more(session: Session) -> dict[str, int]:
    """The demo town with varied coverage, a child at 重大风险, visits flagged for review in two villages
    (two in 青山村, one in 溪口村) and a child in 溪口村 for a case: each level's figures differ."""
    _seed(session)
    volunteer = session.execute(select(User).where(col(User.phone) == "19900000006")).scalar_one()
    now = clock.now()
    child_id = 0
    for v, flagged in ((0, 2), (1, 1)):
        village = session.execute(select(OrgUnit).where(col(OrgUnit.name) == VILLAGE_NAMES[v])).scalar_one()
        grid = session.execute(select(OrgUnit).where(col(OrgUnit.parent_id) == village.id)
                               .order_by(col(OrgUnit.code))).scalars().first()
        assert grid is not None
        west, south, east, north = grid_box(v, 0)
        for k in range(flagged):
            h = add_household(session, grid, f"flag{v}{k}", west + (east - west) * (0.2 + 0.3 * k),
                              (south + north) / 2, now - timedelta(days=3))
            add_visit(session, h, volunteer, now - timedelta(hours=5), mismatch=True)
            if v == 1:
                child_id = add_child(session, h, RiskLevel.major).id or 0
    session.commit()
    return {"case_child": child_id}


class Api:
    def __init__(self, base: str, phone: str) -> None:
        self.base = base
        token = httpx.post(base + "/api/v1/auth/login", json={"phone": phone, "password": DEMO_PASSWORD}).json()
        self.headers = {"Authorization": f"Bearer {token['access_token']}"}

    def get(self, path: str, **params: Any) -> Any:
        resp = httpx.get(self.base + "/api/v1" + path, params=params, headers=self.headers, timeout=30)
        assert resp.status_code == 200, (path, resp.text)
        return resp.json()


def _sign_in(page: Page, base: str, phone: str) -> None:
    page.goto(base + "/dashboard/")
    page.wait_for_selector("body[data-ready=true]")
    page.fill("#phone", phone)
    page.fill("#password", DEMO_PASSWORD)
    page.click("#login-form button[type=submit]")


def _wait_unit(page: Page, unit_id: int, children: int) -> None:
    page.wait_for_function(
        "([id, n]) => document.getElementById('unit-total').dataset.unitId === String(id)"
        " && document.querySelectorAll('#unit-list li[data-unit-id]').length === n", arg=[unit_id, children])
    for panel in ("review", "cases", "overdue", "reports", "schedule", "helpers"):
        page.wait_for_function("([p, id]) => document.getElementById('panel-' + p).dataset.unitId === String(id)",
                               arg=[panel, unit_id], timeout=20000)


def _rows(page: Page, panel: str) -> dict[str, str]:
    pairs = page.eval_on_selector_all(f"#panel-{panel} tr[data-count]",
                                      "els => els.map(e => [e.dataset.count, e.querySelector('td').textContent])")
    return dict(pairs)


def _labels(page: Page) -> list[dict[str, Any]]:
    return list(page.eval_on_selector_all(
        ".unit-label:not(.label-hidden)",
        "els => els.map(e => { const r = e.getBoundingClientRect();"
        " return {name: e.dataset.unitName, l: r.left, r: r.right, t: r.top, b: r.bottom}; })"))


def _open_list(page: Page, kind: str, unit_id: int) -> list[str]:
    page.click(f'#panel-{"review" if kind == "review" else kind} button[data-list="{kind}"]')
    page.wait_for_function(
        "([k, id]) => { const v = document.getElementById('list-view');"
        " return !v.hidden && v.dataset.list === k && v.dataset.unitId === String(id); }", arg=[kind, unit_id])
    ids: list[str] = page.eval_on_selector_all("#list-items li[data-record-id]",
                                               "els => els.map(e => e.dataset.recordKind + ':' + e.dataset.recordId)")
    page.click("#list-close")
    return ids


def _check_level(page: Page, api: Api, unit_id: int, top: int, month: str, *, labels_drawn: bool = True
                 ) -> dict[str, Any]:
    """The total line, names and every panel of the unit shown against the API called with its id."""
    cov = api.get("/coverage", unit_id=unit_id, zoom=12)
    kids = [f["properties"] for f in cov["features"] if f["properties"]["kind"] == "unit"]
    _wait_unit(page, unit_id, len(kids))
    totals = cov["totals"]

    # The unit's own total: the API's `totals`.
    box = page.locator("#unit-total")
    assert box.get_attribute("data-households") == str(totals["households"])
    assert box.get_attribute("data-visited") == str(totals["visited"])
    text = box.inner_text()
    assert cov["unit"]["name"] in text and f"{totals['visited']}/{totals['households']}" in text, text
    if totals["percent"] is not None:
        assert f"{totals['percent']:.1f}%" in text
    if "counting" in totals:
        assert page.locator("#total-counting").get_attribute("data-counting") == totals["counting"]

    # Names: the list beside the map has every child unit, in the API's order; the map shows those
    # that fit, each inside the map, none over another.
    listed = page.eval_on_selector_all("#unit-list li[data-unit-id]", "els => els.map(e => e.dataset.unitName)")
    assert listed == [k["name"] for k in kids]
    page.wait_for_function("() => !document.querySelector('.leaflet-zoom-anim')")
    page.wait_for_timeout(150)
    labels = _labels(page)
    names = [x["name"] for x in labels]
    assert labels or not labels_drawn, page.evaluate(
        "() => [document.querySelectorAll('path[data-unit-id]').length, [...document.querySelectorAll('.unit-label')]"
        ".map(e => [e.textContent, JSON.stringify(e.getBoundingClientRect())]),"
        " JSON.stringify(document.getElementById('map').getBoundingClientRect())]")
    assert len(set(names)) == len(names) and set(names) <= {k["name"] for k in kids}, names
    for i, a in enumerate(labels):
        for b in labels[i + 1:]:
            assert a["r"] <= b["l"] or b["r"] <= a["l"] or a["b"] <= b["t"] or b["b"] <= a["t"], (a, b)

    # Review: the summary of this unit.
    summary = api.get("/reviews/summary", unit_id=unit_id)
    assert _rows(page, "review") == {k: str(summary[k]) for k in REVIEW_STATES}
    # Cases and overdue items: this unit's figures in the coverage answer.
    assert _rows(page, "cases") == {k: str(totals["cases"][k]) for k in ("open", "active", "opened", "closed")}
    assert _rows(page, "overdue") == {
        "problems_overdue": str(totals["problems_overdue"]), "referrals_overdue": str(totals["referrals"]["overdue"]),
        "services_overdue": str(totals["services"]["overdue"]), "overdue_followups": str(totals["overdue_followups"])}
    # Reports: the states of this unit's children.
    states = api.get("/reports/monthly/status", month=month, unit_id=unit_id)
    shown = page.eval_on_selector_all("#panel-reports li[data-state]",
                                      "els => els.map(e => [e.dataset.unitId, e.dataset.state])")
    assert shown == [[str(s["unit_id"]), s["state"]] for s in states]
    # Children at risk without a helper: this unit's.
    helpers = api.get("/helpers/children-without-helper", unit_id=unit_id, limit=20)["items"]
    assert page.eval_on_selector_all("#panel-helpers li[data-child-id]", "els => els.map(e => e.dataset.childId)") \
        == [str(c["child_id"]) for c in helpers]

    # The lists behind the counts: the review queue and the overdue problems of this unit.
    queue = api.get("/reviews/queue", unit_id=unit_id)
    assert _open_list(page, "review", unit_id) == [f"{q['record_kind']}:{q['record_id']}" for q in queue]
    problems = api.get("/problems/overdue", org_unit_id=unit_id)
    overdue = _open_list(page, "overdue", unit_id)
    assert [x for x in overdue if x.startswith("problem:")] == [f"problem:{p['id']}" for p in problems]
    # Open cases of the unit's subtree (the cases API has no unit filter: the page keeps those under it).
    subtree, todo = {unit_id}, [unit_id]
    while todo:
        kids_of = api.get(f"/org-units/{todo.pop()}/children")
        for k in kids_of:
            subtree.add(k["id"])
            todo.append(k["id"])
    cases = [c for c in api.get("/cases") if c["status"] != "closed" and c["org_unit_id"] in subtree]
    assert sorted(_open_list(page, "cases", unit_id)) == sorted(f"case:{c['id']}" for c in cases)
    assert len(cases) == totals["cases"]["open"] + totals["cases"]["active"]
    return {"cov": cov, "kids": kids, "summary": summary, "queue": queue}


def test_total_names_and_every_panel_follow_the_drill_down_at_desktop_and_phone(
    live_server: str, browser: Any, session: Session
) -> None:
    seeded = _seed_more(session)
    api = Api(live_server, COUNTY_PHONE)
    town_api = Api(live_server, TOWN_PHONE)
    opened = httpx.post(live_server + "/api/v1/cases", json={"child_id": seeded["case_child"], "reason": "测试"},
                        headers=town_api.headers)
    assert opened.status_code == 201, opened.text
    month = api.get("/dashboard/config")["report_month"]
    county = api.get("/org-units/mine")
    town = api.get("/coverage", unit_id=county["id"], zoom=12)["features"][0]["properties"]
    town_cov = api.get("/coverage", unit_id=town["id"], zoom=12)
    village = next(f["properties"] for f in town_cov["features"] if f["properties"]["name"] == "青山村")

    context = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        _sign_in(page, live_server, COUNTY_PHONE)
        _check_level(page, api, county["id"], county["id"], month)
        page.click(f'#unit-list button[data-drill="{town["id"]}"]')
        at_town = _check_level(page, api, town["id"], county["id"], month)
        assert len(at_town["kids"]) == 8
        page.click(f'#unit-list button[data-drill="{village["id"]}"]')
        at_village = _check_level(page, api, village["id"], county["id"], month)
        # The flagged visits are in 青山村: its queue is not the empty one of another unit, and it is
        # smaller than or equal to the town's.
        assert at_village["summary"]["pending_flagged"] == 2 and at_town["summary"]["pending_flagged"] == 3
        # The case is in 溪口村: the town counts it, 青山村 does not.
        assert at_town["cov"]["totals"]["cases"]["open"] + at_town["cov"]["totals"]["cases"]["active"] >= 1
        assert at_village["cov"]["totals"]["cases"]["open"] + at_village["cov"]["totals"]["cases"]["active"] == 0
        assert {q["record_id"] for q in at_village["queue"]} <= {q["record_id"] for q in at_town["queue"]}
        assert at_village["cov"]["totals"]["households"] < at_town["cov"]["totals"]["households"]
        _shot(page, "drill-village-desktop.png")
        # Back up one level: the town's figures again.
        page.click("#up")
        _check_level(page, api, town["id"], county["id"], month)
        assert errors == [], errors
    finally:
        context.close()

    # Phone: one column, no horizontal scroll, the map a fixed share above the panels, every control
    # reachable and large enough to tap, names and panels the same as on the desktop.
    context = browser.new_context(viewport=PHONE, locale="zh-CN", is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        _sign_in(page, live_server, TOWN_PHONE)
        _check_level(page, Api(live_server, TOWN_PHONE), town["id"], town["id"], month)
        _assert_phone_layout(page)
        page.click(f'#unit-list button[data-drill="{village["id"]}"]')
        # A grid's strip is narrower than its name at 390 px: the names are in the list, not on the map.
        _check_level(page, Api(live_server, TOWN_PHONE), village["id"], town["id"], month, labels_drawn=False)
        _assert_phone_layout(page)
        _shot(page, "drill-village-phone.png")
    finally:
        context.close()


def _shot(page: Page, name: str) -> None:
    if SHOTS:
        os.makedirs(SHOTS, exist_ok=True)
        page.screenshot(path=os.path.join(SHOTS, name), full_page=True)


def _assert_phone_layout(page: Page) -> None:
    assert page.evaluate("document.scrollingElement.scrollWidth") <= PHONE["width"]
    map_box = page.locator("#map").bounding_box()
    aside_box = page.locator("aside").bounding_box()
    assert map_box and aside_box
    assert 200 <= map_box["height"] <= 0.6 * PHONE["height"] and map_box["width"] <= PHONE["width"]
    assert aside_box["y"] >= map_box["y"] + map_box["height"] - 1  # panels below the map, not beside it
    # Panels in one column, each within the screen.
    boxes = [page.locator(f"#{p}").bounding_box() for p in
             ("panel-units", "unit-details", "panel-review", "panel-cases", "panel-overdue", "panel-reports",
              "panel-schedule")]
    visible = [b for b in boxes if b and b["height"] > 0]
    assert all(b["x"] >= 0 and b["x"] + b["width"] <= PHONE["width"] for b in visible)
    assert all(abs(b["x"] - visible[0]["x"]) < 1 for b in visible)
    # Tap targets: every visible button at least 32 × 32 px and inside the screen; no text cut off.
    for b in page.eval_on_selector_all(
            "button", "els => els.filter(e => e.offsetParent).map(e => { const r = e.getBoundingClientRect();"
            " return {h: r.height, w: r.width, l: r.left, r: r.right, cut: e.scrollWidth > e.clientWidth + 1,"
            " text: e.textContent}; })"):
        assert b["h"] >= 32 and b["w"] >= 32 and b["l"] >= 0 and b["r"] <= PHONE["width"] and not b["cut"], b
    cut = page.evaluate(
        "() => [...document.querySelectorAll('.panel, .unit-total, .toolbar, header')]"
        ".filter(e => e.offsetParent !== null && e.scrollWidth > e.clientWidth + 1).map(e => e.id || e.className)")
    assert cut == [], cut


HAN = re.compile(r"[\u3400-\u9fff]")
LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
# Text nodes that are not the page's own words: names and text people entered (.user-text), the
# language switch (it names the other language), the map library's attribution link (a product name).
_TEXTS = """() => {
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const text = n.textContent.trim();
    const host = n.parentElement;
    if (!text || !host || host.closest('script, style')) continue;
    if (!host.checkVisibility({visibilityProperty: true})) continue;
    if (host.closest('.user-text, #lang, .leaflet-control-attribution')) continue;
    out.push(text);
  }
  for (const e of document.querySelectorAll('[title], [aria-label], [placeholder]')) {
    if (!e.checkVisibility() || e.closest('.leaflet-control-attribution')) continue;
    for (const a of ['title', 'aria-label', 'placeholder']) if (e.getAttribute(a)) out.push(e.getAttribute(a));
  }
  return out;
}"""


def _words_left(page: Page, locale: str) -> list[str]:
    texts: list[str] = page.evaluate(_TEXTS)
    if locale == "en":
        return [t for t in texts if HAN.search(t)]
    return [t for t in texts if LATIN_WORD.search(t)]


def _settled_words_left(page: Page, locale: str, seconds: float = 20.0) -> list[str]:
    """What is still in the other language once the page has re-rendered: switching sets `lang` at
    once, and the panels redraw as their data comes back (on a busy machine some do only later, while
    the old language's text is still shown and nothing says "loading"). Polls until none is left or
    the time is up, and answers what is left then."""
    deadline = time.monotonic() + seconds
    left = _words_left(page, locale)
    while left and time.monotonic() < deadline:
        page.wait_for_timeout(250)
        left = _words_left(page, locale)
    return left


def test_every_visible_string_is_in_the_page_language_both_ways(
    live_server: str, browser: Any, session: Session
) -> None:
    _seed_more(session)
    api = Api(live_server, TOWN_PHONE)
    town = api.get("/org-units/mine")
    cov = api.get("/coverage", unit_id=town["id"], zoom=12)
    village = next(f["properties"] for f in cov["features"] if f["properties"]["name"] == "青山村")
    context = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    try:
        page = context.new_page()
        _sign_in(page, live_server, TOWN_PHONE)
        kids = [f for f in cov["features"] if f["properties"]["kind"] == "unit"]
        _wait_unit(page, town["id"], len(kids))
        page.click(f'#unit-list li[data-unit-id="{village["id"]}"] .unit-pick')  # the details table
        page.wait_for_selector("#details-body:not([hidden])")
        page.wait_for_function("() => !document.querySelector('#panel-not-visited .panel-body').textContent"
                               ".includes('加载中')")
        for locale in ("zh-CN", "en", "zh-CN"):
            if page.evaluate("document.documentElement.lang") != locale:
                page.click("#lang")
                page.wait_for_function("l => document.documentElement.lang === l", arg=locale)
            _wait_unit(page, town["id"], len(kids))
            page.wait_for_function("() => ![...document.querySelectorAll('.panel-body')]"
                                   ".some(b => /加载中|Loading/.test(b.textContent))")
            assert _settled_words_left(page, locale) == [], locale
            for kind in ("review", "cases", "overdue"):
                page.click(f'button[data-list="{kind}"]')
                page.wait_for_function("k => document.getElementById('list-view').dataset.unitId"
                                       " && document.getElementById('list-view').dataset.list === k", arg=kind)
                assert _words_left(page, locale) == [], (locale, kind)
                if kind == "review":
                    _shot(page, f"list-review-{locale}.png")
                page.click("#list-close")

        # Every state of the report status endpoint and review state has a label in both languages.
        labels = page.evaluate("() => window.HuleiI18n")
        for lang in ("zh-CN", "en"):
            for s in REPORT_STATES:
                assert labels[lang].get(f"state_{s}"), (lang, s)
            for s in REVIEW_STATES:
                assert labels[lang].get(f"review_{s}"), (lang, s)
            for c in ("all", "approved_only", "mixed"):
                assert labels[lang].get(f"counting_{c}"), (lang, c)
        assert set(labels["zh-CN"]) == set(labels["en"])
        # (the language switch names the other language: 中文)
        assert [k for k, v in labels["en"].items() if HAN.search(v)] == ["lang_switch"]
    finally:
        context.close()


def test_counting_rule_is_shown_and_its_absence_is_harmless(
    live_server: str, browser: Any, session: Session
) -> None:
    _seed_more(session)
    api = Api(live_server, TOWN_PHONE)
    town = api.get("/org-units/mine")
    cov = api.get("/coverage", unit_id=town["id"], zoom=12)
    kids = [f["properties"] for f in cov["features"] if f["properties"]["kind"] == "unit"]
    context = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    try:
        page = context.new_page()
        _sign_in(page, live_server, TOWN_PHONE)
        _wait_unit(page, town["id"], len(kids))
        counting = cov["totals"].get("counting")
        if counting is not None:
            badge = page.locator("#total-counting")
            assert badge.get_attribute("data-counting") == counting
            assert badge.inner_text() == {"all": "计入全部走访", "approved_only": "仅计已审核走访",
                                          "mixed": "部分单位仅计已审核走访"}[counting]
            page.click(f'#unit-list li[data-unit-id="{kids[0]["id"]}"] .unit-pick')
            assert page.locator('#details-body [data-field="counting"]').inner_text() == badge.inner_text()

        # An older server sends no `counting`: no badge, no error, the figures still shown.
        def strip(route: Any) -> None:
            body = route.fetch().json()
            body["totals"].pop("counting", None)
            body.pop("counting", None)
            for f in body["features"]:
                f["properties"].pop("counting", None)
            route.fulfill(json=body)

        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.route("**/api/v1/coverage?*", strip)
        page.click(f'#unit-list button[data-drill="{kids[0]["id"]}"]')
        sub = api.get("/coverage", unit_id=kids[0]["id"], zoom=12)
        _wait_unit(page, kids[0]["id"], len([f for f in sub["features"] if f["properties"]["kind"] == "unit"]))
        assert page.locator("#total-counting").is_hidden()
        assert f"{sub['totals']['visited']}/{sub['totals']['households']}" in page.locator("#unit-total").inner_text()
        assert errors == []
    finally:
        context.close()
