"""Staff background check endpoints (从业查询). staff.read/manage/check are hidden actions: a role
without them gets 404, as does anyone outside the member's scope (backend/accounts/scope.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Query, Request, Response, UploadFile, status

from backend.accounts.deps import requires
from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.core.db import SessionDep
from backend.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, decode_cursor, encode_cursor
from backend.core.spreadsheet import read_upload
from backend.institutions.router import import_problem
from backend.staff_checks import service, xlsx
from backend.staff_checks.models import StaffStatus
from backend.staff_checks.schemas import (
    CheckCreate,
    CheckPublic,
    RevealedId,
    RevealRequest,
    StaffCreate,
    StaffDetail,
    StaffImportReport,
    StaffOverview,
    StaffPublic,
    StaffUpdate,
    UncheckedInstitution,
)

router = APIRouter(tags=["staff-checks"])

Reader = Annotated[Principal, requires(Action.staff_read)]
Manager = Annotated[Principal, requires(Action.staff_manage)]
Checker = Annotated[Principal, requires(Action.staff_check)]
Overview = Annotated[Principal, requires(Action.staff_overview)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_IMPORT_BYTES = 5 * 1024 * 1024


def _after(cursor: str | None, key: str = "id") -> int | None:
    position = decode_cursor(cursor)
    return int(position[key]) if position else None


@router.get("/institutions/{institution_id}/staff", response_model=Page[StaffPublic])
def list_staff(institution_id: int, principal: Reader, session: SessionDep, staff_status: Annotated[
        StaffStatus | None, Query(alias="status")] = None, cursor: str | None = None,
               limit: Limit = DEFAULT_LIMIT) -> Page[StaffPublic]:
    """An institution's staff list (ID numbers masked). Audited."""
    rows = service.staff_of(session, principal, institution_id, status=staff_status, after_id=_after(cursor),
                            limit=limit + 1)
    more, rows = len(rows) > limit, rows[:limit]
    service.disclosed(session, principal, rows, institution_id=institution_id)
    return Page(items=[service.public(m) for m in rows],
                next_cursor=encode_cursor({"id": rows[-1].id}) if more and rows else None)


@router.post("/institutions/{institution_id}/staff", response_model=StaffPublic, status_code=status.HTTP_201_CREATED)
def create_staff(institution_id: int, data: StaffCreate, principal: Manager, session: SessionDep) -> StaffPublic:
    """Add a member (a candidate before hiring, or staff already employed). The typed ID number counts
    against the caller's daily allowance (`staff_typed_numbers_per_day`; also when answered 409): over
    it, 429 `staff-typed-numbers-capped` with Retry-After to Beijing midnight. Audited."""
    return service.public(service.create(session, principal, institution_id, data))


@router.get("/institutions/{institution_id}/staff/export.xlsx", response_class=Response,
            responses={200: {"content": {XLSX: {}}}})
def export_staff(institution_id: int, principal: Reader, session: SessionDep) -> Response:
    """The staff list as .xlsx in the import layout, ID numbers masked. Audited."""
    rows = service.staff_of(session, principal, institution_id, limit=1_000_000)
    service.disclosed(session, principal, rows, action="staff.export", institution_id=institution_id,
                      count=len(rows))
    return Response(xlsx.export_staff(rows), media_type=XLSX,
                    headers={"Content-Disposition": 'attachment; filename="staff.xlsx"'})


@router.post("/institutions/{institution_id}/staff/import", response_model=StaffImportReport)
def import_staff(institution_id: int, request: Request, principal: Manager, session: SessionDep,
                 file: Annotated[UploadFile, File()], dry_run: bool = False) -> StaffImportReport:
    """Import a staff list (.xlsx, .xls, .ods or .csv): all or nothing, every bad row answered (422);
    `dry_run` writes nothing and answers only the valid rows (`rows`), never how many would be created
    or changed. A real import takes every row's typed ID number from the caller's daily allowance at
    once: over it, 429 `staff-typed-numbers-capped` (`limit`, `remaining`, Retry-After to Beijing
    midnight) and nothing written; a dry run or a refused import takes none. Audited, refused imports too."""
    content = read_upload(file.file, MAX_IMPORT_BYTES)
    report = xlsx.import_staff(session, principal, institution_id, content, file.filename or "", dry_run=dry_run)
    if report.problems:
        raise import_problem(request, report.problems.errors)
    return StaffImportReport(dry_run=dry_run, rows=report.rows, created=report.created, updated=report.updated,
                             unchanged=report.unchanged)


@router.get("/staff/{member_id}", response_model=StaffDetail)
def get_staff(member_id: int, principal: Reader, session: SessionDep) -> StaffDetail:
    """A member with every check of it. Audited."""
    member = service.get_member(session, principal, member_id)
    service.disclosed(session, principal, [member], fields=[*service.SHOWN, "checks"])
    return service.detail(session, member)


@router.patch("/staff/{member_id}", response_model=StaffPublic)
def update_staff(member_id: int, data: StaffUpdate, principal: Manager, session: SessionDep) -> StaffPublic:
    """Change a member's name, position, hire date or status. Audited."""
    return service.public(service.update(session, principal, member_id, data))


@router.post("/staff/{member_id}/checks", response_model=CheckPublic, status_code=status.HTTP_201_CREATED)
def record_check(member_id: int, data: CheckCreate, principal: Checker, session: SessionDep) -> CheckPublic:
    """Record a background check's result (police). Audited."""
    return service.check_public(service.record_check(session, principal, member_id, data))


@router.post("/staff/{member_id}/reveal-id", response_model=RevealedId)
def reveal_id(member_id: int, data: RevealRequest, principal: Checker, session: SessionDep) -> RevealedId:
    """The member's full ID number, for the police to run the check; with a reason, audited."""
    return RevealedId(id_number=service.reveal_id(session, principal, member_id, data.reason))


@router.get("/staff-checks/overview", response_model=StaffOverview)
def staff_overview(principal: Overview, session: SessionDep, unit_id: int | None = None) -> StaffOverview:
    """Per child unit: institutions, those without a staff list or not all checked, members never checked
    and due. Counts only: never a name or a result."""
    return service.overview(session, principal, unit_id)


@router.get("/staff-checks/unchecked", response_model=Page[UncheckedInstitution])
def unchecked_institutions(principal: Overview, session: SessionDep, unit_id: int | None = None,
                           cursor: str | None = None, limit: Limit = DEFAULT_LIMIT) -> Page[UncheckedInstitution]:
    """The active institutions under a unit whose staff were never (or not all) checked, or that have no
    staff list: counts per institution, never a name of a person."""
    rows = service.unchecked(session, principal, unit_id, after_id=_after(cursor), limit=limit + 1)
    more, rows = len(rows) > limit, rows[:limit]
    return Page(items=rows, next_cursor=encode_cursor({"id": rows[-1].institution_id}) if more and rows else None)


@router.get("/staff-checks/due", response_model=Page[StaffPublic])
def due_checks(principal: Reader, session: SessionDep, unit_id: int | None = None, cursor: str | None = None,
               limit: Limit = DEFAULT_LIMIT) -> Page[StaffPublic]:
    """Members the caller sees whose periodic check is due or overdue, and flagged members still to be
    refused or dismissed (`due_reason`). Audited."""
    rows = service.due_members(session, principal, unit_id, after_id=_after(cursor), limit=limit + 1)
    more, rows = len(rows) > limit, rows[:limit]
    service.disclosed(session, principal, rows, action="staff.due")
    return Page(items=[service.public(m) for m in rows],
                next_cursor=encode_cursor({"id": rows[-1].id}) if more and rows else None)
