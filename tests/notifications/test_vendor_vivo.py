"""vivo Push, what only it does: text clipped to vivo's display width, a resend de-duplicated on
requestId, building the channel from its settings. What every vendor channel promises (format and
data, dead tokens, retries, auth renewal, two workers) is in test_vendor_contract.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from backend.core.config import get_settings
from backend.notifications.providers import PushMessage, provider_for
from backend.notifications.vendors.vivo import VivoProvider, clip
from tests.notifications.fake_http import channel_pointed_at
from tests.notifications.fake_vivo import FakeVivo, RunningFakeVivo, settings_env, start_fake_vivo


@pytest.fixture(scope="module")
def fake_vivo_server() -> Iterator[RunningFakeVivo]:
    running = start_fake_vivo()
    yield running
    running.stop()


@pytest.fixture
def vivo(database_url: str, fake_vivo_server: RunningFakeVivo, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeVivo]:
    """The vivo channel pointed at the fake server."""
    with channel_pointed_at(fake_vivo_server, settings_env(fake_vivo_server), monkeypatch) as fake:
        yield fake


def test_long_text_is_cut_to_what_vivo_shows_rather_than_refused(vivo: FakeVivo) -> None:
    assert clip("帮" * 30, 40) == "帮" * 20 and clip("a" * 50, 40) == "a" * 40 and clip("短", 40) == "短"


def test_a_vivo_push_resent_after_a_lost_answer_is_shown_once(vivo: FakeVivo) -> None:
    provider = provider_for("vivo")
    data = {"notification_id": "7", "kind": "test.ping", "title_zh": "提醒", "title_en": "Reminder",
            "body_zh": "请查看", "body_en": "Please check"}
    message = PushMessage(99, "v2-vivo_twice", "android", data, "vivo")
    [a] = provider.send([message])
    [b] = provider.send([message])  # the outbox resends when the first answer never reached it
    assert a.outcome.value == b.outcome.value == "sent" and a.message_id == b.message_id
    assert len(vivo.delivered_to("v2-vivo_twice")) == 1


def test_the_vivo_channel_is_built_from_its_settings_and_absent_without_them(
    vivo: FakeVivo, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backend.notifications.vendors import vivo as module

    assert isinstance(provider_for("vivo"), VivoProvider)
    monkeypatch.delenv("HULEI_VIVO_APP_SECRET")
    get_settings.cache_clear()
    assert module.from_settings(get_settings()) is None
