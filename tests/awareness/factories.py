"""Awareness test data: schools, rounds opened over HTTP, answer sheets."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session

from backend.awareness import builtin
from backend.institutions.models import Institution, InstitutionKind
from backend.orgunits.models import OrgUnit
from tests.institutions.factories import make_institution

API = "/api/v1/awareness"
# A county's next questionnaire version, the smallest there is.
SURVEY_VERSION: dict[str, Any] = {
    "title_zh": "矩阵问卷", "title_en": "Matrix questionnaire", "pass_mark": 1, "questions": [
        {"id": "q1", "text_zh": "题目", "options": [{"id": "a", "text_zh": "对"}, {"id": "b", "text_zh": "错"}],
         "correct": ["a"]}]}


def school(session: Session, unit: OrgUnit, students: int = 40, kind: InstitutionKind = InstitutionKind.primary_school
           ) -> Institution:
    return make_institution(session, unit.id or 0, kind, student_count=students)


def open_round(client: TestClient, headers: dict[str, str], institution: Institution, **extra: Any) -> dict[str, Any]:
    resp = client.post(f"{API}/rounds", json={"institution_id": institution.id, **extra}, headers=headers)
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


def right_answers() -> dict[str, list[str]]:
    return {q["id"]: q["correct"] for q in builtin.questions()}


def wrong_answers(how_many: int) -> dict[str, list[str]]:
    """The national sheet with the first `how_many` questions answered wrong."""
    answers = right_answers()
    for q in builtin.questions()[:how_many]:
        other = next(o["id"] for o in q["options"] if o["id"] not in q["correct"])
        answers[q["id"]] = [other]
    return answers


def sheet(answers: dict[str, list[str]] | None = None) -> dict[str, Any]:
    return {"response_uuid": str(uuid.uuid4()), "answers": answers if answers is not None else right_answers()}


def answer(client: TestClient, code: str, body: dict[str, Any], **kw: Any) -> Any:
    return client.post(f"{API}/answer/{code}", json=body, **kw)
