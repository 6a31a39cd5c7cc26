"""The case loop of issue 16 against the demo town, as the README walks it: a school files a clue, the
police acknowledge it and a case opens, services are referred to the 司法所 and completed, a helper
is assigned and follows up offline, the coordinator closes the case and the helper is free.

    uv run python scripts/walkthrough_cases.py [--base http://127.0.0.1:8000]

runs it against `make run`'s server (the demo accounts, password Hulei-demo-2026) and prints each
step; tests/cases/test_walkthrough.py runs the same function through the app on both backends. It may
be run again and again on one server: each run picks a child of 青山村 who never had a case.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

API = "/api/v1"
PASSWORD = "Hulei-demo-2026"
TEACHER, JUDICIAL, COORDINATOR, POLICE, HELPER = (
    "19900000012", "19900000013", "19900000003", "19900000004", "19900000009")


class StepFailed(RuntimeError):
    pass


def _json(resp: httpx.Response, *expected: int) -> Any:
    if resp.status_code not in (expected or (200,)):
        raise StepFailed(f"{resp.request.method} {resp.request.url.path} answered {resp.status_code}: {resp.text}")
    return resp.json() if resp.content else None


def walk(http: httpx.Client, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the loop; answers what it made (ids), raising StepFailed at the first unexpected answer."""

    def sign_in(phone: str) -> dict[str, str]:
        token = _json(http.post(f"{API}/auth/login", json={"phone": phone, "password": PASSWORD}))
        return {"Authorization": f"Bearer {token['access_token']}", "Accept-Language": "zh-CN"}

    teacher, judicial, coordinator, police, helper = (sign_in(p) for p in (TEACHER, JUDICIAL, COORDINATOR, POLICE,
                                                                           HELPER))
    now = datetime.now(UTC)

    # 1. A teacher of 青山村's school files a clue (强制报告). She does not see the registry: she
    #    describes the child as she knows her.
    report = _json(http.post(f"{API}/mandatory-reports", headers=teacher, json={
        "description": "学生上课时情绪低落，手臂有多处淤青，称放学后被人带去网吧附近", "place": "青山村小学",
        "seen_at": (now - timedelta(hours=3)).isoformat(), "reporter_contact": "19900000012",
        "child": {"name": "小红", "age": "约10岁", "sex": "female", "note": "四年级学生"}}), 201)
    say(f"1. 学校老师报告线索 #{report['id']}: 来源 {report['source_kind']}, 状态 {report['status']}")

    # 2. The police of the town see it in their queue and acknowledge it, linking the registered child
    #    they identified: a case (个案) opens for her.
    queue = _json(http.get(f"{API}/referrals", headers=police, params={"include_direct_reports": "true"}))
    assert any(r["id"] == report["id"] for r in queue), "the report is in the police's queue"
    child_id = _a_child_never_in_a_case(http, police, coordinator)
    received = _json(http.post(f"{API}/referrals/{report['id']}/receive", headers=police, json={"child_id": child_id}))
    status = _json(http.get(f"{API}/mandatory-reports/{report['id']}", headers=teacher))["status"]
    say(f"2. 派出所接收线索 #{received['id']}，认定儿童 {child_id}；报告人看到状态：{status}")
    [case] = [c for c in _json(http.get(f"{API}/cases", headers=coordinator, params={"child_id": child_id}))
              if c["status"] != "closed"]
    assert case["opened_from"] == "mandatory_report" and case["source_id"] == report["id"]
    say(f"   个案 #{case['id']} 已开立（{case['status']}，来源 强制报告）")

    # 3. The coordinator plans services and refers the legal aid to the town's 司法所, sharing only what
    #    it needs; the 司法所 accepts and later completes it.
    due = (now + timedelta(days=14)).date().isoformat()
    legal = _json(http.post(f"{API}/cases/{case['id']}/services", headers=coordinator,
                            json={"kind": "legal_aid", "due_on": due, "note": "协助监护人报案及后续诉讼"}), 201)
    counselling = _json(http.post(f"{API}/cases/{case['id']}/services", headers=coordinator,
                                  json={"kind": "psychological", "due_on": due}), 201)
    town_id = _json(http.get(f"{API}/org-units/mine", headers=coordinator))["id"]
    referral = _json(http.post(f"{API}/cases/{case['id']}/referrals", headers=coordinator, json={
        "service_id": legal["id"], "to_unit_id": town_id, "to_agency": "judicial",
        "shared_fields": ["child_age", "child_gender", "guardian_phone", "needs_summary"],
        "message": "请为该儿童提供法律援助"}), 201)
    incoming = _json(http.get(f"{API}/agency-referrals/{referral['id']}", headers=judicial))
    assert "child_name" not in incoming["shared"], "the 司法所 sees only the shared fields"
    _json(http.post(f"{API}/agency-referrals/{referral['id']}/accept", headers=judicial, json={}))
    done = _json(http.post(f"{API}/agency-referrals/{referral['id']}/complete", headers=judicial,
                           json={"outcome": "已指派律师，协助监护人完成报案"}))
    legal_now = _json(http.get(f"{API}/services/{legal['id']}", headers=coordinator))
    say(f"3. 法律援助转介司法所 #{referral['id']}：司法所看到 {sorted(incoming['shared'])}，"
        f"已接收并办结（{done['status']}）；服务状态 {legal_now['status']}")

    # 4. A helper is assigned: the coordinator makes the demo helper a helper (once), runs the matcher
    #    for this child, confirms its proposal, and the helper accepts: the case is active.
    helper_user = _json(http.get(f"{API}/me", headers=helper))
    helpers = _json(http.get(f"{API}/helpers", headers=coordinator))
    mine = next((h for h in helpers if h["user_id"] == helper_user["id"]), None)
    if mine is None:
        mine = _json(http.post(f"{API}/helpers", headers=coordinator, json={
            "user_id": helper_user["id"], "sex": "female", "skills": ["psychology", "legal_aid"], "capacity": 20}),
            201)
    proposals = _json(http.post(f"{API}/helpers/proposals", headers=coordinator, params={"child_id": child_id}))
    offer = next((a for a in proposals if a["child_id"] == child_id), None)
    if offer is None:
        raise StepFailed(f"the matcher proposed no helper for child {child_id}: {proposals}")
    _json(http.post(f"{API}/helpers/assignments/{offer['id']}/confirm", headers=coordinator))
    accepted = _json(http.post(f"{API}/helpers/assignments/{offer['id']}/accept", headers=helper))
    active = _json(http.get(f"{API}/cases/{case['id']}", headers=coordinator))
    say(f"4. 帮扶人 #{accepted['helper_id']} 接受帮扶 #{accepted['id']}；个案状态 {active['status']}")

    # 5. The helper's phone pulls her case and its services, then, offline, records a follow-up visit
    #    and a step of the counselling service; the answer of the first push is lost and the phone
    #    sends the same items again: each is stored once.
    pulled = _pull_all(http, helper)
    assert case["id"] in pulled.get("case", {}), "the helper's phone holds her case"
    assert counselling["id"] in pulled.get("service", {}), "and its services"
    visited = (datetime.now(UTC) - timedelta(minutes=30)).replace(microsecond=0).isoformat()
    items = [
        {"kind": "followup", "client_uuid": str(uuid.uuid4()),
         "data": {"assignment_id": accepted["id"], "visited_at": visited, "note": "入户随访，孩子情绪好转"}},
        {"kind": "service_step", "client_uuid": str(uuid.uuid4()),
         "data": {"service_id": counselling["id"], "to_status": "in_progress",
                  "at": datetime.now(UTC).replace(microsecond=0).isoformat(),
                  "note": "已联系卫生院心理医生"}},
    ]
    first = _json(http.post(f"{API}/sync/push", headers=helper, json={"items": items}))
    again = _json(http.post(f"{API}/sync/push", headers=helper, json={"items": items}))
    say(f"5. 帮扶人离线记录随访和服务进展：首次 {[r['status'] for r in first['results']]}，"
        f"重发 {[r['status'] for r in again['results']]}")

    # 6. The coordinator closes the case (risk lowered): the help ends, the helper is free, her phone
    #    drops the case.
    closed = _json(http.post(f"{API}/cases/{case['id']}/close", headers=coordinator,
                             json={"reason": "risk_lowered", "note": "监护落实，风险降低"}))
    help_now = _json(http.get(f"{API}/helpers/assignments/{accepted['id']}", headers=coordinator))
    load = next(h for h in _json(http.get(f"{API}/helpers", headers=coordinator)) if h["id"] == mine["id"])
    after = _pull_all(http, helper, pulled["_cursor"])
    dropped = case["id"] in after.get("_removed", {}).get("case", set())
    say(f"6. 协调员结案（{closed['status']}，{closed['close_reason']}）：帮扶 {help_now['status']}"
        f"（{help_now['end_reason']}），帮扶人在帮 {load.get('load')} 人；手机已移除个案：{dropped}")

    # 7. The police close their part; the teacher sees her report handled, never the case.
    _json(http.post(f"{API}/referrals/{report['id']}/handle", headers=police, json={"note": "已立案侦查"}))
    seen = _json(http.get(f"{API}/mandatory-reports/{report['id']}", headers=teacher))
    assert "case_id" not in seen and "outcome_note" not in seen
    say(f"7. 报告人查看自己的报告：{seen['status']}（看不到个案与处理结果）")
    return {"report_id": report["id"], "child_id": child_id, "case_id": case["id"], "services": [legal["id"],
            counselling["id"]], "referral_id": referral["id"], "assignment_id": accepted["id"],
            "helper_id": mine["id"], "followup_statuses": [r["status"] for r in first["results"] + again["results"]],
            "helper_load": load.get("load"), "case_removed_from_phone": dropped}


def _a_child_never_in_a_case(http: httpx.Client, police: dict[str, str], coordinator: dict[str, str]) -> int:
    """A registered child of 青山村 (the first village) who never had a case, as the police find her
    from the teacher's description (the coordinator, who sees every case of the town, confirms none)."""
    town = _json(http.get(f"{API}/org-units/mine", headers=police))
    villages = _json(http.get(f"{API}/org-units/{town['id']}/children", headers=police))
    village = next(v for v in villages if v["name"] == "青山村")
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"unit_id": village["id"], "limit": 50}
        if cursor:
            params["cursor"] = cursor
        page = _json(http.get(f"{API}/households", headers=police, params=params))
        for household in page["items"]:
            for person in _json(http.get(f"{API}/households/{household['id']}/members", headers=police)):
                if person["role"] != "child":
                    continue
                if not _json(http.get(f"{API}/cases", headers=coordinator, params={"child_id": person["id"]})):
                    return int(person["id"])
        cursor = page.get("next_cursor")
        if not cursor:
            raise StepFailed("no child of 青山村 without a case is left")


def _pull_all(http: httpx.Client, who: dict[str, str], cursor: str | None = None) -> dict[str, Any]:
    """Everything the phone receives from `cursor` on: records by kind and id, removals, the new cursor."""
    held: dict[str, Any] = {"_removed": {}}
    while True:
        body = _json(http.get(f"{API}/sync/pull", headers=who, params={"cursor": cursor} if cursor else {}))
        for item in body["items"]:
            record = item.get("record") or {}
            if item["kind"] == "removal":
                held["_removed"].setdefault(record.get("kind"), set()).add(record.get("id"))
            else:
                held.setdefault(item["kind"], {})[record.get("id")] = record
        cursor = body["next_cursor"]
        if not body["has_more"]:
            held["_cursor"] = cursor
            return held


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="http://127.0.0.1:8000")
    args = parser.parse_args()
    with httpx.Client(base_url=args.base, timeout=30) as http:
        try:
            walk(http)
        except StepFailed as exc:
            print(f"失败 / failed: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
