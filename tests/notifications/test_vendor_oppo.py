"""OPPO Push, what only it does: a token refused twice, batch unicast split so one call never names a
phone twice, building the channel from its settings. What every vendor channel promises (format and
data, dead tokens, retries, auth renewal, two workers) is in test_vendor_contract.py."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlmodel import Session

from backend.accounts.models import Device
from backend.accounts.permissions import Role
from backend.core.config import get_settings
from backend.core.db import get_engine
from backend.notifications.delivery import dedupe_id, deliver_once, deliver_pending
from backend.notifications.models import PushOutbox
from backend.notifications.providers import PushMessage, provider_for
from backend.notifications.vendors.oppo import OppoProvider
from tests.factories import make_town, make_user
from tests.notifications.factories import add_device, notify
from tests.notifications.fake_http import channel_pointed_at
from tests.notifications.fake_oppo import FakeOppo, RunningFakeOppo, settings_env, start_fake_oppo


@pytest.fixture(scope="module")
def fake_oppo_server() -> Iterator[RunningFakeOppo]:
    running = start_fake_oppo()
    yield running
    running.stop()


@pytest.fixture
def oppo(database_url: str, fake_oppo_server: RunningFakeOppo, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOppo]:
    """The oppo channel pointed at the fake server."""
    with channel_pointed_at(fake_oppo_server, settings_env(fake_oppo_server), monkeypatch) as fake:
        yield fake


def _worker() -> Session:
    return Session(get_engine(), expire_on_commit=False)


def test_an_oppo_token_refused_twice_in_a_row_is_retried_later_not_dropped(session: Session, oppo: FakeOppo) -> None:
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    add_device(session, helper, "CN_oppo_refused", channel="oppo")
    oppo.fail_next("CN_oppo_refused", "AUTH_EXPIRED", "AUTH_EXPIRED")
    notify(session, helper)
    with _worker() as worker:
        assert deliver_pending(worker, time_budget_seconds=5).retried == 1
    assert oppo.tokens_issued == 2  # one renewal per call, no loop
    session.expire_all()
    assert len(session.execute(select(Device)).scalars().all()) == 1


def test_a_batch_goes_to_oppo_in_one_call_even_with_two_pushes_for_the_same_phone(
    session: Session, oppo: FakeOppo
) -> None:
    town = make_town(session)
    users = [make_user(session, town.town, Role.helper) for _ in range(5)]
    for i, user in enumerate(users):
        add_device(session, user, f"CN_oppo_many_{i}", channel="oppo")
    notify(session, *users)
    notify(session, users[0])  # a second push to the same phone in the same batch
    with _worker() as worker:
        assert deliver_once(worker).sent == 6
    assert oppo.calls == 2  # one call for five phones, one for the repeat (results are keyed by phone)
    assert len(oppo.delivered_to("CN_oppo_many_0")) == 2
    assert len({p["data"]["notification_id"] for p in oppo.delivered_to("CN_oppo_many_0")}) == 2


def test_the_oppo_channel_is_built_from_its_settings_and_absent_without_them(
    oppo: FakeOppo, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backend.notifications.vendors import oppo as module

    assert isinstance(provider_for("oppo"), OppoProvider)
    monkeypatch.delenv("HULEI_OPPO_MASTER_SECRET")
    get_settings.cache_clear()
    assert module.from_settings(get_settings()) is None


def test_oppo_drops_a_resend_of_one_row_but_not_a_row_of_the_same_id_queued_elsewhere(
    session: Session, oppo: FakeOppo
) -> None:
    # OPPO keeps every appMessageId it has seen: a bare outbox id would make a reset database's (or a
    # second environment's) first pushes look like resends and vanish.
    town = make_town(session)
    helper = make_user(session, town.town, Role.helper)
    add_device(session, helper, "CN_oppo_dedupe", channel="oppo")
    notify(session, helper)
    with _worker() as worker:
        assert deliver_pending(worker, time_budget_seconds=5).sent == 1
    row = session.execute(select(PushOutbox)).scalars().one()
    [sent] = oppo.delivered_to("CN_oppo_dedupe")
    assert sent["message"]["notification"]["appMessageId"] == dedupe_id(int(row.id or 0), row.created_at)
    data = dict(sent["data"])
    provider = provider_for("oppo")
    again = PushMessage(int(row.id or 0), "CN_oppo_dedupe", "android", data, "oppo",
                        dedupe_id(int(row.id or 0), row.created_at))
    elsewhere = PushMessage(int(row.id or 0), "CN_oppo_dedupe", "android", data, "oppo",
                            dedupe_id(int(row.id or 0), row.created_at + timedelta(days=3)))
    assert [r.outcome.value for r in provider.send([again])] == ["sent"]
    assert len(oppo.delivered_to("CN_oppo_dedupe")) == 1  # the resend is the same push
    assert [r.outcome.value for r in provider.send([elsewhere])] == ["sent"]
    assert len(oppo.delivered_to("CN_oppo_dedupe")) == 2  # another database's row is a new push


_texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(_texts, min_size=1, max_size=6))
def test_any_text_reaches_oppo_unchanged_through_the_form_body(oppo: FakeOppo, values: list[str]) -> None:
    # The batch's form body is encoded by yarl's quoter, not urllib's: whatever a title or a data
    # value holds (&, =, +, %, #, newlines, any script, characters outside the BMP) the vendor's
    # form parser must read back exactly what was sent.
    oppo.reset()
    data = {"notification_id": "1", "kind": "test.ping", "title_zh": values[0], "title_en": "t", "body_zh": values[-1],
            "body_en": "b", **{f"k{i}": v for i, v in enumerate(values)}}
    messages = [PushMessage(i + 1, f"CN_oppo_text_{i}", "android", data, "oppo", f"{i + 1}-abc") for i in range(3)]
    assert [r.outcome.value for r in provider_for("oppo").send(messages)] == ["sent"] * 3
    for i in range(3):
        [delivered] = oppo.delivered_to(f"CN_oppo_text_{i}")
        assert delivered["data"] == data
        assert delivered["message"]["notification"]["title"] == values[0][:50]
        assert delivered["message"]["notification"]["content"] == values[-1][:200]


def test_a_push_oppo_cannot_be_sent_fails_alone_and_the_rest_of_its_batch_goes(oppo: FakeOppo) -> None:
    # A lone surrogate (SQLite keeps whatever text it is given) cannot be encoded as UTF-8: that one
    # message is failed, never the batch it came in.
    good = {"notification_id": "1", "kind": "test.ping", "title_zh": "新的任务", "title_en": "t",
            "body_zh": "请打开应用", "body_en": "b"}
    messages = [PushMessage(1, "CN_oppo_ok_1", "android", good, "oppo", "1-a"),
                PushMessage(2, "CN_oppo_bad", "android", {**good, "body_zh": "坏\ud800"}, "oppo", "2-a"),
                PushMessage(3, "CN_oppo_ok_2", "android", good, "oppo", "3-a")]
    assert [r.outcome.value for r in provider_for("oppo").send(messages)] == ["sent", "failed", "sent"]
    assert oppo.calls == 1
    assert oppo.delivered_to("CN_oppo_bad") == []
    assert len(oppo.delivered_to("CN_oppo_ok_1")) == len(oppo.delivered_to("CN_oppo_ok_2")) == 1
