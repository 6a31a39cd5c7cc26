"""Prevention and education activities (宣传教育): recording (REST and sync push alike), reading, the
county's own activity types, and which schools and villages had activities in a period and which had none.

Activities carry no personal data: they are scoped by the unit of their place (the jurisdiction, through
backend/orgunits like venues and inspections), and the recorder always sees its own. A user whose unit
is a grid works in its village (a grid has no school and is no village): its area for recording is the
village above it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, cast
from uuid import UUID

from sqlalchemy import ColumnElement, Table, and_, func, or_, select
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.audit import service as audit
from backend.core import clock
from backend.core import text as texts
from backend.core.db import dialect_insert
from backend.core.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from backend.core.geo import to_wgs84
from backend.core.pagination import PageRequest
from backend.institutions import service as institutions
from backend.institutions.models import Institution, InstitutionKind
from backend.media import service as media
from backend.media.models import MediaItem
from backend.orgunits import service as orgunits
from backend.orgunits.models import OrgLevel, OrgUnit, subtree_upper_bound
from backend.prevention.catalogue import NATIONAL, NATIONAL_BY_CODE, TypeName
from backend.prevention.models import Activity, ActivityType, PlaceKind
from backend.prevention.schemas import ActivityData, ActivityTypeCreate
from backend.registry import personal_text
from backend.sync import revisions

ACTIVITY_TABLE = cast(Table, Activity.__table__)  # type: ignore[attr-defined]
SCHOOL_KINDS = tuple(k.value for k in InstitutionKind if k.is_school)
# A phone offline for days still syncs; an activity dated more than a year back is a typing error.
MAX_AGE_DAYS = 366
# The longest period the coverage lists read at once.
MAX_PERIOD_DAYS = 3 * 366
# Units that may keep a list of their own activity types (县级及以上).
TYPE_OWNER_LEVELS = (OrgLevel.province.value, OrgLevel.city.value, OrgLevel.county.value)


class ActivityNotFound(NotFound):
    code = "activity-not-found"
    title_zh = "活动记录不存在或不在您的辖区内"
    title_en = "Activity not found"


class ActivityConflict(Conflict):
    code = "activity-conflict"
    title_zh = "同一活动编号已提交过不同内容"
    title_en = "This activity's client UUID was used for other content"


class ActivityTypeUnknown(InvalidInput):
    code = "activity-type-unknown"
    title_zh = "活动类型不存在或不适用于该地点"
    title_en = "Unknown activity type for this place"


class ActivityTypeExists(Conflict):
    code = "activity-type-exists"
    title_zh = "活动类型代码已被使用"
    title_en = "The activity type code is taken"


class ActivityTypeLevel(Forbidden):
    code = "activity-type-level"
    title_zh = "只有县级及以上单位可以增加活动类型"
    title_en = "Only a county or a unit above it keeps its own activity types"


class ActivityPlaceNotFound(NotFound):
    code = "activity-place-not-found"
    title_zh = "活动地点不存在或不在您的辖区内"
    title_en = "The activity's place is unknown or outside your area"


class ActivityDateInvalid(InvalidInput):
    code = "activity-date-invalid"
    title_zh = "活动日期有误"
    title_en = "The activity's date is not plausible"


class ActivityTextInvalid(InvalidInput):
    code = "activity-text-invalid"
    title_zh = "活动文字内容有误"
    title_en = "The activity's text is invalid"


class ActivityPhotoNotRecorders(InvalidInput):
    code = "activity-photo-not-recorders"
    title_zh = "活动只能列出记录人本人为该活动上传的照片"
    title_en = "An activity lists only photos its recorder uploaded for it"


class PeriodInvalid(InvalidInput):
    code = "activity-period-invalid"
    title_zh = "统计期间有误"
    title_en = "The period is invalid"


def local_today() -> date:
    """Today's date in China: activities are dated by the local calendar."""
    return clock.china_date(clock.now())


# ---------------------------------------------------------------- types


def type_names(session: Session) -> dict[str, TypeName]:
    """Every activity type by code: the national list and every county's own (a small table)."""
    names = dict(NATIONAL_BY_CODE)
    for row in session.execute(select(ActivityType)).scalars():
        names[row.code] = TypeName(row.code, row.name_zh, row.name_en)
    return names


def _ancestor_paths(path: str) -> list[str]:
    """'/1/4/17/' -> ['/1/', '/1/4/', '/1/4/17/']: the unit and every unit above it."""
    ids = [p for p in path.strip("/").split("/") if p]
    return ["/" + "/".join(ids[: n + 1]) + "/" for n in range(len(ids))]


def list_types(session: Session, principal: Principal) -> list[dict[str, Any]]:
    """The national types, those of the units above the caller (they apply to its activities) and
    those of units in its jurisdiction (their activities name them)."""
    principal.require(Action.activity_read)
    out = [{"code": t.code, "name_zh": t.name_zh, "name_en": t.name_en, "national": True, "owner_unit_id": None}
           for t in NATIONAL]
    rows = session.execute(
        select(ActivityType).join(OrgUnit, col(OrgUnit.id) == col(ActivityType.owner_unit_id))
        .where(or_(col(OrgUnit.path).in_(_ancestor_paths(principal.org_path)),
                   orgunits.in_jurisdiction(principal, col(ActivityType.owner_unit_id))))
        .order_by(col(ActivityType.id))
    ).scalars()
    out += [{"code": r.code, "name_zh": r.name_zh, "name_en": r.name_en, "national": False,
             "owner_unit_id": r.owner_unit_id} for r in rows]
    return out


def create_type(session: Session, principal: Principal, body: ActivityTypeCreate) -> dict[str, Any]:
    """A county (or a unit above it) adds a type for the activities held in its area (checklist.manage:
    the same coordinators who publish a county's checklist versions)."""
    principal.require(Action.checklist_manage)
    unit = orgunits.get_visible_unit(session, principal, body.unit_id or principal.org_unit_id)
    if unit.level not in TYPE_OWNER_LEVELS:
        raise ActivityTypeLevel(f"{unit.name}不是县级及以上单位", f"{unit.name} is below county level",
                                unit_id=unit.id)
    for field_name, value in (("name_zh", body.name_zh), ("name_en", body.name_en)):
        if not texts.visible(value):
            raise ActivityTextInvalid("名称不能为空", "The name is empty", field=field_name)
    personal_text.refuse_personal_data(session, principal, {"name_zh": body.name_zh, "name_en": body.name_en},
                                       record="activity_type")
    taken = body.code in NATIONAL_BY_CODE or session.execute(
        select(col(ActivityType.id)).where(col(ActivityType.code) == body.code)).first() is not None
    if taken:
        raise ActivityTypeExists(f"活动类型代码“{body.code}”已被使用", f"The code '{body.code}' is taken",
                                 field="code")
    row = ActivityType(code=body.code, name_zh=body.name_zh.strip(), name_en=body.name_en.strip(),
                       owner_unit_id=unit.id or 0, created_by=principal.user_id)
    session.add(row)
    session.flush()
    audit.record(session, actor=principal, action="activity_type.create", object_type="activity_type",
                 object_id=row.id, org_unit_id=unit.id, details={"code": row.code})
    return {"code": row.code, "name_zh": row.name_zh, "name_en": row.name_en, "national": False,
            "owner_unit_id": row.owner_unit_id}


def _type_applies(session: Session, code: str, place_path: str) -> bool:
    if code in NATIONAL_BY_CODE:
        return True
    owner_path = session.execute(
        select(col(OrgUnit.path)).join(ActivityType, col(ActivityType.owner_unit_id) == col(OrgUnit.id))
        .where(col(ActivityType.code) == code)).scalar_one_or_none()
    return owner_path is not None and place_path.startswith(owner_path)


# ---------------------------------------------------------------- scope


def visible(principal: Principal) -> ColumnElement[bool]:
    """The activities the caller sees: those whose place lies in its jurisdiction, and its own."""
    return or_(orgunits.in_jurisdiction(principal, col(Activity.org_unit_id)),
               col(Activity.recorded_by) == principal.user_id)


def _area(session: Session, principal: Principal) -> OrgUnit:
    """Where the caller may record activities: its unit, or for a grid's user the village above it."""
    unit = session.get(OrgUnit, principal.org_unit_id)
    if unit is None:
        raise ActivityPlaceNotFound()
    if unit.level == OrgLevel.grid.value and unit.parent_id is not None:
        parent = session.get(OrgUnit, unit.parent_id)
        if parent is not None:
            return parent
    return unit


# ---------------------------------------------------------------- recording


def content_digest(data: ActivityData, principal: Principal) -> str:
    """Digest of what the activity says, not of how its JSON was written: defaults filled in as the
    server fills them (the organiser is the recorder's unit and agency, a blank note is none), photos
    as a set, the device time in UTC, numbers as the model holds them. A phone that resends the copy
    the server answered, or re-serialises its own, gets `duplicate`, never a conflict that would make
    it record the activity again under a new UUID."""
    body = data.model_dump(mode="json")
    body.pop("client_uuid", None)
    if body.get("organiser_unit_id") is None:
        body["organiser_unit_id"] = principal.org_unit_id
    if body.get("organiser_agency") is None:
        body["organiser_agency"] = principal.agency
    if data.note is None or not texts.visible(data.note):
        body["note"] = None
    body["photos"] = sorted(body.get("photos") or [])
    if data.device_time is not None:
        body["device_time"] = clock.as_utc(data.device_time).isoformat()
    raw = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()


@dataclass(frozen=True)
class Recorded:
    activity: dict[str, Any]  # the stored row as a mapping
    created: bool
    shown: bool = True  # whether the caller may see the stored copy (a resend by someone else: not)


@dataclass(frozen=True)
class _Place:
    unit: OrgUnit
    institution_id: int | None
    name: str
    lon: float | None
    lat: float | None
    crs: str | None


def _stored(session: Session, client_uuid: UUID) -> dict[str, Any] | None:
    row = session.execute(select(ACTIVITY_TABLE).where(ACTIVITY_TABLE.c.client_uuid == client_uuid)).mappings().first()
    return dict(row) if row is not None else None


def _resend(session: Session, principal: Principal, stored: dict[str, Any], digest: str) -> Recorded:
    """A client UUID already stored: the same content is a duplicate (its stored copy answers);
    other content is a conflict, which shows the stored copy only to whoever may see it."""
    if stored["content_hash"] == digest:
        return Recorded(stored, created=False, shown=_sees(session, principal, stored))
    copy = stored if _sees(session, principal, stored) else None
    raise ActivityConflict("同一活动编号已提交过不同内容，请用新编号重新记录",
                           "This client UUID was used for other content; record it under a new UUID",
                           activity_id=copy["id"] if copy else None)


def _reads_as_stored(session: Session, principal: Principal, data: ActivityData, stored: dict[str, Any]) -> bool:
    """Whether a resend whose JSON differs still says what is stored, as the server reads it: its place
    resolved (a point's unit written out, a point in GCJ-02 or with more decimals than are kept), its
    organiser and note as stored. Only the recorder's resend is read this way; anything the resend
    cannot resolve is a conflict."""
    if stored["recorded_by"] != principal.user_id:
        return False
    try:
        place = _place(session, principal, data, _area(session, principal))
        organiser = _organiser(session, principal, data)
    except DomainError:
        return False
    note = data.note if data.note is not None and texts.visible(data.note) else None
    resent = {
        "type_code": data.type_code, "held_date": data.held_date, "place_kind": data.place_kind.value,
        "institution_id": place.institution_id, "org_unit_id": place.unit.id, "place_name": place.name,
        "lon": place.lon, "lat": place.lat, "organiser_unit_id": organiser,
        "organiser_agency": data.organiser_agency.value if data.organiser_agency else principal.agency,
        "students": data.audience.students, "parents": data.audience.parents,
        "villagers": data.audience.villagers, "others": data.audience.others, "note": note,
    }
    if any(stored[key] != value for key, value in resent.items()):
        return False
    return sorted(str(p) for p in stored["photos"] or []) == sorted(str(p) for p in data.photos)


def _sees(session: Session, principal: Principal, row: dict[str, Any]) -> bool:
    if row["recorded_by"] == principal.user_id:
        return True
    path = orgunits.unit_path(session, row["org_unit_id"])
    return path is not None and principal.covers(path)


def _place(session: Session, principal: Principal, data: ActivityData, area: OrgUnit) -> _Place:
    """The place the activity names, inside the recorder's area, else 404 (as if it did not exist)."""
    if data.place_kind is PlaceKind.school:
        school = session.get(Institution, data.institution_id)
        unit = session.get(OrgUnit, school.org_unit_id) if school is not None else None
        if (school is None or unit is None or not unit.path.startswith(area.path) or not school.is_active
                or school.kind not in SCHOOL_KINDS):
            raise ActivityPlaceNotFound("学校不存在、已停用或不在您的辖区内", "No such active school in your area",
                                        field="institution_id")
        return _Place(unit, school.id, school.name, None, None, None)
    if data.place_kind is PlaceKind.village:
        unit = session.get(OrgUnit, data.org_unit_id)
        if unit is None or unit.level != OrgLevel.village.value or not unit.path.startswith(area.path):
            raise ActivityPlaceNotFound("村（社区）不存在或不在您的辖区内", "No such village in your area",
                                        field="org_unit_id")
        return _Place(unit, None, unit.name, None, None, None)
    assert data.point is not None and data.place_name is not None
    if not texts.visible(data.place_name):
        raise ActivityTextInvalid("地点名称不能为空", "The place name is empty", field="place_name")
    lon, lat = to_wgs84(data.point.lon, data.point.lat, data.point.crs)
    # The point decides where the activity counts: the village it lies in, or (between villages) the
    # recorder's own unit when its boundary holds the point. A point in another village or outside the
    # area is refused as a place outside the area is, whatever `org_unit_id` says: filing it under the
    # recorder's village would count a neighbour's market day as this village's and leave the other
    # village "without activity".
    unit = _unit_of_point(session, lon, lat, area)
    if unit is None:
        raise ActivityPlaceNotFound("该地点不在您的辖区内", "The point lies outside your area", field="point")
    if data.org_unit_id is not None:
        given = session.get(OrgUnit, data.org_unit_id)
        if given is None or not given.path.startswith(area.path) or not unit.path.startswith(given.path):
            raise ActivityPlaceNotFound("地点不在所填单位内，或该单位不在您的辖区内",
                                        "The point does not lie in that unit, or the unit is not in your area",
                                        field="org_unit_id")
        unit = given
    return _Place(unit, None, data.place_name.strip(), round(lon, 7), round(lat, 7), data.point.crs.value)


def _unit_of_point(session: Session, lon: float, lat: float, area: OrgUnit) -> OrgUnit | None:
    """The village holding the point if it is in the area; else the area itself if its own boundary
    holds the point (a square between villages); else None (another village, or outside the area)."""
    village = orgunits.locate(session, lon, lat, level=OrgLevel.village)
    if village is not None:
        return village if village.path.startswith(area.path) else None
    return orgunits.locate(session, lon, lat, level=OrgLevel(area.level), within_path=area.path)


def _organiser(session: Session, principal: Principal, data: ActivityData) -> int:
    """The organising unit: the recorder's own by default, else a unit above it or in its jurisdiction
    (a village volunteer records the town federation's market day)."""
    if data.organiser_unit_id is None or data.organiser_unit_id == principal.org_unit_id:
        return principal.org_unit_id
    unit = session.get(OrgUnit, data.organiser_unit_id)
    if unit is None or not (principal.covers(unit.path) or principal.org_path.startswith(unit.path)):
        raise ActivityPlaceNotFound("组织单位不存在或与您无关", "The organising unit is unknown or not yours",
                                    field="organiser_unit_id")
    return data.organiser_unit_id


def _check_photos(session: Session, principal: Principal, client_uuid: UUID, photos: list[UUID]) -> None:
    """A photo belongs to the record its upload named, uploaded by its author (the media rule a visit's
    photos follow: POST /media names parent_kind and parent_uuid, and a UUID of another record's photo is
    refused there): a listed photo already on the server must be one the recorder uploaded naming this
    activity. One not uploaded yet passes: a phone often sends the record before its photos, and the
    photo's own upload then names its parent."""
    if not photos:
        return
    foreign = session.execute(
        select(col(MediaItem.client_uuid)).where(
            col(MediaItem.client_uuid).in_(photos),
            or_(col(MediaItem.uploader_user_id) != principal.user_id, col(MediaItem.parent_kind) != "activity",
                col(MediaItem.parent_uuid) != client_uuid))
        .order_by(col(MediaItem.client_uuid)).limit(1)).scalar_one_or_none()
    if foreign is not None:
        raise ActivityPhotoNotRecorders("照片不是您为该活动上传的，不能列入", "A listed photo was not uploaded by you "
                                        "for this activity", field="photos", photo=str(foreign))


def record_activity(session: Session, principal: Principal, client_uuid: UUID, data: ActivityData, *,
                    via: str) -> Recorded:
    """Store an activity exactly once by its client UUID (INSERT .. ON CONFLICT DO NOTHING: the unique
    constraint decides between two phones racing with the same UUID); a resend of the same content is a
    duplicate, of other content a conflict. Photos that came first are linked now; the write is audited."""
    principal.require(Action.activity_record)
    digest = content_digest(data, principal)
    stored = _stored(session, client_uuid)
    if stored is not None:
        if stored["content_hash"] != digest and _reads_as_stored(session, principal, data, stored):
            digest = stored["content_hash"]
        return _resend(session, principal, stored, digest)
    today = local_today()
    if data.held_date > today + timedelta(days=1) or data.held_date < today - timedelta(days=MAX_AGE_DAYS):
        raise ActivityDateInvalid(f"活动日期应在{MAX_AGE_DAYS}天内且不晚于今天",
                                  f"The date must lie within the last {MAX_AGE_DAYS} days, not in the future",
                                  field="held_date")
    note = data.note if data.note is not None and texts.visible(data.note) else None
    # Activities are read by every activity reader of the area and sent to phones: their free text
    # carries no personal data (backend/registry/personal_text.py).
    personal_text.refuse_personal_data(session, principal, {"note": note, "place_name": data.place_name},
                                       record="activity")
    _check_photos(session, principal, client_uuid, data.photos)
    place = _place(session, principal, data, _area(session, principal))
    if not _type_applies(session, data.type_code, place.unit.path):
        raise ActivityTypeUnknown(f"活动类型“{data.type_code}”不存在或不适用于该地点，请更新活动类型",
                                  f"No activity type '{data.type_code}' applies here; refresh the types",
                                  field="type_code")
    organiser = _organiser(session, principal, data)
    row = {
        "client_uuid": client_uuid, "content_hash": digest, "type_code": data.type_code,
        "organiser_unit_id": organiser,
        "organiser_agency": (data.organiser_agency.value if data.organiser_agency else principal.agency),
        "held_date": data.held_date, "place_kind": data.place_kind.value, "institution_id": place.institution_id,
        "org_unit_id": place.unit.id, "place_name": place.name, "lon": place.lon, "lat": place.lat,
        "reported_crs": place.crs, "students": data.audience.students, "parents": data.audience.parents,
        "villagers": data.audience.villagers, "others": data.audience.others,
        "photos": [str(p) for p in data.photos], "note": note, "recorded_by": principal.user_id,
        "device_time": clock.as_utc(data.device_time) if data.device_time else None,
        "received_at": clock.now(),
        # The counter's lock is held from here to the commit: pulls see activities in revision order.
        "rev": revisions.allocate(session),
    }
    insert = dialect_insert(session)
    new_id = session.execute(
        insert(ACTIVITY_TABLE).values(**row).on_conflict_do_nothing(index_elements=["client_uuid"])
        .returning(ACTIVITY_TABLE.c.id)
    ).scalar_one_or_none()
    if new_id is None:  # another request stored the same UUID meanwhile (it waited for that one's commit)
        raced = _stored(session, client_uuid)
        assert raced is not None
        return _resend(session, principal, raced, digest)
    media.link_waiting_photos(session, "activity", [client_uuid])
    audit.record(session, actor=principal, action="activity.create", object_type="activity", object_id=new_id,
                 org_unit_id=place.unit.id, details={"type_code": data.type_code, "place_kind": data.place_kind.value,
                                                     "held_date": data.held_date.isoformat(), "via": via})
    return Recorded({**row, "id": new_id}, created=True)


# ---------------------------------------------------------------- reading


def activity_public(row: Any, names: dict[str, TypeName]) -> dict[str, Any]:
    """A stored activity (row mapping or named row) as the API and the pull give it."""
    get = row.__getitem__ if isinstance(row, dict) else row._mapping.__getitem__
    code = get("type_code")
    name = names.get(code) or TypeName(code, code, code)
    counts = {k: int(get(k)) for k in ("students", "parents", "villagers", "others")}
    held = get("held_date")
    return {
        "id": get("id"),
        "client_uuid": str(get("client_uuid")),
        "type_code": code,
        "type_zh": name.name_zh,
        "type_en": name.name_en,
        "organiser_unit_id": get("organiser_unit_id"),
        "organiser_agency": get("organiser_agency"),
        "held_date": held.isoformat() if isinstance(held, date) else str(held),
        "place_kind": get("place_kind"),
        "institution_id": get("institution_id"),
        "org_unit_id": get("org_unit_id"),
        "place_name": get("place_name"),
        "lon": get("lon"),
        "lat": get("lat"),
        "audience": {**counts, "total": sum(counts.values())},
        "photos": list(get("photos") or []),
        "note": get("note"),
        "recorded_by": get("recorded_by"),
        "received_at": clock.as_utc(get("received_at")).isoformat(),
    }


def get_activity(session: Session, principal: Principal, activity_id: int) -> dict[str, Any]:
    principal.require(Action.activity_read)
    row = session.execute(
        select(ACTIVITY_TABLE).where(ACTIVITY_TABLE.c.id == activity_id, visible(principal))
    ).mappings().first()
    if row is None:
        raise ActivityNotFound()
    return activity_public(dict(row), type_names(session))


def _period(date_from: date | None, date_to: date | None) -> tuple[date, date]:
    """The period asked for; by default this year up to today (China dates)."""
    end = date_to or local_today()
    start = date_from or date(end.year, 1, 1)
    if start > end:
        raise PeriodInvalid("开始日期晚于结束日期", "date_from is after date_to", field="date_from")
    if (end - start).days > MAX_PERIOD_DAYS:
        raise PeriodInvalid(f"期间最长{MAX_PERIOD_DAYS}天", f"A period spans at most {MAX_PERIOD_DAYS} days",
                            field="date_from")
    return start, end


def _under(column: Any, path: str) -> ColumnElement[bool]:
    return cast(ColumnElement[bool], column.in_(orgunits.subtree_unit_ids(path)))


def list_activities(session: Session, principal: Principal, *, page: PageRequest, unit_id: int | None,
                    date_from: date | None, date_to: date | None, type_code: str | None,
                    institution_id: int | None) -> list[dict[str, Any]]:
    """Activities the caller sees, newest record first; filtered by the unit their place lies under,
    the period they were held in, their type or their school."""
    principal.require(Action.activity_read)
    query = select(ACTIVITY_TABLE).where(visible(principal))
    if unit_id is not None:
        unit = orgunits.get_visible_unit(session, principal, unit_id)
        query = query.where(_under(ACTIVITY_TABLE.c.org_unit_id, unit.path))
    if date_from is not None or date_to is not None:
        start, end = _period(date_from, date_to)
        query = query.where(ACTIVITY_TABLE.c.held_date >= start, ACTIVITY_TABLE.c.held_date <= end)
    if type_code is not None:
        query = query.where(ACTIVITY_TABLE.c.type_code == type_code)
    if institution_id is not None:
        query = query.where(ACTIVITY_TABLE.c.institution_id == institution_id)
    names = type_names(session)
    rows = session.execute(page.seek(query, ACTIVITY_TABLE.c.id, descending=True)).mappings()
    return [activity_public(dict(r), names) for r in rows]


# ---------------------------------------------------------------- coverage


_AUDIENCE = ("students", "parents", "villagers", "others")


def _zero() -> dict[str, Any]:
    return {"activities": 0, "audience": dict.fromkeys((*_AUDIENCE, "total"), 0), "schools": 0,
            "schools_reached": 0, "villages": 0, "villages_reached": 0}


def _held(start: date, end: date) -> ColumnElement[bool]:
    return and_(col(Activity.held_date) >= start, col(Activity.held_date) <= end)


def _school_reached(start: date, end: date, school_id: Any) -> ColumnElement[bool]:
    """EXISTS an activity at the school in the period."""
    return select(col(Activity.id)).where(col(Activity.institution_id) == school_id, _held(start, end)).exists()


_PLACE = aliased(OrgUnit)


def _village_reached(start: date, end: date, village_path: Any) -> ColumnElement[bool]:
    """EXISTS an activity in the period held anywhere in the village (at the village, at its school,
    at a point in it): its place's path starts with the village's."""
    return (select(col(Activity.id)).join(_PLACE, col(_PLACE.id) == col(Activity.org_unit_id))
            .where(col(_PLACE.path).startswith(village_path), _held(start, end)).exists())


def _villages_under(unit: OrgUnit) -> ColumnElement[bool]:
    return and_(col(OrgUnit.level) == OrgLevel.village.value, col(OrgUnit.path) >= unit.path,
                col(OrgUnit.path) < subtree_upper_bound(unit.path))


def _prefix_counter(paths: list[str], children: list[str]) -> dict[str, list[str]]:
    """Each child path with the given paths under it (or the unit itself, key ""): every path is
    matched by its own ancestors' paths, so the work is paths x depth, not paths x children."""
    wanted = set(children)
    out: dict[str, list[str]] = {c: [] for c in children}
    for path in paths:
        ids = [p for p in path.strip("/").split("/") if p]
        for n in range(len(ids)):
            prefix = "/" + "/".join(ids[: n + 1]) + "/"
            if prefix in wanted:
                out[prefix].append(path)
                break
    return out


def coverage(session: Session, principal: Principal, *, unit_id: int | None, date_from: date | None,
             date_to: date | None) -> dict[str, Any]:
    """Activities, audience and the schools and villages reached, under a unit and per child unit."""
    principal.require(Action.activity_read)
    unit = orgunits.get_visible_unit(session, principal, unit_id or principal.org_unit_id)
    start, end = _period(date_from, date_to)
    # Per place unit: activities and audience; per school and per village: its unit path and reached.
    by_place = session.execute(
        select(col(OrgUnit.path), func.count(), *(func.sum(getattr(Activity, k)) for k in _AUDIENCE))
        .join(OrgUnit, col(OrgUnit.id) == col(Activity.org_unit_id))
        .where(_held(start, end), _under(col(Activity.org_unit_id), unit.path))
        .group_by(col(OrgUnit.path))).all()
    schools_q = institutions.schools_in(session, unit.id or 0).subquery()
    schools = session.execute(
        select(col(OrgUnit.path), _school_reached(start, end, schools_q.c.id)).select_from(schools_q)
        .join(OrgUnit, col(OrgUnit.id) == schools_q.c.org_unit_id)).all()
    villages = session.execute(
        select(col(OrgUnit.path), _village_reached(start, end, col(OrgUnit.path))).where(_villages_under(unit))
    ).all()
    children = list(session.execute(
        select(OrgUnit).where(col(OrgUnit.parent_id) == unit.id).order_by(col(OrgUnit.code))).scalars())
    child_paths = [c.path for c in children]
    places = {row[0]: row for row in by_place}
    school_reached = [(path, bool(hit)) for path, hit in schools]
    village_reached = {path: bool(hit) for path, hit in villages}
    place_of = _prefix_counter(list(places), child_paths)
    school_of = _prefix_counter([p for p, _ in school_reached], child_paths)
    village_of = _prefix_counter(list(village_reached), child_paths)

    def numbers(place_paths: list[str], school_rows: list[tuple[str, bool]], village_paths: list[str]
                ) -> dict[str, Any]:
        out = _zero()
        for path in place_paths:
            _, count, *sums = places[path]
            out["activities"] += int(count)
            for key, value in zip(_AUDIENCE, sums, strict=True):
                out["audience"][key] += int(value or 0)
        out["audience"]["total"] = sum(out["audience"][k] for k in _AUDIENCE)
        out["schools"], out["schools_reached"] = len(school_rows), sum(1 for _, hit in school_rows if hit)
        out["villages"] = len(village_paths)
        out["villages_reached"] = sum(1 for p in village_paths if village_reached[p])
        return out

    def schools_at(paths: list[str]) -> list[tuple[str, bool]]:
        wanted = set(paths)
        return [(p, hit) for p, hit in school_reached if p in wanted]

    return {
        "unit_id": unit.id, "date_from": start.isoformat(), "date_to": end.isoformat(),
        "totals": numbers(list(places), school_reached, list(village_reached)),
        "children": [{"unit_id": c.id, "name": c.name, "level": c.level,
                      **numbers(place_of[c.path], schools_at(school_of[c.path]), village_of[c.path])}
                     for c in children],
    }


def without_activity(session: Session, principal: Principal, *, kind: str, page: PageRequest, unit_id: int | None,
                     date_from: date | None, date_to: date | None) -> list[dict[str, Any]]:
    """The schools (or villages) under a unit where no activity was held in the period (零遗留)."""
    principal.require(Action.activity_read)
    unit = orgunits.get_visible_unit(session, principal, unit_id or principal.org_unit_id)
    start, end = _period(date_from, date_to)
    if kind == "school":
        schools_q = institutions.schools_in(session, unit.id or 0).subquery()
        query = select(schools_q.c.id, schools_q.c.name, schools_q.c.org_unit_id, schools_q.c.kind).where(
            ~_school_reached(start, end, schools_q.c.id))
        rows = session.execute(page.seek(query, schools_q.c.id)).all()
        return [{"kind": "school", "id": r.id, "name": r.name, "org_unit_id": r.org_unit_id,
                 "institution_kind": r.kind} for r in rows]
    columns: list[Any] = [col(OrgUnit.id), col(OrgUnit.name)]
    village_q = select(*columns).where(_villages_under(unit), ~_village_reached(start, end, col(OrgUnit.path)))
    rows = session.execute(page.seek(village_q, col(OrgUnit.id))).all()
    return [{"kind": "village", "id": r.id, "name": r.name, "org_unit_id": r.id, "institution_kind": None}
            for r in rows]
