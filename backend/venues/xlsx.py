"""The venue ledger as .xlsx: export, and import where rows with the same credit code are merged
(within the file and with stored venues) instead of doubled. Import is all or nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts.principal import Principal
from backend.core import clock, identifiers, workbook
from backend.core.geo import CoordinateSystem, point, to_wgs84
from backend.core.spreadsheet import ImportFileUnreadable, read_sheet
from backend.orgunits import service as orgunits
from backend.orgunits.models import OrgLevel, OrgUnit
from backend.venues import credit_code
from backend.venues.models import VENUE_TYPE_ZH, Venue, VenueStatus, VenueType
from backend.venues.service import lon_lat

# (field, Chinese header); English field names are accepted as headers too.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("venue_type", "场所类型"),
    ("name", "场所名称"),
    ("credit_code", "统一社会信用代码"),
    ("address", "地址"),
    ("lon", "经度"),
    ("lat", "纬度"),
    ("crs", "坐标系"),
    ("owner_name", "负责人"),
    ("owner_phone", "联系电话"),
    ("is_key", "重点场所"),
    ("status", "状态"),
    ("org_unit_code", "所属单位编码"),
)
_HEADER_TO_FIELD = {zh: f for f, zh in COLUMNS} | {f: f for f, _ in COLUMNS}
_TYPE_ALIASES: dict[str, VenueType] = {zh: t for t, zh in VENUE_TYPE_ZH.items()} | {
    "旅馆": VenueType.hotel, "酒店": VenueType.hotel, "宾馆": VenueType.hotel, "民宿": VenueType.hotel,
    "ktv": VenueType.ktv, "网咖": VenueType.internet_cafe, "培训机构": VenueType.training,
    "校园周边商店": VenueType.school_shop, "商店": VenueType.school_shop,
} | {t.value: t for t in VenueType}
_STATUS_ALIASES = {s.zh: s for s in VenueStatus} | {s.value: s for s in VenueStatus} | {
    "停业": VenueStatus.suspended, "关闭": VenueStatus.closed, "注销": VenueStatus.closed}
_TRUE = {"是", "y", "yes", "true", "1", "重点"}
_FALSE = {"否", "n", "no", "false", "0", ""}
MAX_ROWS = 20000


@dataclass
class VenueRow:
    row: int
    values: dict[str, Any]


@dataclass
class VenueImportReport:
    created: int = 0
    updated: int = 0
    merged_in_file: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _parse(row: int, raw: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    out: dict[str, Any] = {}
    code = credit_code.normalise(_text(raw.get("credit_code")))
    if not code:
        return None, "统一社会信用代码为空 / credit code is empty"
    reason = credit_code.problem(code)
    if reason:
        return None, f"统一社会信用代码无效 / invalid credit code {code}: {reason}"
    out["credit_code"] = code
    for name in ("name", "address", "owner_name", "owner_phone", "org_unit_code"):
        text = _text(raw.get(name))
        if text:
            out[name] = text
    if "owner_phone" in out:
        try:
            out["owner_phone"] = identifiers.contact(out["owner_phone"])
        except ValueError as exc:
            return None, f"联系电话只能使用数字0-9 / owner phone: {exc}"
    if "name" in out and len(out["name"]) > 120:
        return None, "场所名称过长 / name longer than 120"
    vtype = _text(raw.get("venue_type"))
    if vtype:
        parsed = _TYPE_ALIASES.get(vtype) or _TYPE_ALIASES.get(vtype.lower())
        if parsed is None:
            return None, f"场所类型无法识别 / unknown venue type '{vtype}'"
        out["venue_type"] = parsed
    status = _text(raw.get("status"))
    if status:
        st = _STATUS_ALIASES.get(status) or _STATUS_ALIASES.get(status.lower())
        if st is None:
            return None, f"状态无法识别 / unknown status '{status}'"
        out["status"] = st
    key = _text(raw.get("is_key")).lower()
    if key in _TRUE:
        out["is_key"] = True
    elif key and key not in _FALSE:
        return None, f"重点场所应为是/否 / is_key must be yes or no, not '{key}'"
    elif key:
        out["is_key"] = False
    lon_raw, lat_raw = raw.get("lon"), raw.get("lat")
    if _text(lon_raw) or _text(lat_raw):
        try:
            lon, lat = float(_text(lon_raw)), float(_text(lat_raw))
        except ValueError:
            return None, "经纬度不是数字 / lon and lat must be numbers"
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            return None, "经纬度超出范围 / lon or lat out of range"
        crs_text = _text(raw.get("crs")).lower() or "wgs84"
        try:
            crs = CoordinateSystem(crs_text.replace("-", ""))
        except ValueError:
            return None, f"坐标系应为 wgs84 或 gcj02 / crs must be wgs84 or gcj02, not '{crs_text}'"
        out["lon"], out["lat"] = to_wgs84(lon, lat, crs)
    return out, None


def read_rows(content: bytes) -> list[VenueRow]:
    """The data rows of the first sheet, keyed by field name (header row first)."""
    rows = read_sheet(content, max_rows=MAX_ROWS, header_rows=1)
    if not rows:
        raise ImportFileUnreadable("文件为空", "the sheet is empty")
    fields = [_HEADER_TO_FIELD.get(_text(h)) for h in rows[0]]
    if "credit_code" not in fields:
        raise ImportFileUnreadable("缺少“统一社会信用代码”列", "the header has no credit code column")
    out: list[VenueRow] = []
    for index, values in enumerate(rows[1:], start=2):
        if all(_text(v) == "" for v in values):
            continue
        out.append(VenueRow(index, {f: v for f, v in zip(fields, values, strict=False) if f}))
    return out


def import_venues(session: Session, principal: Principal, content: bytes) -> VenueImportReport:
    """Create or update venues from an .xlsx ledger. Rows sharing a credit code are merged (later
    non-empty cells win) and a stored venue with that code is updated, never doubled."""
    report = VenueImportReport()
    merged: dict[str, dict[str, Any]] = {}
    first_row: dict[str, int] = {}
    for item in read_rows(content):
        parsed, reason = _parse(item.row, item.values)
        if reason or parsed is None:
            report.errors.append({"row": item.row, "reason": reason})
            continue
        code = parsed["credit_code"]
        if code in merged:
            merged[code].update(parsed)
            report.merged_in_file += 1
        else:
            merged[code] = parsed
            first_row[code] = item.row
    unit_by_code: dict[str, OrgUnit] = {}
    plans: list[tuple[dict[str, Any], Venue | None, int | None]] = []
    for code, values in merged.items():
        row = first_row[code]
        existing = session.execute(select(Venue).where(col(Venue.credit_code) == code)).scalar_one_or_none()
        if existing is not None:
            path = orgunits.unit_path(session, existing.org_unit_id)
            if path is None or not principal.covers(path):
                report.errors.append({"row": row, "reason": f"{code} 已在您辖区外登记 / registered outside your "
                                                            "jurisdiction"})
                continue
        else:
            missing = [f for f in ("venue_type", "name", "lon", "lat") if f not in values]
            if missing:
                report.errors.append({"row": row, "reason": f"新场所缺少字段 / new venue lacks {', '.join(missing)}"})
                continue
        unit_id: int | None = None
        if "org_unit_code" in values:
            unit = unit_by_code.get(values["org_unit_code"]) or session.execute(
                select(OrgUnit).where(col(OrgUnit.code) == values["org_unit_code"])).scalar_one_or_none()
            if unit is None or not principal.covers(unit.path):
                report.errors.append({"row": row, "reason": f"单位编码 {values['org_unit_code']} 不在您辖区 / "
                                                            "unit code not in your jurisdiction"})
                continue
            unit_by_code[unit.code] = unit
            unit_id = unit.id
        elif "lon" in values:
            grid = orgunits.locate(session, values["lon"], values["lat"], level=OrgLevel.grid,
                                   within_path=principal.org_path)
            if grid is None:
                report.errors.append({"row": row, "reason": "坐标不在您辖区的网格内 / point is in no grid of "
                                                            "your jurisdiction"})
                continue
            unit_id = grid.id
        plans.append((values, existing, unit_id))
    if report.errors:
        return report
    for values, existing, unit_id in plans:
        venue = existing or Venue(credit_code=values["credit_code"], venue_type=values["venue_type"].value,
                                  name=values["name"], location=point(values["lon"], values["lat"]),
                                  org_unit_id=unit_id or 0)
        for name in ("name", "address", "owner_name", "owner_phone", "is_key"):
            if name in values:
                setattr(venue, name, values[name])
        if "venue_type" in values:
            venue.venue_type = values["venue_type"].value
        if "status" in values:
            venue.status = values["status"].value
        if "lon" in values:
            venue.location = point(values["lon"], values["lat"])
        if unit_id is not None:
            venue.org_unit_id = unit_id
        venue.updated_at = clock.now()
        session.add(venue)
        if existing is None:
            report.created += 1
        else:
            report.updated += 1
    session.flush()
    return report


def export_venues(session: Session, venues: list[Venue]) -> bytes:
    """The ledger as an .xlsx workbook in the import layout (header in row 1; round-trips through import)."""
    units = {u.id: u for u in session.execute(
        select(OrgUnit).where(col(OrgUnit.id).in_({v.org_unit_id for v in venues}))).scalars()}
    rows = []
    for v in venues:
        lon, lat = lon_lat(v)
        unit = units.get(v.org_unit_id)
        rows.append([VenueType(v.venue_type).zh, v.name, v.credit_code, v.address, lon, lat, "wgs84",
                     v.owner_name, v.owner_phone, "是" if v.is_key else "否", VenueStatus(v.status).zh,
                     unit.code if unit else "", unit.name if unit else ""])
    header = [zh for _, zh in COLUMNS] + ["所属单位"]
    return workbook.xlsx_bytes([workbook.Table(
        title="场所台账", header=header, rows=rows,
        text_columns=frozenset({2, 8, 11}),  # credit code, owner phone, unit code
        widths=[12, 24, 22, 30, 12, 12, 8, 10, 14, 9, 8, 14, 16],
    )])
