"""The police case register (立案): police of the station's town or the county above register, edit
and move cases filed -> investigating -> transferred_for_prosecution -> closed (with a reason);
police and coordinators of the jurisdiction read them. A case names nobody: links to child cases,
附件2 suspects, venues and the referral are ids, and each answer carries only the links the reader may
see through its own rights (backend/accounts/scope.py for cases and referrals, the jurisdiction and
the seal for 附件2, the jurisdiction for venues). Coordinators do not receive the summary.

Every read is declared to the structural audit and every change is an audit event
(backend/audit/disclosure.py). The weekly new-case report is in backend/police_cases/weekly.py."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from backend.accounts import scope
from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.audit import disclosure
from backend.cases.models import Case
from backend.core import clock
from backend.core.errors import Conflict, InvalidInput, NotFound
from backend.core.pagination import PageRequest
from backend.orgunits import service as orgunits
from backend.orgunits.models import OrgLevel, OrgUnit
from backend.police_cases.models import (
    CaseReview,
    LinkKind,
    OffenceCategory,
    PoliceCase,
    PoliceCaseEvent,
    PoliceCaseLink,
    PoliceCaseStatus,
    PoliceCloseReason,
)
from backend.police_cases.schemas import (
    PoliceCaseCreate,
    PoliceCaseDetail,
    PoliceCaseEventPublic,
    PoliceCasePublic,
    PoliceCaseUpdate,
)
from backend.referrals.models import Referral
from backend.registry.models import RiskPerson
from backend.sealing import service as sealing
from backend.venues.models import Venue


class PoliceCaseNotFound(NotFound):
    code = "police-case-not-found"
    title_zh = "未找到立案记录"
    title_en = "Police case not found"


class PoliceCaseNumberTaken(Conflict):
    code = "police-case-number-taken"
    title_zh = "本派出所已有该案件编号"
    title_en = "The station already has a case with this number"


class PoliceCaseDateInvalid(InvalidInput):
    code = "police-case-date-invalid"
    title_zh = "立案日期不能晚于今天"
    title_en = "The filing date cannot be in the future"


class PoliceStationInvalid(InvalidInput):
    code = "police-station-invalid"
    title_zh = "派出所应为乡镇（街道）一级单位"
    title_en = "A police station is a town-level unit"


class PoliceCaseLinkNotFound(InvalidInput):
    code = "police-case-link-not-found"
    title_zh = "关联的记录不存在"
    title_en = "A linked record does not exist"


class PoliceCaseTransitionInvalid(Conflict):
    code = "police-case-transition-invalid"
    title_zh = "案件当前状态不允许此操作"
    title_en = "The case's status does not allow this"


class PoliceCloseReasonInvalid(InvalidInput):
    code = "police-close-reason-invalid"
    title_zh = "结案原因无效"
    title_en = "Invalid closing reason"


# The statuses a case may move to from each status.
NEXT: dict[PoliceCaseStatus, tuple[PoliceCaseStatus, ...]] = {
    PoliceCaseStatus.filed: (PoliceCaseStatus.investigating, PoliceCaseStatus.closed),
    PoliceCaseStatus.investigating: (PoliceCaseStatus.transferred_for_prosecution, PoliceCaseStatus.closed),
    PoliceCaseStatus.transferred_for_prosecution: (PoliceCaseStatus.closed,),
    PoliceCaseStatus.closed: (),
}


# ---------------------------------------------------------------- the station


def station(session: Session, principal: Principal, unit_id: int | None) -> OrgUnit:
    """The station's town: the given unit (default: the caller's own) inside the caller's jurisdiction
    (404 otherwise) and at town level (422 otherwise)."""
    unit = orgunits.get_visible_unit(session, principal, unit_id if unit_id is not None else principal.org_unit_id)
    if unit.level != OrgLevel.town.value:
        raise PoliceStationInvalid(f"{unit.name}不是乡镇（街道）", f"unit {unit.id} is a {unit.level}, not a town",
                                   field="unit_id")
    return unit


# ---------------------------------------------------------------- links


def _reachable(session: Session, principal: Principal, kind: str, ids: Iterable[int]) -> set[int]:
    """Of these ids of `kind`, those the principal may see with its own rights (nothing without them)."""
    wanted = set(ids)
    if not wanted:
        return set()
    stmt: Any
    if kind == LinkKind.child_case.value:
        if not principal.can(Action.case_read):
            return set()
        stmt = select(col(Case.id)).where(col(Case.id).in_(wanted), scope.visible(principal, Case))
    elif kind == LinkKind.risk_person.value:
        if not principal.can(Action.risk_person_read):
            return set()
        stmt = select(col(RiskPerson.id)).where(
            col(RiskPerson.id).in_(wanted), orgunits.in_jurisdiction(principal, col(RiskPerson.org_unit_id)),
            sealing.visible_to(principal, "risk_person", RiskPerson))
    elif kind == LinkKind.venue.value:
        if not principal.can(Action.venue_read):
            return set()
        stmt = select(col(Venue.id)).where(col(Venue.id).in_(wanted),
                                           orgunits.in_jurisdiction(principal, col(Venue.org_unit_id)))
    else:  # the referral
        if not principal.can(Action.referral_read):
            return set()
        stmt = select(col(Referral.id)).where(col(Referral.id).in_(wanted), scope.visible(principal, Referral))
    return {int(i) for i in session.execute(stmt).scalars()}


_LINK_FIELDS = {LinkKind.child_case: "child_case_ids", LinkKind.risk_person: "risk_person_ids",
                LinkKind.venue: "venue_ids"}


def _require_reachable(session: Session, principal: Principal, kind: str, field: str, ids: Sequence[int]) -> None:
    """Refuse ids the principal cannot see exactly as ids that do not exist."""
    missing = sorted(set(ids) - _reachable(session, principal, kind, ids))
    if missing:
        raise PoliceCaseLinkNotFound(f"{field}：{', '.join(map(str, missing))} 不存在",
                                     f"{field}: {', '.join(map(str, missing))} not found", field=field, ids=missing)


def _set_links(session: Session, case: PoliceCase, kind: LinkKind, ids: Sequence[int]) -> bool:
    """Make the case's links of `kind` exactly `ids`; whether they changed."""
    current = {link.target_id: link for link in session.execute(
        select(PoliceCaseLink).where(col(PoliceCaseLink.police_case_id) == case.id,
                                     col(PoliceCaseLink.kind) == kind.value)).scalars()}
    wanted = set(ids)
    for target, link in current.items():
        if target not in wanted:
            session.delete(link)
    for target in sorted(wanted - set(current)):
        session.add(PoliceCaseLink(police_case_id=case.id or 0, kind=kind.value, target_id=target))
    return wanted != set(current)


def links_of(session: Session, case_ids: Sequence[int]) -> dict[int, dict[str, list[int]]]:
    """Every link of these cases by kind (unfiltered: shape them with `public`)."""
    out: dict[int, dict[str, list[int]]] = {i: {k.value: [] for k in LinkKind} for i in case_ids}
    if not case_ids:
        return out
    for case_id, kind, target in session.execute(
        select(col(PoliceCaseLink.police_case_id), col(PoliceCaseLink.kind), col(PoliceCaseLink.target_id))
        .where(col(PoliceCaseLink.police_case_id).in_(case_ids)).order_by(col(PoliceCaseLink.target_id))
    ):
        out[int(case_id)][str(kind)].append(int(target))
    return out


# ---------------------------------------------------------------- reading


def get_case(session: Session, principal: Principal, case_id: int, *,
             action: Action = Action.police_case_read) -> PoliceCase:
    """A police case the caller may see (404 police-case-not-found otherwise, as for a missing id)."""
    principal.require(action)
    return scope.get_visible(session, principal, PoliceCase, case_id, action=Action.police_case_read,
                             not_found=PoliceCaseNotFound)


def _locked(session: Session, principal: Principal, case_id: int) -> PoliceCase:
    case = get_case(session, principal, case_id, action=Action.police_case_manage)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(col(PoliceCase.id)).where(col(PoliceCase.id) == case.id).with_for_update())
        session.refresh(case)
    return case


def list_cases(session: Session, principal: Principal, *, unit_id: int | None = None,
               status: PoliceCaseStatus | None = None, category: OffenceCategory | None = None,
               filed_from: date | None = None, filed_to: date | None = None,
               page: PageRequest = PageRequest()) -> list[PoliceCase]:
    """Police cases the caller may see (of one unit's subtree if asked), newest first (the bare list:
    the newest 500)."""
    principal.require(Action.police_case_read)
    query = select(PoliceCase).where(scope.visible(principal, PoliceCase))
    if unit_id is not None:
        unit = orgunits.get_visible_unit(session, principal, unit_id)
        query = query.where(col(PoliceCase.station_unit_id).in_(orgunits.subtree_unit_ids(unit.path)))
    conditions: list[ColumnElement[bool]] = []
    if status is not None:
        conditions.append(col(PoliceCase.status) == status.value)
    if category is not None:
        conditions.append(col(PoliceCase.category) == category.value)
    if filed_from is not None:
        conditions.append(col(PoliceCase.filed_date) >= filed_from)
    if filed_to is not None:
        conditions.append(col(PoliceCase.filed_date) <= filed_to)
    if conditions:
        query = query.where(*conditions)
    return list(session.execute(page.seek(query, col(PoliceCase.id), descending=True, bare_limit=500)).scalars())


def allowed(case: PoliceCase) -> list[str]:
    return [s.value for s in NEXT[PoliceCaseStatus(case.status)]]


def public(session: Session, principal: Principal, cases: Sequence[PoliceCase]) -> list[PoliceCasePublic]:
    """The cases as the caller receives them, declared to the request's audit entry with the linked
    records the answer names: only the links the caller may see, the summary for police only."""
    ids = [c.id or 0 for c in cases]
    links = links_of(session, ids)
    seen: dict[str, set[int]] = {}
    for kind in LinkKind:
        seen[kind.value] = _reachable(session, principal, kind.value,
                                      {t for per in links.values() for t in per[kind.value]})
    seen["referral"] = _reachable(session, principal, "referral", {c.referral_id for c in cases if c.referral_id})
    police = principal.can(Action.police_case_manage)
    out = []
    for c in cases:
        per = {k: [t for t in targets if t in seen[k]] for k, targets in links[c.id or 0].items()}
        category = OffenceCategory(c.category)
        status = PoliceCaseStatus(c.status)
        out.append(PoliceCasePublic(
            id=c.id or 0, station_unit_id=c.station_unit_id, case_number=c.case_number, filed_date=c.filed_date,
            category=category.value, category_zh=category.zh, category_en=category.en, status=status.value,
            status_zh=status.zh, summary=c.summary if police else None, summary_withheld=not police,
            victims=c.victims, referral_id=c.referral_id if c.referral_id in seen["referral"] else None,
            child_case_ids=per[LinkKind.child_case.value], risk_person_ids=per[LinkKind.risk_person.value],
            venue_ids=per[LinkKind.venue.value], close_reason=c.close_reason, close_note=c.close_note,
            closed_at=c.closed_at, created_by=c.created_by, created_at=c.created_at, updated_at=c.updated_at,
            allowed=allowed(c)))
    disclosure.record(disclosure.POLICE_CASE, ids)
    disclosure.record(disclosure.CASE, [i for p in out for i in p.child_case_ids])
    disclosure.record(disclosure.RISK_PERSON, [i for p in out for i in p.risk_person_ids])
    disclosure.record(disclosure.REFERRAL, [p.referral_id for p in out])
    return out


def detail(session: Session, principal: Principal, case: PoliceCase) -> PoliceCaseDetail:
    """One case with its history and the ids of its reviews."""
    [shown] = public(session, principal, [case])
    events = session.execute(select(PoliceCaseEvent).where(col(PoliceCaseEvent.police_case_id) == case.id)
                             .order_by(col(PoliceCaseEvent.id))).scalars()
    reviews = session.execute(select(col(CaseReview.id)).where(col(CaseReview.police_case_id) == case.id)
                              .order_by(col(CaseReview.id))).scalars()
    return PoliceCaseDetail(
        **shown.model_dump(),
        history=[PoliceCaseEventPublic(id=e.id or 0, action=e.action, from_status=e.from_status, to_status=e.to_status,
                                       reason=e.reason, note=e.note, fields=list(e.fields or []),
                                       actor_user_id=e.actor_user_id, at=e.at) for e in events],
        review_ids=[int(r) for r in reviews],
    )


def read_audited(session: Session, principal: Principal, case: PoliceCase) -> None:
    disclosure.event(session, "police_case.read", actor=principal, object_type="police_case", object_id=case.id,
                     org_unit_id=case.station_unit_id)


# ---------------------------------------------------------------- changes


def _event(session: Session, case: PoliceCase, principal: Principal, action: str, *, from_status: str | None,
           reason: str | None = None, note: str | None = None, fields: Sequence[str] = ()) -> None:
    session.add(PoliceCaseEvent(police_case_id=case.id or 0, action=action, from_status=from_status,
                                to_status=case.status, reason=reason, note=note, fields=list(fields),
                                actor_user_id=principal.user_id, at=clock.now()))


def _changed(session: Session, case: PoliceCase, principal: Principal, action: str,
             details: dict[str, Any] | None = None) -> None:
    case.updated_at = clock.now()
    session.add(case)
    session.flush()
    disclosure.changed(disclosure.POLICE_CASE, [case.id], unit_id=case.station_unit_id)
    disclosure.event(session, action, actor=principal, object_type="police_case", object_id=case.id,
                     org_unit_id=case.station_unit_id, details=details)


def _filed_date(value: date) -> date:
    if value > clock.china_date(clock.now()):
        raise PoliceCaseDateInvalid(field="filed_date")
    return value


def _number_taken(number: str) -> PoliceCaseNumberTaken:
    return PoliceCaseNumberTaken(f"本派出所已有案件编号 {number}", f"the station already has case number {number}",
                                 field="case_number")


def _number_free(session: Session, station_id: int, number: str, *, but: int | None = None) -> None:
    query = select(col(PoliceCase.id)).where(col(PoliceCase.station_unit_id) == station_id,
                                             col(PoliceCase.case_number) == number)
    if but is not None:
        query = query.where(col(PoliceCase.id) != but)
    if session.execute(query).first() is not None:
        raise _number_taken(number)


def _write_number(session: Session, case: PoliceCase, number: str) -> None:
    """Write the case with its number; a number taken meanwhile by a concurrent request is the same
    409 as one taken before (the unique constraint decides). The request's other changes are written
    first, so the savepoint holds the number's write alone and catches its clash; the refusal then
    undoes the whole request (nothing of it is kept).

    The number is given to the case only here: set earlier, a query's autoflush would write it
    outside the savepoint, where its clash breaks the request's transaction (a 500)."""
    session.flush()
    try:
        with session.begin_nested():
            case.case_number = number
            session.add(case)
            session.flush()
    except IntegrityError as exc:
        raise _number_taken(number) from exc


def register(session: Session, principal: Principal, body: PoliceCaseCreate) -> PoliceCase:
    """Police register a case filed by a station of their jurisdiction."""
    principal.require(Action.police_case_manage)
    unit = station(session, principal, body.unit_id)
    number = body.case_number.strip()
    if not number:
        raise InvalidInput("案件编号不能为空", "case_number is empty", field="case_number")
    filed = _filed_date(body.filed_date or clock.china_date(clock.now()))
    if body.referral_id is not None:
        _require_reachable(session, principal, "referral", "referral_id", [body.referral_id])
    for kind, field in _LINK_FIELDS.items():
        _require_reachable(session, principal, kind.value, field, getattr(body, field))
    _number_free(session, unit.id or 0, number)
    now = clock.now()
    case = PoliceCase(station_unit_id=unit.id or 0, case_number=number, filed_date=filed, category=body.category.value,
                      status=PoliceCaseStatus.filed.value, summary=(body.summary or "").strip() or None,
                      victims=body.victims, referral_id=body.referral_id, created_by=principal.user_id,
                      created_at=now, updated_at=now)
    _write_number(session, case, number)
    for kind, field in _LINK_FIELDS.items():
        _set_links(session, case, kind, getattr(body, field))
    _event(session, case, principal, "register", from_status=None)
    _changed(session, case, principal, "police_case.register",
             {"category": case.category, "links": sum(len(getattr(body, f)) for f in _LINK_FIELDS.values())})
    return case


_NOT_NULL = ("case_number", "filed_date", "category", "victims")


def update(session: Session, principal: Principal, case_id: int, body: PoliceCaseUpdate) -> PoliceCase:
    """Police edit a case that is not closed; fields left out are kept, a list replaces its links."""
    case = _locked(session, principal, case_id)
    if case.status == PoliceCaseStatus.closed.value:
        raise _refuse(case, "修改", "be edited")
    given = body.model_fields_set
    for name in _NOT_NULL:
        if name in given and getattr(body, name) is None:
            raise InvalidInput(f"{name} 不能为空", f"{name} cannot be null", field=name)
    changed: list[str] = []
    new_number: str | None = None  # written last (_write_number)
    if "case_number" in given and body.case_number is not None:
        number = body.case_number.strip()
        if not number:
            raise InvalidInput("案件编号不能为空", "case_number is empty", field="case_number")
        if number != case.case_number:
            _number_free(session, case.station_unit_id, number, but=case.id)
            new_number = number
            changed.append("case_number")
    if "filed_date" in given and body.filed_date is not None and body.filed_date != case.filed_date:
        case.filed_date = _filed_date(body.filed_date)
        changed.append("filed_date")
    if "category" in given and body.category is not None and body.category.value != case.category:
        case.category = body.category.value
        changed.append("category")
    if "summary" in given:
        summary = (body.summary or "").strip() or None
        if summary != case.summary:
            case.summary = summary
            changed.append("summary")
    if "victims" in given and body.victims is not None and body.victims != case.victims:
        case.victims = body.victims
        changed.append("victims")
    if "referral_id" in given and body.referral_id != case.referral_id:
        if body.referral_id is not None:
            _require_reachable(session, principal, "referral", "referral_id", [body.referral_id])
        case.referral_id = body.referral_id
        changed.append("referral_id")
    for kind, field in _LINK_FIELDS.items():
        ids = getattr(body, field)
        if field in given and ids is not None:
            _require_reachable(session, principal, kind.value, field, ids)
            if _set_links(session, case, kind, ids):
                changed.append(field)
    if new_number is not None:
        _write_number(session, case, new_number)
    if changed:
        _event(session, case, principal, "edit", from_status=case.status, fields=changed)
        _changed(session, case, principal, "police_case.edit", {"fields": changed})
    return case


def _refuse(case: PoliceCase, what_zh: str, what_en: str) -> PoliceCaseTransitionInvalid:
    """409 for what the case's status does not allow; the status is `current_status` (`status` is the
    HTTP code, RFC 9457)."""
    options = allowed(case)
    options_zh = "、".join(PoliceCaseStatus(o).zh for o in options) or "无"
    return PoliceCaseTransitionInvalid(
        f"案件状态为{PoliceCaseStatus(case.status).zh}，不能{what_zh}；可变更为：{options_zh}",
        f"A case in status {case.status} cannot {what_en}; allowed: {', '.join(options) or 'none'}",
        current_status=case.status, allowed=options)


def transition(session: Session, principal: Principal, case_id: int, *, to: PoliceCaseStatus, reason: str | None,
               note: str | None) -> PoliceCase:
    """Move the case on: filed -> investigating -> transferred_for_prosecution, and closed from any
    of them with a reason (`other` needs a note)."""
    case = _locked(session, principal, case_id)
    before = PoliceCaseStatus(case.status)
    if to not in NEXT[before]:
        raise _refuse(case, f"变更为{to.zh}", f"become {to.value}")
    note = (note or "").strip() or None
    if to is PoliceCaseStatus.closed:
        reasons = [r.value for r in PoliceCloseReason]
        if reason not in reasons:
            raise PoliceCloseReasonInvalid(f"结案原因应为：{'、'.join(reasons)}", f"reason must be one of "
                                           f"{', '.join(reasons)}", field="reason", allowed=reasons)
        if reason == PoliceCloseReason.other.value and note is None:
            raise PoliceCloseReasonInvalid("原因为“其他”时须填写说明", "A note is required when the reason is other",
                                           field="note", allowed=reasons)
        case.close_reason, case.close_note, case.closed_at = reason, note, clock.now()
    else:
        reason = None
    case.status = to.value
    _event(session, case, principal, "status", from_status=before.value, reason=reason, note=note)
    _changed(session, case, principal, "police_case.status", {"from": before.value, "to": to.value,
                                                              "reason": reason})
    return case
