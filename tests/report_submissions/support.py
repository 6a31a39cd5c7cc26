"""Shared helpers of the report-submission tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session, col

from backend.audit.models import AuditEntry
from backend.core import clock
from backend.notifications.models import Notification

API = "/api/v1"
CST = clock.SHANGHAI


def media_root(tmp_path: Path, monkeypatch: Any) -> None:
    from backend.core.config import get_settings

    monkeypatch.setenv("HULEI_MEDIA_ROOT", str(tmp_path / "media"))
    get_settings.cache_clear()


def told(session: Session, user_id: int, kind: str) -> list[Notification]:
    session.expire_all()
    return list(session.execute(select(Notification).where(col(Notification.user_id) == user_id,
                                                            col(Notification.kind) == kind)).scalars())


def audited(session: Session, action: str, object_id: int) -> int:
    session.expire_all()
    return len(list(session.execute(select(AuditEntry).where(col(AuditEntry.action) == action,
                                                             col(AuditEntry.object_id) == str(object_id))).scalars()))


def ok(resp: Any, status: int = 200) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body: dict[str, Any] = resp.json()
    return body


def states(client: TestClient, headers: dict[str, str], path: str, **params: Any) -> dict[int, dict[str, Any]]:
    resp = client.get(f"{API}{path}", params=params, headers=headers)
    assert resp.status_code == 200, resp.text
    return {s["unit_id"]: s for s in resp.json()}
