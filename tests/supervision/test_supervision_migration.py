"""Migration 0035: the problem ledger takes problems of any subject; problems already recorded, the
penalties and review tasks that name them are kept, on both backends, both ways."""

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
from backend.inspections.models import Penalty, Problem
from tests.factories import make_town, make_user
from tests.venues.factories import make_problem


def test_venue_problems_and_what_names_them_survive_the_rebuild_both_ways(session: Session,
                                                                           database_url: str) -> None:
    town = make_town(session)
    officer = make_user(session, town.town, Role.market_officer, agency=Agency.market_supervision)
    problem = make_problem(session, town, recorded_by=officer.id or 0)
    session.add(Penalty(venue_id=problem.venue_id or 0, org_unit_id=problem.org_unit_id, problem_id=problem.id,
                        kind="warning", decided_date=date(2026, 11, 20), recorded_by_user_id=officer.id or 0))
    unit_problem = Problem(subject="unit", org_unit_id=town.villages[0].id or 0, source="unannounced_check",
                           description="d", measure="m", responsible_party="p", deadline_date=date(2026, 12, 30))
    session.add(unit_problem)
    session.commit()
    session.close()

    command.downgrade(alembic_config(database_url), "0034")
    kept = session.execute(text("SELECT id, venue_id, source FROM venue_problem")).all()
    assert kept == [(problem.id, problem.venue_id, "inspection")]  # a unit's problem cannot be kept
    assert session.execute(text("SELECT problem_id FROM venue_penalty")).scalar_one() == problem.id
    session.close()
    upgrade(database_url)

    rows = session.execute(text("SELECT id, subject, rectification FROM venue_problem")).all()
    assert rows == [(problem.id, "venue", "")]
    with pytest.raises(IntegrityError):  # the penalty's reference is enforced again
        session.execute(text(
            "INSERT INTO venue_penalty (venue_id, org_unit_id, problem_id, kind, decision_number, decided_date, note, "
            "recorded_by_user_id, created_at) VALUES (:v, :u, 999999, 'warning', '', :d, '', :o, :t)"),
            {"v": problem.venue_id, "u": problem.org_unit_id, "d": date(2026, 11, 20), "o": officer.id,
             "t": clock.now()})
        session.commit()
    session.rollback()
