"""The tamper-evident audit log."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlmodel import Session, select
from typer.testing import CliRunner

from backend.accounts.permissions import Role
from backend.audit import service
from backend.audit.models import AuditEntry
from backend.cli import app
from tests.factories import make_town, make_user, user_client


def _write_entries(session: Session, n: int) -> None:
    for i in range(n):
        service.record(session, actor=None, action="test.event", object_type="thing", object_id=i,
                       details={"n": i, "名称": "测试"})
    session.commit()


def test_fresh_chain_verifies(session: Session) -> None:
    _write_entries(session, 5)
    verdict = service.verify_chain(session)
    assert verdict.ok and verdict.entries_checked == 5


def _tamper(session: Session, backend_name: str, sql: str) -> None:
    """What a DBA with write access could do: switch the append-only guard off, then edit."""
    conn = session.connection()
    if backend_name == "postgis":
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(text(sql))
    else:
        conn.execute(text("DROP TRIGGER audit_entry_no_update"))
        conn.execute(text("DROP TRIGGER audit_entry_no_delete"))
        conn.execute(text(sql))
    session.commit()


def test_editing_a_row_breaks_verification_at_that_row(session: Session, backend_name: str) -> None:
    _write_entries(session, 6)
    _tamper(session, backend_name, "UPDATE audit_entry SET object_id = 'forged' WHERE id = 4")
    session.expire_all()
    verdict = service.verify_chain(session)
    assert not verdict.ok
    assert verdict.first_broken_id == 4
    result = CliRunner().invoke(app, ["audit", "verify"])
    assert result.exit_code == 1
    assert '"first_broken_id": 4' in result.output


def test_deleting_the_newest_rows_is_noticed(session: Session, backend_name: str) -> None:
    _write_entries(session, 6)
    _tamper(session, backend_name, "DELETE FROM audit_entry WHERE id >= 5")
    session.expire_all()
    verdict = service.verify_chain(session)
    assert not verdict.ok and verdict.first_broken_id == 5


def test_the_log_refuses_updates_in_normal_operation(session: Session) -> None:
    import pytest
    from sqlalchemy.exc import DatabaseError

    _write_entries(session, 1)
    with pytest.raises(DatabaseError):
        session.connection().execute(text("UPDATE audit_entry SET action = 'x'"))
    session.rollback()


def test_cli_reports_an_intact_chain(session: Session) -> None:
    _write_entries(session, 3)
    result = CliRunner().invoke(app, ["audit", "verify"])
    assert result.exit_code == 0
    assert "3 entries" in result.output


def test_audit_entries_record_who_where_and_from_which_device(client: TestClient, session: Session) -> None:
    town = make_town(session)
    admin = user_client(client, session, town.province, Role.admin)
    target = make_user(session, town.villages[0], Role.volunteer)
    client.get(f"/api/v1/users/{target.id}", headers={**admin.headers, "X-Device-Id": "phone-42"})
    entry = session.exec(select(AuditEntry).where(AuditEntry.action == "user.read")).one()
    assert entry.actor_user_id == admin.user.id
    assert entry.actor_roles == "admin"
    assert entry.device_id == "phone-42"
    assert entry.ip
    assert entry.org_unit_id == town.villages[0].id
    listed = client.get("/api/v1/audit", params={"action": "user.read"}, headers=admin.headers).json()
    assert [e["id"] for e in listed] == [entry.id]
    assert client.get("/api/v1/audit/verify", headers=admin.headers).json()["ok"] is True
