"""Publishing a county's own version of an inspection checklist (issue 17).

A county coordinator copies the version in force in the county (GET /inspection-checklists), changes
item texts, adds or removes items, changes deadlines, and publishes it as the next version of the code.
Versions are numbered per code across every owner, so (code, version) names one row, and a published
row is never changed: there is no update path, and publishing an existing number is 409. Two
coordinators publishing the same next number at once get one row and one 409 (the unique constraint
decides). A `dry_run` checks and shows the version without storing it (a draft).
"""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.audit import service as audit
from backend.core import clock
from backend.core.errors import Conflict, InvalidInput, NotFound
from backend.core.text import visible
from backend.inspections import checklists
from backend.inspections.checklists import Checklist, ChecklistItem
from backend.inspections.models import InspectionChecklistVersion
from backend.inspections.schemas import ChecklistItemIn, ChecklistPublish
from backend.orgunits.models import OrgLevel, OrgUnit
from backend.venues.models import VenueType

ITEM_CODE = re.compile(r"^[a-z][a-z0-9_.]{0,39}$")  # a problem keeps the item code (40 characters)
# Item texts are printed on the rectification notice and may reach spreadsheets: never a formula.
FORMULA_START = ("=", "+", "-", "@")
DEADLINE_DAYS = (1, 90)


class InspectionChecklistNotFound(NotFound):
    code = "inspection-checklist-not-found"
    title_zh = "检查表不存在"
    title_en = "Inspection checklist not found"


class InspectionChecklistInvalid(InvalidInput):
    """Extensions: `field` (e.g. "items.2.deadline_days") and `reason`, one of duplicate-item-code,
    bad-item-code, empty-text, formula-text, deadline-out-of-range, unknown-venue-type, no-venue-type,
    venue-type-taken, not-a-county, not-next-version."""

    code = "inspection-checklist-invalid"
    title_zh = "检查表内容有误"
    title_en = "Invalid inspection checklist"


class InspectionChecklistPublished(Conflict):
    code = "inspection-checklist-published"
    title_zh = "该版本已发布，不能修改"
    title_en = "That version is published and never changes"


def _invalid(reason: str, field: str, zh: str, en: str) -> InspectionChecklistInvalid:
    return InspectionChecklistInvalid(zh, en, field=field, reason=reason)


def _text(value: str, field: str) -> str:
    text = value.strip()
    # Nothing visible (spaces, zero-width and other format characters only) is empty: an officer would
    # be asked a question with no words.
    if not visible(text):
        raise _invalid("empty-text", field, f"{field} 不能为空", f"{field} must not be empty")
    if text[:1] in FORMULA_START:
        raise _invalid("formula-text", field, f"{field} 不能以 = + - @ 开头", f"{field} must not start with = + - @")
    return text


def _items(items: list[ChecklistItemIn]) -> tuple[ChecklistItem, ...]:
    seen: set[str] = set()
    out: list[ChecklistItem] = []
    for n, item in enumerate(items):
        field = f"items.{n}"
        code = item.code.strip()
        if not ITEM_CODE.match(code):
            raise _invalid("bad-item-code", f"{field}.code",
                           f"第{n + 1}项的编码应为小写字母开头的字母、数字、点或下划线",
                           f"item {n + 1}: the code must be a lowercase slug")
        if code in seen:
            raise _invalid("duplicate-item-code", f"{field}.code", f"第{n + 1}项的编码 {code} 重复",
                           f"item {n + 1}: the code {code} is used twice")
        seen.add(code)
        low, high = DEADLINE_DAYS
        if not low <= item.deadline_days <= high:
            raise _invalid("deadline-out-of-range", f"{field}.deadline_days",
                           f"第{n + 1}项的整改期限应为 {low}–{high} 天",
                           f"item {n + 1}: deadline_days must be {low}–{high}")
        out.append(ChecklistItem(code, _text(item.text_zh, f"{field}.text_zh"), _text(item.text_en, f"{field}.text_en"),
                                 _text(item.measure_zh, f"{field}.measure_zh"), item.deadline_days))
    return tuple(out)


def _venue_types(values: list[str]) -> tuple[VenueType, ...]:
    if not values:
        raise _invalid("no-venue-type", "venue_types", "至少适用于一类场所", "at least one venue type is needed")
    out: list[VenueType] = []
    for n, value in enumerate(values):
        try:
            vtype = VenueType(value)
        except ValueError:
            raise _invalid("unknown-venue-type", f"venue_types.{n}", f"未知的场所类型 {value}",
                           f"unknown venue type {value}") from None
        if vtype not in out:
            out.append(vtype)
    return tuple(out)


def _county(session: Session, principal: Principal, unit_id: int | None) -> OrgUnit:
    """The county that will own the version: named, or the caller's own unit; inside the caller's
    jurisdiction (404 otherwise, like every unit out of reach)."""
    unit = session.get(OrgUnit, unit_id if unit_id is not None else principal.org_unit_id)
    if unit is None:
        raise NotFound()
    principal.ensure_covers(unit.path)
    if unit.level != OrgLevel.county.value:
        raise _invalid("not-a-county", "unit_id", "检查表按县（区）发布：请指定所属县（区）",
                       "a checklist version belongs to a county: name the county in unit_id")
    return unit


def publish(session: Session, principal: Principal, code: str, body: ChecklistPublish) -> Checklist:
    """Publish (or, with dry_run, only check) the county's next version of a checklist."""
    principal.require(Action.checklist_manage)
    county = _county(session, principal, body.unit_id)
    assert county.id is not None
    in_force = checklists.effective(session, county.path)
    base = in_force.get(code)
    if base is None:
        raise InspectionChecklistNotFound(f"检查表 {code} 不存在", f"no checklist {code}")
    title_zh = _text(body.title_zh if body.title_zh is not None else base.title_zh, "title_zh")
    title_en = _text(body.title_en if body.title_en is not None else base.title_en, "title_en")
    venue_types = base.venue_types if body.venue_types is None else _venue_types(body.venue_types)
    for n, vtype in enumerate(venue_types):
        taken = next((c for c in in_force.values() if c.code != code and vtype in c.venue_types), None)
        if taken is not None:
            raise _invalid("venue-type-taken", f"venue_types.{n}",
                           f"{vtype.zh}已由检查表 {taken.code} 适用，请先从该表移除",
                           f"{vtype.value} is covered by checklist {taken.code}: remove it there first")
    items = _items(body.items)

    latest = session.execute(select(func.max(col(InspectionChecklistVersion.version))).where(
        col(InspectionChecklistVersion.code) == code)).scalar_one()
    version = int(latest or 0) + 1
    if body.version is not None and body.version != version:
        if body.version < version:
            raise InspectionChecklistPublished(
                f"检查表 {code} 第{body.version}版已发布，不能修改；下一版为第{version}版",
                f"{code} v{body.version} is published and never changes; the next version is {version}",
                expected_version=version)
        raise _invalid("not-next-version", "version", f"下一版应为第{version}版", f"the next version is {version}")
    checklist = Checklist(code=code, version=version, title_zh=title_zh, title_en=title_en, venue_types=venue_types,
                          items=items, owner_unit_id=county.id)
    if body.dry_run:
        return checklist

    row = InspectionChecklistVersion(
        code=code, version=version, title_zh=title_zh, title_en=title_en,
        venue_types=[t.value for t in venue_types], items=[checklists.item_row(i) for i in items],
        owner_unit_id=county.id, published_by=principal.user_id, published_at=clock.now(),
    )
    try:
        with session.begin_nested():  # the unique (code, version) decides between two publishing at once
            session.add(row)
            session.flush()
    except IntegrityError:
        raise InspectionChecklistPublished(f"检查表 {code} 第{version}版刚由他人发布，请在最新版本上修改",
                                           f"{code} v{version} was just published by someone else: edit the newest",
                                           expected_version=version + 1) from None
    audit.record(session, actor=principal, action="inspection_checklist.publish", object_type="inspection_checklist",
                 object_id=row.id, org_unit_id=county.id,
                 details={"code": code, "version": version, "base_version": base.version, "items": len(items),
                          "venue_types": [t.value for t in venue_types]})
    return checklists.from_row(row)
