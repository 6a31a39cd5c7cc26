"""The committed phone contract matches the app."""

from __future__ import annotations

from pathlib import Path

from backend.spec import render_openapi

SPEC = Path(__file__).resolve().parents[1] / "mobile_api_spec" / "openapi.json"


def test_committed_openapi_matches_the_app() -> None:
    assert SPEC.exists(), "run `make spec`"
    assert SPEC.read_text(encoding="utf-8") == render_openapi(), (
        "mobile_api_spec/openapi.json is out of date: run `make spec`, and keep changes additive"
    )
