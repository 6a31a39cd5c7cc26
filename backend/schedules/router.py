"""Weekly plan, rules, availability and calendar endpoints."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Request, Response, status
from sqlalchemy import select
from sqlmodel import col

from backend.accounts.deps import CurrentPrincipal, requires
from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.core.db import SessionDep
from backend.core.errors import NotFound
from backend.core.pagination import Page, Paging
from backend.orgunits import service as orgunits
from backend.orgunits.models import OrgUnit
from backend.schedules import duties, service
from backend.schedules.models import SchedulePlan
from backend.schedules.schemas import (
    AvailabilityIn,
    AvailabilityPublic,
    CompliancePublic,
    ComplianceVisit,
    DutiesIn,
    DutiesPublic,
    FeedUrl,
    GenerateIn,
    MemberPublic,
    PlanPublic,
    PlanSummary,
    RulesIn,
    RulesPublic,
    TeamPublic,
    VisitPublic,
)
from backend.venues import service as venues

router = APIRouter(prefix="/schedules", tags=["schedules"])
calendar_router = APIRouter(prefix="/calendar", tags=["schedules"])

Reader = Annotated[Principal, requires(Action.schedule_read)]
Planner = Annotated[Principal, requires(Action.schedule_generate)]
Publisher = Annotated[Principal, requires(Action.schedule_publish)]
ICS = "text/calendar; charset=utf-8"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _plan_public(session: SessionDep, plan: SchedulePlan) -> PlanPublic:
    assert plan.id is not None
    teams = service.plan_teams(session, plan)
    areas = dict(session.execute(select(col(OrgUnit.id), col(OrgUnit.name)).where(
        col(OrgUnit.id).in_({s.team.area_unit_id for s in teams}))).all()) if teams else {}
    counts = service.summary_counts(teams)
    out = []
    for s in teams:
        visits = []
        for v, venue in s.visits:
            lon, lat = venues.lon_lat(venue)
            visits.append(VisitPublic(id=v.id or 0, venue_id=v.venue_id, venue_name=venue.name,
                                      venue_type=venue.venue_type, address=venue.address, lon=lon, lat=lat,
                                      position=v.position, leg_distance_m=v.leg_distance_m, reason=v.reason,
                                      carried_over=v.carried_over))
        out.append(TeamPublic(id=s.team.id or 0, day_date=s.team.day_date, label=s.team.label,
                              area_unit_id=s.team.area_unit_id, area_name=areas.get(s.team.area_unit_id, ""),
                              is_joint=s.team.is_joint, route_distance_m=s.team.route_distance_m,
                              members=[MemberPublic(user_id=m.user_id, display_name=u.display_name, agency=m.agency)
                                       for m, u in s.members], visits=visits))
    return PlanPublic(id=plan.id, org_unit_id=plan.org_unit_id, week_start_date=plan.week_start_date,
                      status=plan.status, joint_ops_required=plan.joint_ops_required,
                      joint_ops_planned=counts["joint"], total_distance_m=plan.total_distance_m,
                      venues_planned=counts["venues"], candidates=int(plan.rules.get("candidates", 0)),
                      violations=plan.violations, generated_at=plan.generated_at, published_at=plan.published_at,
                      publish_note=plan.publish_note, teams=out)


@router.get("/rules/{org_unit_id}", response_model=RulesPublic)
def get_rules(org_unit_id: int, principal: Reader, session: SessionDep) -> RulesPublic:
    """The planning rules that apply to a jurisdiction (its own or inherited)."""
    return service.get_rules(session, principal, org_unit_id)


@router.put("/rules/{org_unit_id}", response_model=RulesPublic)
def set_rules(org_unit_id: int, data: RulesIn, principal: Planner, session: SessionDep) -> RulesPublic:
    """Set a jurisdiction's rules: joint operations a month, daily capacity, team size, thresholds."""
    return service.set_rules(session, principal, org_unit_id, data)


@router.get("/duties", response_model=DutiesPublic)
def get_duties(unit_id: int, principal: Reader, session: SessionDep) -> DutiesPublic:
    """执法职责 in force at a unit: which agency inspects which venue type, how often (its county's list,
    or the national default: police and market supervision, monthly)."""
    return duties.get(session, principal, unit_id)


@router.put("/duties", response_model=DutiesPublic)
def set_duties(unit_id: int, data: DutiesIn, principal: Planner, session: SessionDep) -> DutiesPublic:
    """Replace a county's duties (文旅, 教育, 综合执法, 卫健 beside police and market supervision); an empty
    list returns the county to the national default. Weekly plans of every unit in the county follow it."""
    return duties.put(session, principal, unit_id, data)


@router.get("/availability/{user_id}", response_model=AvailabilityPublic)
def get_availability(user_id: int, principal: Reader, session: SessionDep) -> AvailabilityPublic:
    """The weekdays an officer can be planned (Monday-Friday unless set)."""
    return service.get_availability(session, principal, user_id)


@router.put("/availability/{user_id}", response_model=AvailabilityPublic)
def set_availability(user_id: int, data: AvailabilityIn, principal: Reader, session: SessionDep
                     ) -> AvailabilityPublic:
    """Set an officer's weekdays (officers their own; coordinators anyone's in their jurisdiction)."""
    return service.set_availability(session, principal, user_id, data.weekdays)


@router.post("/generate", response_model=PlanPublic, status_code=status.HTTP_201_CREATED)
def generate(data: GenerateIn, principal: Planner, session: SessionDep) -> PlanPublic:
    """Generate next week's plan (or a given week's) as a draft, with the checker's verdict."""
    return _plan_public(session, service.generate(session, principal, data.org_unit_id, data.week_start_date))


def _feed_url(request: Request, session: SessionDep, user_id: int) -> FeedUrl:
    base = str(request.base_url).rstrip("/")
    return FeedUrl(url=f"{base}/api/v1/calendar/{user_id}/{service.current_feed_token(session, user_id)}.ics")


@router.get("/feed-url", response_model=FeedUrl)
def feed_url(principal: CurrentPrincipal, request: Request, session: SessionDep) -> FeedUrl:
    """The caller's calendar subscription URL (keep it private: it needs no sign-in; it stops working
    while the account is deactivated, and `POST /schedules/feed-url/revoke` replaces it)."""
    return _feed_url(request, session, principal.user_id)


@router.post("/feed-url/revoke", response_model=FeedUrl)
def revoke_my_feed(principal: CurrentPrincipal, request: Request, session: SessionDep) -> FeedUrl:
    """Retire the caller's calendar URL (every copy handed out before stops working) and answer the new one."""
    service.revoke_feed(session, principal, principal.user_id)
    return _feed_url(request, session, principal.user_id)


@router.post("/feed-url/{user_id}/revoke", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def revoke_user_feed(user_id: int, principal: CurrentPrincipal, session: SessionDep) -> Response:
    """Retire a user's calendar URL (a lost phone, a leaked link): needs user.manage over the user, as
    any change to them (the grant table's reach, inside the jurisdiction). The user fetches the new
    URL with `GET /schedules/feed-url`; audited."""
    service.revoke_feed(session, principal, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/mine.ics", response_class=Response, responses={200: {"content": {"text/calendar": {}}}})
def my_calendar(principal: CurrentPrincipal, session: SessionDep) -> Response:
    """The caller's published visits as iCalendar."""
    return Response(service.ics_for(session, principal.user_id), media_type=ICS)


@router.get("", response_model=list[PlanSummary] | Page[PlanSummary])
def list_plans(principal: Reader, session: SessionDep, org_unit_id: int,
               page: Paging) -> list[PlanSummary] | Page[PlanSummary]:
    """A jurisdiction's plans, newest week first (the bare list: the newest 60)."""
    orgunits.get_visible_unit(session, principal, org_unit_id)
    rows = session.execute(page.seek(select(SchedulePlan).where(col(SchedulePlan.org_unit_id) == org_unit_id),
                                     col(SchedulePlan.week_start_date), col(SchedulePlan.id), descending=True,
                                     bare_limit=60)).scalars()
    plans = [PlanSummary(id=p.id or 0, org_unit_id=p.org_unit_id, week_start_date=p.week_start_date, status=p.status,
                         violations=len(p.violations), generated_at=p.generated_at, published_at=p.published_at)
             for p in rows]
    return page.answer(plans, key=lambda p: (p.week_start_date, p.id), descending=True)


@router.get("/{plan_id}", response_model=PlanPublic)
def get_plan(plan_id: int, principal: Reader, session: SessionDep) -> PlanPublic:
    """A plan: teams by day, members, area, venues in driving order, distances, violations."""
    return _plan_public(session, service.get_plan(session, principal, plan_id))


@router.get("/{plan_id}/check", response_model=list[dict[str, object]] | Page[dict[str, object]])
def check_plan(plan_id: int, principal: Reader, session: SessionDep,
               page: Paging) -> list[dict[str, object]] | Page[dict[str, object]]:
    """Check a stored plan against today's venues, officers and rules; every violation is named (paged:
    by code, then by what it names)."""
    violations = [v.as_dict() for v in service.recheck(session, principal, plan_id)]
    return page.answer(violations, key=lambda v: (str(v["code"]), json.dumps(v["refs"], sort_keys=True, default=str),
                                                  str(v["message_en"])))


@router.post("/{plan_id}/publish", response_model=PlanPublic)
def publish(plan_id: int, principal: Publisher, session: SessionDep) -> PlanPublic:
    """Publish a draft plan and notify its officers."""
    return _plan_public(session, service.publish(session, principal, plan_id))


@router.get("/{plan_id}/compliance", response_model=CompliancePublic)
def compliance(plan_id: int, principal: Reader, session: SessionDep) -> CompliancePublic:
    """Planned against done: each planned venue is done, missed or pending."""
    plan, rows = service.compliance(session, principal, plan_id)
    visits = [ComplianceVisit(venue_id=r.venue.id or 0, venue_name=r.venue.name, day_date=r.team.day_date,
                              team_label=r.team.label, state=r.state, inspection_id=r.inspection_id) for r in rows]
    return CompliancePublic(plan_id=plan.id or 0, week_start_date=plan.week_start_date, planned=len(rows),
                            done=sum(1 for r in rows if r.state == "done"),
                            missed=sum(1 for r in rows if r.state == "missed"),
                            pending=sum(1 for r in rows if r.state == "pending"), visits=visits)


@router.get("/{plan_id}/export.xlsx", response_class=Response, responses={200: {"content": {XLSX: {}}}})
def export_plan(plan_id: int, principal: Reader, session: SessionDep) -> Response:
    """The plan as .xlsx, one row per visit in driving order."""
    return Response(service.export_xlsx(session, principal, plan_id), media_type=XLSX,
                    headers={"Content-Disposition": f'attachment; filename="plan-{plan_id}.xlsx"'})


@calendar_router.get("/{user_id}/{token}.ics", response_class=Response,
                     responses={200: {"content": {"text/calendar": {}}}})
def calendar_feed(user_id: int, token: str, session: SessionDep) -> Response:
    """An officer's calendar feed for phone calendar subscriptions (the token is the credential; 404
    once revoked or while the account is deactivated)."""
    if not service.feed_token_ok(session, user_id, token):  # also when the user is deactivated
        raise NotFound()
    return Response(service.ics_for(session, user_id), media_type=ICS)
