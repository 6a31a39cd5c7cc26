"""Staff of institutions and their background checks (从业查询): the rules.

Who sees a member, its ID number and its checks is one condition (backend/accounts/scope.py, kind
StaffMember): police of the institution's jurisdiction, and member-unit staff (agency_staff) whose
agency supervises the institution from a unit strictly above its administrative unit (a grid counts as
its village), inside their jurisdiction (staff of the institution's own unit are its staff, not its
supervisor); everyone else gets 404 as for an id
that does not exist. Every answer carrying a member is audited through backend/audit/disclosure.py
(kind `staff_member`, with the fields shown). The ID number is sealed exactly as the registry seals a
person's (cipher, keyed blind index, region-only mask) and re-sealed by the key rotation.

A check that finds a record (`record_found`) flags the member until it is refused (`not_hired`) or
dismissed (`dismissed`): a flagged member cannot be hired, nor leave of its own accord; the flag
follows the person (its blind index) onto any new list, and a record found flags the person's current
members on every list (their row locks taken in id order). Status changes and checks of one member take
its row lock (`lock`) and re-read it. Employed
members fall due for a periodic check `staff_check_interval_days` after their last check (at once if
never checked); the scheduled job tells the police and the supervising agency once per due date."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, false, func, or_, select
from sqlalchemy import update as sql_update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from backend.accounts import scope
from backend.accounts.models import User, UserRole
from backend.accounts.permissions import Action, Role
from backend.accounts.principal import Principal
from backend.audit import disclosure
from backend.core import clock, crypto
from backend.core import text as texts
from backend.core.config import get_settings
from backend.core.errors import Conflict, InvalidInput, NotFound
from backend.institutions import service as institutions
from backend.institutions.models import Institution
from backend.notifications import service as notifications
from backend.notifications.recipients import role_at_or_above
from backend.orgunits import service as orgunits
from backend.orgunits.models import OrgLevel, OrgUnit
from backend.registry import idnumber
from backend.staff_checks import quota
from backend.staff_checks.models import CheckKind, CheckResult, StaffCheck, StaffMember, StaffStatus
from backend.staff_checks.schemas import (
    CheckCreate,
    CheckPublic,
    StaffCreate,
    StaffDetail,
    StaffOverview,
    StaffPublic,
    StaffUpdate,
    UncheckedInstitution,
    UnitStaffCounts,
)

KIND = "staff_member"  # the disclosure kind of a member (its checks travel with it)
# The fields a member's answer shows, named in its audit entry.
SHOWN = ["name", "id_number_masked", "position", "hire_date", "status", "flagged", "last_check_date"]
CURRENT = (StaffStatus.candidate.value, StaffStatus.employed.value)
TRANSITIONS: dict[StaffStatus, frozenset[StaffStatus]] = {
    StaffStatus.candidate: frozenset({StaffStatus.employed, StaffStatus.not_hired}),
    StaffStatus.employed: frozenset({StaffStatus.dismissed, StaffStatus.left}),
}
# What a record found requires (seeds 001 and 002: 不予录用、予以解聘).
CLEARS_FLAG = frozenset({StaffStatus.not_hired, StaffStatus.dismissed})
# A flagged member still to be refused or dismissed (`left` only from before the rule: it may still be dismissed).
PENDING = (StaffStatus.candidate.value, StaffStatus.employed.value, StaffStatus.left.value)
# Registering someone straight as employed is for staff at work before the list was kept: hired at
# least this many days ago (China date); a newer hire is a candidate with a clear pre-hire check.
EMPLOYED_BEFORE_DAYS = 30
MIN_AGE_AT_HIRE = 16
# `reminded_due_date` of a flagged member once told it awaits dismissal (no due date is this early).
FLAG_TOLD = date(1, 1, 1)


class StaffNotFound(NotFound):
    code = "staff-not-found"
    title_zh = "未找到该人员"
    title_en = "Staff member not found"


class StaffExists(Conflict):
    code = "staff-exists"
    title_zh = "该单位已登记此身份证号码的人员"
    title_en = "This institution already lists a member with this ID number"


class StaffTransitionInvalid(Conflict):
    code = "staff-transition-invalid"
    title_zh = "人员状态不能这样变更"
    title_en = "The staff member's status cannot change this way"


class StaffRecordFound(Conflict):
    code = "staff-record-found"
    title_zh = "查询发现违法犯罪记录，只能不予聘用或解聘"
    title_en = "A check found a record: the member can only be refused or dismissed"


class StaffPreHireCheckMissing(Conflict):
    code = "staff-pre-hire-check-missing"
    title_zh = "聘用前须完成入职查询且无违法犯罪记录"
    title_en = "Hiring needs a clear pre-hire check first"


class StaffHireDateInvalid(InvalidInput):
    code = "staff-hire-date-invalid"
    title_zh = "入职日期有误"
    title_en = "Invalid hire date"


class StaffEmployedTooRecent(Conflict):
    code = "staff-employed-needs-pre-hire-check"
    title_zh = f"入职不满{EMPLOYED_BEFORE_DAYS}天的人员须先登记为拟聘用并完成入职查询"
    title_en = (f"Staff hired less than {EMPLOYED_BEFORE_DAYS} days ago are registered as candidates and need a "
                "clear pre-hire check")


class StaffCheckInvalid(InvalidInput):
    code = "staff-check-invalid"
    title_zh = "查询记录有误"
    title_en = "Invalid check"


def today() -> date:
    """Today in China: checks and due dates are China dates."""
    return clock.china_date(clock.now())


def interval_days() -> int:
    return get_settings().staff_check_interval_days


def due_date(member: StaffMember, interval: int | None = None) -> date | None:
    """When an employed member's periodic check falls due: one interval after its last check; never
    checked, at once (its hire date, or the day it was registered)."""
    if member.status != StaffStatus.employed.value:
        return None
    if member.last_check_date is not None:
        return member.last_check_date + timedelta(days=interval or interval_days())
    registered = clock.china_date(member.created_at)
    return min(member.hire_date, registered) if member.hire_date else registered


def pending_dismissal(member: StaffMember) -> bool:
    """Flagged and still to be refused or dismissed."""
    return member.flagged and member.status in PENDING


def pending_condition() -> ColumnElement[bool]:
    return and_(col(StaffMember.flagged).is_(True), col(StaffMember.status).in_(PENDING))


def due_condition(on: date, interval: int) -> ColumnElement[bool]:
    """SQL: employed and never checked, or last checked an interval or more before `on`."""
    return and_(col(StaffMember.status) == StaffStatus.employed.value,
                or_(col(StaffMember.last_check_date).is_(None),
                    col(StaffMember.last_check_date) <= on - timedelta(days=interval)))


def public(member: StaffMember, *, on: date | None = None) -> StaffPublic:
    assert member.id is not None
    status = StaffStatus(member.status)
    due = due_date(member)
    return StaffPublic(
        id=member.id, institution_id=member.institution_id, name=member.name, id_number_masked=member.id_masked,
        position=member.position, hire_date=member.hire_date, status=status, status_zh=status.zh,
        flagged=member.flagged, last_check_date=member.last_check_date, next_check_due=due,
        due=due is not None and due <= (on or today()),
        due_reason="pending_dismissal" if pending_dismissal(member)
        else "periodic" if due is not None and due <= (on or today()) else None,
    )


def check_public(check: StaffCheck) -> CheckPublic:
    assert check.id is not None
    return CheckPublic(id=check.id, member_id=check.member_id, check_date=check.check_date,
                       kind=CheckKind(check.kind), result=CheckResult(check.result),
                       checked_by_user_id=check.checked_by_user_id, note=check.note, created_at=check.created_at)


def disclosed(session: Session, principal: Principal, members: Iterable[StaffMember], *, action: str = "staff.read",
              fields: Sequence[str] = SHOWN, **details: Any) -> None:
    """Audit an answer carrying these members (one entry per request, naming them and the fields)."""
    ids = [m.id for m in members]
    disclosure.record(KIND, ids)
    disclosure.event(session, action, actor=principal, details={"fields": list(fields), **details})


# ---------------------------------------------------------------- who sees what


def staff_visible(principal: Principal) -> ColumnElement[bool]:
    """SQL: the members the principal may see (scope.visible, the one mechanism)."""
    return scope.visible(principal, StaffMember)


def institution_for_staff(session: Session, principal: Principal, institution_id: int) -> Institution:
    """An institution whose staff the principal may see: in its jurisdiction and, for member-unit staff,
    supervised by its own agency; else 404 as for one that does not exist."""
    institution = institutions.get_visible(session, principal, institution_id)
    if (scope.narrowed_by(principal, StaffMember) == "supervised"
            and not scope.supervises(session, principal, institution)):
        raise institutions.InstitutionNotFound()
    return institution


def get_member(session: Session, principal: Principal, member_id: int) -> StaffMember:
    """A member the principal may see, else 404 (the same as an id that does not exist)."""
    return scope.get_visible(session, principal, StaffMember, member_id, not_found=StaffNotFound)


def checks_of(session: Session, member_id: int) -> list[StaffCheck]:
    return list(session.execute(select(StaffCheck).where(col(StaffCheck.member_id) == member_id)
                                .order_by(col(StaffCheck.check_date), col(StaffCheck.id))).scalars())


def detail(session: Session, member: StaffMember) -> StaffDetail:
    assert member.id is not None
    return StaffDetail(**public(member).model_dump(), checks=[check_public(c) for c in checks_of(session, member.id)])


# ---------------------------------------------------------------- writes


def _name(value: str) -> str:
    name = value.strip()
    if not texts.visible(name):
        raise InvalidInput("姓名只有空白字符", "The name holds only blank characters", field="name")
    return name


def parse_id_number(raw: str) -> idnumber.IdNumber:
    """A staff member's ID number: checked as the registry checks one (shape, date, check character)."""
    if idnumber.is_masked(raw):
        raise idnumber.InvalidIdNumber("这是隐藏了部分数字的身份证号码，请填写完整的18位号码",
                                       "This ID number is masked; give all 18 characters", field="id_number")
    return idnumber.parse(raw, today=today())


def seal(member: StaffMember, number: idnumber.IdNumber) -> None:
    sealed = crypto.encrypt(number.value)
    member.id_cipher, member.id_key_id = sealed.token, sealed.key_id
    member.id_index, member.id_masked = crypto.blind_index(number.value), number.masked


def find(session: Session, institution_id: int, number: idnumber.IdNumber) -> StaffMember | None:
    return session.execute(select(StaffMember).where(
        col(StaffMember.institution_id) == institution_id,
        col(StaffMember.id_index) == crypto.blind_index(number.value))).scalar_one_or_none()


def check_hire_date(hire_date: date | None, typed: idnumber.IdNumber | None = None) -> None:
    """A hire date is not in the future (China date) and, where the caller typed the member's ID number
    in the same request (`typed`: a new member, an import row without 编号), the member was at least 16
    on it. An edit of a listed member's hire date never reads its stored (sealed) number: the answer
    would tell the clerk, who may not read the number, its birth date one probe at a time."""
    if hire_date is None:
        return
    if hire_date > today():
        raise StaffHireDateInvalid("入职日期不能晚于今天（尚未入职的人员请登记为拟聘用，不填入职日期）",
                                   "The hire date is in the future (register a future hire as a candidate "
                                   "without a hire date)", field="hire_date")
    if typed is not None and typed.age_on(hire_date) < MIN_AGE_AT_HIRE:
        raise StaffHireDateInvalid(f"入职时未满{MIN_AGE_AT_HIRE}周岁，请核对身份证号码和入职日期",
                                   f"The member was under {MIN_AGE_AT_HIRE} on the hire date; check the ID number "
                                   "and the hire date", field="hire_date")


def new_member(institution_id: int, *, name: str, number: idnumber.IdNumber, position: str, hire_date: date | None,
               status: StaffStatus) -> StaffMember:
    if status not in (StaffStatus.candidate, StaffStatus.employed):
        raise StaffTransitionInvalid("新登记的人员只能是拟聘用或在职", "A new member is a candidate or employed",
                                     allowed=[StaffStatus.candidate.value, StaffStatus.employed.value])
    check_hire_date(hire_date, number)
    if status is StaffStatus.employed and (
            hire_date is None or hire_date > today() - timedelta(days=EMPLOYED_BEFORE_DAYS)):
        raise StaffEmployedTooRecent(
            f"直接登记为在职须填写入职日期且入职已满{EMPLOYED_BEFORE_DAYS}天；新入职人员请登记为拟聘用并先完成入职查询",
            f"Registering a member as employed needs a hire date at least {EMPLOYED_BEFORE_DAYS} days ago; register a "
            "new hire as a candidate and run the pre-hire check first", field="hire_date",
            allowed=[StaffStatus.candidate.value])
    member = StaffMember(institution_id=institution_id, name=_name(name), position=position.strip(),
                         hire_date=hire_date, status=status.value, id_cipher="", id_key_id="", id_index="",
                         id_masked="")
    seal(member, number)
    return member


def same_person(session: Session, index: str) -> tuple[list[int], bool]:
    """The members anywhere with this blind index (the same person on other lists, or before an
    institution was registered again), and whether the flag follows the person to a new list: one of
    them is flagged, or was refused or dismissed after a check that found a record."""
    rows = session.execute(select(col(StaffMember.id), col(StaffMember.flagged), col(StaffMember.status))
                           .where(col(StaffMember.id_index) == index).order_by(col(StaffMember.id))).all()
    ids = [int(i) for i, _, _ in rows]
    flagged = any(f for _, f, _ in rows)
    ended = [int(i) for i, f, st in rows if not f and st in (s.value for s in CLEARS_FLAG)]
    if not flagged and ended:
        flagged = bool(session.execute(select(func.count()).select_from(StaffCheck).where(
            col(StaffCheck.member_id).in_(ended), col(StaffCheck.result) == CheckResult.record_found.value))
            .scalar_one())
    return ids, flagged


def inherit_flag(session: Session, member: StaffMember) -> list[int]:
    """Flag a new member when the flag follows its person (`same_person`); the ids matched by number."""
    matched, flagged = same_person(session, member.id_index)
    if flagged:
        member.flagged = True
    return matched


def _take_typed_number(session: Session, principal: Principal, institution: Institution) -> date:
    """Take the typed number from the user's daily allowance (backend/staff_checks/quota.py); over the
    cap, the refusal is audited and nothing is written."""
    try:
        return quota.take(session, principal, 1)
    except quota.StaffTypedNumbersCapped:
        disclosure.event(session, "staff.create", actor=principal, object_type="institution",
                         object_id=institution.id, org_unit_id=institution.org_unit_id,
                         details={"institution_id": institution.id, "refused": quota.StaffTypedNumbersCapped.code})
        raise


def create(session: Session, principal: Principal, institution_id: int, data: StaffCreate) -> StaffMember:
    """Add a member to an institution's staff list (one member per ID number and institution). The
    members anywhere matched by the number are named in the audit entry (probing a number shows)."""
    institution = institution_for_staff(session, principal, institution_id)
    assert institution.id is not None
    number = parse_id_number(data.id_number)
    # Checked as a new member before the number is looked up, so a refusal of the member's fields never
    # depends on whether the number is listed (only 201 against 409 does, and that costs a typed number).
    member = new_member(institution.id, name=data.name, number=number, position=data.position,
                        hire_date=data.hire_date, status=data.status)
    existing = find(session, institution.id, number)
    if existing is not None:
        day = _take_typed_number(session, principal, institution)
        disclosure.event(session, "staff.create", actor=principal, object_type="institution",
                         object_id=institution.id, org_unit_id=institution.org_unit_id,
                         details={"institution_id": institution.id, "refused": StaffExists.code,
                                  "matched_member_ids": [existing.id]})
        # The 409 answered for the typed number: it stays counted after the rollback.
        raise StaffExists(aftermath=quota.kept(principal, day, 1))
    matched = inherit_flag(session, member)
    session.add(member)
    try:
        session.flush()
    except IntegrityError as exc:  # the same number added at the same moment by another request
        raise StaffExists(aftermath=quota.kept(principal, quota.today(), 1)) from exc
    # Taken after the insert, as an import takes it after its rows: the allowance's row lock is always
    # the last lock a staff write takes, so two writes never wait for each other's (deadlock).
    _take_typed_number(session, principal, institution)
    disclosure.changed(KIND, [member.id], unit_id=institution.org_unit_id)
    disclosure.event(session, "staff.create", actor=principal, object_type=KIND, object_id=member.id,
                     org_unit_id=institution.org_unit_id,
                     details={"institution_id": institution.id, "matched_member_ids": matched,
                              "flag_inherited": member.flagged})
    return member


def lock(session: Session, member: StaffMember) -> None:
    """Take the member's row lock and re-read it: status changes and checks of one member queue here,
    so each sees what the other wrote (SQLite: BEGIN IMMEDIATE already queues writers)."""
    session.execute(select(col(StaffMember.id)).where(col(StaffMember.id) == member.id).with_for_update())
    session.refresh(member)


def lock_person(session: Session, member: StaffMember) -> list[StaffMember]:
    """Take the row locks of the member and of every other member with its blind index (the same
    person on other lists), in id order, and re-read them; the others, by id."""
    ids = list(session.execute(select(col(StaffMember.id)).where(col(StaffMember.id_index) == member.id_index)
                               .order_by(col(StaffMember.id)).with_for_update()).scalars())
    session.refresh(member)
    others = [session.get(StaffMember, i) for i in ids if i != member.id]
    for other in others:
        if other is not None:
            session.refresh(other)
    return [o for o in others if o is not None]


def transition(session: Session, member: StaffMember, target: StaffStatus) -> bool:
    """Move a member to `target` under the rules (module docstring); whether the status changed."""
    current = StaffStatus(member.status)
    if target is current:
        return False
    usual = TRANSITIONS.get(current, frozenset())
    allowed = usual
    if member.flagged:
        # Only refusal or dismissal; a flagged member who left (before the rule) may still be dismissed.
        allowed = CLEARS_FLAG & (usual | ({StaffStatus.dismissed} if current is StaffStatus.left else set()))
    if target not in allowed:
        if member.flagged and target in usual:
            raise StaffRecordFound(allowed=sorted(s.value for s in allowed))
        raise StaffTransitionInvalid(f"人员状态不能从“{current.zh}”变为“{target.zh}”",
                                     f"A member cannot go from {current.value} to {target.value}",
                                     allowed=sorted(s.value for s in allowed))
    if current is StaffStatus.candidate and target is StaffStatus.employed:
        assert member.id is not None
        clear = session.execute(select(func.count()).select_from(StaffCheck).where(
            col(StaffCheck.member_id) == member.id, col(StaffCheck.kind) == CheckKind.pre_hire.value,
            col(StaffCheck.result) == CheckResult.clear.value)).scalar_one()
        if not clear:
            raise StaffPreHireCheckMissing()
    member.status = target.value
    if target in CLEARS_FLAG:
        member.flagged = False
    return True


def update(session: Session, principal: Principal, member_id: int, data: StaffUpdate) -> StaffMember:
    """Change a member's name, position, hire date or status (fields left out keep their values)."""
    member = get_member(session, principal, member_id)
    lock(session, member)  # the same lock as record_check: a status change and a check queue
    given = data.model_dump(exclude_unset=True)
    changed: list[str] = []
    if given.get("name") is not None and _name(given["name"]) != member.name:
        member.name = _name(given["name"])
        changed.append("name")
    if given.get("position") is not None and given["position"].strip() != member.position:
        member.position = given["position"].strip()
        changed.append("position")
    if "hire_date" in given and given["hire_date"] != member.hire_date:
        check_hire_date(given["hire_date"])  # never against the stored number (check_hire_date)
        member.hire_date = given["hire_date"]
        changed.append("hire_date")
    if given.get("status") is not None and transition(session, member, StaffStatus(given["status"])):
        changed.append("status")
    if changed:
        member.updated_at = clock.now()
        session.add(member)
        session.flush()
        disclosure.changed(KIND, [member.id])
    disclosure.event(session, "staff.update", actor=principal, object_type=KIND, object_id=member.id,
                     details={"fields_changed": changed, "fields": SHOWN})
    return member


def record_check(session: Session, principal: Principal, member_id: int, data: CheckCreate) -> StaffCheck:
    """Record a check's result (police). A record found flags the member until refused or dismissed."""
    member = get_member(session, principal, member_id)
    assert member.id is not None
    # Concurrent checks and status changes of one member: the row lock (taken before the check's row
    # refers to it) keeps the latest date, the flag and the status consistent; the status is read after it.
    # The same person's members elsewhere (same blind index) are locked with it, in id order (no deadlock
    # between two checks of one person): a record found flags them all.
    others = lock_person(session, member)
    status = StaffStatus(member.status)
    if data.check_date > today():
        raise StaffCheckInvalid("查询日期不能晚于今天", "The check date is in the future", field="check_date")
    if data.check_date < date(2000, 1, 1):
        raise StaffCheckInvalid("查询日期不合理", "The check date is not plausible", field="check_date")
    wanted = StaffStatus.candidate if data.kind is CheckKind.pre_hire else StaffStatus.employed
    if status is not wanted:
        raise StaffCheckInvalid(
            f"“{status.zh}”人员不能登记{'入职' if data.kind is CheckKind.pre_hire else '定期'}查询",
            f"A {status.value} member cannot have a {data.kind.value} check", field="kind")
    if data.note and not texts.visible(data.note):
        raise StaffCheckInvalid("备注只有空白字符", "The note holds only blank characters", field="note")
    check = StaffCheck(member_id=member.id, check_date=data.check_date, kind=data.kind.value,
                       result=data.result.value, checked_by_user_id=principal.user_id, note=data.note.strip())
    session.add(check)
    if member.last_check_date is None or data.check_date > member.last_check_date:
        member.last_check_date = data.check_date
    flagged_elsewhere: list[int] = []
    if data.result is CheckResult.record_found:
        member.flagged = True
        # The record is the person's: flag the same person's current members on every list (all
        # institutions) too, so each is refused or dismissed, listed as pending and reminded.
        for other in others:
            if not other.flagged and other.status in CURRENT:
                assert other.id is not None
                other.flagged = True
                other.updated_at = clock.now()
                session.add(other)
                flagged_elsewhere.append(other.id)
    member.updated_at = clock.now()
    session.add(member)
    session.flush()
    disclosure.changed(KIND, [member.id])
    for other_id in flagged_elsewhere:
        disclosure.changed(KIND, [other_id])
    disclosure.event(session, "staff.check", actor=principal, object_type=KIND, object_id=member.id,
                     details={"check_id": check.id, "kind": check.kind, "result": check.result, "fields": SHOWN,
                              "flagged_member_ids": flagged_elsewhere})
    return check


def reveal_id(session: Session, principal: Principal, member_id: int, reason: str) -> str:
    """The full ID number, for the police to run the check (with a reason, audited)."""
    member = get_member(session, principal, member_id)
    if not texts.visible(reason):
        raise InvalidInput("请填写查看原因", "Give a reason", field="reason")
    disclosure.record(KIND, [member.id])
    disclosure.event(session, "staff.reveal_id", actor=principal, object_type=KIND, object_id=member.id,
                     details={"reason": reason.strip(), "fields": ["id_number"]})
    return crypto.decrypt(member.id_cipher)


# ---------------------------------------------------------------- lists


def staff_of(session: Session, principal: Principal, institution_id: int, *, status: StaffStatus | None = None,
             after_id: int | None = None, limit: int = 100) -> list[StaffMember]:
    institution_for_staff(session, principal, institution_id)
    stmt = select(StaffMember).where(col(StaffMember.institution_id) == institution_id, staff_visible(principal))
    if status is not None:
        stmt = stmt.where(col(StaffMember.status) == status.value)
    if after_id is not None:
        stmt = stmt.where(col(StaffMember.id) > after_id)
    return list(session.execute(stmt.order_by(col(StaffMember.id)).limit(limit)).scalars())


def _unit(session: Session, principal: Principal, unit_id: int | None) -> OrgUnit:
    return orgunits.get_visible_unit(session, principal, unit_id if unit_id is not None else principal.org_unit_id)


def _institutions_under(unit: OrgUnit, *, active_only: bool = True) -> Select[Any]:
    """SELECT of the ids of the institutions under `unit`. Members are reached through every one, active
    or not: deactivating an institution does not take a member still due or pending dismissal off the
    due list and counts (a record found stays in sight until it is acted on)."""
    stmt = select(col(Institution.id)).where(col(Institution.org_unit_id).in_(orgunits.subtree_unit_ids(unit.path)))
    return stmt.where(col(Institution.is_active).is_(True)) if active_only else stmt


def due_members(session: Session, principal: Principal, unit_id: int | None, *, after_id: int | None = None,
                limit: int = 100) -> list[StaffMember]:
    """Members the principal sees whose periodic check is due or overdue, and flagged members still to
    be refused or dismissed whatever their check dates (`due_reason`), by id."""
    unit = _unit(session, principal, unit_id)
    stmt = select(StaffMember).where(staff_visible(principal),
                                     or_(due_condition(today(), interval_days()), pending_condition()),
                                     col(StaffMember.institution_id).in_(_institutions_under(unit, active_only=False)))
    if after_id is not None:
        stmt = stmt.where(col(StaffMember.id) > after_id)
    return list(session.execute(stmt.order_by(col(StaffMember.id)).limit(limit)).scalars())


def _member_counts(session: Session, principal: Principal, unit: OrgUnit) -> dict[int, tuple[int, int, int, int]]:
    """Per institution under `unit` (active or not): current members, never checked, due, pending
    dismissal. Pending dismissal tells a check's result: counted only among the members the principal
    may read (`pending_seen`)."""
    current = col(StaffMember.status).in_(CURRENT)
    never = and_(current, col(StaffMember.last_check_date).is_(None))
    pending = and_(pending_condition(), pending_seen(principal))
    rows = session.execute(
        select(col(StaffMember.institution_id), func.sum(case((current, 1), else_=0)),
               func.sum(case((never, 1), else_=0)),
               func.sum(case((due_condition(today(), interval_days()), 1), else_=0)),
               func.sum(case((pending, 1), else_=0)))
        .where(or_(current, pending_condition()),
               col(StaffMember.institution_id).in_(_institutions_under(unit, active_only=False)))
        .group_by(col(StaffMember.institution_id)))
    return {int(i): (int(n or 0), int(nv or 0), int(d or 0), int(p or 0)) for i, n, nv, d, p in rows}


def pending_seen(principal: Principal) -> ColumnElement[bool]:
    """SQL: the members whose check results the principal may read (staff.read, in its scope: police,
    the supervising agency's clerks); false for every other role of the overview (coordinators, admins,
    other agencies' clerks), whose pending-dismissal counts are then null."""
    return staff_visible(principal) if principal.can(Action.staff_read) else false()


def overview(session: Session, principal: Principal, unit_id: int | None) -> StaffOverview:
    """Counts per child unit (and the unit itself for institutions directly in it): never a name or a result."""
    unit = _unit(session, principal, unit_id)
    assert unit.id is not None
    kids = orgunits.children(session, principal, unit.id)
    counts = _member_counts(session, principal, unit)
    places = session.execute(
        select(col(Institution.id), col(OrgUnit.path), col(Institution.is_active))
        .join(OrgUnit, col(OrgUnit.id) == col(Institution.org_unit_id))
        .where(col(Institution.id).in_(_institutions_under(unit, active_only=False))))
    rows: dict[int, list[int]] = defaultdict(lambda: [0] * 7)
    names = {k.id: k.name for k in kids} | {unit.id: unit.name}
    for institution_id, path, active in places:
        members, never, due, pending = counts.get(int(institution_id), (0, 0, 0, 0))
        if not active and members == 0 and pending == 0 and never == 0:
            continue  # an inactive institution counts only through members still to be checked or dismissed
        owner = next((k.id for k in kids if str(path).startswith(k.path)), unit.id)
        assert owner is not None
        row = rows[owner]
        if active:
            row[0] += 1
            row[1] += members == 0
        row[2] += never > 0
        row[3] += members
        row[4] += never
        row[5] += due
        row[6] += pending

    reads_results = principal.can(Action.staff_read)

    def out(uid: int, r: list[int]) -> UnitStaffCounts:
        return UnitStaffCounts(unit_id=uid, unit_name=names[uid], institutions=r[0],
                               institutions_without_staff_list=r[1], institutions_not_all_checked=r[2],
                               members=r[3], members_never_checked=r[4],
                               members_due=r[5], members_pending_dismissal=r[6] if reads_results else None)

    total = [sum(r[i] for r in rows.values()) for i in range(7)]
    order = [k.id for k in kids if k.id is not None] + ([unit.id] if unit.id in rows else [])
    return StaffOverview(unit_id=unit.id, interval_days=interval_days(), total=out(unit.id, total),
                         units=[out(uid, rows.get(uid, [0] * 7)) for uid in order])


def unchecked(session: Session, principal: Principal, unit_id: int | None, *, after_id: int | None = None,
              limit: int = 100) -> list[UncheckedInstitution]:
    """Active institutions under a unit with no staff list, or with a current member never checked, by id."""
    unit = _unit(session, principal, unit_id)
    current = col(StaffMember.status).in_(CURRENT)
    stats = (select(col(StaffMember.institution_id).label("iid"), func.count().label("members"),
                    func.sum(case((col(StaffMember.last_check_date).is_(None), 1), else_=0)).label("never"))
             .where(current).group_by(col(StaffMember.institution_id)).subquery())
    # An inactive institution stays listed while a current member of it was never checked.
    stmt = (select(Institution, stats.c.members, stats.c.never)
            .outerjoin(stats, stats.c.iid == col(Institution.id))
            .where(col(Institution.id).in_(_institutions_under(unit, active_only=False)),
                   or_(and_(stats.c.members.is_(None), col(Institution.is_active).is_(True)), stats.c.never > 0)))
    if after_id is not None:
        stmt = stmt.where(col(Institution.id) > after_id)
    out = []
    for institution, members, never in session.execute(stmt.order_by(col(Institution.id)).limit(limit)):
        assert institution.id is not None
        out.append(UncheckedInstitution(institution_id=institution.id, name=institution.name, kind=institution.kind,
                                        org_unit_id=institution.org_unit_id, members=int(members or 0),
                                        members_never_checked=int(never or 0)))
    return out


# ---------------------------------------------------------------- reminders


def supervising_staff(session: Session, institution: Institution) -> list[int]:
    """The agency_staff of the institution's supervising agency at the nearest unit strictly above its
    administrative unit (those of its own unit, or of the village of its grid, are its staff, not its
    supervisor: `scope.units_strictly_below`)."""
    unit = session.get(OrgUnit, institution.org_unit_id)
    if unit is None:
        return []
    above = [int(p) for p in unit.path.strip("/").split("/") if p][:-1]
    if unit.level == OrgLevel.grid.value:  # a grid is no administrative level: its village is the unit
        above = above[:-1]
    for unit_id in reversed(above):
        users = sorted(int(i) for i in session.execute(
            select(col(User.id)).join(UserRole, col(UserRole.user_id) == col(User.id))
            .where(col(User.org_unit_id) == unit_id, col(User.agency) == institution.supervising_agency,
                   col(User.is_active).is_(True), col(UserRole.role) == Role.agency_staff.value)).scalars())
        if users:
            return users
    return []


def _audience(session: Session, institution: Institution) -> list[int]:
    unit = session.get(OrgUnit, institution.org_unit_id)
    police = role_at_or_above(session, unit, Role.police)[1] if unit is not None else []
    return sorted(set(police) | set(supervising_staff(session, institution)))


def notify_pending_dismissal(session: Session) -> int:
    """Tell the police and the supervising agency, once per flagged member (claimed by a conditional
    UPDATE of `reminded_due_date` to FLAG_TOLD: two workers tell once), that a member whose check found
    a record is still to be refused or dismissed. One notification per institution and run."""
    by_institution: dict[int, int] = defaultdict(int)
    for member in session.execute(select(StaffMember).where(
            pending_condition(), or_(col(StaffMember.reminded_due_date).is_(None),
                                     col(StaffMember.reminded_due_date) != FLAG_TOLD))
            .order_by(col(StaffMember.id))).scalars():
        if _claim(session, member.id, FLAG_TOLD):
            by_institution[member.institution_id] += 1
    _tell(session, by_institution, kind="staff_check.pending_dismissal", title_zh="待解聘人员",
          title_en="Staff to dismiss", body_zh="有人员经查询发现违法犯罪记录，尚未解聘或不予聘用，请督促处理。",
          body_en="A check found a record for staff not yet dismissed or refused. Please follow it up.")
    return sum(by_institution.values())


def _claim(session: Session, member_id: int | None, mark: date) -> bool:
    """Set the member's `reminded_due_date` to `mark` unless it already is: the conditional UPDATE lets
    exactly one of two workers running at once claim (and so tell about) a member."""
    claimed = session.execute(
        sql_update(StaffMember).where(col(StaffMember.id) == member_id, or_(
            col(StaffMember.reminded_due_date).is_(None), col(StaffMember.reminded_due_date) != mark))
        .values(reminded_due_date=mark).execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    return bool(claimed == 1)


def _tell(session: Session, by_institution: dict[int, int], *, kind: str, title_zh: str, title_en: str,
          body_zh: str, body_en: str) -> None:
    """One notification per institution to its police and supervising agency's staff: ids and a count."""
    for institution_id, count in sorted(by_institution.items()):
        institution = session.get(Institution, institution_id)
        users = _audience(session, institution) if institution is not None else []
        if users:
            notifications.enqueue(session, user_ids=users, kind=kind, title_zh=title_zh, title_en=title_en,
                                  body_zh=body_zh, body_en=body_en,
                                  data={"institution_id": str(institution_id), "members": str(count)})
    session.flush()


def notify_due(session: Session) -> int:
    """Tell the police and the supervising agency's staff of each institution, once per member and due
    date, that employed members' periodic checks are due: one notification per institution and run,
    ids and a count only; then flagged members still to be dismissed (`notify_pending_dismissal`, whose
    reminder replaces the periodic one). Returns the members told about."""
    on, interval = today(), interval_days()
    by_institution: dict[int, int] = defaultdict(int)
    for member in session.execute(select(StaffMember).where(due_condition(on, interval),
                                                            col(StaffMember.flagged).is_(False))
                                  .order_by(col(StaffMember.id))).scalars():
        due = due_date(member, interval)
        if due is None or member.reminded_due_date == due:
            continue
        if _claim(session, member.id, due):
            by_institution[member.institution_id] += 1
    _tell(session, by_institution, kind="staff_check.due", title_zh="从业查询到期", title_en="Staff checks due",
          body_zh="有在职人员的定期从业查询已到期，请尽快查询并在系统中登记结果。",
          body_en="Periodic background checks of staff are due. Please run them and record the results.")
    return sum(by_institution.values()) + notify_pending_dismissal(session)
