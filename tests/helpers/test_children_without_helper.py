"""The coordinators' work list: children at 较大/重大风险 or on 附件3 still without a helper."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts import service as accounts
from backend.accounts.models import User
from backend.accounts.permissions import Role
from backend.accounts.principal import Principal
from backend.audit.models import AuditEntry
from backend.core.errors import NotFound
from backend.helpers import service as helpers
from backend.helpers.models import Assignment, AssignmentStatus, HelperProfile
from backend.registry.models import Person, RiskLevel
from tests.factories import make_town, make_user
from tests.helpers.factories import make_child, make_helper, raise_risk
from tests.notifications.factories import headers_for


def _principal(session: Session, user: User) -> Principal:
    assert user.id is not None
    principal = accounts.principal_for(session, user.id, device_id=None, ip=None)
    assert principal is not None
    return principal


def _assign(session: Session, child: Person, helper: HelperProfile, status: AssignmentStatus) -> None:
    assert child.id is not None and helper.id is not None
    session.add(Assignment(child_id=child.id, helper_id=helper.id, org_unit_id=child.org_unit_id, mode="one_to_one",
                           status=status.value))
    session.commit()


def test_children_at_risk_without_an_accepted_helper_are_listed_most_at_risk_first_and_masked(
    session: Session,
) -> None:
    town = make_town(session)
    g00, g01 = town.grids[0][0], town.grids[0][1]
    helper = make_helper(session, town.town, sex="female", capacity=9)
    on_ledger = make_child(session, g00, vulnerable=True, name="李小花")
    major_alone = make_child(session, g00, name="王小明")
    raise_risk(session, major_alone, RiskLevel.major)
    severe_alone = make_child(session, g01, name="张三")
    raise_risk(session, severe_alone, RiskLevel.severe)
    helped = make_child(session, g00)
    raise_risk(session, helped, RiskLevel.severe)
    _assign(session, helped, helper, AssignmentStatus.accepted)
    offered = make_child(session, g01)
    raise_risk(session, offered, RiskLevel.major)
    _assign(session, offered, helper, AssignmentStatus.offered)
    _assign(session, major_alone, helper, AssignmentStatus.declined)
    general = make_child(session, g00)
    raise_risk(session, general, RiskLevel.general)
    elsewhere = make_child(session, town.grids[1][0])
    raise_risk(session, elsewhere, RiskLevel.severe)
    coordinator = _principal(session, make_user(session, town.villages[0], Role.coordinator))

    items, cursor = helpers.children_without_helper(session, coordinator)
    assert cursor is None
    # 重大 before 较大 before 附件3 only; the helped child, the general one and village 1's are not listed;
    # an offer still waiting for the helper is not help yet, a declined one is history.
    assert [(c.child_id, c.risk_level, c.pending) for c in items] == [
        (severe_alone.id, RiskLevel.severe.value, 0), (major_alone.id, RiskLevel.major.value, 0),
        (offered.id, RiskLevel.major.value, 1), (on_ledger.id, None, 0),
    ]
    assert [c.name_masked for c in items if c.child_id in (severe_alone.id, major_alone.id, on_ledger.id)] == [
        "张*", "王**", "李**"]
    assert items[-1].vulnerable is True and items[0].unit_name == g01.name

    # Pages of two follow the same order.
    first, cursor = helpers.children_without_helper(session, coordinator, limit=2)
    second, end = helpers.children_without_helper(session, coordinator, limit=2, cursor=cursor)
    assert [c.child_id for c in first + second] == [c.child_id for c in items] and end is None
    # Narrowed to one grid; a unit outside the jurisdiction does not exist for the caller.
    only, _ = helpers.children_without_helper(session, coordinator, unit_id=g00.id)
    assert [c.child_id for c in only] == [major_alone.id, on_ledger.id]
    with pytest.raises(NotFound):
        helpers.children_without_helper(session, coordinator, unit_id=town.villages[1].id)
    reads = session.execute(select(col(AuditEntry.details)).where(
        col(AuditEntry.action) == "child.list.without_helper")).scalars().all()
    assert len(reads) == 4


def test_the_list_is_hidden_from_roles_that_may_not_read_children(client: TestClient, session: Session) -> None:
    town = make_town(session)
    child = make_child(session, town.grids[0][0], name="赵六")
    raise_risk(session, child, RiskLevel.severe)
    url = "/api/v1/helpers/children-without-helper"
    coordinator = make_user(session, town.town, Role.coordinator)
    body = client.get(url, params={"limit": 10}, headers=headers_for(session, coordinator)).json()
    assert [(c["child_id"], c["name_masked"]) for c in body["items"]] == [(child.id, "赵*")]
    assert "赵六" not in str(body)
    for role, status in ((Role.market_officer, 404), (Role.admin, 404), (Role.volunteer, 403)):
        user = make_user(session, town.town, role)
        assert client.get(url, headers=headers_for(session, user)).status_code == status, role
