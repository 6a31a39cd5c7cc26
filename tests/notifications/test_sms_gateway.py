"""The SMS providers: what the generic government SMS platform adapter sends and how it reads the
answer, and that nothing but the generic text and the number ever leaves (the number never in logs)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from backend.core.config import Settings, get_settings
from backend.notifications import sms
from backend.notifications.sms import (
    HttpGatewaySmsProvider,
    LoggingSmsProvider,
    SmsConfigError,
    SmsMessage,
    SmsOutcome,
)
from tests.notifications.fake_sms_gateway import FakeSmsGateway, RunningFakeSmsGateway, start_fake_sms_gateway

QUEUED = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
PHONE = "13812341234"
TEXT = "【护蕾】您有一条重要待办事项，请尽快登录护蕾App查看处理。"
JSON_TEMPLATE = '{"phone": "{phone}", "content": "{text}", "requestId": "{request_id}"}'


@pytest.fixture(scope="module")
def sms_server() -> Iterator[RunningFakeSmsGateway]:
    running = start_fake_sms_gateway()
    yield running
    running.stop()


@pytest.fixture
def gateway(sms_server: RunningFakeSmsGateway) -> Iterator[FakeSmsGateway]:
    sms_server.fake.reset()
    yield sms_server.fake
    sms_server.fake.reset()


@pytest.fixture(autouse=True)
def _fresh_sms_providers() -> Iterator[None]:
    sms.clear_sms_providers()
    yield
    sms.clear_sms_providers()


def _provider(gateway: FakeSmsGateway, **overrides: Any) -> HttpGatewaySmsProvider:
    options: dict[str, Any] = {"url": gateway.url, "body_template": JSON_TEMPLATE, "success_field": "code",
                               "success_value": "0", "message_id_field": "msgId", "timeout_seconds": 5.0}
    options.update(overrides)
    return HttpGatewaySmsProvider(**options)


def _send(provider: HttpGatewaySmsProvider, text: str = TEXT, phone: str = PHONE, key: int = 7) -> sms.SmsResult:
    try:
        [result] = provider.send([SmsMessage(key, phone, text, queued_at=QUEUED)])
    finally:
        provider.close()
    return result


def test_a_json_gateway_gets_the_number_and_the_generic_text_and_its_message_id_is_kept(
    gateway: FakeSmsGateway
) -> None:
    result = _send(_provider(gateway))
    assert (result.outcome, result.message_id) == (SmsOutcome.sent, "sms-1")
    [request] = gateway.requests
    assert request["headers"]["content-type"].startswith("application/json")
    assert request["body"] == {"phone": PHONE, "content": TEXT, "requestId": "hulei-sms-7-19e80e8c900"}


def test_the_request_id_names_the_row_and_when_it_was_queued_so_a_reset_database_never_reuses_one(
    gateway: FakeSmsGateway
) -> None:
    # A de-duplicating platform shared by two databases (or one reset) must not drop a real SMS
    # because an outbox row id came round again.
    gateway.dedupe = True
    provider = _provider(gateway)
    try:
        for queued_at in (QUEUED, datetime(2026, 6, 2, 2, 0, tzinfo=UTC)):
            [result] = provider.send([SmsMessage(7, PHONE, TEXT, queued_at=queued_at)])
            assert result.outcome is SmsOutcome.sent
    finally:
        provider.close()
    ids = [r["body"]["requestId"] for r in gateway.requests]
    assert ids[0] != ids[1] and all(i.startswith("hulei-sms-7-") for i in ids)
    assert len(gateway.delivered_to(PHONE)) == 2


def test_quotes_braces_and_placeholders_in_the_text_stay_text(gateway: FakeSmsGateway) -> None:
    tricky = '【护蕾】请"查看" {phone} \\ }{ "}, "phone": "x 待办'
    template = json.dumps({"mobiles": ["{phone}"], "msg": {"body": "{text}", "sign": "护蕾"}, "priority": 5,
                           "tpl": "{template_id}", "ts": "{timestamp}", "phone": "{phone}"})
    provider = _provider(gateway, body_template=template)
    try:
        [result] = provider.send([SmsMessage(3, PHONE, tricky, "TPL_001", queued_at=QUEUED)])
    finally:
        provider.close()
    assert result.outcome is SmsOutcome.sent
    body = gateway.requests[0]["body"]
    assert body["msg"] == {"body": tricky, "sign": "护蕾"}  # exactly the text, no extra fields injected
    assert body["mobiles"] == [PHONE] and body["phone"] == PHONE and body["priority"] == 5
    assert body["tpl"] == "TPL_001" and len(body["ts"]) == 14 and body["ts"].isdigit()


def test_a_form_gateway_gets_form_fields(gateway: FakeSmsGateway) -> None:
    template = '{"phone": "{phone}", "content": "{text}", "sign": "护蕾 & co"}'
    assert _send(_provider(gateway, content_type="form", body_template=template)).outcome is SmsOutcome.sent
    [request] = gateway.requests
    assert request["headers"]["content-type"].startswith("application/x-www-form-urlencoded")
    assert request["body"] == {"phone": PHONE, "content": TEXT, "sign": "护蕾 & co"}


@pytest.mark.parametrize(("auth", "options"), [
    (("basic", "hulei:s3cret"), {"username": "hulei", "password": "s3cret"}),
    (("bearer", "tok-123"), {"token": "tok-123"}),
])
def test_basic_and_bearer_authentication_are_sent_and_wrong_credentials_fail(
    gateway: FakeSmsGateway, auth: tuple[str, str], options: dict[str, str]
) -> None:
    gateway.auth = auth
    assert _send(_provider(gateway, **options)).outcome is SmsOutcome.sent
    wrong = {k: v + "x" for k, v in options.items()}
    result = _send(_provider(gateway, **wrong))
    assert (result.outcome, result.error) == (SmsOutcome.failed, "HTTP 401")
    assert len(gateway.delivered) == 1


@pytest.mark.parametrize(("error", "outcome", "may_have_arrived"), [
    ("503", SmsOutcome.retry, True), ("500", SmsOutcome.retry, True), ("429", SmsOutcome.retry, False),
    ("400", SmsOutcome.failed, False), ("code1", SmsOutcome.failed, False),
])
def test_busy_answers_are_retried_later_and_refusals_fail(gateway: FakeSmsGateway, error: str,
                                                          outcome: SmsOutcome, may_have_arrived: bool) -> None:
    gateway.fail_next(PHONE, error)
    result = _send(_provider(gateway))
    assert result.outcome is outcome
    # A 5xx may come after the platform sent the SMS: the outbox keeps the allowance unit of it.
    assert result.may_have_arrived is may_have_arrived
    assert gateway.attempts[PHONE] == 1  # never resent within the call
    assert PHONE not in (result.error or "")


def test_a_success_field_can_be_nested_and_without_one_any_2xx_is_success(gateway: FakeSmsGateway) -> None:
    assert _send(_provider(gateway, success_field=None, message_id_field=None)).outcome is SmsOutcome.sent
    result = _send(_provider(gateway, success_field="result.code"))
    assert (result.outcome, result.error) == (SmsOutcome.failed, "result.code=missing")


def test_a_number_that_is_not_a_mainland_mobile_fails_without_a_request(gateway: FakeSmsGateway) -> None:
    for phone in ("01088886666", "1381234123", "+8613812341234", ""):
        assert _send(_provider(gateway), phone=phone).outcome is SmsOutcome.failed
    assert gateway.requests == []


def test_a_text_carrying_numbers_is_never_sent(gateway: FakeSmsGateway) -> None:
    for text in ("请联系13800138000", "身份证110101201001011234", "案件编号123456"):
        result = _send(_provider(gateway), text=text)
        assert result.outcome is SmsOutcome.failed and "refused" in (result.error or "")
    assert gateway.requests == []


class _Silent:
    """A server that reads requests and never answers: every call through it times out."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.accepted = 0
        self.conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/sms/send"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            self.conns.append(conn)

    def close(self) -> None:
        for conn in self.conns:
            conn.close()
        self.sock.close()


def test_a_gateway_that_never_answers_leaves_the_sms_unconfirmed_and_it_is_not_resent() -> None:
    silent = _Silent()
    try:
        provider = HttpGatewaySmsProvider(url=silent.url, body_template=JSON_TEMPLATE, timeout_seconds=0.3)
        result = _send(provider)
        assert (result.outcome, result.error, result.may_have_arrived) == (
            SmsOutcome.unconfirmed, "ReadTimeout", True)
        assert silent.accepted == 1
    finally:
        silent.close()


def test_the_gateway_timeout_is_the_sms_setting_not_the_push_one() -> None:
    silent = _Silent()
    try:
        settings = _settings(sms_provider="http", sms_gateway_url=silent.url, sms_http_timeout_seconds=0.3,
                             push_http_timeout_seconds=30.0)
        provider = HttpGatewaySmsProvider.from_settings(settings)
        started = time.monotonic()
        result = _send(provider)
        assert time.monotonic() - started < 5
        assert result.outcome is SmsOutcome.unconfirmed
    finally:
        silent.close()
    assert Settings().sms_http_timeout_seconds == 10.0


def test_an_unreachable_gateway_is_retried_later() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    provider = HttpGatewaySmsProvider(url=f"http://127.0.0.1:{port}/sms", body_template=JSON_TEMPLATE,
                                      timeout_seconds=1.0)
    result = _send(provider)
    assert result.outcome is SmsOutcome.retry
    assert result.may_have_arrived is False  # nothing left: its allowance unit is given back


def test_the_logging_provider_logs_the_outbox_row_and_a_masked_number_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO")
    [result] = LoggingSmsProvider().send([SmsMessage(41, PHONE, TEXT, queued_at=QUEUED)])
    assert result.outcome is SmsOutcome.sent
    assert "sms 41 to 138****1234" in caplog.text
    assert PHONE not in caplog.text and TEXT not in caplog.text


def test_the_http_provider_logs_a_masked_number_only(gateway: FakeSmsGateway,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO")
    gateway.fail_next(PHONE, "503")
    _send(_provider(gateway))
    _send(_provider(gateway))
    assert "138****1234" in caplog.text and PHONE not in caplog.text and TEXT not in caplog.text


def _settings(**values: Any) -> Settings:
    return get_settings().model_copy(update=values)


@pytest.mark.parametrize(("values", "problem"), [
    ({"sms_text_zh": "【护蕾】请回电13800138000"}, "HULEI_SMS_TEXT_ZH"),
    ({"sms_text_zh": "【护蕾】案件123456待处理"}, "HULEI_SMS_TEXT_ZH"),
    ({"sms_text_zh": "  "}, "HULEI_SMS_TEXT_ZH"),
    # Numbers however written (outside test): spaced, in Chinese numerals, financial numerals.
    ({"sms_text_zh": "【护蕾】请联系 138 1234 5678"}, "HULEI_SMS_TEXT_ZH"),
    ({"sms_text_zh": "【护蕾】请回电一三八一二三四五六七八"}, "HULEI_SMS_TEXT_ZH"),
    ({"sms_text_zh": "【护蕾】请回电壹叁捌-壹贰叁肆-伍陆柒捌"}, "HULEI_SMS_TEXT_ZH"),
    ({"sms_provider": "carrier-pigeon"}, "unknown SMS provider"),
    ({"sms_provider": "http", "sms_gateway_url": None}, "HULEI_SMS_GATEWAY_URL"),
    ({"sms_provider": "http", "sms_gateway_url": "http://x", "sms_gateway_body_template": "[1]"}, "JSON object"),
    ({"sms_provider": "http", "sms_gateway_url": "http://x", "sms_gateway_body_template": "{"}, "not JSON"),
    ({"sms_provider": "http", "sms_gateway_url": "http://x", "sms_gateway_content_type": "xml"}, "json or form"),
])
def test_settings_that_would_text_personal_data_or_cannot_work_are_refused(values: dict[str, Any],
                                                                          problem: str) -> None:
    with pytest.raises(SmsConfigError, match=problem):
        sms.check_sms_settings(_settings(**values))


def test_a_text_with_numbers_stops_the_provider_from_being_built(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HULEI_SMS_TEXT_ZH", "【护蕾】请回电13800138000")
    get_settings.cache_clear()
    with pytest.raises(SmsConfigError):
        sms.get_sms_provider()
    monkeypatch.delenv("HULEI_SMS_TEXT_ZH")
    get_settings.cache_clear()
    assert sms.get_sms_provider() is sms.get_sms_provider()  # built once per configuration
    get_settings.cache_clear()


def test_the_default_text_passes_the_payload_rules() -> None:
    sms.check_sms_settings(Settings())
    # A generic sentence may count in words: 一条 is not a number anyone could call.
    sms.check_sms_settings(_settings(sms_text_zh="【护蕾】您有一条紧急提醒未读，请打开护蕾应用查看。"))


def test_a_worker_with_a_text_that_holds_a_number_refuses_to_start_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from backend.cli import app

    monkeypatch.setenv("HULEI_SMS_TEXT_ZH", "【护蕾】请联系 138 1234 5678")
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["worker", "--once"])
    get_settings.cache_clear()
    assert result.exit_code == 1
    assert "refusing to start the worker: HULEI_SMS_TEXT_ZH" in result.output
    assert "Traceback" not in result.output
