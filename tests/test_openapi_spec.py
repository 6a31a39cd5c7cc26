"""The committed phone contract matches the app."""

from __future__ import annotations

import warnings
from pathlib import Path

from backend.spec import problem_catalogue, render_openapi, render_problem_catalogue

SPEC = Path(__file__).resolve().parents[1] / "mobile_api_spec" / "openapi.json"


def test_committed_openapi_matches_the_app() -> None:
    assert SPEC.exists(), "run `make spec`"
    with warnings.catch_warnings():
        # FastAPI warns (and generated clients break) on duplicate operation ids.
        warnings.simplefilter("error")
        rendered = render_openapi()
    assert SPEC.read_text(encoding="utf-8") == rendered, (
        "mobile_api_spec/openapi.json is out of date: run `make spec`, and keep changes additive"
    )


def test_committed_problem_catalogue_matches_the_code() -> None:
    path = SPEC.with_name("problems.md")
    assert path.read_text(encoding="utf-8") == render_problem_catalogue(), "run `make spec`"


def test_every_problem_code_has_one_meaning() -> None:
    catalogue = problem_catalogue()
    assert catalogue["not-found"][0] == 404
    assert all(code == code.lower() and " " not in code for code in catalogue)
