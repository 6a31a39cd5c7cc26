""""2112" incidents: open, hand down, feed back, close; overdue ones stay listed until closed."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from sqlmodel import Session

from backend.accounts.deps import requires
from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.core import clock
from backend.core.db import SessionDep
from backend.core.pagination import Page, Paging
from backend.incidents import service
from backend.incidents.models import Incident, IncidentStatus
from backend.incidents.schemas import (
    CloseRequest,
    DeadlinePublic,
    FeedbackCreate,
    HandoffCreate,
    HandoffPublic,
    IncidentCreate,
    IncidentPublic,
)

router = APIRouter(prefix="/incidents", tags=["incidents"])


def present(session: Session, incident: Incident) -> IncidentPublic:
    """The incident with its hand-offs and the state of each limit."""
    assert incident.id is not None
    now = clock.now()
    deadlines = []
    for d in service.deadlines(session, incident.id):
        due = clock.as_utc(d.due_at)
        if d.met_at is not None:
            state = "met_late" if clock.as_utc(d.met_at) > due else "met"
        else:
            state = "overdue" if now > due else "pending"
        deadlines.append(DeadlinePublic(step=d.step, unit_id=d.unit_id, started_at=d.started_at, due_at=d.due_at,
                                        met_at=d.met_at, state=state, escalated_at=d.escalated_at,
                                        escalated_to_unit_id=d.escalated_to_unit_id))
    return IncidentPublic(
        id=incident.id, title=incident.title, summary=incident.summary, source_url=incident.source_url,
        origin_unit_id=incident.origin_unit_id, current_unit_id=incident.current_unit_id, status=incident.status,
        overdue=any(d.state in ("overdue", "met_late") for d in deadlines), created_by=incident.created_by,
        created_at=incident.created_at, feedback_at=incident.feedback_at, feedback_note=incident.feedback_note,
        closed_at=incident.closed_at, deadlines=deadlines,
        handoffs=[HandoffPublic.model_validate(h) for h in service.handoffs(session, incident.id)],
    )


@router.post("", response_model=IncidentPublic, status_code=201)
def create_incident(body: IncidentCreate, principal: Annotated[Principal, requires(Action.incident_create)],
                    session: SessionDep) -> IncidentPublic:
    """Open a 2112 incident at a province, city or county unit; its first limit starts now."""
    incident = service.create(session, principal, title=body.title, summary=body.summary,
                              source_url=body.source_url, org_unit_id=body.org_unit_id)
    return present(session, incident)


@router.get("", response_model=list[IncidentPublic] | Page[IncidentPublic])
def list_incidents(principal: Annotated[Principal, requires(Action.incident_read)], session: SessionDep,
                   page: Paging, status: IncidentStatus | None = None,
                   overdue: bool = False) -> list[IncidentPublic] | Page[IncidentPublic]:
    """Incidents that started in or passed through the caller's jurisdiction, newest first."""
    rows = service.list_visible(session, principal, status=status, overdue_only=overdue, page=page)
    return page.answer([present(session, i) for i in rows], key=lambda i: (i.id,), descending=True)


@router.get("/{incident_id}", response_model=IncidentPublic)
def get_incident(incident_id: int, principal: Annotated[Principal, requires(Action.incident_read)],
                 session: SessionDep) -> IncidentPublic:
    return present(session, service.get(session, principal, incident_id))


@router.post("/{incident_id}/handoffs", response_model=IncidentPublic)
def hand_off(incident_id: int, body: HandoffCreate, principal: Annotated[Principal, requires(Action.incident_handoff)],
             session: SessionDep) -> IncidentPublic:
    """Hand the incident to the next level down (server time is recorded)."""
    service.hand_off(session, principal, incident_id, to_unit_ids=body.to_unit_ids, note=body.note)
    return present(session, service.get(session, principal, incident_id))


@router.post("/{incident_id}/feedback", response_model=IncidentPublic)
def post_feedback(incident_id: int, body: FeedbackCreate,
                  principal: Annotated[Principal, requires(Action.incident_handoff)],
                  session: SessionDep) -> IncidentPublic:
    """Report the verification and follow-up back up the chain."""
    return present(session, service.feedback(session, principal, incident_id, note=body.note))


@router.post("/{incident_id}/close", response_model=IncidentPublic)
def close_incident(incident_id: int, body: CloseRequest,
                   principal: Annotated[Principal, requires(Action.incident_close)],
                   session: SessionDep) -> IncidentPublic:
    return present(session, service.close(session, principal, incident_id, note=body.note))
