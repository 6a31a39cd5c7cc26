"""The "mandatory_report" push kind: a report filed offline arrives through the sync push and is
stored by the same service function as POST /mandatory-reports (backend/referrals/mandatory.py), with
the same exactly-once answers: created, duplicate (the stored report), conflict, rejected."""

from __future__ import annotations

from sqlmodel import Session

from backend.accounts.principal import Principal
from backend.referrals import mandatory
from backend.referrals.schemas import MandatoryReportData
from backend.sync.itemwise import in_savepoint, parse_data
from backend.sync.kinds import ItemResult, ItemStatus, PushItem, register_kind

KIND = "mandatory_report"


def handle_reports(session: Session, principal: Principal, items: list[PushItem], locale: str) -> list[ItemResult]:
    """One result per pushed report, each in its own savepoint (one bad item never fails the others)."""
    results: list[ItemResult] = []
    for item in items:
        parsed = parse_data(MandatoryReportData, item.data, locale)
        if isinstance(parsed, ItemResult):
            results.append(parsed)
            continue

        def work(data: MandatoryReportData = parsed, item: PushItem = item) -> ItemResult:
            try:
                filed = mandatory.file_report(session, principal, data, client_uuid=item.client_uuid, named=False)
            except mandatory.MandatoryReportConflict as exc:
                stored = mandatory.mine_public(exc.stored).model_dump(mode="json") if exc.stored else None
                return ItemResult(ItemStatus.conflict, record=stored, problem=exc.to_problem(locale))
            status = ItemStatus.created if filed.created else ItemStatus.duplicate
            return ItemResult(status, record=mandatory.mine_public(filed.referral).model_dump(mode="json"))

        results.append(in_savepoint(session, locale, work))
    return results


# After the registry kinds: a report may name a child pushed in the same batch (by `child_uuid`).
register_kind(KIND, handle_reports, order=50, data_model=MandatoryReportData)
