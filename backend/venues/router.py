"""Venue ledger endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Query, Request, Response, UploadFile, status

from backend.accounts.deps import requires
from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.audit import service as audit
from backend.core.db import SessionDep
from backend.core.errors import InvalidInput, PayloadTooLarge, negotiate_locale
from backend.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, decode_cursor, encode_cursor
from backend.core.spreadsheet import capped_errors
from backend.venues import service, xlsx
from backend.venues.models import VenueStatus, VenueType
from backend.venues.schemas import (
    ImportErrorItem,
    ImportReportPublic,
    RiskPublic,
    VenueCreate,
    VenuePublic,
    VenueUpdate,
)

router = APIRouter(prefix="/venues", tags=["venues"])

Reader = Annotated[Principal, requires(Action.venue_read)]
Writer = Annotated[Principal, requires(Action.venue_write)]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_IMPORT_BYTES = 10 * 1024 * 1024


@router.get("", response_model=Page[VenuePublic])
def list_venues(
    principal: Reader,
    session: SessionDep,
    venue_type: VenueType | None = None,
    is_key: bool | None = None,
    venue_status: Annotated[VenueStatus | None, Query(alias="status")] = None,
    org_unit_id: int | None = None,
    q: Annotated[str | None, Query(max_length=60)] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Page[VenuePublic]:
    """Venues in the caller's jurisdiction, filtered, by id."""
    position = decode_cursor(cursor)
    rows = service.list_venues(session, principal, venue_type=venue_type, is_key=is_key, status=venue_status,
                               org_unit_id=org_unit_id, q=q, after_id=int(position["id"]) if position else None,
                               limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(items=[service.public(v) for v in rows],
                next_cursor=encode_cursor({"id": rows[-1].id}) if more and rows else None)


@router.post("", response_model=VenuePublic, status_code=status.HTTP_201_CREATED)
def create_venue(data: VenueCreate, principal: Writer, session: SessionDep) -> VenuePublic:
    """Register a venue (its grid is found from the point unless given)."""
    return service.public(service.create_venue(session, principal, data))


@router.get("/export.xlsx", response_class=Response, responses={200: {"content": {XLSX: {}}}})
def export_venues(principal: Reader, session: SessionDep, org_unit_id: int | None = None) -> Response:
    """The ledger of the caller's jurisdiction as .xlsx (same layout as import). Audited."""
    venues = service.list_venues(session, principal, org_unit_id=org_unit_id, limit=1_000_000)
    audit.record(session, actor=principal, action="venue.export", object_type="venue",
                 org_unit_id=org_unit_id or principal.org_unit_id, details={"count": len(venues)})
    return Response(xlsx.export_venues(session, venues), media_type=XLSX,
                    headers={"Content-Disposition": 'attachment; filename="venues.xlsx"'})


@router.post("/import", response_model=ImportReportPublic)
def import_venues(request: Request, principal: Writer, session: SessionDep,
                  file: Annotated[UploadFile, File()]) -> ImportReportPublic:
    """Import a venue ledger (.xlsx, .xls, .ods or .csv; its first sheet holding data); duplicates by
    credit code are merged. All or nothing: any bad row answers 422 listing every bad row, and nothing
    is written. A stored venue is changed only where a value differs from the stored one once both are
    trimmed and cleaned as an export writes them (`updated`); the others are counted `unchanged`, so an
    exported ledger imported unchanged changes nothing."""
    content = file.file.read(MAX_IMPORT_BYTES + 1)
    if len(content) > MAX_IMPORT_BYTES:
        raise PayloadTooLarge("导入文件不能超过10MB", "the import file may not exceed 10 MB")
    report = xlsx.import_venues(session, principal, content, file.filename or "")
    if not report.ok:
        english = negotiate_locale(request.headers.get("accept-language")) == "en"
        errors = [ImportErrorItem(row=e["row"], column=e["column"],
                                  reason=e["reason_en"] if english else e["reason"]).model_dump()
                  for e in report.errors]
        raise InvalidInput("导入文件有误，未导入任何数据", "the file has errors; nothing was imported",
                           **capped_errors(errors))
    audit.record(session, actor=principal, action="venue.import", object_type="venue",
                 org_unit_id=principal.org_unit_id,
                 details={"created": report.created, "updated": report.updated, "unchanged": report.unchanged,
                          "merged": report.merged_in_file})
    return ImportReportPublic(ok=True, created=report.created, updated=report.updated, unchanged=report.unchanged,
                              merged_in_file=report.merged_in_file, errors=[])


@router.get("/{venue_id}", response_model=VenuePublic)
def get_venue(venue_id: int, principal: Reader, session: SessionDep) -> VenuePublic:
    """One venue with its risk score and the parts of it."""
    venue = service.get_venue(session, principal, venue_id)
    assert venue.id is not None
    return service.public(venue, service.risk_scores(session, [venue])[venue.id])


@router.get("/{venue_id}/risk", response_model=RiskPublic)
def venue_risk(venue_id: int, principal: Reader, session: SessionDep) -> RiskPublic:
    """The venue's risk score: total, formula and each part."""
    venue = service.get_venue(session, principal, venue_id)
    assert venue.id is not None
    return service.risk_public(service.risk_scores(session, [venue])[venue.id])


@router.patch("/{venue_id}", response_model=VenuePublic)
def update_venue(venue_id: int, data: VenueUpdate, principal: Writer, session: SessionDep) -> VenuePublic:
    """Change a venue (not its credit code)."""
    return service.public(service.update_venue(session, principal, venue_id, data))
