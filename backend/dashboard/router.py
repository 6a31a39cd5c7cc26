"""The dashboard page (static files under /dashboard) and the settings it reads."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from backend.campaigns import service as campaigns
from backend.core import clock
from backend.core.config import get_settings
from backend.core.db import SessionDep
from backend.orgunits.models import OrgUnit

DASHBOARD_DIR = Path(__file__).resolve().parent
STATIC_DIR = DASHBOARD_DIR / "static"
VENDOR_DIR = DASHBOARD_DIR / "node_modules"

config_router = APIRouter(prefix="/dashboard", tags=["dashboard"])


class BaseLayer(BaseModel):
    url_template: str
    subdomains: str
    attribution: str
    gcj02: bool


class DashboardConfig(BaseModel):
    default_locale: str
    base_layer: BaseLayer | None
    # China dates (Asia/Shanghai) from the server's clock, so the page never derives them from the
    # browser's zone or clock: today, next week's Monday (the 下周 panel) and the month whose report
    # the report panel shows (YYYY-MM, by the campaign's due rule).
    china_today: date
    next_monday: date
    report_month: str


def china_dates() -> tuple[date, date, str]:
    """Today in China, next week's Monday and the previous month (YYYY-MM), all in Asia/Shanghai."""
    today = clock.china_date(clock.now())
    next_monday = clock.next_monday(today)
    previous_month = today.replace(day=1) - timedelta(days=1)
    return today, next_monday, previous_month.strftime("%Y-%m")


@config_router.get("/config", response_model=DashboardConfig)
def dashboard_config(session: SessionDep, unit_id: int | None = None) -> DashboardConfig:
    """Settings the page needs before sign-in: locale, the optional base layer and today's China dates;
    with `unit_id`, the report month by the due rule of that unit's campaign (a county may have its own;
    only a month is answered, so no sign-in is needed)."""
    s = get_settings()
    layer = None
    if s.basemap_url_template:
        layer = BaseLayer(url_template=s.basemap_url_template, subdomains=s.basemap_subdomains,
                          attribution=s.basemap_attribution, gcj02=s.basemap_gcj02)
    today, next_monday, _ = china_dates()
    # The month being reported follows the campaign's due rule: the current China month under
    # same_month (seed 002, the default), the previous one under following_month.
    unit = session.get(OrgUnit, unit_id) if unit_id is not None else None
    report_month = campaigns.report_month(session, today, unit)
    return DashboardConfig(default_locale=s.default_locale, base_layer=layer, china_today=today,
                           next_monday=next_monday, report_month=report_month)


def mount_dashboard(app: FastAPI) -> None:
    """Serve the page at /dashboard/ and Leaflet (installed by `npm ci`) at /dashboard/vendor/leaflet/."""

    @app.get("/dashboard", include_in_schema=False)
    def _dashboard_root() -> RedirectResponse:
        return RedirectResponse("/dashboard/")

    leaflet = VENDOR_DIR / "leaflet" / "dist"
    if leaflet.is_dir():
        app.mount("/dashboard/vendor/leaflet", StaticFiles(directory=leaflet), name="dashboard-leaflet")
    app.mount("/dashboard", StaticFiles(directory=STATIC_DIR, html=True), name="dashboard")
