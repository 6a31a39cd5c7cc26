"""Every error is RFC 9457 problem+json with a stable type, in zh-CN or en."""

from __future__ import annotations

from fastapi.testclient import TestClient

from backend.core.errors import negotiate_locale


def test_unknown_route_is_a_problem(client: TestClient) -> None:
    resp = client.get("/api/v1/nowhere")
    assert resp.status_code == 404
    assert resp.headers["content-type"] == "application/problem+json"
    body = resp.json()
    assert body["type"] == "urn:hulei:problem:not-found"
    assert body["status"] == 404
    assert body["title"] == "未找到"
    assert body["instance"] == "/api/v1/nowhere"


def test_validation_errors_name_each_field_in_chinese_by_default(client: TestClient) -> None:
    resp = client.post("/api/v1/auth/login", json={"password": ""})
    assert resp.status_code == 422
    body = resp.json()
    assert body["code"] == "invalid-input"
    fields = {e["field"]: e["message"] for e in body["errors"]}
    assert fields["phone"] == "缺少必填项"
    assert fields["password"] == "内容过短"


def test_validation_errors_in_english_when_asked(client: TestClient) -> None:
    resp = client.post("/api/v1/auth/login", json={}, headers={"Accept-Language": "en"})
    assert resp.json()["title"] == "Invalid input"
    assert resp.headers["content-language"] == "en"


def test_broken_json_body_is_a_problem_not_a_crash(client: TestClient) -> None:
    resp = client.post("/api/v1/auth/login", content=b"{not json", headers={"Content-Type": "application/json"})
    assert resp.status_code == 422
    assert resp.json()["code"] == "invalid-input"


def test_language_negotiation_honours_quality_values() -> None:
    assert negotiate_locale(None) == "zh-CN"
    assert negotiate_locale("en-GB") == "en"
    assert negotiate_locale("zh-CN,zh;q=0.9,en;q=0.8") == "zh-CN"
    assert negotiate_locale("fr, en;q=0.5") == "en"
    assert negotiate_locale("en;q=0.2, zh;q=0.9") == "zh-CN"
