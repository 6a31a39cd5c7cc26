"""The "inspection" push kind: inspections recorded offline arrive through the same sync push
endpoint as visits and are stored by the same service function as POST /inspections."""

from __future__ import annotations

from sqlmodel import Session

from backend.accounts.principal import Principal
from backend.inspections import service
from backend.inspections.schemas import InspectionData, InspectionSubmit
from backend.sync.itemwise import in_savepoint, parse_data
from backend.sync.kinds import ItemResult, ItemStatus, PushItem, register_kind

KIND = "inspection"


def handle_inspections(session: Session, principal: Principal, items: list[PushItem], locale: str
                       ) -> list[ItemResult]:
    """One result per pushed inspection: created, duplicate (same UUID and body), conflict or rejected."""
    results: list[ItemResult] = []
    for item in items:
        parsed = parse_data(InspectionSubmit, {**item.data, "client_uuid": str(item.client_uuid)}, locale)
        if isinstance(parsed, ItemResult):
            results.append(parsed)
            continue
        payload = parsed

        def work(payload: InspectionSubmit = payload) -> ItemResult:
            try:
                result = service.record_inspection(session, principal, payload)
            except service.InspectionConflict as exc:
                return ItemResult(ItemStatus.conflict, problem=exc.to_problem(locale))
            record = service.inspection_public(session, result.inspection, replayed=not result.created)
            status = ItemStatus.created if result.created else ItemStatus.duplicate
            return ItemResult(status, record=record.model_dump(mode="json"))

        results.append(in_savepoint(session, locale, work))
    return results


register_kind(KIND, handle_inspections, order=200, data_model=InspectionData)
