"""What a principal may see of the records that carry a child: the one condition every read applies.

The jurisdiction (the caller's org subtree, `orgunits.in_jurisdiction`) bounds every record. Inside
it, a principal whose right to read a kind comes only from a role that reaches the children assigned
to the user (`Principal.by_assignment`: helpers, `permissions.ASSIGNED_ONLY`) sees only

- the children with an **accepted** assignment to the user (an offer opens nothing: a helper answers
  it from the assignment record, which gives the child's id, risk level and the matcher's reasons,
  never the child's record; the record comes with accepting, and leaves when the help ends or goes
  to another helper);
- those children's households;
- those households' visits, the photos of those visits and the referrals those visits opened.

Everything else answers exactly as a record outside the jurisdiction: 404 by id, absent from lists,
counts and the sync pull. A user who also holds a role granting the same right area-wide (a helper
who is a volunteer too) keeps that role's view.

Cases (个案, backend/cases) follow the same rule, and police (`permissions.REFERRED_ONLY`) see only
the cases of their jurisdiction that a referral (强制报告) opened or joined. Services of cases and
referrals between units (backend/service_plans, backend/agency_referrals) follow their case, and are
also seen, wherever the case is, by the unit they are addressed to (the pair org unit + agency of the
user: the providing unit; the receiving or sending unit); member-unit staff
(`permissions.ADDRESSED_ONLY`) see only those.

Staff of institutions in close contact with minors and their background checks (从业查询,
backend/staff_checks) are seen by the police of the institution's jurisdiction and, inside their
jurisdiction, by member-unit staff whose agency supervises the institution from a unit strictly above
the institution's administrative unit (`supervised`, `units_strictly_below`; staff of the institution's
own unit, or of the village of the grid it is registered at, are its staff, not its supervisor).

`visible(principal, Model)` is the SQL condition for a kind; `get_visible` reads one record by id
under it; `assigned_ids_sql` gives the same restriction as SQL text for the raw-SQL aggregates
(coverage). The sync pull sends and removes by the same condition (backend/sync/pull.py), and the
database tells a helper's phone when a child leaves its view (migration 0016).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from sqlalchemy import ColumnElement, Select, and_, false, or_, select
from sqlmodel import Session, col

from backend.accounts.permissions import (
    ACTS_FOR_UNIT,
    ADDRESSED_ONLY,
    ASSIGNED_ONLY,
    PERMISSIONS,
    REFERRED_ONLY,
    Action,
)
from backend.accounts.principal import Principal
from backend.agency_referrals.models import AgencyReferral
from backend.cases.models import Case
from backend.core.errors import NotFound
from backend.helpers.models import Assignment, AssignmentStatus, HelperProfile
from backend.institutions.models import Institution
from backend.media.models import MediaItem
from backend.orgunits import service as orgunits
from backend.orgunits.models import OrgLevel, OrgUnit
from backend.police_cases.models import PoliceCase
from backend.referrals.models import Referral
from backend.registry.models import Household, Person
from backend.service_plans.models import CaseService
from backend.staff_checks.models import StaffMember
from backend.sync.models import SyncRemoval
from backend.visits.models import Visit

# The assignment statuses that open a child's records to its helper.
OPENS_RECORDS: tuple[str, ...] = (AssignmentStatus.accepted.value,)


def assigned_children(principal: Principal) -> Select[Any]:
    """SELECT of the ids of the children with an accepted assignment to the principal's user."""
    return (
        select(col(Assignment.child_id))
        .join(HelperProfile, col(HelperProfile.id) == col(Assignment.helper_id))
        .where(col(HelperProfile.user_id) == principal.user_id, col(Assignment.status).in_(OPENS_RECORDS))
    )


def assigned_households(principal: Principal) -> Select[Any]:
    """SELECT of the ids of those children's households."""
    return select(col(Person.household_id)).where(
        col(Person.id).in_(assigned_children(principal)), col(Person.household_id).is_not(None)
    )


def _assigned_visits(principal: Principal) -> Select[Any]:
    return select(col(Visit.client_uuid)).where(col(Visit.household_id).in_(assigned_households(principal)))


def _assigned_cases(principal: Principal) -> Select[Any]:
    return select(col(Case.id)).where(col(Case.child_id).in_(assigned_children(principal)))


def _referred_cases() -> Select[Any]:
    return select(col(Case.id)).where(col(Case.referred).is_(True))


def unit_is(principal: Principal, unit: Any, agency: Any) -> ColumnElement[bool]:
    """The record names the unit the principal acts for: its org unit and its agency, through a role
    of permissions.ACTS_FOR_UNIT (`Principal.acts_for`); false for everyone else (a helper)."""
    if principal.agency is None or not principal.roles & ACTS_FOR_UNIT:
        return false()
    return and_(unit == principal.org_unit_id, agency == principal.agency)


def _institution_of_member(column: Any) -> Any:
    """The member's institution's `column`, as a correlated scalar subquery."""
    return select(column).where(col(Institution.id) == col(StaffMember.institution_id)).scalar_subquery()


def units_strictly_below(principal: Principal) -> Select[Any]:
    """SELECT of the units an institution may lie at for the principal's unit to be strictly above the
    institution's administrative unit: inside the jurisdiction, neither the principal's own unit nor a
    grid of it. A grid (网格) is no administrative level: an institution registered at a grid counts as
    of the grid's village, so a village's staff are its staff, never its supervisor. The one predicate
    of "strictly above" for institutions (staff scope, due list, overview, export, reminders)."""
    return select(col(OrgUnit.id)).where(
        col(OrgUnit.id).in_(orgunits.subtree_unit_ids(principal.org_path)),
        col(OrgUnit.id) != principal.org_unit_id,
        or_(col(OrgUnit.level) != OrgLevel.grid.value, col(OrgUnit.parent_id).is_(None),
            col(OrgUnit.parent_id) != principal.org_unit_id))


def supervised_institutions(principal: Principal) -> ColumnElement[bool]:
    """SQL on Institution: the principal is its supervising agency (行业主管部门), member-unit staff of
    that agency at a unit strictly above the institution's administrative unit (`units_strictly_below`;
    a county 教育局 over its schools). Staff of the same agency at the institution's own unit (or the
    village of its grid) are staff of the institution itself (a school's teacher) and supervise
    nothing; false for a principal without an agency or a role acting for its unit."""
    if principal.agency is None or not principal.roles & ACTS_FOR_UNIT:
        return false()
    return and_(col(Institution.supervising_agency) == principal.agency,
                col(Institution.org_unit_id).in_(units_strictly_below(principal)))


def supervises(session: Session, principal: Principal, institution: Institution) -> bool:
    """Whether the principal supervises this institution (`supervised_institutions`, read in SQL)."""
    return session.execute(select(col(Institution.id)).where(
        col(Institution.id) == institution.id, supervised_institutions(principal))).first() is not None


def _supervised_by(principal: Principal) -> ColumnElement[bool]:
    """SQL on StaffMember of `supervised_institutions`: the member's institution is one the principal
    supervises."""
    if principal.agency is None or not principal.roles & ACTS_FOR_UNIT:
        return false()
    return col(StaffMember.institution_id).in_(select(col(Institution.id)).where(supervised_institutions(principal)))


@dataclass(frozen=True)
class _Kind:
    read: Action  # the right that reads the kind (the default `action` of `visible`)
    unit: Callable[[], Any]  # the record's unit column
    assigned: Callable[[Principal], ColumnElement[bool]]  # the rows of the principal's assigned children
    # The rows a role of permissions.REFERRED_ONLY reaches (police: cases a referral opened or joined);
    # None where such a role sees the whole jurisdiction.
    referred: Callable[[], ColumnElement[bool]] | None = None
    # The rows addressed to the principal's own unit (its org unit and agency: services it provides,
    # referrals to or from it), which every holder of the right sees wherever the case is; the only rows
    # a role of permissions.ADDRESSED_ONLY (member-unit staff) reaches. None for kinds never addressed.
    addressed: Callable[[Principal], ColumnElement[bool]] | None = None
    # The rows supervised by the principal's own agency (行业主管部门: an institution's staff), the only
    # rows of its jurisdiction a role of permissions.ADDRESSED_ONLY reaches. None for other kinds.
    supervised: Callable[[Principal], ColumnElement[bool]] | None = None


_KINDS: dict[type[Any], _Kind] = {
    Person: _Kind(Action.child_read, lambda: col(Person.org_unit_id),
                  lambda p: col(Person.id).in_(assigned_children(p))),
    Household: _Kind(Action.household_read, lambda: col(Household.org_unit_id),
                     lambda p: col(Household.id).in_(assigned_households(p))),
    Visit: _Kind(Action.visit_read, lambda: col(Visit.org_unit_id),
                 lambda p: col(Visit.household_id).in_(assigned_households(p))),
    Referral: _Kind(Action.referral_read, lambda: col(Referral.org_unit_id),
                    lambda p: col(Referral.household_id).in_(assigned_households(p))),
    # Photos of visits follow their visit; the uploader keeps its own (a photo may arrive before its
    # visit, and a phone resends what it took); photos of venues and inspections carry no child.
    MediaItem: _Kind(Action.media_read, lambda: col(MediaItem.org_unit_id),
                     lambda p: or_(col(MediaItem.uploader_user_id) == p.user_id,
                                   col(MediaItem.parent_kind) != "visit",
                                   col(MediaItem.parent_uuid).in_(_assigned_visits(p)))),
    # Cases (个案): a helper sees the cases of its accepted children; police those a referral opened or
    # joined (the law gives them the case); coordinators every case of the jurisdiction.
    Case: _Kind(Action.case_read, lambda: col(Case.org_unit_id),
                lambda p: col(Case.child_id).in_(assigned_children(p)),
                referred=lambda: col(Case.referred).is_(True)),
    # Services of cases and referrals between units (issue 16) follow their case (coordinators by the
    # case's unit, helpers their accepted children's cases, police the referred cases), and are seen
    # wherever the case is by the unit they are addressed to (provider; receiver or sender).
    CaseService: _Kind(Action.service_read, lambda: col(CaseService.org_unit_id),
                       lambda p: col(CaseService.case_id).in_(_assigned_cases(p)),
                       referred=lambda: col(CaseService.case_id).in_(_referred_cases()),
                       addressed=lambda p: unit_is(p, col(CaseService.provider_unit_id),
                                                    col(CaseService.provider_agency))),
    AgencyReferral: _Kind(Action.service_read, lambda: col(AgencyReferral.org_unit_id),
                          lambda p: col(AgencyReferral.case_id).in_(_assigned_cases(p)),
                          referred=lambda: col(AgencyReferral.case_id).in_(_referred_cases()),
                          addressed=lambda p: or_(
                              unit_is(p, col(AgencyReferral.to_unit_id), col(AgencyReferral.to_agency)),
                              unit_is(p, col(AgencyReferral.from_unit_id), col(AgencyReferral.from_agency)))),
    # The police case register (立案, backend/police_cases): police and coordinators by the station's
    # unit; nobody reaches it by assignment (no helper holds the right).
    PoliceCase: _Kind(Action.police_case_read, lambda: col(PoliceCase.station_unit_id), lambda p: false()),
    # Staff of institutions and their background checks (从业查询, issue 18): police by the institution's
    # unit; member-unit staff only where their agency supervises the institution (in their jurisdiction).
    StaffMember: _Kind(Action.staff_read, lambda: _institution_of_member(col(Institution.org_unit_id)),
                       lambda p: false(), supervised=lambda p: _supervised_by(p)),
}

KINDS: frozenset[type[Any]] = frozenset(_KINDS)


def visible(principal: Principal, model: type[Any], *, action: Action | None = None) -> ColumnElement[bool]:
    """SQL condition: the rows of `model` (Person, Household, Visit, Referral, MediaItem) the principal
    may see with `action` (default: the right that reads the kind). Jurisdiction always; for a right
    that comes by assignment only, the assigned children's records too."""
    kind = _KINDS[model]
    area = orgunits.in_jurisdiction(principal, kind.unit())
    narrowed = reach(principal, model, action=action)
    inside = area if narrowed is None else and_(area, narrowed)
    if kind.addressed is not None:
        return or_(inside, kind.addressed(principal))
    return inside


def reach(principal: Principal, model: type[Any], *, action: Action | None = None) -> ColumnElement[bool] | None:
    """The rows of `model` a principal whose view is narrowed reaches, whatever their unit (its
    assigned children's, the referred cases); None when it sees the whole jurisdiction. `visible` is
    the jurisdiction and this; the sync pull also uses it alone, for tombstones of records that left
    the jurisdiction."""
    kind = _KINDS[model]
    right = action or kind.read
    if principal.by_assignment(right):
        return kind.assigned(principal)
    if kind.supervised is not None:
        granting = {r for r in principal.roles if right in PERMISSIONS[r]}
        if granting and granting <= ADDRESSED_ONLY:
            return kind.supervised(principal)
    if kind.referred is not None:
        # A user whose every role granting the right is narrowed (police, helper) sees the union of
        # those roles' reaches; any other granting role opens the whole jurisdiction.
        granting = {r for r in principal.roles if right in PERMISSIONS[r]}
        if granting and granting <= REFERRED_ONLY | ASSIGNED_ONLY | ADDRESSED_ONLY:
            reaches = [kind.referred()] if granting & REFERRED_ONLY else []
            if granting & ASSIGNED_ONLY:
                reaches.append(kind.assigned(principal))
            # Member-unit staff reach nothing by jurisdiction: only what is addressed (see `visible`).
            return or_(*reaches) if reaches else false()
    return None


def narrowed_by(principal: Principal, model: type[Any], *, action: Action | None = None) -> str | None:
    """How the principal's view of `model` is narrowed ("assigned", "referred", both joined by "+"),
    None when it is the whole jurisdiction: a sync cursor names it, so a phone whose view changes
    kind (a helper made a coordinator too) is rebuilt, not patched."""
    kind = _KINDS[model]
    right = action or kind.read
    if principal.by_assignment(right):
        return "assigned"
    if kind.supervised is not None:
        granting = {r for r in principal.roles if right in PERMISSIONS[r]}
        if granting and granting <= ADDRESSED_ONLY:
            return "supervised"
    if kind.referred is not None:
        granting = {r for r in principal.roles if right in PERMISSIONS[r]}
        if granting and granting <= REFERRED_ONLY | ASSIGNED_ONLY | ADDRESSED_ONLY:
            return "+".join(name for name, roles in (("referred", REFERRED_ONLY), ("assigned", ASSIGNED_ONLY),
                                                     ("addressed", ADDRESSED_ONLY)) if granting & roles)
    return None


RecordT = TypeVar("RecordT")


def get_visible(
    session: Session, principal: Principal, model: type[RecordT], record_id: int, *,
    action: Action | None = None, not_found: type[NotFound] = NotFound,
) -> RecordT:
    """A record by id when the principal may see it; otherwise the same 404 as for an id that does not
    exist (outside the jurisdiction, or a child not assigned to a helper), so ids cannot be probed."""
    record = session.execute(
        select(model).where(col(model.id) == record_id, visible(principal, model, action=action))  # type: ignore[attr-defined]
    ).scalar_one_or_none()
    if record is None:
        raise not_found()
    return cast(RecordT, record)


# Tombstones (sync_removal) say who may have held a record: a unit (it left a unit of the jurisdiction)
# or a user (a helper's child left its view, migration 0016).
_TOMBSTONED: dict[type[Any], tuple[Action, Callable[[Principal], Select[Any]]]] = {
    Person: (Action.child_read, assigned_children),
    Household: (Action.household_read, assigned_households),
}


def tombstone_audience(principal: Principal, model: type[Any]) -> ColumnElement[bool]:
    """SQL condition on sync_removal: the tombstones of `model` (Person or Household) whose record the
    principal may have held. Those of a unit of its jurisdiction, and those the database addressed to
    its user; for a helper, of the unit's records only those of its own children and their households
    (it never held the others, and must not learn even their ids)."""
    read, assigned = _TOMBSTONED[model]
    area = orgunits.in_jurisdiction(principal, col(SyncRemoval.org_unit_id))
    if principal.by_assignment(read):
        area = and_(area, col(SyncRemoval.record_id).in_(assigned(principal)))
    return or_(area, col(SyncRemoval.user_id) == principal.user_id)


def assigned_ids_sql(session: Session, principal: Principal, model: type[Any], *, action: Action) -> str | None:
    """For aggregates written in SQL text: None when the principal's view of `model` is its whole
    jurisdiction (the aggregate's own unit filter applies), else the SELECT of the ids it may see as
    SQL (`... IN (<this>)`), the same condition as `visible`. Only constants are rendered into it (the
    user id, the statuses)."""
    if not principal.by_assignment(action):
        return None
    selects: dict[type[Any], Callable[[Principal], Select[Any]]] = {
        Person: assigned_children, Household: assigned_households,
    }
    ids = selects[model](principal)
    return str(ids.compile(dialect=session.get_bind().dialect, compile_kwargs={"literal_binds": True}))
