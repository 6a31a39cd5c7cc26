"""附件1/2/3 as .xlsx: export (streamed, scoped, audited) and import (dry run, then all-or-nothing)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, UploadFile
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from backend.accounts.deps import CurrentPrincipal
from backend.core.db import SessionDep
from backend.core.errors import Locale
from backend.ledgers import importing, service
from backend.ledgers.sheets import Annex

router = APIRouter(prefix="/ledgers", tags=["ledgers"])

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@router.get("/{annex}.xlsx", response_class=FileResponse)
def export(annex: Annex, principal: CurrentPrincipal, session: SessionDep, masked: bool = False) -> FileResponse:
    """附件{annex} for your jurisdiction, with the printed headers in the printed order. ID numbers are
    full for roles that may reveal them unless masked=true (region only, for passing the file on)."""
    result = service.export(session, principal, annex, masked=masked)
    return FileResponse(
        result.path,
        media_type=XLSX,
        filename=result.filename,
        background=BackgroundTask(result.path.unlink, missing_ok=True),
    )


@router.post("/{annex}/import")
def import_ledger(
    annex: Annex,
    file: UploadFile,
    principal: CurrentPrincipal,
    session: SessionDep,
    locale: Locale,
    dry_run: bool = True,
    org_unit_id: int | None = None,
) -> dict[str, Any]:
    """Check (dry_run=true, the default) or import a filled-in ledger (.xlsx, .xls, .ods or .csv, every
    sheet) into a unit of yours; the dry run answers exactly what the import would do: created, matched,
    sealed (附件2, a minor) and skipped rows with their sheet, the changes, warnings and errors, each
    reason in the Accept-Language asked for (zh-CN unless en)."""
    report = importing.import_ledger(session, principal, annex, file.file, dry_run=dry_run, org_unit_id=org_unit_id,
                                     filename=file.filename or "")
    importing.raise_if_failed(report, locale)
    return report.as_dict(locale)
