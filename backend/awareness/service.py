"""Awareness surveys (知晓率调查): questionnaire versions, rounds at schools, anonymous answers, rates.

Who manages: coordinators and the education agency's staff (教育部门/学校经办人) of the school's
jurisdiction; the permission table gives survey.manage to every agency_staff, the agency narrows it here
(a 司法所 clerk has no business opening a school's survey). Answering is anonymous and public: the
round's code is the only credential, it is 100 random bits and only its SHA-256 digest is stored."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from backend.accounts import scope
from backend.accounts.models import Agency
from backend.accounts.permissions import Role
from backend.accounts.principal import Principal
from backend.audit import service as audit
from backend.awareness import builtin, rates, scoring
from backend.awareness.models import (
    NATIONAL,
    AwarenessQuestionnaire,
    AwarenessResponse,
    AwarenessRound,
    AwarenessThrottle,
    owner_of,
)
from backend.core import clock
from backend.core.db import dialect_insert
from backend.core.errors import Conflict, Forbidden, InvalidInput, NotFound, TooManyRequests
from backend.core.pagination import PageRequest
from backend.core.secrets import Purpose, purpose_key
from backend.institutions.models import Institution, InstitutionKind
from backend.orgunits import service as orgunits
from backend.orgunits.models import OrgLevel, OrgUnit, subtree_upper_bound

SCHOOL_KINDS = tuple(k.value for k in InstitutionKind if k.is_school)
# Levels whose managers may publish a questionnaire version for everything under them (a county or above).
PUBLISHING_LEVELS = frozenset({OrgLevel.province.value, OrgLevel.city.value, OrgLevel.county.value})
DEFAULT_WINDOW_DAYS = 14
MAX_WINDOW_DAYS = 60
# A school's enrolment figure lags (transfers, new pupils): the cap leaves a tenth and at least five more.
CAP_MARGIN = 0.1
CAP_MIN_MARGIN = 5
# Public answering limits, per client address (hashed): codes that match no round, and answers to one round.
BAD_CODES_PER_WINDOW = 20
BAD_CODE_WINDOW = timedelta(minutes=10)
ANSWERS_PER_ADDRESS_PER_WINDOW = 120  # a classroom behind one school router answers at once
ANSWER_WINDOW = timedelta(minutes=1)
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base 32: no I, L, O, U
CODE_LENGTH = 20  # 100 bits


# ------------------------------------------------------------------ errors


class QuestionnaireNotFound(NotFound):
    code = "awareness-questionnaire-not-found"
    title_zh = "问卷不存在"
    title_en = "Questionnaire not found"


class RoundNotFound(NotFound):
    code = "awareness-round-not-found"
    title_zh = "调查轮次不存在"
    title_en = "Survey round not found"


class LinkNotFound(NotFound):
    code = "awareness-link-not-found"
    title_zh = "调查码无效"
    title_en = "This survey code is not valid"


class SchoolNotFound(NotFound):
    code = "awareness-school-not-found"
    title_zh = "学校不存在"
    title_en = "School not found"


class NotSurveyManager(Forbidden):
    code = "awareness-not-manager"
    title_zh = "只有专班协调人和教育部门经办人可以管理知晓率调查"
    title_en = "Only coordinators and education staff manage awareness surveys"


class OwnSchool(Forbidden):
    code = "awareness-own-school"
    title_zh = "学校自身的教职工不能开展或结束本校的知晓率调查"
    title_en = "A school's own staff do not run its awareness survey"


class PublishLevel(Forbidden):
    code = "awareness-publish-level"
    title_zh = "问卷新版本由县级及以上发布"
    title_en = "Questionnaire versions are published at county level or above"


class NotASchool(InvalidInput):
    code = "awareness-not-a-school"
    title_zh = "只能在学校（含幼儿园）开展知晓率调查"
    title_en = "Awareness surveys are held at schools and kindergartens"


class QuestionnaireNotInForce(InvalidInput):
    code = "awareness-questionnaire-not-in-force"
    title_zh = "只能使用该校现行的问卷版本"
    title_en = "A round uses the questionnaire version in force for the school"


class SchoolWithoutStudents(InvalidInput):
    code = "awareness-school-without-students"
    title_zh = "学校未登记在校学生数"
    title_en = "The school has no student count"


class ClosedByOpener(Forbidden):
    code = "awareness-close-by-opener"
    title_zh = "只有开展本轮调查的单位或其上级可以提前结束调查"
    title_en = "Only the unit that opened a round, or one above it, ends it early"


class RoundAlreadyOpen(Conflict):
    code = "awareness-round-open"
    title_zh = "该校已有进行中的调查"
    title_en = "The school already has an open survey round"


class RoundClosed(Conflict):
    code = "awareness-round-closed"
    title_zh = "本轮调查已结束"
    title_en = "This survey round is closed"


class RoundFull(Conflict):
    code = "awareness-round-full"
    title_zh = "本轮调查答卷已达上限"
    title_en = "This survey round has received all the answers it takes"


class ResponseConflict(Conflict):
    code = "awareness-response-conflict"
    title_zh = "该答卷编号已用于不同的答卷"
    title_en = "This response id was already used for different answers"


class VersionRace(Conflict):
    code = "awareness-version-race"
    title_zh = "同时发布了另一版本，请重试"
    title_en = "Another version was published at the same time; try again"


class TooManyAttempts(TooManyRequests):
    code = "awareness-too-many-attempts"
    title_zh = "尝试次数过多，请稍后再试"
    title_en = "Too many attempts; try again later"


class InvalidPeriod(InvalidInput):
    code = "awareness-invalid-period"
    title_zh = "统计期格式有误"
    title_en = "Invalid period"


# ------------------------------------------------------------------ questionnaires


def ensure_builtin(session: Session) -> None:
    """Make sure the national version 1 exists (idempotent, race-safe)."""
    exists = session.execute(
        select(col(AwarenessQuestionnaire.id)).where(
            col(AwarenessQuestionnaire.owner) == NATIONAL, col(AwarenessQuestionnaire.version) == builtin.VERSION
        )
    ).first()
    if exists is not None:
        return
    insert = dialect_insert(session)
    session.execute(
        insert(AwarenessQuestionnaire)
        .values(
            owner=NATIONAL,
            org_unit_id=None,
            version=builtin.VERSION,
            title_zh=builtin.TITLE_ZH,
            title_en=builtin.TITLE_EN,
            pass_mark=builtin.PASS_MARK,
            questions=scoring.check_questionnaire(builtin.questions(), builtin.PASS_MARK),
            published_at=clock.now(),
        )
        .on_conflict_do_nothing()
    )


def _manager(principal: Principal) -> None:
    """Coordinators, and staff of the education agency; anyone else holding survey.manage is refused."""
    if Role.coordinator in principal.roles:
        return
    if Role.agency_staff in principal.roles and principal.agency == Agency.education.value:
        return
    raise NotSurveyManager()


def _not_the_schools_own(session: Session, principal: Principal, unit: OrgUnit) -> None:
    """A school's figure is made by those above it, never by the school itself: education staff must sit
    strictly above the school's administrative unit (the one predicate of staff checks,
    `scope.units_strictly_below`: staff of the school's own unit, or of the village of the grid it is
    registered at, are its staff, not its supervisor). Coordinators (专班) are nobody's staff: a village
    coordinator surveys its village's school."""
    if Role.coordinator in principal.roles:
        return
    above = session.execute(scope.units_strictly_below(principal).where(col(OrgUnit.id) == unit.id)).first()
    if above is None:
        raise OwnSchool()


def _visible_questionnaires(principal: Principal) -> Any:
    """National versions, those of the units above the caller (which apply to it) and inside its area."""
    above = [int(p) for p in principal.org_path.strip("/").split("/") if p]
    return (
        (col(AwarenessQuestionnaire.owner) == NATIONAL)
        | col(AwarenessQuestionnaire.org_unit_id).in_(above)
        | orgunits.in_jurisdiction(principal, col(AwarenessQuestionnaire.org_unit_id))
    )


def list_questionnaires(session: Session, principal: Principal, page: PageRequest) -> list[AwarenessQuestionnaire]:
    """Every version the caller may use or sees published in its area, by id."""
    ensure_builtin(session)
    stmt = select(AwarenessQuestionnaire).where(_visible_questionnaires(principal))
    return list(session.execute(page.seek(stmt, col(AwarenessQuestionnaire.id), bare_limit=500)).scalars())


def get_questionnaire(session: Session, principal: Principal, questionnaire_id: int) -> AwarenessQuestionnaire:
    ensure_builtin(session)
    found = session.execute(
        select(AwarenessQuestionnaire).where(
            col(AwarenessQuestionnaire.id) == questionnaire_id, _visible_questionnaires(principal)
        )
    ).scalar_one_or_none()
    if not isinstance(found, AwarenessQuestionnaire):
        raise QuestionnaireNotFound()
    return found


def publish(
    session: Session,
    principal: Principal,
    *,
    title_zh: str,
    title_en: str,
    pass_mark: int,
    questions: Sequence[Mapping[str, Any]],
) -> AwarenessQuestionnaire:
    """Publish the next version for the caller's county (or higher unit); rounds already open keep theirs."""
    _manager(principal)
    unit = session.get(OrgUnit, principal.org_unit_id)
    if unit is None or unit.level not in PUBLISHING_LEVELS:
        raise PublishLevel()
    ensure_builtin(session)
    stored = scoring.check_questionnaire(questions, pass_mark)
    owner = owner_of(unit.id)
    latest = session.execute(
        select(func.max(AwarenessQuestionnaire.version)).where(col(AwarenessQuestionnaire.owner).in_([owner, NATIONAL]))
    ).scalar_one_or_none()
    made = AwarenessQuestionnaire(
        owner=owner,
        org_unit_id=unit.id,
        version=(latest or 0) + 1,
        title_zh=title_zh,
        title_en=title_en,
        pass_mark=pass_mark,
        questions=stored,
        published_by=principal.user_id,
        published_at=clock.now(),
    )
    try:
        with session.begin_nested():
            session.add(made)
            session.flush()
    except IntegrityError as exc:
        raise VersionRace() from exc
    audit.record(
        session,
        actor=principal,
        action="awareness.questionnaire_published",
        object_type="awareness_questionnaire",
        object_id=made.id,
        org_unit_id=unit.id,
        details={"version": made.version, "questions": len(stored), "pass_mark": pass_mark},
    )
    return made


def applicable_questionnaire(session: Session, unit: OrgUnit) -> AwarenessQuestionnaire:
    """The latest version of the nearest unit at or above `unit` that published one, else the national."""
    ensure_builtin(session)
    line = [int(p) for p in unit.path.strip("/").split("/") if p]
    for unit_id in reversed(line):
        found = session.execute(
            select(AwarenessQuestionnaire)
            .where(col(AwarenessQuestionnaire.owner) == owner_of(unit_id))
            .order_by(col(AwarenessQuestionnaire.version).desc())
            .limit(1)
        ).scalar_one_or_none()
        if isinstance(found, AwarenessQuestionnaire):
            return found
    national = session.execute(
        select(AwarenessQuestionnaire)
        .where(col(AwarenessQuestionnaire.owner) == NATIONAL)
        .order_by(col(AwarenessQuestionnaire.version).desc())
        .limit(1)
    ).scalar_one()
    assert isinstance(national, AwarenessQuestionnaire)
    return national


def questionnaire_public(q: AwarenessQuestionnaire) -> dict[str, Any]:
    """A version as its managers see it (with the correct options)."""
    return {
        "id": q.id,
        "version": q.version,
        "org_unit_id": q.org_unit_id,
        "national": q.owner == NATIONAL,
        "title_zh": q.title_zh,
        "title_en": q.title_en,
        "pass_mark": q.pass_mark,
        "questions": q.questions,
        "published_at": clock.as_utc(q.published_at).isoformat(),
    }


# ------------------------------------------------------------------ rounds


def _school(session: Session, principal: Principal, institution_id: int) -> tuple[Institution, OrgUnit]:
    school = session.get(Institution, institution_id)
    unit = session.get(OrgUnit, school.org_unit_id) if school is not None else None
    if school is None or unit is None or not principal.covers(unit.path):
        raise SchoolNotFound()
    if not InstitutionKind(school.kind).is_school or not school.is_active:
        raise NotASchool()
    return school, unit


def response_cap(student_count: int) -> int:
    """How many answers a round takes: the enrolment and a margin for the figure's lag."""
    return student_count + max(CAP_MIN_MARGIN, int(student_count * CAP_MARGIN))


def new_code() -> str:
    """A fresh answering code: 20 characters of Crockford base 32 (100 random bits)."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(raw: str) -> str | None:
    """The code as typed (any case, dashes or spaces between groups, O for 0, I or L for 1), or None."""
    typed = raw.upper().replace("-", "").replace(" ", "").replace("O", "0").replace("I", "1").replace("L", "1")
    if len(typed) != CODE_LENGTH or any(c not in CODE_ALPHABET for c in typed):
        return None
    return typed


def code_digest(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def display_code(code: str) -> str:
    """The code in groups of five, as printed for a class: ABCDE-FGHJK-MNPQR-STVWX."""
    return "-".join(code[i : i + 5] for i in range(0, len(code), 5))


def _close_lapsed(session: Session, institution_id: int) -> None:
    """Rounds whose window ended are closed at their end (so the school may open the next one)."""
    session.execute(
        update(AwarenessRound)
        .where(
            col(AwarenessRound.institution_id) == institution_id,
            col(AwarenessRound.closed_at).is_(None),
            col(AwarenessRound.closes_at) <= clock.now(),
        )
        .values(closed_at=AwarenessRound.closes_at)
    )


def open_round(
    session: Session,
    principal: Principal,
    *,
    institution_id: int,
    days: int = DEFAULT_WINDOW_DAYS,
    questionnaire_id: int | None = None,
) -> tuple[AwarenessRound, str]:
    """Open a round at a school of the caller's area; the code is returned once and never stored."""
    _manager(principal)
    school, unit = _school(session, principal, institution_id)
    if not school.student_count or school.student_count <= 0:
        raise SchoolWithoutStudents("请先在单位名录中登记在校学生数", "Record the school's student count first")
    _not_the_schools_own(session, principal, unit)
    # Only the version in force: an older or another area's version (a lower pass mark) would make the
    # school's figure easier than its neighbours'.
    questionnaire = applicable_questionnaire(session, unit)
    if questionnaire_id is not None and questionnaire_id != questionnaire.id:
        raise QuestionnaireNotInForce(
            f"该校现行问卷为第{questionnaire.version}版（编号{questionnaire.id}）",
            f"The version in force for the school is {questionnaire.version} (id {questionnaire.id})",
            field="questionnaire_id",
        )
    _close_lapsed(session, school.id or 0)
    code = new_code()
    now = clock.now()
    made = AwarenessRound(
        institution_id=school.id or 0,
        org_unit_id=unit.id or 0,
        questionnaire_id=questionnaire.id or 0,
        token_digest=code_digest(code),
        students=school.student_count,
        response_cap=response_cap(school.student_count),
        opened_by=principal.user_id,
        opened_by_unit_id=principal.org_unit_id,
        opened_at=now,
        closes_at=now + timedelta(days=days),
    )
    try:
        with session.begin_nested():
            session.add(made)
            session.flush()
    except IntegrityError as exc:
        raise RoundAlreadyOpen("请先结束该校进行中的调查", "Close the school's open round first") from exc
    audit.record(
        session,
        actor=principal,
        action="awareness.round_opened",
        object_type="awareness_round",
        object_id=made.id,
        org_unit_id=unit.id,
        details={
            "institution_id": school.id,
            "questionnaire_id": questionnaire.id,
            "closes_at": made.closes_at.isoformat(),
            "students": made.students,
            "response_cap": made.response_cap,
        },
    )
    return made, code


def get_round(session: Session, principal: Principal, round_id: int) -> AwarenessRound:
    """A round of the caller's area, else 404."""
    found: AwarenessRound = orgunits.get_in_jurisdiction(
        session, principal, AwarenessRound, round_id, not_found=RoundNotFound
    )
    return found


def close_round(session: Session, principal: Principal, round_id: int) -> AwarenessRound:
    """End answering now (closing a closed round again changes nothing)."""
    _manager(principal)
    found = get_round(session, principal, round_id)
    unit = session.get(OrgUnit, found.org_unit_id)
    assert unit is not None
    _not_the_schools_own(session, principal, unit)
    # Ending a round early decides how many answer it, and its figure replaces other rounds' only once
    # closed: a unit below the one that opened it must not cut a county's survey short.
    opener = orgunits.unit_path(session, found.opened_by_unit_id)
    if found.closed_at is None and (opener is None or not principal.covers(opener)):
        raise ClosedByOpener(opened_by_unit_id=found.opened_by_unit_id)
    if found.closed_at is None:
        now = clock.now()
        found.closed_at = min(now, clock.as_utc(found.closes_at))
        found.closed_by = principal.user_id
        session.add(found)
        audit.record(
            session,
            actor=principal,
            action="awareness.round_closed",
            object_type="awareness_round",
            object_id=found.id,
            org_unit_id=found.org_unit_id,
            details={"responses": found.response_count},
        )
    return found


def is_open(r: AwarenessRound) -> bool:
    return r.closed_at is None and clock.as_utc(r.closes_at) > clock.now()


def list_rounds(
    session: Session,
    principal: Principal,
    page: PageRequest,
    *,
    unit_id: int | None = None,
    institution_id: int | None = None,
) -> list[AwarenessRound]:
    """Rounds of the caller's area (under `unit_id`, at one school), newest first."""
    stmt = select(AwarenessRound).where(orgunits.in_jurisdiction(principal, col(AwarenessRound.org_unit_id)))
    if unit_id is not None:
        unit = orgunits.get_visible_unit(session, principal, unit_id)
        stmt = stmt.where(col(AwarenessRound.org_unit_id).in_(orgunits.subtree_unit_ids(unit.path)))
    if institution_id is not None:
        stmt = stmt.where(col(AwarenessRound.institution_id) == institution_id)
    return list(session.execute(page.seek(stmt, col(AwarenessRound.id), descending=True, bare_limit=500)).scalars())


def knowing_of(session: Session, round_ids: Sequence[int]) -> dict[int, int]:
    """round id -> respondents who know."""
    if not round_ids:
        return {}
    rows = session.execute(
        select(col(AwarenessResponse.round_id), func.count())
        .where(col(AwarenessResponse.round_id).in_(round_ids), col(AwarenessResponse.knows).is_(True))
        .group_by(col(AwarenessResponse.round_id))
    ).all()
    return {int(r): int(n) for r, n in rows}


def rounds_public(session: Session, found: Sequence[AwarenessRound]) -> list[dict[str, Any]]:
    """Rounds as the managers see them: counts and rate, never the code."""
    knowing = knowing_of(session, [r.id or 0 for r in found])
    names = (
        dict(
            session.execute(
                select(col(Institution.id), col(Institution.name)).where(
                    col(Institution.id).in_([r.institution_id for r in found])
                )
            ).all()
        )
        if found
        else {}
    )
    versions = (
        dict(
            session.execute(
                select(col(AwarenessQuestionnaire.id), col(AwarenessQuestionnaire.version)).where(
                    col(AwarenessQuestionnaire.id).in_({r.questionnaire_id for r in found})
                )
            ).all()
        )
        if found
        else {}
    )
    return [
        {
            "id": r.id,
            "institution_id": r.institution_id,
            "school_name": names.get(r.institution_id),
            "org_unit_id": r.org_unit_id,
            "questionnaire_id": r.questionnaire_id,
            "questionnaire_version": versions.get(r.questionnaire_id),
            "opened_at": clock.as_utc(r.opened_at).isoformat(),
            "closes_at": clock.as_utc(r.closes_at).isoformat(),
            "closed_at": clock.as_utc(r.closed_at).isoformat() if r.closed_at else None,
            "state": "open" if is_open(r) else "closed",
            "students": r.students,
            "response_cap": r.response_cap,
            "responses": r.response_count,
            "knowing": knowing.get(r.id or 0, 0),
            "rate": rates.rate(knowing.get(r.id or 0, 0), r.response_count),
        }
        for r in found
    ]


# ------------------------------------------------------------------ public answering


def _address_key(kind: str, ip: str | None, *parts: object) -> str:
    # Only a keyed digest of the address is kept, and only for a window: a plain SHA-256 of an IPv4
    # address is undone by trying all 2^32 of them.
    hashed = hmac.new(purpose_key(Purpose.address_throttle), (ip or "-").encode(), hashlib.sha256).hexdigest()[:40]
    return ":".join([kind, *(str(p) for p in parts), hashed])


def _counter(session: Session, key: str, window: timedelta) -> AwarenessThrottle:
    now = clock.now()
    session.execute(
        dialect_insert(session)(AwarenessThrottle)
        .values(key=key, hits=0, window_started_at=now)
        .on_conflict_do_nothing(index_elements=["key"])
    )
    row: AwarenessThrottle = session.execute(
        select(AwarenessThrottle).where(col(AwarenessThrottle.key) == key).with_for_update()
    ).scalar_one()
    if clock.as_utc(row.window_started_at) + window <= now:
        row.hits, row.window_started_at = 0, now
    return row


def _refuse_if_over(session: Session, key: str, limit: int, window: timedelta) -> None:
    row = session.get(AwarenessThrottle, key)
    if row is None:
        return
    ends = clock.as_utc(row.window_started_at) + window
    if row.hits >= limit and ends > clock.now():
        seconds = max(1, int((ends - clock.now()).total_seconds()) + 1)
        raise TooManyAttempts(
            f"请在{seconds}秒后再试",
            f"Try again in {seconds} seconds",
            headers={"Retry-After": str(seconds)},
            retry_after=seconds,
        )


def _note_bad_code(key: str) -> Any:
    def count(session: Session) -> None:
        row = _counter(session, key, BAD_CODE_WINDOW)
        row.hits += 1
        session.add(row)

    return count


def round_for_code(session: Session, raw_code: str, ip: str | None) -> AwarenessRound:
    """The round a code opens; 404 (counted against the address) for a code that opens none, 429 after
    too many such codes from one address."""
    key = _address_key("bad", ip)
    _refuse_if_over(session, key, BAD_CODES_PER_WINDOW, BAD_CODE_WINDOW)
    code = normalise_code(raw_code)
    found = (
        session.execute(
            select(AwarenessRound).where(col(AwarenessRound.token_digest) == code_digest(code))
        ).scalar_one_or_none()
        if code is not None
        else None
    )
    if not isinstance(found, AwarenessRound):
        raise LinkNotFound(aftermath=_note_bad_code(key))
    return found


def public_form(session: Session, raw_code: str, ip: str | None) -> dict[str, Any]:
    """What a respondent's screen shows: the school, the window and the questions (no correct options)."""
    found = round_for_code(session, raw_code, ip)
    if not is_open(found):
        raise RoundClosed()
    questionnaire = session.get(AwarenessQuestionnaire, found.questionnaire_id)
    school = session.get(Institution, found.institution_id)
    assert questionnaire is not None and school is not None
    return {
        "school_name": school.name,
        "closes_at": clock.as_utc(found.closes_at).isoformat(),
        "title_zh": questionnaire.title_zh,
        "title_en": questionnaire.title_en,
        "questions": scoring.public_questions(questionnaire.questions),
    }


@dataclass(frozen=True)
class Accepted:
    response_uuid: str
    duplicate: bool


def submit(
    session: Session, raw_code: str, ip: str | None, *, response_uuid: str, answers: Mapping[str, Sequence[str]]
) -> Accepted:
    """Store one anonymous answer sheet once: a resend of the same sheet is answered as stored (even after
    the round closed); the same id with other answers is 409; a closed or full round refuses."""
    found = round_for_code(session, raw_code, ip)
    questionnaire = session.get(AwarenessQuestionnaire, found.questionnaire_id)
    assert questionnaire is not None
    canonical = scoring.check_answers(questionnaire.questions, answers)
    fingerprint = scoring.digest(canonical)

    def stored() -> Accepted | None:
        kept = session.execute(
            select(AwarenessResponse).where(col(AwarenessResponse.response_uuid) == response_uuid)
        ).scalar_one_or_none()
        if not isinstance(kept, AwarenessResponse):
            return None
        if kept.round_id != found.id or kept.body_digest != fingerprint:
            raise ResponseConflict()
        return Accepted(response_uuid, duplicate=True)

    again = stored()
    if again is not None:
        return again
    if not is_open(found):
        raise RoundClosed()
    limiter = _address_key("answer", ip, found.id)
    # The address's counter is locked before the limit is tested, so answers sent at once from one
    # address are counted one after another and cannot all pass a limit they reach together.
    _counter(session, limiter, ANSWER_WINDOW)
    _refuse_if_over(session, limiter, ANSWERS_PER_ADDRESS_PER_WINDOW, ANSWER_WINDOW)
    points = scoring.score(questionnaire.questions, canonical)
    try:
        with session.begin_nested():
            # The cap and the state are tested in the UPDATE itself, so racing answers never pass the cap.
            taken = session.execute(
                update(AwarenessRound)
                .where(
                    col(AwarenessRound.id) == found.id,
                    col(AwarenessRound.closed_at).is_(None),
                    col(AwarenessRound.response_count) < col(AwarenessRound.response_cap),
                )
                .values(response_count=AwarenessRound.response_count + 1)
                .execution_options(synchronize_session=False)
            )
            if taken.rowcount == 0:  # type: ignore[attr-defined]
                raise RoundFull()
            session.add(
                AwarenessResponse(
                    round_id=found.id or 0,
                    response_uuid=response_uuid,
                    body_digest=fingerprint,
                    answers=canonical,
                    score=points,
                    knows=scoring.knows(points, questionnaire.pass_mark),
                    received_at=clock.now(),
                )
            )
            session.flush()
    except IntegrityError:
        # The same id arrived at the same moment through another request: answer as that one stored it.
        again = stored()
        if again is None:
            raise
        return again
    row = _counter(session, limiter, ANSWER_WINDOW)
    row.hits += 1
    session.add(row)
    audit.record(
        session,
        actor=None,
        action="awareness.response_received",
        object_type="awareness_round",
        object_id=found.id,
        org_unit_id=found.org_unit_id,
        details={"response_uuid": response_uuid},
    )
    return Accepted(response_uuid, duplicate=False)


def purge_throttle(session: Session) -> int:
    """Drop counters whose window ended (the longest window, and a day of slack)."""
    cutoff = clock.now() - max(BAD_CODE_WINDOW, ANSWER_WINDOW) - timedelta(days=1)
    removed: int = session.execute(
        delete(AwarenessThrottle).where(col(AwarenessThrottle.window_started_at) < cutoff)
    ).rowcount  # type: ignore[attr-defined]
    return removed


# ------------------------------------------------------------------ rates


def parse_period(period: str | None) -> tuple[str, date, date]:
    """The period asked for (default: this year in China) and its China-date range."""
    label = period or str(clock.china_date(clock.now()).year)
    found = rates.period_range(label)
    if found is None:
        raise InvalidPeriod(
            "统计期应为 2026、2026-H1、2026-Q3 或 2026-05", "Use 2026, 2026-H1, 2026-Q3 or 2026-05", field="period"
        )
    return label, found[0], found[1]


def awareness_rates(session: Session, principal: Principal, unit_id: int, period: str | None) -> dict[str, Any]:
    """Per school and per child unit of `unit_id`: responses, knowing, rate, target; and the schools with
    no round in the period."""
    unit = orgunits.get_visible_unit(session, principal, unit_id)
    label, first, last = parse_period(period)
    children = list(
        session.execute(select(OrgUnit).where(col(OrgUnit.parent_id) == unit.id).order_by(col(OrgUnit.code))).scalars()
    )
    schools = session.execute(
        select(Institution, col(OrgUnit.path))
        .join(OrgUnit, col(OrgUnit.id) == col(Institution.org_unit_id))
        .where(
            col(OrgUnit.path) >= unit.path,
            col(OrgUnit.path) < subtree_upper_bound(unit.path),
            col(Institution.kind).in_(SCHOOL_KINDS),
            col(Institution.is_active).is_(True),
        )
        .order_by(col(Institution.id))
    ).all()
    school_ids = [s.id or 0 for s, _ in schools]
    rounds = (
        session.execute(
            select(
                col(AwarenessRound.institution_id),
                col(AwarenessRound.id),
                col(AwarenessRound.opened_at),
                col(AwarenessRound.response_count),
                col(AwarenessRound.students),
                col(AwarenessRound.closed_at),
                col(AwarenessRound.closes_at),
                col(OrgUnit.path),
            )
            .join(OrgUnit, col(OrgUnit.id) == col(AwarenessRound.opened_by_unit_id))
            .where(
                col(AwarenessRound.institution_id).in_(school_ids),
                col(AwarenessRound.opened_at) >= clock.china_day_start(first),
                col(AwarenessRound.opened_at) < clock.china_day_start(last + timedelta(days=1)),
            )
        ).all()
        if school_ids
        else []
    )
    now = clock.now()
    latest = rates.counted_rounds(
        rates.RoundSeen(s, r, clock.as_utc(at), len([p for p in opener.split("/") if p]),
                        closed_at is not None or clock.as_utc(closes) <= now)
        for s, r, at, _, _, closed_at, closes, opener in rounds
    )
    counts = {r: n for _, r, _, n, _, _, _, _ in rounds}
    enrolled = {r: e for _, r, _, _, e, _, _, _ in rounds}
    knowing = knowing_of(session, list(latest.values()))

    def group_of(path: str) -> int:
        for child in children:
            if path.startswith(child.path):
                return child.id or 0
        return unit.id or 0

    figures: list[rates.SchoolFigure] = []
    school_rows: list[dict[str, Any]] = []
    for school, path in schools:
        round_id = latest.get(school.id or 0)
        figure = rates.SchoolFigure(
            school.id or 0,
            group_of(path),
            # A surveyed school is read against its enrolment when the round opened: a later change of the
            # student count does not rewrite the figure.
            enrolled.get(round_id, 0) if round_id else (school.student_count or 0),
            round_id,
            counts.get(round_id, 0) if round_id else 0,
            knowing.get(round_id or 0, 0),
        )
        figures.append(figure)
        school_rows.append(
            {
                "institution_id": school.id,
                "name": school.name,
                "kind": school.kind,
                "org_unit_id": school.org_unit_id,
                "unit_id": figure.group_id,
                "round_id": round_id,
                "students": figure.students,
                "responses": figure.responses,
                "knowing": figure.knowing,
                "rate": rates.rate(figure.knowing, figure.responses) if round_id else None,
                "participation": (rates.rate(min(figure.responses, figure.students), figure.students)
                                  if round_id else None),
            }
        )
    groups = [c.id or 0 for c in children]
    total, by_group = rates.roll_up(figures, groups)
    named = {c.id: c for c in children}
    units = []
    for group_id, tally in by_group.items():
        if group_id == unit.id and group_id not in named and not tally.schools:
            continue
        where = named.get(group_id, unit)
        units.append(
            {
                "unit_id": group_id,
                "name": where.name,
                "level": where.level,
                "own_level": group_id == unit.id,
                **tally.public(),
            }
        )
    return {
        "unit_id": unit.id,
        "period": label,
        "date_from": first.isoformat(),
        "date_to": last.isoformat(),
        "target": rates.TARGET,
        "totals": total.public(),
        "units": units,
        "schools": [s for s in school_rows if s["round_id"] is not None],
        "schools_without_survey": [
            {k: s[k] for k in ("institution_id", "name", "kind", "org_unit_id", "unit_id")}
            for s in school_rows
            if s["round_id"] is None
        ],
    }
