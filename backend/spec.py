"""The OpenAPI document as committed in mobile_api_spec/openapi.json."""

from __future__ import annotations

import json

from backend.main import create_app


def render_openapi() -> str:
    """Deterministic JSON text of the app's OpenAPI schema."""
    return json.dumps(create_app().openapi(), ensure_ascii=False, indent=2, sort_keys=True) + "\n"
