"""Recording what a channel answered: each row gets its own outcome and message id, and a worker whose
claim was taken over writes nothing over the other worker's record."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select
from sqlmodel import Session, col

from backend.accounts.models import Device
from backend.accounts.permissions import Role
from backend.core import clock
from backend.core.config import get_settings
from backend.core.db import get_engine
from backend.notifications.delivery import claim_batch, deliver_pending, record_results
from backend.notifications.models import Notification, PushOutbox, PushStatus
from backend.notifications.providers import LoggingProvider, Outcome, PushMessage, PushResult
from backend.orgunits.models import OrgUnit
from tests.factories import make_town, make_user
from tests.notifications.factories import add_device, notify


def _rows(session: Session) -> dict[int, PushOutbox]:
    session.expire_all()
    return {int(r.id or 0): r for r in session.execute(select(PushOutbox)).scalars()}


def _worker_session() -> Session:
    return Session(get_engine(), expire_on_commit=False)


_towns: dict[int, OrgUnit] = {}  # one town per test session: the examples share it
_message_ids = st.one_of(st.none(), st.text(min_size=1, max_size=260).filter(lambda s: "\x00" not in s))
_answers = st.lists(st.tuples(st.sampled_from([Outcome.sent, Outcome.retry, Outcome.invalid_token, Outcome.failed]),
                              _message_ids), min_size=1, max_size=12)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(answers=_answers)
def test_every_row_gets_its_own_outcome_and_message_id(session: Session, answers: list[tuple[Outcome, str | None]]
                                                       ) -> None:
    # Message ids are the channel's strings, whatever they hold (quotes, backslashes, any script):
    # they travel to the database as one JSON value and must come back to the right row unchanged
    # (cut to the column's 200 characters rather than failing the batch's record).
    session.execute(delete(PushOutbox))
    session.execute(delete(Notification))
    session.commit()
    town = _towns.get(id(session))
    if town is None or session.get(OrgUnit, town.id) is None:
        town = _towns[id(session)] = make_town(session).town
    users = [make_user(session, town, Role.helper) for _ in answers]
    for i, user in enumerate(users):
        add_device(session, user, f"tok-rec-{user.id}-{i}")
        notify(session, user)
    with _worker_session() as worker:
        batch = claim_batch(worker, worker="w", limit=100)
        assert len(batch.items) == len(answers)
        results = {item.outbox_id: PushResult(outcome, message_id=mid if outcome is Outcome.sent else None,
                                              error=None if outcome is Outcome.sent else f"e{i}")
                   for i, (item, (outcome, mid)) in enumerate(zip(batch.items, answers, strict=True))}
        report = record_results(worker, batch, results)
    rows = _rows(session)
    expected_status = {Outcome.sent: PushStatus.sent.value, Outcome.retry: PushStatus.pending.value,
                       Outcome.invalid_token: PushStatus.dropped.value, Outcome.failed: PushStatus.failed.value}
    for item in batch.items:
        row, answer = rows[item.outbox_id], results[item.outbox_id]
        assert row.status == expected_status[answer.outcome]
        assert row.claimed_by is None and row.claimed_until is None
        if answer.outcome is Outcome.sent:
            assert row.provider_message_id == (answer.message_id[:200] if answer.message_id else None)
            assert row.sent_at is not None and row.last_error is None
        else:
            assert row.sent_at is None and row.last_error == answer.error
    assert report.sent == sum(1 for o, _ in answers if o is Outcome.sent)
    assert report.lost_claims == 0


def test_a_worker_whose_lease_was_taken_over_writes_nothing_over_the_other_record(session: Session) -> None:
    town = make_town(session)
    users = [make_user(session, town.town, Role.helper) for _ in range(4)]
    for i, user in enumerate(users):
        add_device(session, user, f"tok-slow-{i}")
        notify(session, user)
    with _worker_session() as slow:
        batch = claim_batch(slow, worker="slow", limit=10)
    assert len(batch.items) == 4
    # The slow worker's lease runs out while its batch is still on the wire; another takes the rows over.
    clock.advance(timedelta(seconds=get_settings().push_lease_seconds + 1))
    with _worker_session() as second:
        assert deliver_pending(second, provider=LoggingProvider(), worker="second").sent == 4
    taken_over = _rows(session)
    answers = [PushResult(Outcome.sent, message_id="late"), PushResult(Outcome.retry, error="late retry"),
               PushResult(Outcome.invalid_token, error="late invalid"), PushResult(Outcome.failed, error="late")]
    with _worker_session() as slow:
        report = record_results(slow, batch, {item.outbox_id: a for item, a in zip(batch.items, answers, strict=True)})
    assert report.lost_claims == 4 and report.sent == 0 and report.tokens_removed == 0
    after = _rows(session)
    for item in batch.items:
        row = after[item.outbox_id]
        assert row.status == PushStatus.sent.value
        assert row.provider_message_id == taken_over[item.outbox_id].provider_message_id != "late"
        assert row.sent_at == taken_over[item.outbox_id].sent_at
    assert session.execute(select(col(Device.id)).where(col(Device.push_token) == "tok-slow-2")).first() is not None


def test_a_record_while_another_worker_holds_the_rows_leaves_them_to_it(session: Session) -> None:
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    add_device(session, helper, "tok-held")
    notify(session, helper)
    with _worker_session() as slow:
        batch = claim_batch(slow, worker="slow", limit=10)
    clock.advance(timedelta(seconds=get_settings().push_lease_seconds + 1))
    with _worker_session() as second:
        second_batch = claim_batch(second, worker="second", limit=10)  # claimed, not yet answered
    assert [i.outbox_id for i in second_batch.items] == [i.outbox_id for i in batch.items]
    with _worker_session() as slow:
        report = record_results(slow, batch, {batch.items[0].outbox_id: PushResult(Outcome.sent, message_id="m")})
    assert report.lost_claims == 1 and report.sent == 0
    row = _rows(session)[batch.items[0].outbox_id]
    assert row.status == PushStatus.pending.value and row.claimed_by == second_batch.token
    with _worker_session() as second:
        report = record_results(second, second_batch,
                                {second_batch.items[0].outbox_id: PushResult(Outcome.sent, message_id="m2")})
    assert report.sent == 1
    assert _rows(session)[batch.items[0].outbox_id].provider_message_id == "m2"


class _PrepareBreaksOnSecondBatch:
    """A channel whose encoder breaks on the worker's second batch (the first is on the wire then)."""

    name = "breaks"
    max_batch = 500

    def __init__(self) -> None:
        self.prepared = 0
        self.sent: list[int] = []

    def send(self, messages: list[PushMessage]) -> list[PushResult]:
        return self.prepare(messages)()

    def prepare(self, messages: list[PushMessage]) -> Callable[[], list[PushResult]]:
        self.prepared += 1
        if self.prepared == 2:
            raise RuntimeError("encoder broke")

        def now() -> list[PushResult]:
            self.sent += [m.key for m in messages]
            return [PushResult(Outcome.sent, message_id=f"m-{m.key}") for m in messages]
        return now


def test_a_batch_on_the_wire_is_recorded_when_preparing_the_next_one_fails(session: Session) -> None:
    # The worker prepares batch n+1 while batch n is being sent. If that fails, batch n was still
    # sent: it must be recorded as sent, or it would be sent again when its lease ran out.
    town = make_town(session)
    users = [make_user(session, town.town, Role.helper) for _ in range(4)]
    for i, user in enumerate(users):
        add_device(session, user, f"tok-prep-{i}")
    notify(session, *users)
    provider = _PrepareBreaksOnSecondBatch()
    with _worker_session() as worker, pytest.raises(RuntimeError, match="encoder broke"):
        deliver_pending(worker, provider=provider, limit=2)
    rows = _rows(session)
    assert len(provider.sent) == 2
    assert {k for k, r in rows.items() if r.status == PushStatus.sent.value} == set(provider.sent)
    assert all(rows[k].provider_message_id == f"m-{k}" for k in provider.sent)
    clock.advance(timedelta(seconds=get_settings().push_lease_seconds + 1))
    with _worker_session() as worker:
        assert deliver_pending(worker, provider=provider, limit=2).sent == 2
    assert sorted(provider.sent) == sorted(rows)  # every push once, none twice
    assert {r.status for r in _rows(session).values()} == {PushStatus.sent.value}
