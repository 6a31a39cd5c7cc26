"""Which version of a visit counts, whatever phones push and coordinators decide, in any order.

In a town that counts approved visits only, a household counts as visited when the latest *approved*
version of its visit says visited: an amendment waiting for review never takes an approved visit out
of the figures (an outside test saw a phone's correction do exactly that, unseen), and it waits in the
review queue. Under the default rule the latest version not rejected counts. Checked on the live
count and on the summary, against a model, for random sequences of pushes and decisions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session

from backend.accounts.permissions import Role
from backend.campaigns import service as campaigns
from backend.core import clock
from backend.core.config import get_settings
from backend.coverage import service as coverage
from tests.factories import user_client
from tests.registry.factories import World, make_world, push, seed_household, visit_item

API = "/api/v1"


@dataclass
class Chain:
    """One household's visit and its amendments: (id, client_uuid, outcome, review state)."""

    household_uuid: str
    versions: list[list[Any]] = field(default_factory=list)

    def counts(self, approved_only: bool) -> bool:
        for _id, _uuid, outcome, state in reversed(self.versions):
            if (state == "approved") if approved_only else (state != "rejected"):
                return bool(outcome == "visited")
        return False


def _month() -> str:
    return campaigns.today().strftime("%Y-%m")


def _village_figures(client: TestClient, world: World, village_id: int) -> tuple[int, int]:
    body = client.get(f"{API}/coverage", params={"month": _month()}, headers=world.coordinator.headers).json()
    numbers = next(f["properties"] for f in body["features"] if f["id"] == village_id)
    return int(numbers["visited"]), int(numbers["never_visited"])


_steps = st.lists(st.tuples(st.sampled_from(["amend_visited", "amend_nobody", "approve", "reject"]),
                            st.integers(0, 2), st.integers(0, 5)), min_size=1, max_size=7)


@pytest.mark.parametrize("approved_only", [True, False], ids=["approved_only", "all"])
def test_the_counted_version_is_the_latest_approved_or_not_rejected_one(
        client: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch, approved_only: bool) -> None:
    world = make_world(client, session)
    village = world.town.villages[1]
    assert village.id is not None
    reviewer = user_client(client, session, world.town.town, Role.coordinator)  # not the recorder
    if approved_only:
        assert client.put(f"{API}/reviews/settings", params={"unit_id": world.town.town.id},
                          json={"approved_only": True}, headers=reviewer.headers).status_code == 200
    chains: list[Chain] = []
    for _ in range(3):
        home, _ = seed_household(client, world.volunteer_b, village=1)
        item = visit_item(home["uuid"], device_time=clock.now().isoformat())
        record = push(client, world.volunteer_b, [item])["results"][0]["record"]
        chain = Chain(home["uuid"], [[record["id"], item["client_uuid"], "visited", "pending"]])
        assert client.post(f"{API}/visits/{record['id']}/review", json={"state": "approved"},
                           headers=reviewer.headers).status_code == 201
        chain.versions[0][3] = "approved"
        chains.append(chain)
    base_visited, _ = _village_figures(client, world, village.id)

    @settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
    @given(_steps)
    def run(steps: list[tuple[str, int, int]]) -> None:
        for action, which, pick in steps:
            chain = chains[which]
            if action.startswith("amend"):
                outcome = "visited" if action == "amend_visited" else "nobody_home"
                # A phone amends the first visit or the version it shows (possibly a rejected amendment).
                target = chain.versions[0][1] if pick % 2 == 0 else chain.versions[-1][1]
                item = visit_item(chain.household_uuid, kind="amendment", outcome=outcome,
                                  answers=None if outcome == "visited" else {},
                                  amends_uuid=target, device_time=clock.now().isoformat())
                result = push(client, world.volunteer_b, [item])["results"][0]
                assert result["status"] == "created", result
                chain.versions.append([result["record"]["id"], item["client_uuid"], outcome, "pending"])
                continue
            pending = [v for v in chain.versions if v[3] == "pending"]
            if not pending:
                continue
            version = pending[pick % len(pending)]
            body: dict[str, Any] = {"state": "approved" if action == "approve" else "rejected"}
            if action == "reject":
                body["comment"] = "与实际不符"
            resp = client.post(f"{API}/visits/{version[0]}/review", json=body, headers=reviewer.headers)
            assert resp.status_code == 201, resp.text
            version[3] = body["state"]
        counted = sum(c.counts(approved_only) for c in chains)
        live = _village_figures(client, world, village.id)
        assert live[0] - base_visited == counted - 3, (steps, [c.versions for c in chains])
        # The summary reads the same (the village read from it, forced).
        coverage.refresh_summary(session, campaigns.month_period(_month()))
        session.commit()
        monkeypatch.setenv("HULEI_COVERAGE_LIVE_MAX_GRIDS", "0")
        get_settings.cache_clear()
        try:
            assert _village_figures(client, world, village.id) == live
        finally:
            monkeypatch.delenv("HULEI_COVERAGE_LIVE_MAX_GRIDS")
            get_settings.cache_clear()
        # The newest version, when it is an amendment waiting for a decision, is in the review queue.
        queued = {q["record_id"] for q in client.get(f"{API}/reviews/queue", params={"limit": 500},
                                                     headers=reviewer.headers).json()}
        for c in chains:
            if len(c.versions) > 1 and c.versions[-1][3] == "pending":
                assert c.versions[-1][0] in queued, (c.versions, queued)
    run()


def test_the_recorder_never_decides_on_its_own_record(client: TestClient, session: Session) -> None:
    world = make_world(client, session)
    home, _ = seed_household(client, world.coordinator, village=0)
    record = push(client, world.coordinator, [visit_item(home["uuid"])])["results"][0]["record"]
    own = client.post(f"{API}/visits/{record['id']}/review", json={"state": "approved"},
                      headers=world.coordinator.headers)
    assert own.status_code == 403 and own.json()["code"] == "review-own-record"
    other = user_client(client, session, world.town.town, Role.coordinator)
    assert client.post(f"{API}/visits/{record['id']}/review", json={"state": "approved"},
                       headers=other.headers).status_code == 201


def test_a_comment_or_answer_of_invisible_characters_is_no_comment(client: TestClient, session: Session) -> None:
    world = make_world(client, session)
    home, _ = seed_household(client, world.volunteer_b, village=1)
    record = push(client, world.volunteer_b, [visit_item(home["uuid"])])["results"][0]["record"]
    for blank in ("\u200b", "\u2060\u200d", "\u3164", "\u2800", "\u0301", "\ufe0f", " \u3000 "):
        resp = client.post(f"{API}/visits/{record['id']}/review", json={"state": "has_issues", "comment": blank},
                           headers=world.coordinator.headers)
        assert resp.status_code == 422 and resp.json()["code"] == "review-comment-required", (blank, resp.text)
