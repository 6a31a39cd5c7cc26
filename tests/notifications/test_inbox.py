"""The inbox: every notification is there even when the push never arrived."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import Session

from backend.accounts.permissions import Role
from tests.factories import make_town, make_user
from tests.notifications.factories import headers_for, notify


def test_the_inbox_lists_only_my_notifications_newest_first_in_pages(client: TestClient, session: Session) -> None:
    town = make_town(session)
    me, other = make_user(session, town.town, Role.helper), make_user(session, town.town, Role.helper)
    for i in range(5):
        notify(session, me, data={"visit_id": str(i)})
    notify(session, other)
    headers = headers_for(session, me)
    first = client.get("/api/v1/notifications", params={"limit": 3}, headers=headers).json()
    assert [n["data"]["visit_id"] for n in first["items"]] == ["4", "3", "2"]
    second = client.get("/api/v1/notifications", params={"limit": 3, "cursor": first["next_cursor"]},
                        headers=headers).json()
    assert [n["data"]["visit_id"] for n in second["items"]] == ["1", "0"] and second["next_cursor"] is None
    assert first["items"][0]["created_at"].endswith("+08:00")


def test_marking_read_is_idempotent_and_someone_elses_notification_is_not_found(
    client: TestClient, session: Session
) -> None:
    town = make_town(session)
    me, other = make_user(session, town.town, Role.helper), make_user(session, town.town, Role.volunteer)
    [mine] = notify(session, me)
    [theirs] = notify(session, other)
    headers = headers_for(session, me)
    assert client.get("/api/v1/notifications/unread-count", headers=headers).json() == {"unread": 1}
    read = client.post(f"/api/v1/notifications/{mine.id}/read", headers=headers).json()
    assert read["read_at"] is not None
    again = client.post(f"/api/v1/notifications/{mine.id}/read", headers=headers).json()
    assert again["read_at"] == read["read_at"]
    assert client.get("/api/v1/notifications/unread-count", headers=headers).json() == {"unread": 0}
    assert client.get("/api/v1/notifications", params={"unread_only": True}, headers=headers).json()["items"] == []
    assert client.post(f"/api/v1/notifications/{theirs.id}/read", headers=headers).status_code == 404
