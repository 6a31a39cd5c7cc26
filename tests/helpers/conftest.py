"""The fake FCM fixtures, shared with the notification tests."""

from tests.notifications.conftest import _fresh_provider, fake_fcm_server, fcm  # noqa: F401
