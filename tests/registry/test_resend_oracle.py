"""A resend answers `duplicate` to the user who wrote the record, and to nobody else.

A person's record holds what most callers are never shown (the full ID number; the exact birth date
for roles that get the month). When any caller's resend of a create was compared with the stored
content, `duplicate` for the right guess and `conflict` for a wrong one told a volunteer the child's
ID number in about 30 x 250 probes. Now another caller's resend is a `conflict` whatever it holds,
with the same answer for a right and a wrong guess; the writer's own resend (its answer lost on 2G)
is still a `duplicate`."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session

from backend.registry import idnumber
from tests.registry.factories import child_item, household_item, make_world, push, statuses

BORN = date(2012, 9, 23)


def _answer(body: dict[str, Any]) -> tuple[str, Any]:
    result = body["results"][0]
    return result["status"], result["record"]


def test_another_users_resend_of_a_create_cannot_confirm_a_guess(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    home = household_item(0)
    number = idnumber.make("990101", BORN, 177)
    kid = child_item(home["client_uuid"], id_number=number, sex="male")
    assert statuses(push(client, w.coordinator, [home, kid])) == ["created", "created"]

    right = push(client, w.volunteer_a, [kid])
    wrong = push(client, w.volunteer_a, [{**kid, "data": {**kid["data"],
                                                           "id_number": idnumber.make("990101", BORN, 179)}}])
    assert _answer(right) == _answer(wrong)
    assert _answer(right)[0] == "conflict"
    assert _answer(push(client, w.coordinator, [kid]))[0] == "duplicate"  # the writer's own resend


def test_another_users_resend_of_an_edit_cannot_confirm_a_guess(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    home = household_item(0)
    kid = child_item(home["client_uuid"], id_number=idnumber.make("990101", BORN, 183), sex="male")
    assert statuses(push(client, w.coordinator, [home, kid])) == ["created", "created"]
    secret = idnumber.make("990101", BORN, 185)
    edit = {"kind": "person", "client_uuid": kid["client_uuid"], "base_version": 1, "data": {"id_number": secret}}
    assert statuses(push(client, w.coordinator, [edit])) == ["updated"]

    right = push(client, w.volunteer_a, [edit])
    wrong = push(client, w.volunteer_a, [{**edit, "data": {"id_number": idnumber.make("990101", BORN, 187)}}])
    assert _answer(right)[0] == _answer(wrong)[0] == "conflict"
    assert _answer(right)[1] == _answer(wrong)[1]
    assert _answer(push(client, w.coordinator, [edit]))[0] == "duplicate"
