"""Rotating the ID-number key: re-seal everything, then the old key can go."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select
from typer.testing import CliRunner

from backend.cli import app
from backend.core import crypto
from backend.core.config import get_settings
from backend.registry.models import Person
from tests.registry.factories import make_world, seed_household

NEW_KEY = "k2027:" + "B" * 43 + "="


def test_reseal_moves_every_id_number_to_the_new_key_and_the_old_key_can_be_dropped(
    client: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = make_world(client, session)
    seed_household(client, world.volunteer_a, children=3)
    before = {p.id: (p.id_cipher, p.id_index) for p in session.exec(select(Person)).all() if p.id_cipher}
    assert before and all(c and c.startswith("dev-1:") for c, _ in before.values())
    plain = {pid: crypto.decrypt(c) for pid, (c, _) in before.items() if c}

    old_keys = get_settings().id_number_keys
    monkeypatch.setenv("HULEI_ID_NUMBER_KEYS", old_keys + "," + NEW_KEY)
    monkeypatch.setenv("HULEI_ID_NUMBER_ACTIVE_KEY", "k2027")
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["reseal-id-numbers", "--batch", "2"])
    assert result.exit_code == 0, result.output
    assert f"re-sealed {len(before)} ID numbers" in result.output

    # Only the new key is left configured: every value still opens, the blind index is unchanged.
    monkeypatch.setenv("HULEI_ID_NUMBER_KEYS", NEW_KEY)
    get_settings.cache_clear()
    session.expire_all()
    after = {p.id: p for p in session.exec(select(Person)).all() if p.id_cipher}
    assert {pid: p.id_key_id for pid, p in after.items()} == dict.fromkeys(before, "k2027")
    assert {pid: crypto.decrypt(p.id_cipher or "") for pid, p in after.items()} == plain
    assert {pid: p.id_index for pid, p in after.items()} == {pid: idx for pid, (_, idx) in before.items()}
    again = CliRunner().invoke(app, ["reseal-id-numbers"])
    assert "re-sealed 0 ID numbers" in again.output
    get_settings.cache_clear()
