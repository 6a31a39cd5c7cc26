"""Helpers, proposals and answers. Coordinators keep profiles and confirm; helpers answer in the app."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from backend.accounts.deps import requires
from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.audit import disclosure
from backend.core.db import SessionDep
from backend.core.pagination import Page, Paging
from backend.helpers import service
from backend.helpers.models import AssignmentStatus, HelperProfile
from backend.helpers.schemas import (
    AssignmentEnd,
    AssignmentPublic,
    ChildWithoutHelperPublic,
    FollowUpCreate,
    FollowUpPublic,
    HelperCreate,
    HelperPublic,
    HelperUpdate,
    OverdueFollowUpPublic,
)
from backend.registry.models import RiskLevel

router = APIRouter(prefix="/helpers", tags=["helpers"])

Coordinator = Annotated[Principal, requires(Action.helper_manage)]
Confirmer = Annotated[Principal, requires(Action.assignment_confirm)]
Answerer = Annotated[Principal, requires(Action.assignment_answer)]
Reader = Annotated[Principal, requires(Action.assignment_read)]


def _helper(p: HelperProfile, load: int) -> HelperPublic:
    return HelperPublic(id=p.id or 0, user_id=p.user_id, org_unit_id=p.org_unit_id, sex=p.sex, skills=p.skills,
                        capacity=p.capacity, load=load, home_lon=p.home_lon, home_lat=p.home_lat, active=p.active)


@router.post("", response_model=HelperPublic, status_code=201)
def create_helper(body: HelperCreate, principal: Coordinator, session: SessionDep) -> HelperPublic:
    """Make a user of your jurisdiction a helper (capacity, skills, sex, home point)."""
    p = service.create_profile(session, principal, user_id=body.user_id, sex=body.sex, skills=body.skills,
                               capacity=body.capacity, home_lon=body.home_lon, home_lat=body.home_lat,
                               active=body.active)
    return _helper(p, 0)


@router.get("", response_model=list[HelperPublic] | Page[HelperPublic])
def list_helpers(principal: Annotated[Principal, requires(Action.helper_read)], session: SessionDep,
                 page: Paging) -> list[HelperPublic] | Page[HelperPublic]:
    helpers = [_helper(p, load) for p, load in service.list_profiles(session, principal)]
    return page.answer(helpers, key=lambda h: (h.id,))


@router.patch("/{helper_id}", response_model=HelperPublic)
def update_helper(helper_id: int, body: HelperUpdate, principal: Coordinator, session: SessionDep) -> HelperPublic:
    p = service.update_profile(session, principal, helper_id, **body.model_dump(exclude_unset=True))
    return _helper(p, service.load_of(session, helper_id))


@router.post("/proposals", response_model=list[AssignmentPublic])
def run_matching(principal: Confirmer, session: SessionDep,
                 child_id: Annotated[int | None, Query(description=(
                     "only this child of your jurisdiction (a case just opened, say); 404 for a child you "
                     "may not see"))] = None) -> list[AssignmentPublic]:
    """Propose helpers now for every child of your jurisdiction who needs them (or for one child)."""
    proposed = service.propose_now(session, principal, child_id=child_id)
    return service.assignments_public(session, proposed)


@router.get("/children-without-helper", response_model=Page[ChildWithoutHelperPublic])
def children_without_helper(
    principal: Annotated[Principal, requires(Action.child_read)], session: SessionDep,
    unit_id: int | None = None, cursor: str | None = None, limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[ChildWithoutHelperPublic]:
    """Children of your jurisdiction (or of `unit_id`) at 较大/重大风险 or on 附件3 with no helper who
    accepted, 重大风险 first; names and ID numbers masked. Needs child.read (else 404) and helper.read."""
    items, next_cursor = service.children_without_helper(session, principal, unit_id=unit_id, cursor=cursor,
                                                         limit=limit)
    return Page(items=[ChildWithoutHelperPublic(**vars(c)) for c in items], next_cursor=next_cursor)


@router.get("/assignments", response_model=list[AssignmentPublic] | Page[AssignmentPublic])
def list_assignments(principal: Reader, session: SessionDep, page: Paging, status: AssignmentStatus | None = None,
                     mine: bool = False) -> list[AssignmentPublic] | Page[AssignmentPublic]:
    """Your own assignments (helpers, or `mine=true`), or those in your jurisdiction (coordinators), newest
    first."""
    own = mine or not principal.can(Action.assignment_confirm)
    rows = service.list_assignments(session, principal, status=status, mine=own, page=page)
    return page.answer(service.assignments_public(session, rows), key=lambda a: (a.id,), descending=True)


@router.get("/assignments/{assignment_id}", response_model=AssignmentPublic)
def get_assignment(assignment_id: int, principal: Reader, session: SessionDep) -> AssignmentPublic:
    return service.assignments_public(session, [service.get_assignment(session, principal, assignment_id)])[0]


@router.post("/assignments/{assignment_id}/confirm", response_model=AssignmentPublic)
def confirm(assignment_id: int, principal: Confirmer, session: SessionDep) -> AssignmentPublic:
    """Confirm a proposal: the helper is told and has the answer window (24 h by default)."""
    return service.assignments_public(session, [service.confirm(session, principal, assignment_id)])[0]


@router.post("/assignments/{assignment_id}/reject", response_model=list[AssignmentPublic])
def reject(assignment_id: int, principal: Confirmer, session: SessionDep) -> list[AssignmentPublic]:
    """Turn a proposal down; answers the replacement proposals."""
    return service.assignments_public(session, service.reject(session, principal, assignment_id))


@router.post("/assignments/{assignment_id}/end", response_model=AssignmentPublic)
def end(assignment_id: int, principal: Confirmer, session: SessionDep,
        body: AssignmentEnd | None = None) -> AssignmentPublic:
    """End help under way (an accepted assignment) with a reason (need_met, helper_unavailable,
    reassigned, other with a note; v1 phones send none: `not_given`): the helper's place is free,
    follow-ups stop falling due, the child, its household and their visits leave the helper's view and
    its phone; the assignment stays as history (status `ended`). The case goes on."""
    ended = service.end(session, principal, assignment_id, reason=body.reason if body else None,
                        note=body.note if body else None)
    return service.assignments_public(session, [ended])[0]


@router.post("/assignments/{assignment_id}/accept", response_model=AssignmentPublic)
def accept(assignment_id: int, principal: Answerer, session: SessionDep) -> AssignmentPublic:
    return service.assignments_public(session, [service.accept(session, principal, assignment_id)])[0]


@router.post("/assignments/{assignment_id}/decline", status_code=204)
def decline(assignment_id: int, principal: Answerer, session: SessionDep) -> None:
    """Decline; the next best helper is proposed to the coordinator."""
    service.decline(session, principal, assignment_id)


@router.post("/assignments/{assignment_id}/followups", response_model=FollowUpPublic, status_code=201)
def record_followup(assignment_id: int, body: FollowUpCreate, principal: Answerer,
                    session: SessionDep) -> FollowUpPublic:
    f = service.record_followup(session, principal, assignment_id, visited_at=body.visited_at, note=body.note)
    return FollowUpPublic(id=f.id or 0, assignment_id=f.assignment_id, visited_at=f.visited_at, note=f.note)


@router.get("/followups/overdue", response_model=list[OverdueFollowUpPublic] | Page[OverdueFollowUpPublic])
def overdue_followups(principal: Confirmer, session: SessionDep,
                      page: Paging) -> list[OverdueFollowUpPublic] | Page[OverdueFollowUpPublic]:
    """Follow-up visits that are overdue in your jurisdiction."""
    overdue = service.overdue_followups(session, principal=principal)
    disclosure.record(disclosure.ASSIGNMENT, [o.assignment.id for o in overdue])
    disclosure.record(disclosure.PERSON, [o.assignment.child_id for o in overdue])
    late = [OverdueFollowUpPublic(assignment_id=o.assignment.id or 0, child_id=o.assignment.child_id,
                                  helper_id=o.assignment.helper_id,
                                  risk_level=RiskLevel(o.risk_level) if o.risk_level else None, due_at=o.due_at)
            for o in overdue]
    return page.answer(late, key=lambda o: (o.assignment_id,))
