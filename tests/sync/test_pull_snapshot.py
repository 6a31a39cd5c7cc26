"""A stored cursor never passes a change it did not deliver, however pushes and pulls interleave.

Each pull page is cut at one watermark (the newest revision committed when the pull began) and every
kind is read up to it, so a push committing between the statements of one pull lands wholly in a
later page, never half in this one."""

from __future__ import annotations

import threading
import time
import uuid

import orjson
from sqlmodel import Session

from backend.accounts import service as accounts
from backend.accounts.permissions import Role
from backend.accounts.principal import Principal
from backend.core.db import get_engine
from backend.sync import pull as pulls
from backend.sync import service as sync
from backend.sync.schemas import PushItemIn
from tests.factories import make_town, make_user
from tests.registry.factories import child_item, household_item

STRESS_SECONDS = 6.0


def _principal(session: Session, user_id: int) -> Principal:
    principal = accounts.principal_for(session, user_id, device_id=None, ip=None)
    assert principal is not None
    return principal


def test_incremental_puller_misses_nothing_while_two_phones_push(session: Session) -> None:
    town = make_town(session)
    pushers = [make_user(session, town.villages[0], Role.volunteer) for _ in range(2)]
    puller = make_user(session, town.villages[0], Role.volunteer)
    pushed: list[str] = []
    stop = threading.Event()
    errors: list[BaseException] = []

    def push_loop(user_id: int) -> None:
        try:
            while not stop.is_set():
                h = household_item(0, 0)
                kid = child_item(h["client_uuid"], id_number="")
                items = [PushItemIn.model_validate(h), PushItemIn.model_validate(kid)]
                with Session(get_engine()) as s:
                    body = sync.push(s, _principal(s, user_id), items, "en")
                    s.commit()
                assert [r["status"] for r in body["results"]] == ["created", "created"], body
                pushed.append(h["client_uuid"])
        except BaseException as exc:
            errors.append(exc)
            stop.set()

    seen: set[str] = set()
    cursor: str | None = None

    def pull_once() -> None:
        nonlocal cursor
        while True:
            with Session(get_engine()) as s:
                page = orjson.loads(orjson.dumps(pulls.pull(s, _principal(s, puller.id or 0), cursor, 7)))
                s.commit()
            seen.update(i["record"]["uuid"] for i in page["items"] if i["kind"] == "household")
            cursor = page["next_cursor"]
            if not page["has_more"]:
                return

    threads = [threading.Thread(target=push_loop, args=(u.id or 0,)) for u in pushers]
    for t in threads:
        t.start()
    deadline = time.monotonic() + STRESS_SECONDS
    while time.monotonic() < deadline and not stop.is_set():
        pull_once()
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors
    pull_once()
    assert len(pushed) > 20, "the pushers should have raced the puller many times"
    missing = set(pushed) - seen
    assert not missing, f"{len(missing)} of {len(pushed)} households never reached the incremental puller"


def test_a_page_cut_never_splits_what_one_push_committed(session: Session) -> None:
    """A cursor that stops mid-way through a batch resumes exactly after the last item delivered."""
    town = make_town(session)
    user = make_user(session, town.villages[0], Role.volunteer)
    with Session(get_engine()) as s:
        principal = _principal(s, user.id or 0)
        items = []
        for _ in range(5):
            h = household_item(0, 0, uid=uuid.uuid4())
            kid = child_item(h["client_uuid"], id_number="")
            items += [PushItemIn.model_validate(h), PushItemIn.model_validate(kid)]
        sync.push(s, principal, items, "en")
        s.commit()
    revs: list[int] = []
    cursor = None
    while True:
        with Session(get_engine()) as s:
            page = orjson.loads(orjson.dumps(pulls.pull(s, _principal(s, user.id or 0), cursor, 3)))
            s.commit()
        revs += [i["rev"] for i in page["items"] if i["kind"] in {"household", "person"}]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break
    assert len(revs) == 10 and revs == sorted(set(revs))
