"""Mandatory reports (强制报告) filed directly: anyone with the duty to report files one and follows
the status of its own reports. Police and coordinators handle them at /referrals."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from backend.accounts.deps import requires
from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.core.db import SessionDep
from backend.core.pagination import CURSOR_HELP, DEFAULT_LIMIT, MAX_LIMIT, Page, PageRequest
from backend.referrals import mandatory
from backend.referrals.schemas import MandatoryReportCreate, MandatoryReportData, MandatoryReportMine

router = APIRouter(prefix="/mandatory-reports", tags=["mandatory-reports"])

Reporter = Annotated[Principal, requires(Action.mandatory_report_file)]


@router.post("", response_model=MandatoryReportMine, status_code=status.HTTP_201_CREATED)
def file_report(body: MandatoryReportCreate, principal: Reporter, session: SessionDep,
                response: Response) -> MandatoryReportMine:
    """File a report to the police of the place's town (201); the same `client_uuid` and content again
    answers the stored report (200), other content 409 `mandatory-report-conflict`."""
    data = MandatoryReportData.model_validate(body.model_dump(exclude={"client_uuid"}))
    filed = mandatory.file_report(session, principal, data, client_uuid=body.client_uuid)
    if not filed.created:
        response.status_code = status.HTTP_200_OK
    return mandatory.mine_public(filed.referral)


@router.get("/mine", response_model=Page[MandatoryReportMine])
def list_mine(
    principal: Reporter,
    session: SessionDep,
    cursor: str | None = Query(None, max_length=512, description=CURSOR_HELP),
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Page size"),
) -> Page[MandatoryReportMine]:
    """Your own reports (filed here or opened by your visits), newest first, one page at a time."""
    return mandatory.list_mine(session, principal, PageRequest(paged=True, limit=limit, cursor=cursor))


@router.get("/{report_id}", response_model=MandatoryReportMine)
def get_mine(report_id: int, principal: Reporter, session: SessionDep) -> MandatoryReportMine:
    """One of your own reports: its status and times (never the case nor the outcome note)."""
    return mandatory.mine_public(mandatory.get_mine(session, principal, report_id))
