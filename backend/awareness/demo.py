"""Demo data: a finished awareness round (知晓率调查) with answers at most of the demo town's schools."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta

from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts.models import User, UserRole
from backend.accounts.permissions import Role
from backend.awareness import scoring, service
from backend.awareness.models import AwarenessResponse, AwarenessRound
from backend.core import clock
from backend.demo.town import DemoTown
from backend.institutions.models import Institution
from backend.orgunits.models import OrgUnit, subtree_upper_bound

# Each school's share of pupils who know, in order; the last two schools have no round yet (the panel's
# "no survey" list is not empty in the demo).
_KNOWING = (1.0, 0.96, 0.92, 0.88, 0.97, 0.81, 0.99, 0.9)
_WITHOUT = 2


def seed_demo(session: Session, town: DemoTown) -> list[AwarenessRound]:
    """Closed rounds at the town's schools, opened three weeks ago, with deterministic anonymous answers."""
    schools = list(
        session.execute(
            select(Institution)
            .join(OrgUnit, col(OrgUnit.id) == col(Institution.org_unit_id))
            .where(
                col(OrgUnit.path) >= town.town.path,
                col(OrgUnit.path) < subtree_upper_bound(town.town.path),
                col(Institution.kind).in_(service.SCHOOL_KINDS),
                col(Institution.is_active).is_(True),
            )
            .order_by(col(Institution.id))
        ).scalars()
    )
    opener = (
        session.execute(
            select(col(User.id))
            .join(UserRole, col(UserRole.user_id) == col(User.id))
            .where(col(User.org_unit_id) == town.town.id, col(UserRole.role) == Role.coordinator.value)
            .order_by(col(User.id))
        )
        .scalars()
        .first()
    )
    if opener is None or len(schools) <= _WITHOUT:
        return []
    rng = random.Random(18)  # noqa: S311 (synthetic demo answers, repeatable)
    made: list[AwarenessRound] = []
    for index, school in enumerate(schools[:-_WITHOUT]):
        unit = session.get(OrgUnit, school.org_unit_id)
        assert unit is not None and school.id is not None
        questionnaire = service.applicable_questionnaire(session, unit)
        opened_at = clock.now() - timedelta(days=21)
        students = school.student_count or 0
        answered = int(students * rng.uniform(0.6, 0.95))
        knowing_share = _KNOWING[index % len(_KNOWING)]
        survey = AwarenessRound(
            institution_id=school.id,
            org_unit_id=school.org_unit_id,
            questionnaire_id=questionnaire.id or 0,
            token_digest=service.code_digest(service.new_code()),
            students=students,
            response_cap=service.response_cap(students),
            response_count=answered,
            opened_by=opener,
            opened_by_unit_id=town.town.id or 0,
            opened_at=opened_at,
            closes_at=opened_at + timedelta(days=14),
            closed_at=opened_at + timedelta(days=14),
        )
        session.add(survey)
        session.flush()
        questions = questionnaire.questions
        for n in range(answered):
            answers = {q["id"]: list(q["correct"]) for q in questions}
            if rng.random() >= knowing_share:
                for q in rng.sample(questions, k=min(len(questions), 3)):
                    answers[q["id"]] = [next(o["id"] for o in q["options"] if [o["id"]] != q["correct"])]
            canonical = scoring.check_answers(questions, answers)
            points = scoring.score(questions, canonical)
            session.add(
                AwarenessResponse(
                    round_id=survey.id or 0,
                    response_uuid=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    body_digest=scoring.digest(canonical),
                    answers=canonical,
                    score=points,
                    knows=scoring.knows(points, questionnaire.pass_mark),
                    received_at=opened_at + timedelta(minutes=n),
                )
            )
        made.append(survey)
    session.flush()
    return made
