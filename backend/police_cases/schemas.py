"""Police case register, weekly report and case review shapes for the API (times in Asia/Shanghai).
Nothing here carries a name: victims are a count, people and places are ids."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from backend.incidents.schemas import LocalTime, LocalTimeOrNone
from backend.police_cases.models import OffenceCategory, PoliceCaseStatus, ReviewSubject

WEEK_PATTERN = r"^\d{4}-W\d{2}$"


class CategoryPublic(BaseModel):
    code: str
    label_zh: str
    label_en: str


class PoliceCaseCreate(BaseModel):
    unit_id: int | None = Field(default=None, description="the station's town; default: the caller's own unit")
    case_number: str = Field(min_length=1, max_length=40, description="the police's own number, unique per station")
    filed_date: date | None = Field(default=None, description="China date; default today (China); not in the future")
    category: OffenceCategory
    summary: str | None = Field(default=None, max_length=500, description="short, no names needed")
    victims: int = Field(default=1, ge=0, le=1000)
    referral_id: int | None = Field(default=None, description="the mandatory report (强制报告) that led to it")
    child_case_ids: list[int] = Field(default_factory=list, max_length=50)
    risk_person_ids: list[int] = Field(default_factory=list, max_length=50, description="附件2 suspects")
    venue_ids: list[int] = Field(default_factory=list, max_length=50)


class PoliceCaseUpdate(BaseModel):
    """Fields left out are kept; a list given replaces the links of its kind. A field that cannot be
    edited (the station, the status: `POST .../status`) is refused by name, not silently ignored."""

    model_config = ConfigDict(extra="forbid")

    case_number: str | None = Field(default=None, min_length=1, max_length=40)
    filed_date: date | None = None
    category: OffenceCategory | None = None
    summary: str | None = Field(default=None, max_length=500)
    victims: int | None = Field(default=None, ge=0, le=1000)
    referral_id: int | None = None
    child_case_ids: list[int] | None = Field(default=None, max_length=50)
    risk_person_ids: list[int] | None = Field(default=None, max_length=50)
    venue_ids: list[int] | None = Field(default=None, max_length=50)


class PoliceCaseTransition(BaseModel):
    to: PoliceCaseStatus
    reason: str | None = Field(default=None, max_length=20,
                               description="closing: judged | not_prosecuted | withdrawn | merged | other")
    note: str | None = Field(default=None, max_length=1000, description="required when the reason is other")


class PoliceCasePublic(BaseModel):
    id: int
    station_unit_id: int
    case_number: str
    filed_date: date
    category: str
    category_zh: str
    category_en: str
    status: str = Field(description="filed | investigating | transferred_for_prosecution | closed")
    status_zh: str
    summary: str | None = Field(description="police only; null for coordinators (summary_withheld)")
    summary_withheld: bool
    victims: int
    referral_id: int | None = Field(description="null also when the caller may not see the referral")
    child_case_ids: list[int] = Field(description="the linked cases the caller may see")
    risk_person_ids: list[int] = Field(description="the linked 附件2 entries the caller may see")
    venue_ids: list[int] = Field(description="the linked venues the caller may see")
    close_reason: str | None
    close_note: str | None
    closed_at: LocalTimeOrNone
    created_by: int | None
    created_at: LocalTime
    updated_at: LocalTime
    allowed: list[str] = Field(description="the statuses the case may move to now")


class PoliceCaseEventPublic(BaseModel):
    id: int
    action: str = Field(description="register | edit | status")
    from_status: str | None
    to_status: str
    reason: str | None
    note: str | None
    fields: list[str]
    actor_user_id: int | None
    at: LocalTime


class PoliceCaseDetail(PoliceCasePublic):
    history: list[PoliceCaseEventPublic]
    review_ids: list[int]


# ---------------------------------------------------------------- the weekly new-case report


class CategoryFigure(BaseModel):
    code: str
    label_zh: str
    label_en: str
    cases: int
    victims: int


class WeeklyRow(BaseModel):
    id: int
    case_number: str
    filed_date: date
    category: str
    status: str
    victims: int
    links: int


class WeeklyLinks(BaseModel):
    child_cases: int
    risk_persons: int
    venues: int
    referrals: int


class WeeklyFigures(BaseModel):
    unit_id: int
    week: str
    start_date: date
    end_date: date
    due_at: LocalTime
    cases: int
    victims: int
    by_category: list[CategoryFigure]
    links: WeeklyLinks
    rows: list[WeeklyRow]


class WeeklySubmit(BaseModel):
    unit_id: int | None = Field(default=None, description="the station's town; default: the caller's own unit")


class WeeklySubmissionPublic(BaseModel):
    id: int
    unit_id: int
    week: str
    status: str = Field(description="submitted (approve / return come later)")
    submitted_at: LocalTime
    submitted_by: int | None
    on_time: bool
    due_at: LocalTime
    figures: WeeklyFigures = Field(description="frozen at submission")
    history: list[int] = Field(description="ids of the earlier submissions of the same week, oldest first")


class WeeklyState(BaseModel):
    unit_id: int
    unit_code: str
    unit_name: str
    week: str
    due_at: LocalTime
    state: str = Field(description="submitted | late (submitted after the due time) | missing (due passed, none) | "
                                   "pending (not yet due, none)")
    status: str | None = Field(description="the current submission's status")
    submission_id: int | None = Field(description="the current (latest) submission")
    first_submitted_at: LocalTimeOrNone
    submitted_at: LocalTimeOrNone
    submissions: int


# ---------------------------------------------------------------- one-case-one-review


class SubjectIn(BaseModel):
    subject: ReviewSubject
    venue_id: int | None = Field(default=None, description="subject venue")
    org_unit_id: int | None = Field(default=None, description="subject unit: the unit ...")
    agency: str | None = Field(default=None, max_length=32, description="... and its agency (school: education)")


class ReviewFindingIn(SubjectIn):
    finding: str = Field(min_length=1, max_length=2000)


class TaskIn(SubjectIn):
    description: str = Field(min_length=1, max_length=1000)
    measure: str | None = Field(default=None, max_length=1000, description="venue tasks: the rectification measure "
                                                                         "(default: the description)")
    responsible_party: str | None = Field(default=None, max_length=120, description="venue tasks")
    deadline_date: date


class ReviewCreate(BaseModel):
    police_case_id: int | None = Field(default=None, description="exactly one of police_case_id, child_case_id")
    child_case_id: int | None = None
    analysis: str = Field(default="", max_length=4000, description="剖析: the causes")
    findings: list[ReviewFindingIn] = Field(default_factory=list, max_length=50)
    tasks: list[TaskIn] = Field(default_factory=list, max_length=50)


class ReviewUpdate(BaseModel):
    analysis: str = Field(max_length=4000)


class TaskDone(BaseModel):
    note: str = Field(min_length=1, max_length=1000)


class FindingPublic(BaseModel):
    id: int
    subject: str
    venue_id: int | None
    org_unit_id: int | None
    agency: str | None
    finding: str
    created_at: LocalTime


class TaskPublic(BaseModel):
    id: int
    subject: str
    venue_id: int | None
    problem_id: int | None = Field(description="venue tasks: the problem of the problem loop (GET /problems/{id})")
    problem_status: str | None
    org_unit_id: int | None
    agency: str | None
    description: str
    deadline_date: date
    status: str = Field(description="open | done (a venue task is done when its problem is verified)")
    overdue: bool
    done_note: str | None
    done_at: LocalTimeOrNone
    done_by: int | None


class ReviewPublic(BaseModel):
    id: int
    police_case_id: int | None
    child_case_id: int | None
    org_unit_id: int
    analysis: str
    findings: list[FindingPublic]
    tasks: list[TaskPublic]
    created_by: int | None
    created_at: LocalTime
    updated_at: LocalTime
