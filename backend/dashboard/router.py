"""The dashboard page (static files under /dashboard) and the settings it reads."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from backend.core.config import get_settings

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


@config_router.get("/config", response_model=DashboardConfig)
def dashboard_config() -> DashboardConfig:
    """Settings the page needs before sign-in: locale and the optional base layer."""
    s = get_settings()
    layer = None
    if s.basemap_url_template:
        layer = BaseLayer(url_template=s.basemap_url_template, subdomains=s.basemap_subdomains,
                          attribution=s.basemap_attribution, gcj02=s.basemap_gcj02)
    return DashboardConfig(default_locale=s.default_locale, base_layer=layer)


def mount_dashboard(app: FastAPI) -> None:
    """Serve the page at /dashboard/ and Leaflet (installed by `npm ci`) at /dashboard/vendor/leaflet/."""

    @app.get("/dashboard", include_in_schema=False)
    def _dashboard_root() -> RedirectResponse:
        return RedirectResponse("/dashboard/")

    leaflet = VENDOR_DIR / "leaflet" / "dist"
    if leaflet.is_dir():
        app.mount("/dashboard/vendor/leaflet", StaticFiles(directory=leaflet), name="dashboard-leaflet")
    app.mount("/dashboard", StaticFiles(directory=STATIC_DIR, html=True), name="dashboard")
