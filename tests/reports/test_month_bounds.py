"""A month no calendar arithmetic can reach (year 0000 or 9999) is a clear 422, never a 500."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from tests.registry.factories import make_world


@pytest.mark.parametrize("month", ["9999-12", "0000-01", "1999-12"])
def test_every_month_parameter_refuses_a_month_outside_this_century(
    client: TestClient, session: Session, month: str
) -> None:
    w = make_world(client, session)
    h = w.coordinator.headers
    answers = [
        client.get("/api/v1/coverage", params={"month": month}, headers=h),
        client.get("/api/v1/coverage/not-visited", params={"month": month}, headers=h),
        client.get("/api/v1/reports/monthly/status", params={"month": month}, headers=h),
        client.get("/api/v1/reports/monthly", params={"month": month}, headers=h),
        client.post("/api/v1/reports/monthly", json={"month": month}, headers=h),
    ]
    assert [r.status_code for r in answers] == [422] * len(answers), [r.text for r in answers]
