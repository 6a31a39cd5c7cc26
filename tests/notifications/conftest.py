"""Fixtures: the fake FCM server and the app configured to push through firebase-admin to it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from backend.core.config import get_settings
from backend.notifications import providers
from tests.notifications.fake_fcm import FakeFcm, RunningFakeFcm, start_fake_fcm


@pytest.fixture(scope="session")
def fake_fcm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningFakeFcm]:
    running = start_fake_fcm(tmp_path_factory.mktemp("fcm"))
    yield running
    running.stop()


@pytest.fixture
def fcm(database_url: str, fake_fcm_server: RunningFakeFcm, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeFcm]:
    """Push provider 'fcm' (firebase-admin) pointed at the fake server, fast retry backoff."""
    fake_fcm_server.fake.reset()
    monkeypatch.setenv("HULEI_PUSH_PROVIDER", "fcm")
    monkeypatch.setenv("HULEI_FCM_CREDENTIALS_FILE", str(fake_fcm_server.credentials_file))
    monkeypatch.setenv("HULEI_FCM_ENDPOINT", fake_fcm_server.base_url)
    monkeypatch.setenv("HULEI_PUSH_RETRY_BASE_SECONDS", "30")
    get_settings.cache_clear()
    yield fake_fcm_server.fake
    get_settings.cache_clear()


@pytest.fixture(autouse=True)
def _fresh_provider() -> Iterator[None]:
    providers._cached_provider.cache_clear()
    providers.clear_channel_providers()
    yield
    providers._cached_provider.cache_clear()
    providers.clear_channel_providers()

