"""Awareness surveys (知晓率): questionnaires, rounds and rates for managers; anonymous answering (public)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from backend.accounts.deps import client_ip, requires
from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.awareness import service
from backend.awareness.schemas import (
    AnswerForm,
    AnswerReceipt,
    AnswerSheet,
    AwarenessRates,
    QuestionnaireCreate,
    QuestionnairePublic,
    RoundCreate,
    RoundOpened,
    RoundPublic,
)
from backend.core.db import SessionDep
from backend.core.errors import PayloadTooLarge
from backend.core.pagination import Page, Paging

router = APIRouter(prefix="/awareness", tags=["awareness"])
public_router = APIRouter(prefix="/awareness/answer", tags=["awareness"])

Reader = Annotated[Principal, requires(Action.survey_read)]
Manager = Annotated[Principal, requires(Action.survey_manage)]
# An answer sheet of thirty questions is under 2 KiB; nothing bigger is read on the public route.
MAX_ANSWER_BYTES = 8 * 1024
Code = Annotated[str, Path(max_length=64, description="The round's answering code (any case, dashes allowed)")]


@router.get("/questionnaires", response_model=list[QuestionnairePublic] | Page[QuestionnairePublic])
def list_questionnaires(
    principal: Reader, session: SessionDep, page: Paging
) -> list[QuestionnairePublic] | Page[QuestionnairePublic]:
    """The national versions, those of the units above the caller and those published in its area."""
    rows = service.list_questionnaires(session, principal, page)
    return page.answer([QuestionnairePublic(**service.questionnaire_public(q)) for q in rows], key=lambda q: (q.id,))


@router.get("/questionnaires/{questionnaire_id}", response_model=QuestionnairePublic)
def get_questionnaire(questionnaire_id: int, principal: Reader, session: SessionDep) -> QuestionnairePublic:
    """One version with its correct options and pass mark."""
    return QuestionnairePublic(
        **service.questionnaire_public(service.get_questionnaire(session, principal, questionnaire_id))
    )


@router.post("/questionnaires", response_model=QuestionnairePublic, status_code=201)
def publish_questionnaire(body: QuestionnaireCreate, principal: Manager, session: SessionDep) -> QuestionnairePublic:
    """Publish the next version for the caller's county (or higher unit): 403 awareness-publish-level below a
    county. Immutable once published; rounds opened earlier keep their version."""
    made = service.publish(
        session,
        principal,
        title_zh=body.title_zh,
        title_en=body.title_en,
        pass_mark=body.pass_mark,
        questions=[q.model_dump(exclude_none=True) for q in body.questions],
    )
    return QuestionnairePublic(**service.questionnaire_public(made))


@router.post("/rounds", response_model=RoundOpened, status_code=201)
def open_round(body: RoundCreate, principal: Manager, session: SessionDep) -> RoundOpened:
    """Open answering at a school of the caller's area. The answer carries the code once; only its digest is
    kept. 409 awareness-round-open while the school has an open round; 422 for a non-school or a school
    without a student count (the cap is derived from it); 403 awareness-own-school for the school's own
    education staff (those of its unit, or of a grid school's village); 422 awareness-questionnaire-not-in-force
    when `questionnaire_id` names another version than the one in force for the school."""
    made, code = service.open_round(
        session, principal, institution_id=body.institution_id, days=body.days, questionnaire_id=body.questionnaire_id
    )
    shown = service.display_code(code)
    return RoundOpened(
        **service.rounds_public(session, [made])[0], code=shown, answer_path=f"/api/v1/awareness/answer/{shown}"
    )


@router.get("/rounds", response_model=list[RoundPublic] | Page[RoundPublic])
def list_rounds(
    principal: Reader,
    session: SessionDep,
    page: Paging,
    unit_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    institution_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> list[RoundPublic] | Page[RoundPublic]:
    """Rounds of the caller's area, newest first (the bare list: the newest 500)."""
    rows = service.list_rounds(session, principal, page, unit_id=unit_id, institution_id=institution_id)
    return page.answer(
        [RoundPublic(**r) for r in service.rounds_public(session, rows)], key=lambda r: (r.id,), descending=True
    )


@router.get("/rounds/{round_id}", response_model=RoundPublic)
def get_round(round_id: int, principal: Reader, session: SessionDep) -> RoundPublic:
    """One round: state, cap, responses, knowing and rate (never the code)."""
    return RoundPublic(**service.rounds_public(session, [service.get_round(session, principal, round_id)])[0])


@router.post("/rounds/{round_id}/close", response_model=RoundPublic)
def close_round(round_id: int, principal: Manager, session: SessionDep) -> RoundPublic:
    """End answering now; answers arriving later are refused 409 awareness-round-closed. 403
    awareness-own-school for the school's own education staff."""
    return RoundPublic(**service.rounds_public(session, [service.close_round(session, principal, round_id)])[0])


@router.get("/rates", response_model=AwarenessRates)
def awareness_rates(
    principal: Reader,
    session: SessionDep,
    unit_id: Annotated[int, Query(ge=1, le=2**31 - 1)],
    period: Annotated[
        str | None, Query(max_length=7, description="2026, 2026-H1, 2026-Q3 or 2026-05; default: this year")
    ] = None,
) -> AwarenessRates:
    """知晓率: per school and per child unit, responses, knowing, rate against the target (seed 003: 100 %),
    and the schools with no round in the period. A school counts with its latest round of the period."""
    return AwarenessRates(**service.awareness_rates(session, principal, unit_id, period))


async def small_body(request: Request) -> None:
    """Refuse a body larger than an answer sheet can be (413 problem+json) before it is parsed."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_ANSWER_BYTES:
        raise PayloadTooLarge(
            f"答卷不得超过{MAX_ANSWER_BYTES}字节",
            f"An answer sheet is at most {MAX_ANSWER_BYTES} bytes",
            limit=MAX_ANSWER_BYTES,
        )
    if len(await request.body()) > MAX_ANSWER_BYTES:
        raise PayloadTooLarge(limit=MAX_ANSWER_BYTES)


@public_router.get("/{code}", response_model=AnswerForm)
def answer_form(code: Code, request: Request, session: SessionDep) -> AnswerForm:
    """Public, no sign-in: the questionnaire of an open round (no correct options). 404
    awareness-link-not-found for a code that opens no round (429 after too many from one address); 409
    awareness-round-closed once the round is closed."""
    return AnswerForm(**service.public_form(session, code, client_ip(request)))


@public_router.post(
    "/{code}",
    response_model=AnswerReceipt,
    status_code=201,
    dependencies=[Depends(small_body)],
    responses={200: {"model": AnswerReceipt, "description": "A resend of a sheet already stored"}},
)
def submit_answers(
    code: Code, body: AnswerSheet, request: Request, response: Response, session: SessionDep
) -> AnswerReceipt:
    """Public, no sign-in, no personal data: one respondent's sheet. 201 stored; 200 `duplicate` for a
    resend of the same `response_uuid` and answers (also after closing); 409 awareness-response-conflict for
    the same id with other answers; 409 awareness-round-closed / awareness-round-full; 413 beyond 8 KiB; 422
    for unknown questions or options and for any field beyond the two; 429 when one address sends too fast."""
    accepted = service.submit(
        session, code, client_ip(request), response_uuid=str(body.response_uuid), answers=body.answers
    )
    if accepted.duplicate:
        response.status_code = 200
    return AnswerReceipt(response_uuid=body.response_uuid, duplicate=accepted.duplicate)
