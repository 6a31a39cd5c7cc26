"""Migration 0019: help under way before cases existed belongs to a case made for its child."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text
from sqlmodel import Session

from backend.core.migrate import alembic_config, upgrade
from backend.helpers.models import AssignmentStatus
from tests.factories import make_town
from tests.helpers.factories import assign, make_child, make_helper


def test_help_that_holds_a_place_gets_a_case_for_its_child(session: Session, database_url: str) -> None:
    town = make_town(session)
    taken, offered, declined = (make_child(session, town.grids[0][n]) for n in range(3))
    helper = make_helper(session, town.town, sex="female")
    other = make_helper(session, town.town, sex="male")
    held = [assign(session, taken, helper), assign(session, taken, other, AssignmentStatus.proposed),
            assign(session, offered, helper, AssignmentStatus.offered)]
    refused = assign(session, declined, helper, AssignmentStatus.declined)
    ids = {"taken": taken.id, "offered": offered.id, "declined": declined.id}
    session.close()
    command.downgrade(alembic_config(database_url), "0018")
    session.close()
    upgrade(database_url)

    cases = {child: (case_id, status, source, unit) for case_id, child, status, source, unit in session.execute(text(
        "SELECT id, child_id, status, opened_from, org_unit_id FROM child_case"))}
    assert set(cases) == {ids["taken"], ids["offered"]}  # a declined offer holds no place: no case
    assert cases[ids["taken"]][1:] == ("active", "visit_risk", town.grids[0][0].id)
    assert cases[ids["offered"]][1:] == ("open", "visit_risk", town.grids[0][1].id)
    links = dict(session.execute(text("SELECT id, case_id FROM helper_assignment")).all())
    assert [links[a.id] for a in held] == [cases[ids["taken"]][0], cases[ids["taken"]][0], cases[ids["offered"]][0]]
    assert links[refused.id] is None
    events = session.execute(text("SELECT case_id, action, to_status FROM child_case_event ORDER BY case_id")).all()
    assert sorted(events) == sorted([(cases[ids["taken"]][0], "open", "active"),
                                     (cases[ids["offered"]][0], "open", "open")])
