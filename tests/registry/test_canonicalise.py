"""`hulei canonicalise-id-numbers`: ID numbers stored in other spellings before the fix are rewritten in
their canonical ASCII form, and duplicates stored that way are reported, not merged."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import date

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session
from typer.testing import CliRunner

from backend.audit.models import AuditEntry
from backend.cli import app
from backend.core import clock, crypto
from backend.registry import idnumber
from backend.registry.models import Person
from backend.sync import revisions
from tests.registry.factories import child_item, household_item, make_world, push

FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


def _legacy(session: Session, unit_id: int, spelling: str) -> Person:
    """A person stored the way the old code stored a number typed like this: sealed, indexed and
    masked in that spelling."""
    sealed = crypto.encrypt(spelling)
    old_index = hmac.new(crypto.keyring().index_key, spelling.strip().upper().encode(), hashlib.sha256).hexdigest()
    now = clock.now()
    p = Person(uuid=uuid.uuid4(), role="child", org_unit_id=unit_id, name="旧记录", id_cipher=sealed.token,
               id_key_id=sealed.key_id, id_index=old_index, id_masked=spelling[:6] + "*" * 12, content_hash="0" * 64,
               rev=revisions.allocate(session), created_at=now, updated_at=now, counted_at=now)
    session.add(p)
    session.commit()
    return p


def test_numbers_stored_in_other_digits_are_rewritten_and_stored_twins_are_reported(
    client: TestClient, session: Session
) -> None:
    w = make_world(client, session)
    unit = w.town.grids[0][0].id
    assert unit is not None
    registered = idnumber.make("990101", date(2013, 1, 2), 401)
    h = household_item(0)
    push(client, w.volunteer_a, [h, child_item(h["client_uuid"], id_number=registered)])
    first, second = idnumber.make("990101", date(2013, 1, 2), 403), idnumber.make("990101", date(2013, 1, 2), 405)
    wide = _legacy(session, unit, first[:-1].translate(FULL_WIDTH) + first[-1].lower())
    arabic = _legacy(session, unit, second.translate(ARABIC_INDIC))
    twin = _legacy(session, unit, registered.translate(FULL_WIDTH))
    twin_cipher, rev_before = twin.id_cipher, wide.rev

    result = CliRunner().invoke(app, ["canonicalise-id-numbers", "--batch", "2"])
    assert result.exit_code == 1, result.output
    assert "rewrote 2 ID numbers" in result.output
    session.expire_all()
    for row, number in ((wide, first), (arabic, second)):
        stored = session.get(Person, row.id)
        assert stored is not None and crypto.decrypt(stored.id_cipher or "") == number
        assert stored.id_index == crypto.blind_index(number) and stored.id_masked == idnumber.mask(number)
    assert (session.get(Person, wide.id) or wide).rev > rev_before  # phones pull the new mask
    assert (session.get(Person, twin.id) or twin).id_cipher == twin_cipher
    [entry] = session.execute(select(AuditEntry).where(AuditEntry.action == "registry.id_number_duplicate_stored")
                              ).scalars().all()
    assert entry.object_id == str(twin.id)
    # Found again by its number: the ASCII spelling is now a duplicate like any other.
    again = client.post("/api/v1/persons", json={"household_uuid": h["client_uuid"], "name": "重复",
                                                 "id_number": first}, headers=w.volunteer_a.headers)
    assert again.status_code == 409 and again.json()["code"] == "id-number-registered"
    rerun = CliRunner().invoke(app, ["canonicalise-id-numbers"])
    assert "rewrote 0 ID numbers" in rerun.output
