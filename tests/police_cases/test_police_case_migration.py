"""Migration 0023: the problem ledger takes problems raised by case reviews (no inspection) while
problems already recorded, and the penalties that name them, are kept, on both backends, both ways."""

from __future__ import annotations

from datetime import date

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from backend.accounts.models import Agency
from backend.accounts.permissions import Role
from backend.core import clock
from backend.core.migrate import alembic_config, upgrade
from backend.inspections.models import Penalty
from tests.factories import make_town, make_user
from tests.venues.factories import make_problem


def test_problems_and_their_penalties_survive_the_rebuild_both_ways(session: Session, database_url: str) -> None:
    town = make_town(session)
    officer = make_user(session, town.town, Role.market_officer, agency=Agency.market_supervision)
    problem = make_problem(session, town, recorded_by=officer.id or 0)
    session.add(Penalty(venue_id=problem.venue_id, org_unit_id=problem.org_unit_id, problem_id=problem.id,
                        kind="warning", decided_date=date(2026, 11, 20), recorded_by_user_id=officer.id or 0))
    session.commit()
    # A problem a review raised: no inspection.
    review_id = session.execute(text(
        "INSERT INTO case_review (org_unit_id, analysis, created_at, updated_at) VALUES (:u, '', :t, :t) "
        "RETURNING id"), {"u": town.town.id, "t": clock.now()}).scalar_one()
    session.execute(text(
        "INSERT INTO venue_problem (venue_id, org_unit_id, found_in_inspection_id, source, case_review_id, "
        "description, measure, responsible_party, deadline_date, status, note, failed_rechecks, created_at, "
        "updated_at) VALUES (:v, :u, NULL, 'case_review', :r, 'd', 'm', 'p', :d, 'open', '', 0, :t, :t)"),
        {"v": problem.venue_id, "u": problem.org_unit_id, "r": review_id, "d": date(2026, 12, 30), "t": clock.now()})
    session.commit()
    session.close()

    command.downgrade(alembic_config(database_url), "0022")
    kept = session.execute(text("SELECT id, found_in_inspection_id FROM venue_problem")).all()
    assert kept == [(problem.id, problem.found_in_inspection_id)]  # the review's problem went with the reviews
    assert session.execute(text("SELECT problem_id FROM venue_penalty")).scalar_one() == problem.id
    session.close()
    upgrade(database_url)

    rows = session.execute(text("SELECT id, source, case_review_id FROM venue_problem")).all()
    assert rows == [(problem.id, "inspection", None)]
    assert session.execute(text("SELECT problem_id FROM venue_penalty")).scalar_one() == problem.id
    # The penalty's reference to the problem is enforced again, and problems without an inspection fit.
    with pytest.raises(IntegrityError):
        session.execute(text(
            "INSERT INTO venue_penalty (venue_id, org_unit_id, problem_id, kind, decision_number, decided_date, note, "
            "recorded_by_user_id, created_at) VALUES (:v, :u, 999999, 'warning', '', :d, '', :o, :t)"),
            {"v": problem.venue_id, "u": problem.org_unit_id, "d": date(2026, 11, 20), "o": officer.id,
             "t": clock.now()})
        session.commit()
    session.rollback()
    session.execute(text(
        "INSERT INTO venue_problem (venue_id, org_unit_id, found_in_inspection_id, source, description, measure, "
        "responsible_party, deadline_date, status, note, failed_rechecks, created_at, updated_at) "
        "VALUES (:v, :u, NULL, 'case_review', 'd', 'm', 'p', :d, 'open', '', 0, :t, :t)"),
        {"v": problem.venue_id, "u": problem.org_unit_id, "d": date(2026, 12, 30), "t": clock.now()})
    session.commit()
