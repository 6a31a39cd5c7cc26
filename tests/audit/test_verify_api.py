"""GET /api/v1/audit/verify holds the chain to the signed checkpoints when the API can read them,
and says so plainly when it cannot."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from backend.accounts.permissions import Role
from backend.audit.models import AuditEntry
from tests.audit.test_checkpoints import Anchor, _append, _as_insider, _checkpoint, anchor
from tests.factories import make_town, user_client

__all__ = ["anchor"]  # the fixture, shared with the CLI's tests


def test_without_checkpoint_configuration_the_answer_says_they_were_not_checked(
    client: TestClient, session: Session
) -> None:
    town = make_town(session)
    admin = user_client(client, session, town.province, Role.admin)
    _append(session, 3)
    body = client.get("/api/v1/audit/verify", headers=admin.headers).json()
    assert body["ok"] is True and body["entries_checked"] >= 3
    assert body["first_broken_id"] is None and body["reason"] is None
    assert body["checkpoints_checked"] is None and body["anchored"] is None
    assert "not checked" in body["checkpoints_note"]


def test_a_cut_the_checkpoints_reveal_is_reported_over_http(
    client: TestClient, session: Session, backend_name: str, anchor: Anchor
) -> None:
    _append(session, 3)
    _checkpoint(session)
    _append(session, 3)
    _checkpoint(session)
    town = make_town(session)
    admin = user_client(client, session, town.province, Role.admin)  # signed in at the moved clock
    body = client.get("/api/v1/audit/verify", headers=admin.headers).json()
    assert body["ok"] is True and body["checkpoints_checked"] == 2 and body["anchored"] is True

    keep = 4  # cut into what the checkpoint of 6 entries vouches for
    kept = session.exec(select(AuditEntry).where(col(AuditEntry.id) == keep)).one()
    _as_insider(session, backend_name, [
        ("DELETE FROM audit_entry WHERE id > :k", {"k": keep}),
        ("UPDATE audit_chain_head SET last_entry_id = :k, last_hash = :h", {"k": keep, "h": kept.entry_hash}),
    ])
    response = client.get("/api/v1/audit/verify", headers=admin.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is False
    assert body["anchored"] is False and body["checkpoints_checked"] == 2
    assert body["first_broken_id"] is None  # the hash chain alone holds
    assert "checkpoint" in body["reason"] and f"only {keep}" in body["reason"]
