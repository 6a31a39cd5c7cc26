"""Which person-bearing records each request disclosed or changed: one audit entry per request.

Auditing does not depend on each service remembering to call the log. The code that *produces* a
person-bearing record declares it to the request's collector, and the request's end writes it:

- `record(kind, ids)`: this answer carries these records (a child's or guardian's record, a household
  with its head and address, a 附件2 risk person, a visit's 六看六问 answers, a referral, a helper
  assignment). Builders call it: `registry.person_out`/`household_out`, `risk_person_public`,
  `visit_public`, `referrals.public`, `helpers.assignments_public`, the ledger export, the sync pull.
- `changed(kind, ids)`: this request created or changed them (REST writes, sync pushes, imports,
  risk levels).
- `event(session, action, ...)`: names the request's entry ("child.reveal_id", "ledger.export") and
  adds details; an export or an import (a dry run too) is audited even when it carried nobody.

`DisclosureAudit` (an ASGI middleware of the app) makes a collector per request. The request's
database session (`core.db.get_session`) writes the entry in the request's own transaction just
before it commits, so a change and its entry are kept or lost together; if the entry cannot be
written, the commit does not happen and the answer is a 500. A refusal that still carries records
(a stale edit answered 409 with the current copy) is rolled back and then audited on its own.
Before the first byte of any answer leaves, the middleware writes whatever is still pending (a
streamed body, a request that used no session): an answer is never sent without its entry.

One entry per request, whatever the number of records: ids are kept as compact ranges
("1-40,52,60-99") under `details.read` and `details.changed` by kind. Outside a request (worker, CLI,
tests calling services) there is no collector: `record` and `changed` do nothing, `event` appends
its entry at once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.accounts.principal import Principal
from backend.audit import service as audit
from backend.audit.models import AuditEntry

log = logging.getLogger(__name__)

# The kinds of person-bearing records.
PERSON = "person"  # a child or guardian (registry.Person)
HOUSEHOLD = "household"
RISK_PERSON = "risk_person"  # 附件2
VISIT = "visit"
REFERRAL = "referral"
ASSIGNMENT = "assignment"  # a helper for a child
CASE = "case"  # a child's case (个案) with its history
SERVICE = "case_service"  # a service of a case (服务计划)
AGENCY_REFERRAL = "agency_referral"  # a referral between units (转介), with the fields it shares
POLICE_CASE = "police_case"  # a case the police filed (立案), with its links to cases, 附件2 and venues
CASE_REVIEW = "case_review"  # one-case-one-review (一案一倒查) with its findings and tasks
KINDS = (PERSON, HOUSEHOLD, RISK_PERSON, VISIT, REFERRAL, ASSIGNMENT, CASE, SERVICE, AGENCY_REFERRAL, POLICE_CASE,
         CASE_REVIEW)

READ_ACTION = "records.read"
CHANGE_ACTION = "records.change"


@dataclass
class Disclosure:
    """What one request has disclosed and changed and not yet written to the log."""

    scope: Scope | None = None
    actor: Principal | None = None
    read: dict[str, set[int]] = field(default_factory=dict)
    changed: dict[str, set[int]] = field(default_factory=dict)
    units: set[int] = field(default_factory=set)
    action: str | None = None
    object: tuple[str, Any] | None = None
    org_unit_id: int | None = None
    details: dict[str, Any] = field(default_factory=dict)
    named: bool = False
    entries: int = 0  # written so far

    @property
    def pending(self) -> bool:
        return bool(self.read or self.changed or self.named)

    @property
    def operation(self) -> str | None:
        """"METHOD /path/{template}" of the request, as openapi.json names the operation."""
        if self.scope is None:
            return None
        path = str(self.scope.get("path", ""))
        route = self.scope.get("route")
        template, regex = getattr(route, "path", None), getattr(route, "path_regex", None)
        if template is not None and regex is not None:
            # The route knows its path below the prefix it was included under; the prefix is what
            # the request path has before the part the route matches.
            for at in (i for i, ch in enumerate(path) if ch == "/"):
                if regex.match(path[at:]):
                    path = path[:at] + template
                    break
        return f"{self.scope.get('method')} {path}"

    def clear(self) -> None:
        self.read, self.changed, self.units = {}, {}, set()
        self.action = self.object = self.org_unit_id = None
        self.details, self.named = {}, False


_current: ContextVar[Disclosure | None] = ContextVar("hulei_disclosure", default=None)


def current() -> Disclosure | None:
    """The running request's collector (None outside a request)."""
    return _current.get()


def _add(section: str, kind: str, ids: Iterable[int | None], unit_id: int | None) -> None:
    d = _current.get()
    if d is None:
        return
    bucket = getattr(d, section).setdefault(kind, set())
    bucket.update(i for i in ids if i is not None)
    if not bucket:
        del getattr(d, section)[kind]
    elif unit_id is not None:
        d.units.add(unit_id)


def record(kind: str, ids: Iterable[int | None], *, unit_id: int | None = None) -> None:
    """Declare that the running request's answer carries these records (ids of `kind`). Cheap: a set
    update; the entry is written once, at the request's end. `unit_id` names their unit when known."""
    _add("read", kind, ids, unit_id)


def changed(kind: str, ids: Iterable[int | None], *, unit_id: int | None = None) -> None:
    """Declare that the running request created or changed these records."""
    _add("changed", kind, ids, unit_id)


def bind_actor(principal: Principal) -> None:
    """The signed-in caller of the running request (set once the token is checked)."""
    d = _current.get()
    if d is not None:
        d.actor = principal


def event(
    session: Session,
    action: str,
    *,
    actor: Principal | None = None,
    object_type: str | None = None,
    object_id: str | int | None = None,
    org_unit_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Name the running request's entry (the last name given wins; details add up); the request is
    audited even if it carried no records. Outside a request the entry is appended at once."""
    d = _current.get()
    if d is None:
        audit.record(session, actor=actor, action=action, object_type=object_type or "records",
                     object_id=object_id, org_unit_id=org_unit_id, details=details)
        return
    d.named, d.action = True, action
    if object_type is not None:
        d.object = (object_type, object_id)
    if org_unit_id is not None:
        d.org_unit_id = org_unit_id
    if actor is not None and d.actor is None:
        d.actor = actor
    d.details.update(details or {})


def compact(ids: Iterable[int]) -> str:
    """Sorted ids as ranges: [1, 2, 3, 7, 9, 10] -> "1-3,7,9-10"."""
    parts: list[str] = []
    ordered = sorted(set(ids))
    start = prev = None
    for i in [*ordered, None]:
        if prev is not None and i == prev + 1:
            prev = i
            continue
        if start is not None:
            parts.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = i
    return ",".join(parts)


def expand(text: str) -> set[int]:
    """The inverse of `compact`."""
    out: set[int] = set()
    for part in filter(None, text.split(",")):
        low, _, high = part.partition("-")
        out.update(range(int(low), int(high or low) + 1))
    return out


def named_records(entry: AuditEntry) -> set[tuple[str, int]]:
    """Every (kind, id) an entry names: its read and changed lists and its object."""
    named: set[tuple[str, int]] = set()
    for section in ("read", "changed"):
        listed = entry.details.get(section)
        for kind, ids in (listed.items() if isinstance(listed, dict) else ()):
            named |= {(str(kind), i) for i in expand(str(ids))}
    if entry.object_id is not None and entry.object_id.isdigit():
        named.add((entry.object_type, int(entry.object_id)))
    return named


def flush(session: Session) -> AuditEntry | None:
    """Append the running request's entry in `session`'s transaction (the caller commits it)."""
    d = _current.get()
    return _write(session, d) if d is not None and d.pending else None


def _write(session: Session, d: Disclosure) -> AuditEntry:
    for kind in list(d.read):
        d.read[kind] -= d.changed.get(kind, set())  # a record written and sent back counts as changed
        if not d.read[kind]:
            del d.read[kind]
    everything = [(kind, i) for section in (d.changed, d.read) for kind, ids in section.items() for i in ids]
    if d.object is not None:
        object_type, object_id = d.object
    elif len(everything) == 1:
        object_type, object_id = everything[0]
    else:
        object_type, object_id = "records", None
    unit = d.org_unit_id
    if unit is None:
        unit = next(iter(d.units)) if len(d.units) == 1 else (d.actor.org_unit_id if d.actor else None)
    details: dict[str, Any] = {**d.details, "operation": d.operation}
    if d.read:
        details["read"] = {kind: compact(ids) for kind, ids in sorted(d.read.items())}
    if d.changed:
        details["changed"] = {kind: compact(ids) for kind, ids in sorted(d.changed.items())}
    entry = audit.record(
        session,
        actor=d.actor,
        action=d.action or (CHANGE_ACTION if d.changed else READ_ACTION),
        object_type=object_type,
        object_id=object_id,
        org_unit_id=unit,
        details=details,
    )
    d.clear()
    d.entries += 1
    return entry


def _status(exc: BaseException) -> int | None:
    from starlette.exceptions import HTTPException

    from backend.core.errors import DomainError

    if isinstance(exc, DomainError):
        return exc.status
    if isinstance(exc, HTTPException):
        return exc.status_code
    return None


def after_failure(session: Session, exc: BaseException) -> None:
    """The request failed and its transaction was rolled back: nothing it changed was kept. A refusal
    (4xx) may still carry records (a stale edit's current copy) or be an audited act (an import whose
    rows were refused): those are written in a transaction of their own. Server faults carry none."""
    d = _current.get()
    if d is None or not d.pending:
        return
    d.changed = {}
    status = _status(exc)
    if status is None or status >= 500 or not (d.read or d.named):
        d.clear()
        return
    try:
        _write(session, d)
        session.commit()
    except BaseException:
        session.rollback()
        raise


def _write_alone(d: Disclosure) -> None:
    from backend.core.db import get_engine

    with Session(get_engine(), expire_on_commit=False) as session:
        _write(session, d)
        session.commit()


class DisclosureAudit:
    """ASGI middleware: a collector per request, and no answer leaves with records not yet audited."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        d = Disclosure(scope=scope)
        token = _current.set(d)

        async def send_audited(message: Message) -> None:
            # Normally the request's session wrote the entry before it committed; what is pending here
            # was disclosed after that (a streamed body) or without a session. Written before the bytes
            # go: if it cannot be, the error stops them (a 500 when nothing has been sent yet).
            if message["type"] in ("http.response.start", "http.response.body") and d.pending:
                await run_in_threadpool(_write_alone, d)
            await send(message)

        try:
            await self.app(scope, receive, send_audited)
        finally:
            _current.reset(token)
