"""Institution register endpoints (密切接触未成年人单位)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Query, Request, Response, UploadFile, status

from backend.accounts.deps import requires
from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.audit import service as audit
from backend.core.db import SessionDep
from backend.core.errors import InvalidInput, negotiate_locale
from backend.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, decode_cursor, encode_cursor
from backend.core.spreadsheet import capped_errors, read_upload
from backend.institutions import service, xlsx
from backend.institutions.models import InstitutionKind
from backend.institutions.schemas import (
    ImportErrorItem,
    InstitutionCreate,
    InstitutionImportReport,
    InstitutionPublic,
    InstitutionUpdate,
)

router = APIRouter(prefix="/institutions", tags=["institutions"])

Reader = Annotated[Principal, requires(Action.institution_read)]
Writer = Annotated[Principal, requires(Action.institution_write)]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_IMPORT_BYTES = 5 * 1024 * 1024


def import_problem(request: Request, errors: list[dict[str, object]]) -> InvalidInput:
    """The 422 of a refused import: every bad row (capped), in the caller's language."""
    english = negotiate_locale(request.headers.get("accept-language")) == "en"
    items = [ImportErrorItem(row=int(str(e["row"])), column=e["column"] if isinstance(e["column"], str) else None,
                             reason=str(e["reason_en"] if english else e["reason"])).model_dump() for e in errors]
    return InvalidInput("导入文件有误，未导入任何数据", "the file has errors; nothing was imported",
                        **capped_errors(items))


@router.get("", response_model=Page[InstitutionPublic])
def list_institutions(
    principal: Reader,
    session: SessionDep,
    unit_id: int | None = None,
    kind: InstitutionKind | None = None,
    q: Annotated[str | None, Query(max_length=60)] = None,
    is_active: bool | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Page[InstitutionPublic]:
    """Institutions of the caller's jurisdiction (or of a unit inside it), by id."""
    position = decode_cursor(cursor)
    rows = service.list_page(session, principal, after_id=int(position["id"]) if position else None, limit=limit + 1,
                             unit_id=unit_id, kind=kind, q=q, active=is_active)
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(items=[service.public(i) for i in rows],
                next_cursor=encode_cursor({"id": rows[-1].id}) if more and rows else None)


@router.post("", response_model=InstitutionPublic, status_code=status.HTTP_201_CREATED)
def create_institution(data: InstitutionCreate, principal: Writer, session: SessionDep) -> InstitutionPublic:
    """Register an institution in a unit of the caller's jurisdiction."""
    return service.public(service.create(session, principal, data))


@router.get("/export.xlsx", response_class=Response, responses={200: {"content": {XLSX: {}}}})
def export_institutions(principal: Reader, session: SessionDep, unit_id: int | None = None) -> Response:
    """The register of the caller's jurisdiction as .xlsx, in the import layout. Audited."""
    rows = list(session.execute(service.listing(session, principal, unit_id=unit_id)).scalars())
    audit.record(session, actor=principal, action="institution.export", object_type="institution",
                 org_unit_id=unit_id or principal.org_unit_id, details={"count": len(rows)})
    return Response(xlsx.export_institutions(session, rows), media_type=XLSX,
                    headers={"Content-Disposition": 'attachment; filename="institutions.xlsx"'})


@router.post("/import", response_model=InstitutionImportReport)
def import_institutions(request: Request, principal: Writer, session: SessionDep,
                        file: Annotated[UploadFile, File()], dry_run: bool = False) -> InstitutionImportReport:
    """Import the register (.xlsx, .xls, .ods or .csv). A row with 编号 changes that institution; without
    it, the institution of the same unit and name, else a new one. All or nothing: any bad row answers
    422 listing every bad row and nothing is written; `dry_run` answers the counts and writes nothing."""
    content = read_upload(file.file, MAX_IMPORT_BYTES)
    report = xlsx.import_institutions(session, principal, content, file.filename or "", dry_run=dry_run)
    if report.problems:
        raise import_problem(request, report.problems.errors)
    return InstitutionImportReport(dry_run=dry_run, created=report.created, updated=report.updated,
                                   unchanged=report.unchanged)


@router.get("/{institution_id}", response_model=InstitutionPublic)
def get_institution(institution_id: int, principal: Reader, session: SessionDep) -> InstitutionPublic:
    """One institution of the caller's jurisdiction."""
    return service.public(service.get_visible(session, principal, institution_id))


@router.patch("/{institution_id}", response_model=InstitutionPublic)
def update_institution(institution_id: int, data: InstitutionUpdate, principal: Writer,
                       session: SessionDep) -> InstitutionPublic:
    """Change an institution (fields left out keep their values)."""
    return service.public(service.update(session, principal, institution_id, data))
