"""API shapes of staff members and their background checks (从业查询)."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field

from backend.staff_checks.models import CheckKind, CheckResult, StaffStatus


class StaffCreate(BaseModel):
    name: str = Field(min_length=1, max_length=60)
    id_number: str = Field(min_length=1, max_length=40, description="18-character resident ID number, checked; "
                           "stored encrypted, answered masked (region only)")
    position: str = Field(default="", max_length=60)
    hire_date: date | None = None
    status: StaffStatus = Field(default=StaffStatus.candidate, description="candidate (before hiring) or employed "
                                "(staff already at work when the list is registered)")


class StaffUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=60)
    position: str | None = Field(default=None, max_length=60)
    hire_date: date | None = None
    status: StaffStatus | None = Field(default=None, description="candidate -> employed (needs a clear pre-hire "
                                       "check) | not_hired; employed -> dismissed | left. A member whose check "
                                       "found a record can only become not_hired or dismissed")


class CheckCreate(BaseModel):
    check_date: date = Field(description="The day of the check (China date); not in the future")
    kind: CheckKind
    result: CheckResult
    note: str = Field(default="", max_length=500)


class CheckPublic(BaseModel):
    id: int
    member_id: int
    check_date: date
    kind: CheckKind
    result: CheckResult
    checked_by_user_id: int
    note: str
    created_at: datetime


class StaffPublic(BaseModel):
    id: int
    institution_id: int
    name: str
    id_number_masked: str
    position: str
    hire_date: date | None
    status: StaffStatus
    status_zh: str
    flagged: bool = Field(description="A check found a record and the member is not yet dismissed or refused")
    last_check_date: date | None
    next_check_due: date | None = Field(description="When the periodic check falls due (employed members only)")
    due: bool = Field(description="The periodic check is due or overdue today (China date)")
    due_reason: str | None = Field(default=None, description="Why the member is on the due list: "
                                   "pending_dismissal (a check found a record and it is not yet refused or "
                                   "dismissed), periodic (its periodic check is due); null otherwise")


class StaffDetail(StaffPublic):
    checks: list[CheckPublic]


class RevealRequest(BaseModel):
    reason: str = Field(min_length=2, max_length=500)


class RevealedId(BaseModel):
    id_number: str


class UnitStaffCounts(BaseModel):
    unit_id: int
    unit_name: str
    institutions: int
    institutions_without_staff_list: int = Field(description="Institutions with no staff registered")
    institutions_not_all_checked: int = Field(description="Institutions with a current member never checked")
    members: int = Field(description="Candidates and employed members")
    members_never_checked: int
    members_due: int = Field(description="Employed members whose periodic check is due or overdue")
    members_pending_dismissal: int | None = Field(default=None, description="Members a check found a record for, "
                                                  "not yet refused or dismissed, among those the caller may read; "
                                                  "null for roles that may not read check results")


class StaffOverview(BaseModel):
    unit_id: int
    interval_days: int
    total: UnitStaffCounts
    units: list[UnitStaffCounts]


class UncheckedInstitution(BaseModel):
    institution_id: int
    name: str
    kind: str
    org_unit_id: int
    members: int
    members_never_checked: int


class StaffImportReport(BaseModel):
    dry_run: bool
    rows: int = Field(default=0, description="Valid rows of the file")
    created: int = Field(description="0 in a dry run: a dry run never tells whether a number is already listed")
    updated: int = Field(description="0 in a dry run")
    unchanged: int = Field(description="0 in a dry run")
