"""The venue ledger as .xlsx: export, and import where rows with the same credit code are merged
(within the file and with stored venues) instead of doubled. Import is all or nothing.

Import reads the first sheet that holds data through backend/ledgers/reading.py, the reader of the
ledger import (.xlsx, .xls, .ods, .csv; hostile files refused before any XML is parsed). A cell
holding a character Hulei refuses (backend/core/text.py) is a row error naming its column.

A row changes a stored venue only where its value differs from the stored one once both are put in
the form a file carries and the import reads: text cleaned as the writer cleans it (CR as LF) and
trimmed as each cell is trimmed, a phone number in its one stored form, a point to within
`SAME_POINT_DEGREES` (the writer keeps 16 significant digits, Excel and WPS 15). Where the forms are
equal the stored value is kept, so a venue named "\\t-2+3" keeps its tab; an exported ledger imported
unchanged creates nothing, changes nothing and reports every venue as `unchanged`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts.principal import Principal
from backend.core import clock, identifiers, workbook
from backend.core import text as texts
from backend.core.geo import CoordinateSystem, point, to_wgs84
from backend.core.spreadsheet import ImportFileUnreadable
from backend.ledgers import reading
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
_FIELD_TO_HEADER = dict(COLUMNS)
_TYPE_ALIASES: dict[str, VenueType] = {zh: t for t, zh in VENUE_TYPE_ZH.items()} | {
    "旅馆": VenueType.hotel, "酒店": VenueType.hotel, "宾馆": VenueType.hotel, "民宿": VenueType.hotel,
    "ktv": VenueType.ktv, "网咖": VenueType.internet_cafe, "培训机构": VenueType.training,
    "校园周边商店": VenueType.school_shop, "商店": VenueType.school_shop,
    "游戏厅": VenueType.amusement_arcade, "电子游艺厅": VenueType.amusement_arcade, "剧本杀": VenueType.script_game,
    "密室逃脱": VenueType.script_game, "剧本娱乐": VenueType.script_game,
} | {t.value: t for t in VenueType}
_STATUS_ALIASES = {s.zh: s for s in VenueStatus} | {s.value: s for s in VenueStatus} | {
    "停业": VenueStatus.suspended, "关闭": VenueStatus.closed, "注销": VenueStatus.closed}
_TRUE = {"是", "y", "yes", "true", "1", "重点"}
_FALSE = {"否", "n", "no", "false", "0", ""}
MAX_ROWS = 20000
# Two points closer than this (in each of lon and lat, about 0.1 mm) are the same point: the float
# noise of a file's 15 or 16 significant digits, never a move anyone made.
SAME_POINT_DEGREES = 1e-9


@dataclass(frozen=True)
class RowProblem:
    """Why a row is refused: the column (its printed header, None for the row as a whole) and the
    reason in both languages; the answer gives the caller's."""

    column: str | None
    zh: str
    en: str


def _problem(field_name: str | None, zh: str, en: str) -> RowProblem:
    return RowProblem(_FIELD_TO_HEADER.get(field_name) if field_name else None, zh, en)


@dataclass
class VenueRow:
    row: int
    values: dict[str, Any]


@dataclass
class VenueImportReport:
    created: int = 0
    updated: int = 0  # stored venues the file changed
    unchanged: int = 0  # stored venues the file names with nothing to change
    merged_in_file: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def add(self, row: int, problem: RowProblem) -> None:
        self.errors.append({"row": row, "column": problem.column, "reason": problem.zh, "reason_en": problem.en})


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _same_text(stored: str, given: str) -> bool:
    """Whether a stored text and a cell's text are one value: equal in the form an export writes and
    an import reads (backend/core/text.clean, then trimmed like every cell)."""
    return texts.clean(stored).strip() == texts.clean(given).strip()


def _phone_form(text: str) -> str:
    text = texts.clean(text).strip()
    try:
        return identifiers.contact(text)
    except ValueError:
        return text


def _same_point(stored: tuple[float, float], given: tuple[float, float]) -> bool:
    return all(math.isclose(a, b, rel_tol=0, abs_tol=SAME_POINT_DEGREES) for a, b in zip(stored, given, strict=True))


def _apply(venue: Venue, values: dict[str, Any], unit_id: int | None) -> bool:
    """Set on a stored venue each value of the row that differs from what it holds (see the module
    docstring); whether anything changed."""
    changed = False
    for name in ("name", "address", "owner_name"):
        if name in values and not _same_text(getattr(venue, name), values[name]):
            setattr(venue, name, values[name])
            changed = True
    if "owner_phone" in values and _phone_form(venue.owner_phone) != _phone_form(values["owner_phone"]):
        venue.owner_phone = values["owner_phone"]
        changed = True
    if "is_key" in values and venue.is_key != values["is_key"]:
        venue.is_key = values["is_key"]
        changed = True
    for name in ("venue_type", "status"):
        if name in values and getattr(venue, name) != values[name].value:
            setattr(venue, name, values[name].value)
            changed = True
    if "lon" in values and not _same_point(lon_lat(venue), (values["lon"], values["lat"])):
        venue.location = point(values["lon"], values["lat"])
        changed = True
    if unit_id is not None and venue.org_unit_id != unit_id:
        venue.org_unit_id = unit_id
        changed = True
    return changed


def _refused(raw: dict[str, Any]) -> RowProblem | None:
    """The row error of the first cell holding a refused character, naming its column, or None."""
    for name, value in raw.items():
        if isinstance(value, str) and (bad := texts.first_refused(value)) is not None:
            return _problem(name, texts.cell_reason(bad), texts.cell_reason(bad, "en"))
    return None


def _parse(row: int, raw: dict[str, Any]) -> tuple[dict[str, Any] | None, RowProblem | None]:
    out: dict[str, Any] = {}
    refused = _refused(raw)
    if refused:
        return None, refused
    code = credit_code.normalise(_text(raw.get("credit_code")))
    if not code:
        return None, _problem("credit_code", "统一社会信用代码为空", "The credit code is empty")
    reason = credit_code.problem(code)
    if reason:
        return None, _problem("credit_code", f"统一社会信用代码无效：{reason}", f"Invalid credit code {code}: {reason}")
    out["credit_code"] = code
    for name in ("name", "address", "owner_name", "owner_phone", "org_unit_code"):
        text = _text(raw.get(name))
        if text:
            out[name] = text
    if "owner_phone" in out:
        try:
            out["owner_phone"] = identifiers.contact(out["owner_phone"])
        except ValueError as exc:
            return None, _problem("owner_phone", f"联系电话无效（只能使用数字0-9，不能是表格软件的数字写法）：{exc}",
                                  f"Invalid owner phone: {exc}")
    if "name" in out and len(out["name"]) > 120:
        return None, _problem("name", "场所名称过长：最多 120 字", "The name is longer than 120 characters")
    vtype = _text(raw.get("venue_type"))
    if vtype:
        parsed = _TYPE_ALIASES.get(vtype) or _TYPE_ALIASES.get(vtype.lower())
        if parsed is None:
            return None, _problem("venue_type", f"场所类型无法识别：“{vtype}”", f"Unknown venue type “{vtype}”")
        out["venue_type"] = parsed
    status = _text(raw.get("status"))
    if status:
        st = _STATUS_ALIASES.get(status) or _STATUS_ALIASES.get(status.lower())
        if st is None:
            return None, _problem("status", f"状态无法识别：“{status}”", f"Unknown status “{status}”")
        out["status"] = st
    key = _text(raw.get("is_key")).lower()
    if key in _TRUE:
        out["is_key"] = True
    elif key and key not in _FALSE:
        return None, _problem("is_key", f"重点场所应为“是”或“否”，而不是“{key}”",
                                f"Write “是” (yes) or “否” (no), not “{key}”")
    elif key:
        out["is_key"] = False
    lon_raw, lat_raw = raw.get("lon"), raw.get("lat")
    if _text(lon_raw) or _text(lat_raw):
        try:
            lon, lat = float(_text(lon_raw)), float(_text(lat_raw))
        except ValueError:
            return None, _problem("lon", "经纬度不是数字", "The longitude and latitude must be numbers")
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            return None, _problem("lon", "经纬度超出范围", "The longitude or latitude is out of range")
        crs_text = _text(raw.get("crs")).lower() or "wgs84"
        try:
            crs = CoordinateSystem(crs_text.replace("-", ""))
        except ValueError:
            return None, _problem("crs", f"坐标系应为 wgs84 或 gcj02，而不是“{crs_text}”",
                                    f"The coordinate system is wgs84 or gcj02, not “{crs_text}”")
        out["lon"], out["lat"] = to_wgs84(lon, lat, crs)
    return out, None


def read_rows(content: bytes, filename: str = "") -> list[VenueRow]:
    """The data rows of the first sheet holding any (hidden and chart sheets are passed over), keyed
    by field name (header row first). `filename` tells a .csv (every other format is recognised by
    its content)."""
    book = reading.read(content, filename, max_rows=MAX_ROWS, header_rows=1)
    rows = next((s.rows for s in book.sheets if not s.skipped and s.rows), [])
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


def import_venues(session: Session, principal: Principal, content: bytes, filename: str = "") -> VenueImportReport:
    """Create or update venues from an .xlsx ledger. Rows sharing a credit code are merged (later
    non-empty cells win) and a stored venue with that code is updated, never doubled."""
    report = VenueImportReport()
    merged: dict[str, dict[str, Any]] = {}
    first_row: dict[str, int] = {}
    for item in read_rows(content, filename):
        parsed, problem = _parse(item.row, item.values)
        if problem is not None or parsed is None:
            report.add(item.row, problem or _problem(None, "本行无法读取", "The row cannot be read"))
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
                report.add(row, _problem("credit_code", f"{code} 已在您辖区外登记",
                                         f"{code} is registered outside your jurisdiction"))
                continue
        else:
            missing = [f for f in ("venue_type", "name", "lon", "lat") if f not in values]
            if missing:
                headers = "、".join(_FIELD_TO_HEADER.get(f, f) for f in missing)
                report.add(row, _problem(missing[0], f"新场所缺少：{headers}",
                                         f"A new venue needs: {', '.join(missing)}"))
                continue
        unit_id: int | None = None
        if "org_unit_code" in values:
            unit = unit_by_code.get(values["org_unit_code"]) or session.execute(
                select(OrgUnit).where(col(OrgUnit.code) == values["org_unit_code"])).scalar_one_or_none()
            if unit is None or not principal.covers(unit.path):
                report.add(row, _problem("org_unit_code", f"单位编码 {values['org_unit_code']} 不在您辖区",
                                         f"The unit code {values['org_unit_code']} is not in your jurisdiction"))
                continue
            unit_by_code[unit.code] = unit
            unit_id = unit.id
        elif "lon" in values and (existing is None
                                  or not _same_point(lon_lat(existing), (values["lon"], values["lat"]))):
            # A new venue, or a stored one moved, belongs to the grid of its point; a stored venue at
            # its point keeps its unit.
            grid = orgunits.locate(session, values["lon"], values["lat"], level=OrgLevel.grid,
                                   within_path=principal.org_path)
            if grid is None:
                report.add(row, _problem("lon", "坐标不在您辖区的网格内",
                                         "The point is in no grid of your jurisdiction"))
                continue
            unit_id = grid.id
        plans.append((values, existing, unit_id))
    if report.errors:
        return report
    for values, existing, unit_id in plans:
        if existing is None:
            venue = Venue(credit_code=values["credit_code"], venue_type=values["venue_type"].value,
                          name=values["name"], location=point(values["lon"], values["lat"]),
                          org_unit_id=unit_id or 0)
            _apply(venue, values, unit_id)
            report.created += 1
        elif _apply(existing, values, unit_id):
            venue = existing
            report.updated += 1
        else:
            report.unchanged += 1
            continue
        venue.updated_at = clock.now()
        session.add(venue)
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
