"""Migration 0022: the referral table takes direct reports; the visits' referrals keep their rows and
escalations (SQLite copies the table), and their volunteers become their reporters."""

from __future__ import annotations

from datetime import timedelta

from alembic import command
from sqlalchemy import text
from sqlmodel import Session

from backend.accounts.models import Agency
from backend.accounts.permissions import Role
from backend.core import clock
from backend.core.migrate import alembic_config, upgrade
from backend.escalations.models import ReferralEscalation
from backend.referrals.models import Referral
from tests.factories import make_town, make_user
from tests.helpers.factories import make_child


def test_visit_referrals_and_their_escalations_survive_and_direct_reports_go_on_downgrade(
    session: Session, database_url: str
) -> None:
    town = make_town(session)
    volunteer = make_user(session, town.villages[0], Role.volunteer, agency=Agency.womens_federation)
    child = make_child(session, town.grids[0][0])
    now = clock.now()
    session.execute(text(
        "INSERT INTO visit (client_uuid, content_hash, household_id, org_unit_id, recorded_by, template_code, "
        "template_version, outcome, answers, children_seen, device_time, received_at, counted_at, clock_suspect, "
        "location_mismatch, risk_reasons, rev) VALUES (:uuid, 'x', :home, :unit, :user, 'six-looks-six-asks', 1, "
        "'visited', '{}', '[]', :now, :now, :now, :no, :no, '[]', 0)"),
        {"uuid": "0b0e7c4e-5a8e-4a59-9a8e-2d8c0f0e6a11", "home": child.household_id, "unit": child.org_unit_id,
         "user": volunteer.id, "now": now, "no": False})
    visit_id = session.execute(text("SELECT id FROM visit")).scalar_one()
    due = now - timedelta(hours=1)
    visit_report = Referral(visit_id=visit_id, household_id=child.household_id, org_unit_id=child.org_unit_id,
                            police_unit_id=town.town.id, child_ids=[child.id], receive_due_at=due,
                            handle_due_at=now + timedelta(days=1))
    direct = Referral(org_unit_id=town.grids[0][0].id or 0, police_unit_id=town.town.id, source_kind="school",
                      description="线索", receive_due_at=due, handle_due_at=now + timedelta(days=1))
    session.add_all([visit_report, direct])
    session.flush()
    session.add_all([ReferralEscalation(referral_id=visit_report.id or 0, stage="receive", due_at=due,
                                        escalated_at=now),
                     ReferralEscalation(referral_id=direct.id or 0, stage="receive", due_at=due, escalated_at=now)])
    session.commit()
    kept, gone = visit_report.id, direct.id
    session.close()

    command.downgrade(alembic_config(database_url), "0021")
    assert session.execute(text("SELECT id FROM referral")).scalars().all() == [kept]
    assert session.execute(text("SELECT referral_id FROM referral_escalation")).scalars().all() == [kept]
    session.close()
    upgrade(database_url)

    row = session.execute(text("SELECT source_kind, reporter_user_id, visit_id FROM referral WHERE id = :id"),
                          {"id": kept}).one()
    assert tuple(row) == ("visit", volunteer.id, visit_id)
    assert session.execute(text("SELECT referral_id FROM referral_escalation")).scalars().all() == [kept]
    assert gone not in session.execute(text("SELECT id FROM referral")).scalars().all()
    # The upgraded table takes a direct report again.
    session.add(Referral(org_unit_id=town.grids[0][0].id or 0, source_kind="village", description="又一条",
                         receive_due_at=now, handle_due_at=now))
    session.commit()
