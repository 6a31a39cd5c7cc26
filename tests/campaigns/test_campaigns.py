"""Campaigns, phases and the periods coverage is read for."""

from __future__ import annotations

from datetime import date, datetime

from fastapi.testclient import TestClient
from sqlmodel import Session

from backend.accounts.permissions import Role
from backend.campaigns import service as campaigns
from backend.core import clock
from tests.factories import make_town, sign_in, user_client


def test_default_campaign_has_seed_001_phases() -> None:
    c = campaigns.default_campaign(2026)
    assert c.name.startswith("利剑护蕾·雷霆行动")
    assert [(p.name_zh, p.start_date, p.end_date) for p in c.phases] == [
        ("动员部署", date(2026, 1, 1), date(2026, 1, 10)),
        ("排查整治", date(2026, 1, 11), date(2026, 6, 30)),
        ("巩固成果", date(2026, 7, 1), date(2026, 12, 31)),
    ]


def test_no_period_given_means_the_current_phase(client: TestClient, session: Session) -> None:
    clock.freeze(datetime(2026, 1, 10, 23, 0, tzinfo=clock.SHANGHAI))
    town = make_town(session)
    coordinator = user_client(client, session, town.town, Role.coordinator)
    body = client.get("/api/v1/campaigns/period", headers=coordinator.headers).json()
    assert (body["label_zh"].endswith("动员部署"), body["key"]) == (True, "phase:lijian-hulei-2026:mobilisation")
    clock.freeze(datetime(2026, 1, 11, 0, 30, tzinfo=clock.SHANGHAI))  # 10 Jan 16:30 UTC, already 11 Jan in China
    coordinator = sign_in(client, coordinator.user)
    body = client.get("/api/v1/campaigns/period", headers=coordinator.headers).json()
    assert body["start_date"] == "2026-01-11" and body["end_date"] == "2026-06-30"


def test_month_and_dates_resolve_to_inclusive_china_days(client: TestClient, session: Session) -> None:
    town = make_town(session)
    coordinator = user_client(client, session, town.town, Role.coordinator)
    feb = client.get("/api/v1/campaigns/period", params={"month": "2028-02"}, headers=coordinator.headers).json()
    assert (feb["start_date"], feb["end_date"], feb["key"]) == ("2028-02-01", "2028-02-29", "month:2028-02")
    rng = client.get("/api/v1/campaigns/period", params={"from": "2026-05-01", "to": "2026-05-07"},
                     headers=coordinator.headers).json()
    assert (rng["kind"], rng["key"]) == ("range", None)
    period = campaigns.month_period("2026-03")
    assert period.start_at.isoformat() == "2026-02-28T16:00:00+00:00"
    assert period.end_at.isoformat() == "2026-03-31T16:00:00+00:00"
    # Seed 002's reading by default (the 17th of the month itself); the following month's as a setting.
    assert campaigns.due_date_for_month("2026-12") == date(2026, 12, 17)
    assert campaigns.due_date_for_month("2026-12", campaigns.FOLLOWING_MONTH) == date(2027, 1, 17)


def test_a_stored_campaign_replaces_the_default_and_checks_its_phases(client: TestClient, session: Session) -> None:
    clock.freeze(datetime(2025, 4, 1, 12, 0, tzinfo=clock.SHANGHAI))
    town = make_town(session)
    coordinator = user_client(client, session, town.town, Role.coordinator)
    body = {"code": "county-2025", "name": "县级专项行动2025", "start_date": "2025-02-01", "end_date": "2025-11-30",
            "phases": [{"code": "a", "name_zh": "动员部署", "name_en": "Mobilisation", "start_date": "2025-02-01",
                        "end_date": "2025-02-28"},
                       {"code": "b", "name_zh": "排查整治", "name_en": "Investigation", "start_date": "2025-02-20",
                        "end_date": "2025-11-30"}]}
    overlapping = client.post("/api/v1/campaigns", json=body, headers=coordinator.headers)
    assert overlapping.status_code == 422
    body["phases"][1]["start_date"] = "2025-03-01"
    created = client.post("/api/v1/campaigns", json=body, headers=coordinator.headers)
    assert created.status_code == 201, created.text
    again = client.post("/api/v1/campaigns", json=body, headers=coordinator.headers)
    assert again.status_code == 409
    current = client.get("/api/v1/campaigns/period", headers=coordinator.headers).json()
    assert (current["start_date"], current["end_date"], current["key"]) == ("2025-03-01", "2025-11-30",
                                                                            "phase:county-2025:b")
    listed = client.get("/api/v1/campaigns", params={"year": 2025}, headers=coordinator.headers).json()
    assert {c["code"] for c in listed} == {"county-2025", "lijian-hulei-2025"}
    volunteer = user_client(client, session, town.villages[0], Role.volunteer)
    assert client.post("/api/v1/campaigns", json={**body, "code": "x"}, headers=volunteer.headers).status_code == 403
