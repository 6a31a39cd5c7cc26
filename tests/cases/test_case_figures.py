"""The map's and the monthly report's case figures: cases open, active, opened and closed, services
under way, overdue and done, and the month's mandatory reports by source, per unit, without names."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from backend.accounts.models import Agency
from backend.accounts.permissions import Role
from backend.core import clock
from tests.factories import make_town, make_user
from tests.helpers.factories import make_child
from tests.notifications.factories import headers_for
from tests.service_plans.factories import ensure_service_kinds
from tests.xlsx_support import read_workbook

API = "/api/v1"
# Mid-month in China, so nothing of the test crosses into another month.
START = datetime.fromisoformat("2026-11-10T10:00:00+08:00")


@pytest.fixture
def frozen() -> Iterator[None]:
    clock.freeze(START)
    yield
    clock.reset()


def _ok(resp: Any, status: int = 200) -> Any:
    assert resp.status_code == status, resp.text
    return resp.json()


def test_unit_figures_count_cases_services_and_reports_by_source(client: TestClient, session: Session,
                                                                 frozen: None) -> None:
    town = make_town(session)
    ensure_service_kinds(session)
    lead = make_user(session, town.town, Role.coordinator, agency=Agency.government)
    coordinator = headers_for(session, lead)
    v0, v1 = town.villages[0], town.villages[1]

    def open_case(grid: Any) -> dict[str, Any]:
        child = make_child(session, grid)
        return _ok(client.post(f"{API}/cases", json={"child_id": child.id, "reason": "专班研判"}, headers=coordinator),
                   201)

    def plan(case_id: int, kind: str, due_in_days: int) -> dict[str, Any]:
        due = (clock.now().astimezone(clock.SHANGHAI).date() + timedelta(days=due_in_days)).isoformat()
        return _ok(client.post(f"{API}/cases/{case_id}/services", json={"kind": kind, "due_on": due},
                               headers=coordinator), 201)

    def step(service_id: int, to: str, **body: Any) -> None:
        _ok(client.post(f"{API}/services/{service_id}/steps", json={"to_status": to, **body}, headers=coordinator))

    # Village 0: one case waiting (a legal-aid service that will be overdue, a counselling one done),
    # one active case.
    waiting = open_case(town.grids[0][0])
    late = plan(waiting["id"], "legal_aid", 3)
    counselling = plan(waiting["id"], "psychological", 20)
    step(counselling["id"], "in_progress")
    step(counselling["id"], "done", outcome="心理疏导六次，情绪稳定")
    active = open_case(town.grids[0][1])
    _ok(client.post(f"{API}/cases/{active['id']}/activate", headers=coordinator))
    # Village 1: a case closed this month; its planned service is no longer under way.
    closed = open_case(town.grids[1][0])
    plan(closed["id"], "living_aid", 2)
    _ok(client.post(f"{API}/cases/{closed['id']}/close", json={"reason": "risk_lowered"}, headers=coordinator))
    # Mandatory reports of village 0: a teacher's and a volunteer's.
    teacher = make_user(session, v0, Role.agency_staff, agency=Agency.education)
    volunteer = make_user(session, v0, Role.volunteer, agency=Agency.womens_federation)
    for who in (teacher, volunteer):
        _ok(client.post(f"{API}/mandatory-reports", json={
            "description": "发现孩子身上有伤", "place": "村口",
            "seen_at": (clock.now() - timedelta(hours=1)).isoformat()}, headers=headers_for(session, who)), 201)

    clock.advance(timedelta(days=5))  # the legal-aid service is now two days late
    coordinator = headers_for(session, lead)  # a token of the new day
    body = _ok(client.get(f"{API}/coverage", params={"month": "2026-11", "unit_id": town.town.id},
                          headers=coordinator))
    units = {f["properties"]["id"]: f["properties"] for f in body["features"] if f["properties"]["kind"] == "unit"}
    first, second = units[v0.id], units[v1.id]
    assert first["cases"] == {"open": 1, "active": 1, "opened": 2, "closed": 0}
    assert first["services"] == {"in_progress": 1, "overdue": 1, "done": 1}
    assert first["reports_by_source"] == {"school": 1, "volunteer": 1}
    assert second["cases"] == {"open": 0, "active": 0, "opened": 1, "closed": 1}
    assert second["services"] == {"in_progress": 0, "overdue": 0, "done": 0}
    assert second["reports_by_source"] == {}
    assert body["totals"]["cases"] == {"open": 1, "active": 1, "opened": 3, "closed": 1}
    assert body["totals"]["services"]["overdue"] == 1 and late["id"]

    report = _ok(client.post(f"{API}/reports/monthly", json={"month": "2026-11"}, headers=coordinator), 201)
    assert report["figures"]["cases"]["opened"] == 3 and report["figures"]["reports_by_source"]["school"] == 1
    xlsx = client.get(report["xlsx_url"], headers=coordinator)
    sheet = read_workbook(xlsx.content)["个案与服务"]
    rows = [[c.value for c in r] for r in sheet.iter_rows()]
    header = rows[0]
    assert header[:9] == ["单位代码", "单位", "待接手个案", "帮扶中个案", "本月新开个案", "本月结案", "进行中服务",
                          "逾期服务", "本月完成服务"]
    by_unit = {r[0]: dict(zip(header, r, strict=False)) for r in rows[1:] if r and r[0]}
    line = by_unit[v0.code]
    assert [line[h] for h in header[2:9]] == [1, 1, 2, 0, 1, 1, 1]
    assert (line["强制报告·学校"], line["强制报告·志愿者"], line["强制报告·入户走访"]) == (1, 1, 0)
    assert [by_unit[v1.code][h] for h in header[2:9]] == [0, 0, 1, 1, 0, 0, 0]
    # Counts only: no child's name anywhere in the sheet.
    text = " ".join(str(v) for r in rows for v in r if v is not None)
    assert "测试儿童" not in text
