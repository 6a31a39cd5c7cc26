"""Data minimisation over time (PIPL art. 19 and 47): grown-up children leave the active registry,
and after the retention period their personal details are anonymised. Run daily by the worker job
`registry.retention` (backend/registry/scheduled.py); README, "Retention".

**Retirement.** A child leaves the active registry on the first day (China time) of the month after
its 18th birthday: roles that may not reveal ID numbers know a child's birth month, not the date, so
the day a record disappears must not tell them more than the month. A child with an open case stays
until the case closes and retires at the next run. Open, decided from the models:

- a referral (强制报告) not yet handled (`new`, `received`) naming the child, or about the child's
  household (whichever children it names: a clue about the family holds all of them);
- a live helper assignment (`proposed`, `offered`, `accepted`: backend/helpers/models.py HOLDING);
- an unresolved risk level: 较大风险 or 重大风险 (the levels that call for a helper); a coordinator
  resolves it by lowering the level.

"2112" incidents name no child or household (backend/incidents/models.py), so they hold no one.
A child without a birth date is never retired (its age is unknown). A guardian retires with the last
of its wards (a guardian linked to no child at all is left alone). A retired record is in no list,
no count of children and no pull, and cannot be edited (404 `person-not-found`); the database writes
its sync tombstone (migration 0014), so the phones that held it receive a `removal`.

**Anonymisation**, `retention_years` (HULEI_RETENTION_YEARS, default 3) after retirement. Deleted:
name (replaced by a placeholder), ID cipher, key id, blind index and masked form, birth date, contact,
hukou place, residence, signs, task force, assistance, the free text of its risk reasons (their rule,
item and level stay) and the link to its household; its guardianship links; the visit that raised a
level (on the history rows); follow-up notes of its helper assignments; the police outcome note of
referrals naming it (and it from their child list; of a report filed directly, its description, place
and child description too); in the visits of its household made while it was
registered, every answer's note and photo list, the visit's note and the child from `children_seen`,
and those visits' photos (stored objects and rows). Kept, because the monthly report counts them: the
record's unit, role, sex, categories, groups, flags, risk level and history levels and times, helper
assignments and their dates, visits' outcomes, answer values, times and flags, referrals' statuses and
times. A past month's report is the same before and after (tests/registry/test_retention.py).

A household whose last member is anonymised keeps the dwelling (its unit, address and point: door-
knocking visits every dwelling, with children or not, and no record links it to the anonymised child
any more) and loses the family's names and numbers (head name, contact, note), as a new version that
phones pull.

Each batch (`retention_batch_size` records) is one transaction; a run goes batch after batch until
nothing is due, so running it again changes nothing. Each run writes one audit entry with its counts.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, exists, func, or_, select, update
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from backend.audit import service as audit
from backend.core import clock
from backend.core.config import get_settings
from backend.helpers.models import HOLDING, Assignment, FollowUp
from backend.media.models import MediaItem
from backend.media.storage import get_storage
from backend.referrals.models import Referral, ReferralStatus
from backend.registry.models import Guardianship, Household, Person, PersonRole, RiskLevel, RiskLevelChange
from backend.sync import revisions
from backend.visits.models import Visit

JOB_NAME = "registry.retention"
AUDIT_ACTION = "registry.retention"
ADULT_AGE = 18
ANONYMISED_NAME = "（已匿名）"
ANONYMISED_HASH = "anonymised"

# Levels that are a case still open (the levels that call for a helper: backend/helpers/service.py).
UNRESOLVED_RISK = (RiskLevel.major.value, RiskLevel.severe.value)
OPEN_REFERRAL = (ReferralStatus.new.value, ReferralStatus.received.value)
# What a risk reason keeps: which rule, which checklist item, which level (no free text).
_REASON_KEYS = ("rule", "item", "level")

COUNTS = ("retired_children", "retired_guardians", "children_kept_open_case", "anonymised_persons",
          "households_cleared", "visits_scrubbed", "photos_deleted", "batches")


def retirement_cutoff(today: date) -> date:
    """Children born before this date turned 18 before this month began: the first day of the
    current month, 18 years back. One born on the 1st of this month turns 18 today and leaves on the
    1st of next month."""
    return date(today.year - ADULT_AGE, today.month, 1)


def years_before(moment: datetime, years: int) -> datetime:
    """The same instant `years` calendar years earlier (29 February becomes the 28th)."""
    try:
        return moment.replace(year=moment.year - years)
    except ValueError:
        return moment.replace(year=moment.year - years, day=28)


# ---------------------------------------------------------------- retirement


@dataclass(frozen=True)
class OpenCases:
    """Referrals not yet handled: the children they name and the households they concern."""

    children: frozenset[int]
    households: frozenset[int]


def open_cases(session: Session) -> OpenCases:
    children: set[int] = set()
    households: set[int] = set()
    for child_ids, household_id in session.execute(
        select(col(Referral.child_ids), col(Referral.household_id)).where(col(Referral.status).in_(OPEN_REFERRAL))
    ):
        children.update(int(c) for c in child_ids or [])
        if household_id is not None:  # a direct report naming no registered child concerns no household
            households.add(int(household_id))
    return OpenCases(frozenset(children), frozenset(households))


def _grown_up(cutoff: date) -> list[ColumnElement[bool]]:
    return [col(Person.role) == PersonRole.child.value, col(Person.retired_at).is_(None),
            col(Person.birth_date).is_not(None), col(Person.birth_date) < cutoff]


def _no_open_case(cases: OpenCases) -> list[ColumnElement[bool]]:
    live_help = exists().where(col(Assignment.child_id) == col(Person.id), col(Assignment.status).in_(HOLDING))
    clauses = [or_(col(Person.risk_level).is_(None), col(Person.risk_level).not_in(UNRESOLVED_RISK)), ~live_help]
    if cases.children:
        clauses.append(col(Person.id).not_in(sorted(cases.children)))
    if cases.households:
        clauses.append(or_(col(Person.household_id).is_(None),
                           col(Person.household_id).not_in(sorted(cases.households))))
    return clauses


@dataclass
class Retired:
    children: list[int] = field(default_factory=list)
    guardians: list[int] = field(default_factory=list)


def retire_batch(session: Session, *, limit: int, after_id: int = 0) -> Retired:
    """Retire up to `limit` grown-up children without an open case (ids above `after_id`), and the
    guardians left with no ward in the registry. The caller commits."""
    cases = open_cases(session)
    cutoff = retirement_cutoff(clock.china_date(clock.now()))
    children = list(session.execute(
        select(col(Person.id))
        .where(*_grown_up(cutoff), *_no_open_case(cases), col(Person.id) > after_id)
        .order_by(col(Person.id))
        .limit(limit)
    ).scalars())
    if not children:
        return Retired()
    _retire(session, children)
    guardians = _guardians_left_alone(session, children)
    _retire(session, guardians)
    return Retired(children, guardians)


def _retire(session: Session, ids: list[int]) -> None:
    """Set retired_at: the database's trigger (migration 0014) leaves each a sync tombstone."""
    if ids:
        now = clock.now()
        session.execute(
            update(Person).where(col(Person.id).in_(ids), col(Person.retired_at).is_(None))
            .values(retired_at=now, updated_at=now).execution_options(synchronize_session=False)
        )


def _guardians_left_alone(session: Session, child_ids: list[int]) -> list[int]:
    """Guardians of these children whose every ward has now retired."""
    link, ward = aliased(Guardianship), aliased(Person)
    active_ward = (
        select(col(link.guardian_id)).join(ward, col(ward.id) == col(link.child_id))
        .where(col(link.guardian_id) == col(Person.id), col(ward.retired_at).is_(None))
        .exists()
    )
    theirs = select(col(Guardianship.guardian_id)).where(col(Guardianship.child_id).in_(child_ids))
    return list(session.execute(
        select(col(Person.id)).where(col(Person.id).in_(theirs), col(Person.role) == PersonRole.guardian.value,
                                     col(Person.retired_at).is_(None), ~active_ward).order_by(col(Person.id))
    ).scalars())


def kept_for_open_cases(session: Session) -> int:
    """Grown-up children still in the registry (after a run: those an open case holds)."""
    return int(session.execute(
        select(func.count()).select_from(Person).where(*_grown_up(retirement_cutoff(clock.china_date(clock.now()))))
    ).scalar_one())


# ---------------------------------------------------------------- anonymisation


@dataclass
class Anonymised:
    persons: list[int] = field(default_factory=list)
    households_cleared: int = 0
    visits_scrubbed: int = 0
    photos_deleted: int = 0


def anonymise_batch(session: Session, *, limit: int, after_id: int = 0) -> Anonymised:
    """Anonymise up to `limit` persons retired more than the retention period ago (ids above
    `after_id`). The caller commits."""
    threshold = years_before(clock.now(), get_settings().retention_years)
    rows = session.execute(
        select(col(Person.id), col(Person.uuid), col(Person.household_id), col(Person.retired_at),
               col(Person.risk_reasons))
        .where(col(Person.retired_at).is_not(None), col(Person.retired_at) <= threshold,
               col(Person.anonymised_at).is_(None), col(Person.id) > after_id)
        .order_by(col(Person.id))
        .limit(limit)
    ).all()
    if not rows:
        return Anonymised()
    ids = [int(r.id) for r in rows]
    homes: dict[int, datetime] = {}  # household -> the latest retirement of its members in this batch
    for r in rows:
        if r.household_id is not None:
            retired = clock.as_utc(r.retired_at)
            homes[int(r.household_id)] = max(homes.get(int(r.household_id), retired), retired)
    out = Anonymised(persons=ids)
    out.visits_scrubbed, parents, named = _scrub_visits(session, homes, {str(r.uuid).lower() for r in rows})
    out.photos_deleted = _delete_photos(session, parents, named)
    _scrub_cases(session, ids, set(homes))
    now = clock.now()
    for r in rows:
        session.execute(
            update(Person).where(col(Person.id) == r.id)
            .values(name=ANONYMISED_NAME, id_cipher=None, id_key_id=None, id_index=None, id_masked=None,
                    birth_date=None, contact=None, hukou_place=None, residence=None, signs=None, task_force=None,
                    assistance=None, household_id=None, risk_reasons=_plain_reasons(r.risk_reasons),
                    content_hash=ANONYMISED_HASH, anonymised_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    session.execute(delete(Guardianship).where(or_(col(Guardianship.child_id).in_(ids),
                                                   col(Guardianship.guardian_id).in_(ids))))
    out.households_cleared = _clear_empty_households(session, sorted(homes))
    return out


def _plain_reasons(reasons: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    return [{k: r[k] for k in _REASON_KEYS if k in r} for r in reasons or [] if isinstance(r, dict)]


def _scrub_answer(answer: Any) -> Any:
    if not isinstance(answer, dict):
        return answer  # a bare value holds no text
    return {"value": answer.get("value"), "note": None, "photos": []}


def _scrub_visits(session: Session, homes: dict[int, datetime],
                  person_uuids: set[str]) -> tuple[int, set[uuid.UUID], set[uuid.UUID]]:
    """In the visits of these households made while the persons were registered: drop the answers'
    notes and photo lists, the visit's note and the persons from children_seen. Returns how many
    visits changed, those visits' uuids (their photos' parent) and the photos their answers named."""
    if not homes:
        return 0, set(), set()
    scrubbed, parents, named = 0, set(), set()
    visits = session.execute(
        select(col(Visit.id), col(Visit.client_uuid), col(Visit.household_id), col(Visit.counted_at),
               col(Visit.answers), col(Visit.note), col(Visit.children_seen))
        .where(col(Visit.household_id).in_(sorted(homes)))
    ).all()
    for v in visits:
        if clock.as_utc(v.counted_at) >= homes[int(v.household_id)]:
            continue  # made after the persons left: not about them
        parents.add(v.client_uuid)
        answers = dict(v.answers or {})
        for answer in answers.values():
            for photo in (answer.get("photos") or []) if isinstance(answer, dict) else []:
                try:
                    named.add(uuid.UUID(str(photo)))
                except ValueError:
                    continue
        clean = {key: _scrub_answer(a) for key, a in answers.items()}
        seen = [u for u in v.children_seen or [] if str(u).lower() not in person_uuids]
        if clean == answers and v.note is None and seen == list(v.children_seen or []):
            continue
        session.execute(update(Visit).where(col(Visit.id) == v.id).values(answers=clean, note=None, children_seen=seen)
                        .execution_options(synchronize_session=False))
        scrubbed += 1
    return scrubbed, parents, named


def _delete_photos(session: Session, visits: set[uuid.UUID], named: set[uuid.UUID]) -> int:
    """The photos of these visits and those named: stored objects first, then the rows. A batch that
    fails after deleting objects leaves rows the next run deletes again (deleting a missing object
    is no error)."""
    if not visits and not named:
        return 0
    items = session.execute(
        select(MediaItem).where(or_(
            and_(col(MediaItem.parent_kind) == "visit", col(MediaItem.parent_uuid).in_(sorted(visits))),
            col(MediaItem.client_uuid).in_(sorted(named))))
    ).scalars().all()
    if not items:
        return 0
    storage = get_storage()
    for item in items:
        for key in {item.original_key, item.display_key, item.thumbnail_key} - {None}:
            assert key is not None
            storage.delete(key)
    session.execute(delete(MediaItem).where(col(MediaItem.id).in_([i.id for i in items])))
    return len(items)


def _scrub_cases(session: Session, ids: list[int], homes: set[int]) -> None:
    """Free text about the persons in case records: risk history reasons (and the visit behind
    them), helpers' follow-up notes, and police outcome notes of referrals naming them."""
    for change_id, reasons, visit_id in session.execute(
        select(col(RiskLevelChange.id), col(RiskLevelChange.reasons), col(RiskLevelChange.visit_id))
        .where(col(RiskLevelChange.person_id).in_(ids))
    ).all():
        plain = _plain_reasons(reasons)
        if plain != reasons or visit_id is not None:
            session.execute(update(RiskLevelChange).where(col(RiskLevelChange.id) == change_id)
                            .values(reasons=plain, visit_id=None).execution_options(synchronize_session=False))
    session.execute(
        update(FollowUp)
        .where(col(FollowUp.assignment_id).in_(select(col(Assignment.id)).where(col(Assignment.child_id).in_(ids))),
               col(FollowUp.note).is_not(None))
        .values(note=None).execution_options(synchronize_session=False)
    )
    if not homes:
        return
    gone = set(ids)
    for referral_id, child_ids, reported in session.execute(
        select(col(Referral.id), col(Referral.child_ids), col(Referral.reported_child_id))
        .where(col(Referral.household_id).in_(sorted(homes)))
    ).all():
        named = [int(c) for c in child_ids or []]
        if gone & set(named):
            # A report filed directly also loses what it said about the child (its words, the place,
            # the child as described); its source, status and times stay for the monthly report.
            session.execute(update(Referral).where(col(Referral.id) == referral_id)
                            .values(child_ids=[c for c in named if c not in gone], outcome_note=None,
                                    description=None, place=None, child_description=None,
                                    reported_child_id=None if reported in gone else reported)
                            .execution_options(synchronize_session=False))


def _clear_empty_households(session: Session, household_ids: list[int]) -> int:
    """Households left with no member: the family's names and numbers go, the dwelling stays (a new
    version and revision, so phones replace their copy and an edit from an old copy conflicts)."""
    if not household_ids:
        return 0
    member = exists().where(col(Person.household_id) == col(Household.id))
    empty = list(session.execute(
        select(col(Household.id)).where(
            col(Household.id).in_(household_ids), ~member,
            or_(col(Household.head_name).is_not(None), col(Household.contact).is_not(None),
                col(Household.note).is_not(None)))
    ).scalars())
    if not empty:
        return 0
    now = clock.now()
    revisions.restamp(session, Household, empty, head_name=None, contact=None, note=None,
                      version=col(Household.version) + 1, updated_at=now)
    session.execute(update(Referral)
                    .where(col(Referral.household_id).in_(empty), col(Referral.outcome_note).is_not(None))
                    .values(outcome_note=None).execution_options(synchronize_session=False))
    return len(empty)


# ---------------------------------------------------------------- the job


def run(session: Session) -> dict[str, int]:
    """Retire everyone due, then anonymise everyone past the retention period, batch by batch (one
    transaction each); one audit entry with the counts. Idempotent: a second run finds nothing."""
    limit = get_settings().retention_batch_size
    counts = dict.fromkeys(COUNTS, 0)
    after = 0
    while True:
        retired = retire_batch(session, limit=limit, after_id=after)
        if not retired.children:
            break
        session.commit()
        counts["batches"] += 1
        counts["retired_children"] += len(retired.children)
        counts["retired_guardians"] += len(retired.guardians)
        after = max(retired.children)
    counts["children_kept_open_case"] = kept_for_open_cases(session)
    after = 0
    while True:
        done = anonymise_batch(session, limit=limit, after_id=after)
        if not done.persons:
            break
        session.commit()
        counts["batches"] += 1
        counts["anonymised_persons"] += len(done.persons)
        counts["households_cleared"] += done.households_cleared
        counts["visits_scrubbed"] += done.visits_scrubbed
        counts["photos_deleted"] += done.photos_deleted
        after = max(done.persons)
    audit.record(session, actor=None, action=AUDIT_ACTION, object_type="registry",
                 details={**counts, "retirement_cutoff": retirement_cutoff(clock.china_date(clock.now())).isoformat(),
                          "retention_years": get_settings().retention_years})
    session.commit()
    return counts
