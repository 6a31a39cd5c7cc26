"""Honor Push, what only it does: a partial-success answer marks only the failed token dead. What
every vendor channel promises (format and data, dead tokens, retries, auth renewal, two workers) is
in test_vendor_contract.py."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from backend.core.config import get_settings
from backend.notifications.providers import PushMessage
from backend.notifications.vendors import honor
from tests.notifications.fake_honor import FakeHonor, RunningFakeHonor, settings_env, start_fake_honor
from tests.notifications.fake_http import channel_pointed_at


@pytest.fixture(scope="module")
def honor_server() -> Iterator[RunningFakeHonor]:
    running = start_fake_honor()
    yield running
    running.stop()


@pytest.fixture
def fake(database_url: str, honor_server: RunningFakeHonor, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHonor]:
    """The Honor channel configured against the fake Honor Push, retry backoff from 30 s."""
    with channel_pointed_at(honor_server, settings_env(honor_server), monkeypatch) as fake:
        yield fake


def test_a_partial_success_marks_only_the_failed_token_dead(fake: FakeHonor) -> None:
    provider = honor.from_settings(get_settings())
    assert provider is not None
    try:
        fake.always_fail("hn-part-dead", "INVALID_TOKEN")
        # One request naming two tokens, as Honor answers it (80100000 with data.failTokens).
        content = provider.build(PushMessage(1, "hn-part-ok", "android", {"notification_id": "1", "title_zh": "提醒",
                                                                         "body_zh": "请查看"}, "honor"))
        content["token"] = ["hn-part-ok", "hn-part-dead"]
        resp = httpx.post(provider.send_url, json=content, headers=provider.headers(provider.tokens.get()))
        for token, outcome in (("hn-part-ok", "sent"), ("hn-part-dead", "invalid_token")):
            answer = provider.read(resp, PushMessage(1, token, "android", {}, "honor"))
            assert answer.result.outcome.value == outcome
    finally:
        provider.close()
    assert [m["token"] for m in fake.delivered] == ["hn-part-ok"]
