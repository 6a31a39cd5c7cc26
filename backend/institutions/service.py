"""The institution register (密切接触未成年人单位): create, read, change within jurisdiction.

Other parts of issue 18 reach an institution only through `get_visible` (404 outside the caller's
jurisdiction, so ids cannot be probed) and list schools with `schools_in`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, false, or_, select
from sqlmodel import Session, col

from backend.accounts.principal import Principal
from backend.audit import service as audit
from backend.core import clock
from backend.core import text as texts
from backend.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from backend.institutions.models import SUPERVISOR, Institution, InstitutionKind
from backend.institutions.schemas import InstitutionCreate, InstitutionPublic, InstitutionUpdate
from backend.orgunits import service as orgunits
from backend.orgunits.models import OrgLevel, OrgUnit
from backend.venues.models import Venue

SCHOOL_KINDS: tuple[str, ...] = tuple(k.value for k in InstitutionKind if k.is_school)


class InstitutionNotFound(NotFound):
    code = "institution-not-found"
    title_zh = "未找到该单位"
    title_en = "Institution not found"


class InstitutionVenueTaken(Conflict):
    code = "institution-venue-taken"
    title_zh = "该场所已关联其他单位"
    title_en = "The venue is already linked to another institution"


class SupervisorChangeForbidden(Forbidden):
    code = "institution-supervisor-county-only"
    title_zh = "只有县级及以上的协调员可以变更单位的主管部门"
    title_en = "Only a coordinator at county level or above may change an institution's supervising agency"


class InstitutionMoveForbidden(Forbidden):
    code = "institution-move-county-only"
    title_zh = "只有县级及以上的协调员可以变更单位的所在单位"
    title_en = "Only a coordinator at county level or above may move an institution to another unit"


class InstitutionDeactivateForbidden(Forbidden):
    code = "institution-deactivate-county-only"
    title_zh = "只有县级及以上的协调员可以停用单位"
    title_en = "Only a coordinator at county level or above may deactivate an institution"


class InstitutionKindChangeForbidden(Forbidden):
    code = "institution-kind-county-only"
    title_zh = "只有县级及以上的协调员可以变更单位类型"
    title_en = "Only a coordinator at county level or above may change an institution's kind"


class InstitutionEnrolmentForbidden(Forbidden):
    code = "institution-enrolment-county-only"
    title_zh = "只有县级及以上的协调员可以变更已登记学校的在校学生数"
    title_en = "Only a coordinator at county level or above may change a registered institution's enrolment"


def may_change_supervisor(session: Session, principal: Principal) -> bool:
    """The supervising agency decides who sees an institution's staff and check results: only a caller
    at a county or above may redirect it (a town coordinator may not)."""
    unit = session.get(OrgUnit, principal.org_unit_id)
    return unit is not None and OrgLevel(unit.level).depth <= OrgLevel.county.depth


class InstitutionNameEmpty(InvalidInput):
    code = "institution-name-empty"
    title_zh = "单位名称不能为空"
    title_en = "The institution's name is empty"


def public(institution: Institution) -> InstitutionPublic:
    assert institution.id is not None
    kind = InstitutionKind(institution.kind)
    return InstitutionPublic(
        id=institution.id, name=institution.name, kind=kind, kind_zh=kind.zh, org_unit_id=institution.org_unit_id,
        supervising_agency=institution.supervising_agency, venue_id=institution.venue_id,
        address=institution.address, student_count=institution.student_count, is_active=institution.is_active,
    )


def get_visible(session: Session, principal: Principal, institution_id: int) -> Institution:
    """An institution inside the caller's jurisdiction, else 404 (the same as an id that does not exist)."""
    return orgunits.get_in_jurisdiction(session, principal, Institution, institution_id,
                                        not_found=InstitutionNotFound)


def schools_in(session: Session, unit_id: int) -> Select[Any]:
    """SELECT of the active schools (小学, 中学, 幼儿园) at or under a unit: the places of 进校园 and of
    awareness surveys. `session` is kept for symmetry with the other readers; the select is lazy."""
    unit = orgunits.get_unit(session, unit_id)
    within = col(Institution.org_unit_id).in_(orgunits.subtree_unit_ids(unit.path)) if unit is not None else false()
    return (select(Institution)
            .where(within, col(Institution.kind).in_(SCHOOL_KINDS), col(Institution.is_active).is_(True))
            .order_by(col(Institution.id)))


def _name(value: str) -> str:
    name = value.strip()
    if not texts.visible(name):
        raise InstitutionNameEmpty("单位名称只有空白字符", "The name holds only blank characters", field="name")
    return name


def _venue(session: Session, principal: Principal, venue_id: int, institution_id: int | None) -> int:
    """A venue of the caller's jurisdiction that no other institution is linked to."""
    orgunits.get_in_jurisdiction(session, principal, Venue, venue_id)
    holder = session.execute(select(col(Institution.id)).where(col(Institution.venue_id) == venue_id)).scalar()
    if holder is not None and holder != institution_id:
        raise InstitutionVenueTaken(f"场所 {venue_id} 已关联单位 {holder}",
                                    f"venue {venue_id} is linked to institution {holder}", institution_id=holder)
    return venue_id


def _unit(session: Session, principal: Principal, unit_id: int) -> int:
    unit = orgunits.get_visible_unit(session, principal, unit_id)
    assert unit.id is not None
    return unit.id


def create(session: Session, principal: Principal, data: InstitutionCreate) -> Institution:
    """Register an institution in a unit of the caller's jurisdiction."""
    kind = InstitutionKind(data.kind)
    # Another supervising agency than the kind's default decides who reads the staff checks: the same
    # county-level rule as changing it later.
    if (data.supervising_agency is not None and data.supervising_agency != SUPERVISOR[kind]
            and not may_change_supervisor(session, principal)):
        raise SupervisorChangeForbidden()
    institution = Institution(
        name=_name(data.name), kind=kind.value, org_unit_id=_unit(session, principal, data.org_unit_id),
        supervising_agency=(data.supervising_agency or SUPERVISOR[kind]).value,
        venue_id=_venue(session, principal, data.venue_id, None) if data.venue_id is not None else None,
        address=data.address.strip(), student_count=data.student_count, is_active=data.is_active,
    )
    session.add(institution)
    session.flush()
    audit.record(session, actor=principal, action="institution.create", object_type="institution",
                 object_id=institution.id, org_unit_id=institution.org_unit_id,
                 details={"kind": institution.kind, "supervising_agency": institution.supervising_agency})
    return institution


def update(session: Session, principal: Principal, institution_id: int, data: InstitutionUpdate) -> Institution:
    """Change an institution; a move keeps it inside the caller's jurisdiction (else 404)."""
    institution = get_visible(session, principal, institution_id)
    given = data.model_dump(exclude_unset=True)
    changed: list[str] = []
    values: dict[str, dict[str, Any]] = {}  # old and new of each changed field, for the audit entry

    def put(name: str, value: Any) -> None:
        if getattr(institution, name) != value:
            values[name] = {"old": getattr(institution, name), "new": value}
            setattr(institution, name, value)
            changed.append(name)

    if given.get("name") is not None:
        put("name", _name(given["name"]))
    if given.get("kind") is not None:
        kind = InstitutionKind(given["kind"]).value
        # The kind puts an institution on the school lists (进校园, awareness surveys) and its default
        # supervisor: changing it removes oversight, a county's decision as redirecting the agency is.
        if kind != institution.kind and not may_change_supervisor(session, principal):
            raise InstitutionKindChangeForbidden()
        put("kind", kind)
    if given.get("org_unit_id") is not None:
        target = _unit(session, principal, given["org_unit_id"])
        # Where an institution lies decides who is above it, so who reads its staff checks (the
        # supervising agency's clerks above its unit): moving it is a county's decision, as redirecting
        # its supervising agency is. A town moving a school into its grid handed the list to the school.
        if target != institution.org_unit_id and not may_change_supervisor(session, principal):
            raise InstitutionMoveForbidden()
        put("org_unit_id", target)
    if given.get("supervising_agency") is not None:
        wanted = str(given["supervising_agency"].value if hasattr(given["supervising_agency"], "value")
                     else given["supervising_agency"])
        if wanted != institution.supervising_agency and not may_change_supervisor(session, principal):
            raise SupervisorChangeForbidden()
        put("supervising_agency", wanted)
    if "venue_id" in given:
        venue_id = given["venue_id"]
        put("venue_id", None if venue_id is None else _venue(session, principal, venue_id, institution.id))
    if given.get("address") is not None:
        put("address", given["address"].strip())
    if "student_count" in given:
        # The enrolment is what an awareness round's participation and answer cap are read against: a
        # unit lowering it before its own round made its figure (outside tester). A county's decision.
        if given["student_count"] != institution.student_count and not may_change_supervisor(session, principal):
            raise InstitutionEnrolmentForbidden()
        put("student_count", given["student_count"])
    if given.get("is_active") is not None:
        # Deactivating takes the institution off the school lists and the register's counts: a county's
        # decision (its members still to be checked or dismissed stay on the due list: staff_checks).
        if institution.is_active and not given["is_active"] and not may_change_supervisor(session, principal):
            raise InstitutionDeactivateForbidden()
        put("is_active", given["is_active"])
    if changed:
        institution.updated_at = clock.now()
        session.add(institution)
        session.flush()
        # Every changed field with its old and new value (the oversight a change removes can be undone).
        details: dict[str, Any] = {"fields": changed, **values}
        audit.record(session, actor=principal, action="institution.update", object_type="institution",
                     object_id=institution.id, org_unit_id=institution.org_unit_id, details=details)
    return institution


def listing(session: Session, principal: Principal, *, unit_id: int | None = None,
            kind: InstitutionKind | None = None, q: str | None = None, active: bool | None = None) -> Select[Any]:
    """SELECT of the institutions of the caller's jurisdiction (or a visible unit's subtree), by id."""
    stmt = select(Institution).where(orgunits.in_jurisdiction(principal, col(Institution.org_unit_id)))
    if unit_id is not None:
        unit = orgunits.get_visible_unit(session, principal, unit_id)
        stmt = stmt.where(col(Institution.org_unit_id).in_(orgunits.subtree_unit_ids(unit.path)))
    if kind is not None:
        stmt = stmt.where(col(Institution.kind) == kind.value)
    if active is not None:
        stmt = stmt.where(col(Institution.is_active).is_(active))
    if q:
        like = f"%{q.strip()}%"
        stmt = stmt.where(or_(col(Institution.name).like(like), col(Institution.address).like(like)))
    return stmt.order_by(col(Institution.id))


def list_page(session: Session, principal: Principal, *, after_id: int | None, limit: int,
              **filters: Any) -> list[Institution]:
    stmt = listing(session, principal, **filters)
    if after_id is not None:
        stmt = stmt.where(col(Institution.id) > after_id)
    return list(session.execute(stmt.limit(limit)).scalars())
