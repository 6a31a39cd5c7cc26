"""The API shapes of awareness surveys (知晓率调查)."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from backend.awareness import scoring

Ident = Annotated[str, StringConstraints(min_length=1, max_length=scoring.ID_MAX)]


class OptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: Ident
    text_zh: str = Field(min_length=1, max_length=scoring.TEXT_MAX)
    text_en: str | None = Field(default=None, min_length=1, max_length=scoring.TEXT_MAX)


class QuestionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: Ident
    text_zh: str = Field(min_length=1, max_length=scoring.TEXT_MAX)
    text_en: str | None = Field(default=None, min_length=1, max_length=scoring.TEXT_MAX)
    multiple: bool = False
    options: list[OptionIn] = Field(min_length=2, max_length=scoring.MAX_OPTIONS)
    correct: list[Ident] = Field(min_length=1, max_length=scoring.MAX_OPTIONS)


class QuestionnaireCreate(BaseModel):
    """The next version for the caller's county (or higher unit)."""

    model_config = ConfigDict(extra="forbid")
    title_zh: str = Field(min_length=1, max_length=120)
    title_en: str = Field(min_length=1, max_length=120)
    pass_mark: int = Field(ge=1, le=scoring.MAX_QUESTIONS, description="Questions right needed to count as knowing")
    questions: list[QuestionIn] = Field(min_length=1, max_length=scoring.MAX_QUESTIONS)


class Option(BaseModel):
    id: str
    text_zh: str
    text_en: str


class PublicQuestion(BaseModel):
    id: str
    text_zh: str
    text_en: str
    multiple: bool
    options: list[Option]


class Question(PublicQuestion):
    correct: list[str]


class QuestionnairePublic(BaseModel):
    id: int
    version: int
    org_unit_id: int | None = Field(description="The publishing unit; null for the national version")
    national: bool
    title_zh: str
    title_en: str
    pass_mark: int
    questions: list[Question]
    published_at: str


class RoundCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    institution_id: int = Field(ge=1, le=2**31 - 1)
    days: int = Field(default=14, ge=1, le=60, description="How long answering stays open")
    questionnaire_id: int | None = Field(
        default=None, ge=1, le=2**31 - 1,
        description="The version in force for the school (the latest of the nearest unit above it that published "
        "one), which is also the default; any other is 422 awareness-questionnaire-not-in-force",
    )


class RoundPublic(BaseModel):
    id: int
    institution_id: int
    school_name: str | None
    org_unit_id: int
    questionnaire_id: int
    questionnaire_version: int | None
    opened_at: str
    closes_at: str
    closed_at: str | None
    state: Literal["open", "closed"]
    students: int = Field(description="The school's enrolment when the round opened: participation is read against it")
    response_cap: int
    responses: int
    knowing: int
    rate: float | None


class RoundOpened(RoundPublic):
    code: str = Field(description="The answering code, shown this once (only its digest is stored)")
    answer_path: str = Field(description="Where respondents' devices fetch and post the questionnaire")


class AnswerForm(BaseModel):
    school_name: str
    closes_at: str
    title_zh: str
    title_en: str
    questions: list[PublicQuestion]


Answers = Annotated[
    dict[Ident, Annotated[list[Ident], Field(max_length=scoring.MAX_OPTIONS)]], Field(max_length=scoring.MAX_QUESTIONS)
]


class AnswerSheet(BaseModel):
    """One respondent's answers. Nothing else: no name, class, age or device (extra fields refused)."""

    model_config = ConfigDict(extra="forbid")
    response_uuid: UUID = Field(description="Made by the answering device per sheet; a resend reuses it")
    answers: Answers = Field(description="question id -> chosen option ids")


class AnswerReceipt(BaseModel):
    response_uuid: UUID
    duplicate: bool = Field(description="True when this sheet was already stored (a resend)")


class Tally(BaseModel):
    schools: int
    schools_surveyed: int
    schools_without_survey: int
    students: int
    responses: int
    knowing: int
    rate: float | None = Field(description="knowing / responses; null while nobody answered")
    participation: float | None = Field(description="responses / students")
    target: float
    meets_target: bool = Field(description="rate >= target, every school surveyed, and at least "
                               "min_participation of the students answered")
    min_participation: float = Field(description="the share of enrolled students who must answer for the "
                                     "target to count as met (0.8)")


class UnitRate(Tally):
    unit_id: int
    name: str
    level: str
    own_level: bool = Field(description="The schools directly in the asked unit (not in a child unit)")


class SchoolRate(BaseModel):
    institution_id: int
    name: str
    kind: str
    org_unit_id: int
    unit_id: int
    round_id: int | None
    students: int
    responses: int
    knowing: int
    rate: float | None
    participation: float | None


class SchoolWithoutSurvey(BaseModel):
    institution_id: int
    name: str
    kind: str
    org_unit_id: int
    unit_id: int


class AwarenessRates(BaseModel):
    unit_id: int
    period: str
    date_from: str
    date_to: str
    target: float
    totals: Tally
    units: list[UnitRate]
    schools: list[SchoolRate]
    schools_without_survey: list[SchoolWithoutSurvey]
