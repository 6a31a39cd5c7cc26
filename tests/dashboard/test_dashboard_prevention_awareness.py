"""The activities (宣传教育) and awareness (知晓率) panels in a real browser (issue 18): they hold the API's
figures for the unit shown, follow the drill-down, speak the page's language and fit a phone."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page
from sqlmodel import Session

from backend.demo.town import seed_demo
from tests.dashboard.test_dashboard_layout import (
    DESKTOP,
    PHONE,
    TOWN_PHONE,
    Api,
    _assert_phone_layout,
    _shot,
    _sign_in,
    _words_left,
)

POLICE_PHONE = "19900000004"


def _seed(session: Session) -> None:
    seed_demo(session)  # with issue 18's institutions, activities and awareness rounds
    session.commit()


def _wait_panels(page: Page, unit_id: int) -> None:
    for panel in ("activities", "awareness"):
        page.wait_for_function("([p, id]) => document.getElementById('panel-' + p).dataset.unitId === String(id)",
                               arg=[panel, unit_id], timeout=40000)


def _forget_panels(page: Page) -> None:
    """Before a language switch: the panels keep their unit across it and are drawn again only after
    the configuration is fetched, so without this the next _wait_panels would pass on the old drawing
    and read it while it is being replaced."""
    page.evaluate("() => ['activities', 'awareness'].forEach(p =>"
                  " document.getElementById('panel-' + p).removeAttribute('data-unit-id'))")


def _rows(page: Page, panel: str) -> dict[str, str]:
    return dict(page.eval_on_selector_all(f"#panel-{panel} tr[data-count]",
                                          "els => els.map(e => [e.dataset.count, e.querySelector('td').textContent])"))


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _check_unit(page: Page, api: Api, unit_id: int) -> dict[str, Any]:
    """Both panels of the unit shown against the API called with its id and the page's period."""
    _wait_panels(page, unit_id)
    section = page.locator("#panel-activities")
    cov = api.get("/prevention/coverage", unit_id=unit_id, date_from=section.get_attribute("data-date-from"),
                  date_to=section.get_attribute("data-date-to"))
    n = cov["totals"]
    assert _rows(page, "activities") == {
        "activities": str(n["activities"]), "audience": str(n["audience"]["total"]),
        "schools_reached": f"{n['schools_reached']} / {n['schools']}",
        "villages_reached": f"{n['villages_reached']} / {n['villages']}"}
    assert page.eval_on_selector_all("#panel-activities li[data-unit-id]",
                                     "els => els.map(e => [e.dataset.unitId, e.dataset.activities])") == \
        [[str(k["unit_id"]), str(k["activities"])] for k in cov["children"]]

    period = page.locator("#panel-awareness").get_attribute("data-period")
    rates = api.get("/awareness/rates", unit_id=unit_id, period=period)
    t = rates["totals"]
    assert _rows(page, "awareness") == {
        "rate": _share(t["rate"]), "target": "100.0%", "participation": _share(t["participation"]),
        "knowing": f"{t['knowing']} / {t['responses']}",
        "schools_surveyed": f"{t['schools_surveyed']} / {t['schools']}",
        "schools_without_survey": str(t["schools_without_survey"])}
    shown = page.eval_on_selector_all("#panel-awareness li[data-unit-id]",
                                      "els => els.map(e => [e.dataset.unitId, e.dataset.rate])")
    assert [[int(i), float(r) if r else None] for i, r in shown] == \
        [[u["unit_id"], u["rate"]] for u in rates["units"] if u["schools"]]
    assert page.eval_on_selector_all("#panel-awareness li[data-institution-id]",
                                     "els => els.map(e => e.dataset.institutionId)") == \
        [str(s["institution_id"]) for s in rates["schools_without_survey"][:10]]
    below = page.locator('#panel-awareness tr[data-count="rate"]').get_attribute("class") or ""
    assert ("state-late" in below) == (t["rate"] is not None and not t["meets_target"])
    return {"coverage": cov, "rates": rates}


def test_both_panels_hold_the_api_figures_and_follow_the_drill_down(live_server: str, browser: Any,
                                                                     session: Session) -> None:
    _seed(session)
    api = Api(live_server, TOWN_PHONE)
    town = api.get("/org-units/mine")
    context = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        _sign_in(page, live_server, TOWN_PHONE)
        at_town = _check_unit(page, api, town["id"])
        # The demo: answers at most schools, rates under the target, two schools still without a survey.
        assert at_town["rates"]["totals"]["responses"] > 0 and at_town["rates"]["totals"]["schools_without_survey"] == 2
        assert at_town["coverage"]["totals"]["activities"] > 0
        _shot(page, "prevention-awareness-desktop.png")

        village = next(u for u in at_town["rates"]["units"] if not u["own_level"] and u["responses"])
        page.click(f'#unit-list button[data-drill="{village["unit_id"]}"]')
        at_village = _check_unit(page, api, village["unit_id"])
        assert at_village["rates"]["totals"]["responses"] == village["responses"]
        assert at_village["rates"]["totals"]["responses"] < at_town["rates"]["totals"]["responses"]

        page.click("#up")
        _check_unit(page, api, town["id"])
        _forget_panels(page)
        page.click("#lang")
        page.wait_for_function("() => document.documentElement.lang === 'en'")
        _check_unit(page, api, town["id"])
        page.wait_for_function("() => ![...document.querySelectorAll('.panel-body')]"
                               ".some(b => /加载中|Loading/.test(b.textContent))")
        assert page.locator("#panel-awareness h2").inner_text() == "Awareness of abuse prevention"
        assert _words_left(page, "en") == []
        _forget_panels(page)
        page.click("#lang")
        page.wait_for_function("() => document.documentElement.lang === 'zh-CN'")
        _check_unit(page, api, town["id"])
        page.wait_for_function("() => ![...document.querySelectorAll('.panel-body')]"
                               ".some(b => /加载中|Loading/.test(b.textContent))")
        assert page.locator("#panel-activities h2").inner_text() == "宣传教育活动"
        assert _words_left(page, "zh-CN") == []
        assert errors == [], errors
    finally:
        context.close()


def test_the_panels_fit_a_phone_and_a_role_without_the_rates_is_told_so(live_server: str, browser: Any,
                                                                          session: Session) -> None:
    _seed(session)
    api = Api(live_server, TOWN_PHONE)
    town = api.get("/org-units/mine")
    context = browser.new_context(viewport=PHONE, locale="zh-CN", is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        _sign_in(page, live_server, TOWN_PHONE)
        _check_unit(page, api, town["id"])
        _assert_phone_layout(page)
        _shot(page, "prevention-awareness-phone.png")
        for panel in ("panel-activities", "panel-awareness"):
            box = page.locator(f"#{panel}").bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    finally:
        context.close()

    # Police read activities but not awareness rates (survey.read): the panel says so, in the page's words.
    context = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    try:
        page = context.new_page()
        _sign_in(page, live_server, POLICE_PHONE)
        page.wait_for_selector("#panel-awareness [data-unavailable]", timeout=20000)
        assert page.locator("#panel-awareness [data-unavailable]").get_attribute("data-status") == "403"
        assert "无权" in page.locator("#panel-awareness").inner_text()
    finally:
        context.close()
