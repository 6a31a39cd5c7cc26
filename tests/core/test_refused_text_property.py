"""Any Unicode text sent to the API is either stored and read back exactly as sent, or refused with a
422 naming the field and the first character Hulei does not accept (backend/core/text.py): never a
500, never a value silently changed on its way in (issue 15). Tried on a create endpoint (a venue)
and on a sync push item (a household's note, where only that item is rejected)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts.permissions import Role
from backend.registry.models import Household
from tests.factories import make_town, make_user, sign_in
from tests.registry.factories import household_item
from tests.registry.factories import make_world as registry_world
from tests.venues.factories import credit_code, grid_point

# Every code point, surrogates and noncharacters included, with the refused and the edge ones drawn
# often (a uniform draw over 1.1 million code points would seldom hit the few dozen that matter).
EDGES = [chr(c) for c in range(0x20)] + [
    "\x7f", "\x80", "\x85", "\x9f", "\xa0", "\u2028", "\u202e", "\u2066", "\u2069", "\u200d", "\ufeff", "\ud800",
    "\udbff", "\udc00", "\udfff", "\ufdd0", "\ufffd", "\ufffe", "\uffff", "\ue000", "\U0001fffe", "\U0010ffff",
    "😀", "青"]
CHARS = st.one_of(st.sampled_from(EDGES), st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()))
# Surrounded by ordinary characters: the schemas' own rules (a name of at least one character) are
# not what is tried here.
TEXTS = st.builds(lambda t: f"名{t}字", st.text(CHARS, min_size=1, max_size=12))
EXAMPLES = 60


def refused(c: str) -> bool:
    """The rule, written out independently of the module."""
    n = ord(c)
    return ((n < 0x20 and c not in "\t\n\r") or 0x7F <= n <= 0x9F or 0x2028 <= n <= 0x202E or 0x2066 <= n <= 0x2069
            or n == 0xFEFF or 0xD800 <= n <= 0xDFFF or n in (0xFFFE, 0xFFFF))


def _body(value: dict[str, Any]) -> bytes:
    # json.dumps writes a lone surrogate as its \udXXX escape, as a phone's JSON library would.
    return json.dumps(value).encode()


def _named(errors: list[dict[str, Any]], field: str, char: str) -> bool:
    code = f"U+{ord(char):04X}"
    return any(e["field"] == field and e["type"] == "unstorable_text" and code in e["message"] for e in errors)


def test_a_created_venue_name_is_kept_exactly_or_refused_naming_the_character(client: TestClient,
                                                                            session: Session) -> None:
    town = make_town(session)
    who = {**sign_in(client, make_user(session, town.town, Role.coordinator)).headers,
           "Content-Type": "application/json"}
    lon, lat = grid_point((0, 0))

    @seed(2026113015)
    @settings(max_examples=EXAMPLES, deadline=None, database=None, phases=[Phase.explicit, Phase.generate],
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(name=TEXTS)
    def attack(name: str) -> None:
        body = {"venue_type": "hotel", "name": name, "credit_code": credit_code(), "lon": lon, "lat": lat}
        resp = client.post("/api/v1/venues", headers=who, content=_body(body))
        bad = [c for c in name if refused(c)]
        if bad:
            assert resp.status_code == 422, (name, resp.text)
            assert _named(resp.json()["errors"], "name", bad[0]), (name, resp.text)
            assert f"U+{ord(bad[0]):04X}" in resp.json()["detail"]
            return
        assert resp.status_code == 201, (name, resp.text)
        stored = client.get(f"/api/v1/venues/{resp.json()['id']}", headers=who)
        assert stored.status_code == 200
        assert stored.json()["name"] == name

    attack()


def test_a_pushed_note_is_kept_exactly_or_only_its_item_is_rejected_naming_the_character(
    client: TestClient, session: Session
) -> None:
    w = registry_world(client, session)
    who = {**w.volunteer_a.headers, "Content-Type": "application/json"}

    @seed(2026113016)
    @settings(max_examples=EXAMPLES, deadline=None, database=None, phases=[Phase.explicit, Phase.generate],
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(note=TEXTS)
    def attack(note: str) -> None:
        spoilt, good = household_item(0, note=note), household_item(0, note="门前有桂花树")
        resp = client.post("/api/v1/sync/push", headers=who, content=_body({"items": [spoilt, good]}))
        assert resp.status_code == 200, (note, resp.text)
        first, second = resp.json()["results"]
        assert second["status"] == "created", second
        session.expire_all()
        stored = session.execute(select(col(Household.note)).where(
            col(Household.uuid) == uuid.UUID(spoilt["client_uuid"]))).scalar_one_or_none()
        bad = [c for c in note if refused(c)]
        if bad:
            assert first["status"] == "rejected", (note, first)
            assert first["problem"]["code"] == "invalid-input"
            assert _named(first["problem"]["errors"], "note", bad[0]), (note, first)
            assert stored is None
            return
        assert first["status"] == "created", (note, first)
        assert stored == note

    attack()
