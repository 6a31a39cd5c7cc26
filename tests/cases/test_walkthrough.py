"""The README's case walkthrough (scripts/walkthrough_cases.py) on the demo town `make run` seeds: a
school files a clue, the police acknowledge it and a case opens, services are referred and completed,
a helper is assigned and follows up offline, the coordinator closes the case, the helper is free."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import Session
from typer.testing import CliRunner

from backend.cli import app
from scripts.walkthrough_cases import walk
from tests.service_plans.factories import ensure_service_kinds


def test_the_case_loop_runs_end_to_end_on_the_demo_town_and_again(client: TestClient, session: Session) -> None:
    assert CliRunner().invoke(app, ["seed-demo"]).exit_code == 0
    ensure_service_kinds(session)  # written by migration 0021; the PostGIS cleanup empties every table
    lines: list[str] = []
    first = walk(client, lines.append)
    assert len(lines) == 8, lines
    assert first["followup_statuses"] == ["created", "created", "duplicate", "duplicate"]
    assert first["helper_load"] == 0 and first["case_removed_from_phone"] is True
    # The same walk on the same server picks another child and runs through again.
    second = walk(client, lines.append)
    assert second["child_id"] != first["child_id"] and second["helper_load"] == 0
