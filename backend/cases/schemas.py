"""Case shapes for the API (times in Asia/Shanghai). A case carries the child's id, never a name."""

from __future__ import annotations

from pydantic import BaseModel, Field

from backend.incidents.schemas import LocalTime, LocalTimeOrNone


class CaseOpen(BaseModel):
    child_id: int
    reason: str = Field(min_length=1, max_length=2000, description="why the case is opened (kept in its history)")


class CaseNote(BaseModel):
    note: str | None = Field(default=None, max_length=2000)


class CaseRejection(BaseModel):
    note: str = Field(min_length=1, max_length=2000, description="why the closure is turned down")


class CaseClosure(BaseModel):
    reason: str = Field(max_length=20, description="risk_lowered | turned_18 | moved_away | transferred | other")
    note: str | None = Field(default=None, max_length=2000, description="required when the reason is other")


class CaseReopen(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class ClosurePending(BaseModel):
    """A closure proposed and waiting for a coordinator."""

    reason: str
    note: str | None
    proposed_by: int | None
    proposed_at: LocalTime


class CasePublic(BaseModel):
    id: int
    child_id: int
    org_unit_id: int
    status: str = Field(description="open | active | closed")
    opened_from: str = Field(description="referral | visit_risk | mandatory_report | by_hand")
    source_id: int | None
    referred: bool = Field(description="a referral (强制报告) opened or joined the case: police see it")
    opened_at: LocalTime
    opened_by: int | None
    activated_at: LocalTimeOrNone
    closure_pending: ClosurePending | None
    closed_at: LocalTimeOrNone
    closed_by: int | None
    close_reason: str | None
    close_note: str | None
    updated_at: LocalTime
    allowed: list[str] = Field(description="the transitions the case's state allows now")


class CaseEventPublic(BaseModel):
    id: int
    action: str = Field(description="open | source | activate | propose_closure | reject_closure | close | reopen")
    from_status: str | None
    to_status: str
    actor_user_id: int | None
    at: LocalTime
    reason: str | None
    note: str | None
    source: str | None
    source_id: int | None


class CaseHelp(BaseModel):
    """A helper assignment that belongs to the case."""

    assignment_id: int
    helper_id: int
    status: str
    end_reason: str | None


class CaseDetail(CasePublic):
    history: list[CaseEventPublic]
    assignments: list[CaseHelp]
