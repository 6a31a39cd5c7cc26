"""Versioned inspection checklists, one per kind of venue, in Chinese and English.

A version, once published, never changes: a phone that recorded an inspection offline against an
older version still syncs, and its answers are read against the items of that version.

The versions live in the `inspection_checklist` table. The built-in national ones below are its
version 1 (written on first use, `ensure_builtin`); a county coordinator publishes the county's own
next versions (backend/inspections/checklist_templates.py). Towns and phones of that county then use
the county's current version; every other county keeps the national one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlmodel import Session, col

from backend.core import clock
from backend.core.db import dialect_insert
from backend.inspections.models import InspectionChecklistVersion
from backend.orgunits.models import OrgUnit, subtree_upper_bound
from backend.venues.models import VenueType


@dataclass(frozen=True)
class ChecklistItem:
    code: str
    text_zh: str
    text_en: str
    measure_zh: str  # default rectification measure when the answer is "no"
    deadline_days: int = 7


@dataclass(frozen=True)
class Checklist:
    code: str
    version: int
    title_zh: str
    title_en: str
    venue_types: tuple[VenueType, ...]
    items: tuple[ChecklistItem, ...]
    owner_unit_id: int | None = None  # the county whose version this is; None for the national one
    published_at: datetime | None = None

    def item(self, code: str) -> ChecklistItem | None:
        return next((i for i in self.items if i.code == code), None)


FIVE_MUSTS: tuple[ChecklistItem, ...] = (
    ChecklistItem("five_musts.identity", "必须查验入住未成年人身份，并如实登记报送相关信息",
                  "Checks the identity of every minor guest and registers it truthfully",
                  "立即落实未成年人入住身份查验和登记报送制度，对前台人员开展培训", 3),
    ChecklistItem("five_musts.guardian", "必须询问未成年人父母或者其他监护人的联系方式，并记录备查",
                  "Asks for the parents' or guardians' contact and records it",
                  "完善未成年人入住登记表，增加监护人联系方式栏并逐一记录", 3),
    ChecklistItem("five_musts.companion", "必须询问同住人员身份关系等情况，并记录备查",
                  "Asks the identity of companions and their relationship to the minor, and records it",
                  "落实同住人员身份关系询问登记，建立记录台账", 3),
    ChecklistItem("five_musts.patrol", "必须加强安全巡查和访客管理，预防对未成年人的不法侵害",
                  "Patrols the premises and controls visitors to prevent harm to minors",
                  "制定巡查和访客登记制度，明确专人负责并留存巡查记录", 7),
    ChecklistItem("five_musts.report", "必须第一时间联系未成年人的父母或者其他监护人，并向公安机关报告可疑情况",
                  "Contacts the guardians at once and reports anything suspicious to the police",
                  "明确强制报告责任人和流程，张贴报警电话和报告流程", 7),
)

NO_MINORS: tuple[ChecklistItem, ...] = (
    ChecklistItem("no_minors.admitted", "未接纳未成年人进入（或在法定节假日外时段进入）",
                  "No minors admitted", "立即清退未成年人，落实入场身份查验，门口设专人把关", 1),
    ChecklistItem("no_minors.sign", "在显著位置设置未成年人禁入或者限入标志",
                  "The no-minors sign is posted where everyone sees it", "在入口显著位置张贴未成年人禁入标志", 3),
    ChecklistItem("no_minors.employed", "未招用未成年人", "No minors employed",
                  "立即解除未成年人用工，核查全部从业人员年龄", 1),
    ChecklistItem("no_minors.accompaniment", "无组织、安排未成年人从事有偿陪侍行为",
                  "No paid accompaniment by minors", "立即停止违法行为，依法移交公安机关处理", 1),
    ChecklistItem("no_minors.id_checks", "对难以判明是否成年的顾客查验身份证件并记录",
                  "ID checks are made and recorded for anyone who may be a minor",
                  "建立身份证件查验登记簿，逐一登记查验情况", 3),
)

ESPORTS_EXTRA: tuple[ChecklistItem, ...] = (
    ChecklistItem("esports.no_minors_gaming", "电竞酒店电竞区域未接待未成年人",
                  "No minors in the e-sports rooms or area",
                  "立即清退未成年人，电竞房间落实身份查验并设置未成年人禁入标志", 1),
)

GENERIC: tuple[ChecklistItem, ...] = (
    ChecklistItem("generic.licence", "证照齐全有效，经营范围与实际一致",
                  "Licences are complete, valid and match the business", "补办或变更证照", 14),
    ChecklistItem("generic.staff_check", "从业人员入职前已进行性侵违法犯罪信息查询",
                  "Staff were checked against the sexual-offence record before hiring",
                  "对全部从业人员补做入职查询，不合格者依法解聘", 7),
    ChecklistItem("generic.safety", "安全管理制度落实，未成年人活动区域无安全隐患",
                  "Safety rules are followed and areas used by minors are safe", "排除安全隐患并建立检查记录", 7),
    ChecklistItem("generic.reporting", "知晓并落实强制报告制度",
                  "Staff know and follow the mandatory reporting duty", "组织强制报告制度学习并张贴报告流程", 7),
    ChecklistItem("generic.education", "开展或配合开展防性侵教育宣传",
                  "Abuse-prevention education is held or supported", "张贴宣传资料，组织一次防性侵教育", 14),
)

# 剧本娱乐经营场所 (script games, escape rooms), licensed by 文旅: minors may come on holidays only, to
# content marked suitable for their age (issue 18).
SCRIPT_GAME: tuple[ChecklistItem, ...] = (
    ChecklistItem("script_game.age_notice", "剧本和场景标注适龄提示，在显著位置公示",
                  "Scripts and rooms carry an age rating, posted where customers see it",
                  "对全部剧本和场景进行适龄分级并公示", 7),
    ChecklistItem("script_game.unsuitable_content", "未向未成年人提供含恐怖、暴力、色情等不适宜内容的剧本和场景",
                  "No horror, violent, sexual or otherwise unsuitable scripts or rooms for minors",
                  "立即停止向未成年人提供不适宜内容，下架违规剧本", 1),
    ChecklistItem("script_game.hours", "除法定节假日、休息日及寒暑假期外，未向未成年人提供服务",
                  "Minors are served only on public holidays, weekends and school holidays",
                  "落实未成年人服务时段限制，入场查验身份并登记", 3),
    NO_MINORS[2],  # no_minors.employed
    NO_MINORS[4],  # no_minors.id_checks
    GENERIC[1],  # generic.staff_check
)

BUILTIN: tuple[Checklist, ...] = (
    Checklist("accommodation", 1, "住宿场所“五必须”检查表", "Accommodation: the five musts",
              (VenueType.hotel, VenueType.on_demand_cinema), FIVE_MUSTS),
    Checklist("esports_hotel", 1, "电竞酒店检查表（五必须+电竞区域）", "E-sports hotel: five musts and gaming area",
              (VenueType.esports_hotel,), FIVE_MUSTS + ESPORTS_EXTRA),
    Checklist("entertainment", 1, "娱乐场所禁止未成年人检查表", "Entertainment venues: no minors",
              (VenueType.internet_cafe, VenueType.bar, VenueType.ktv), NO_MINORS),
    Checklist("generic", 1, "通用检查表", "Generic checklist", (VenueType.training, VenueType.school_shop), GENERIC),
    # A code of its own rather than a new version of "entertainment": a published version never changes.
    Checklist("amusement", 1, "游艺厅禁止未成年人检查表", "Amusement arcades: no minors", (VenueType.amusement_arcade,),
              NO_MINORS),
    Checklist("script_game", 1, "剧本杀/密室逃脱检查表", "Script games and escape rooms",
              (VenueType.script_game,), SCRIPT_GAME),
)
_BUILTIN_CURRENT: dict[VenueType, Checklist] = {t: c for c in BUILTIN for t in c.venue_types}


def builtin_current(venue_type: VenueType) -> Checklist:
    """The built-in national checklist for this kind of venue (what no county has replaced)."""
    return _BUILTIN_CURRENT[venue_type]


def item_row(i: ChecklistItem) -> dict[str, Any]:
    return {"code": i.code, "text_zh": i.text_zh, "text_en": i.text_en, "measure_zh": i.measure_zh,
            "deadline_days": i.deadline_days}


def from_row(row: InspectionChecklistVersion) -> Checklist:
    """A stored version as the frozen value the rest of the service reads."""
    return Checklist(
        code=row.code, version=row.version, title_zh=row.title_zh, title_en=row.title_en,
        venue_types=tuple(VenueType(t) for t in row.venue_types),
        items=tuple(ChecklistItem(str(i["code"]), str(i["text_zh"]), str(i["text_en"]), str(i["measure_zh"]),
                                  int(i["deadline_days"])) for i in row.items),
        owner_unit_id=row.owner_unit_id, published_at=clock.as_utc(row.published_at),
    )


def ensure_builtin(session: Session) -> None:
    """Make sure the built-in national versions exist (idempotent, race-safe: a new database gets them
    on first use, with the codes and versions phones and stored inspections already name)."""
    have = set(session.execute(select(col(InspectionChecklistVersion.code)).where(
        col(InspectionChecklistVersion.owner_unit_id).is_(None),
        col(InspectionChecklistVersion.version) == 1)).scalars())
    missing = [c for c in BUILTIN if c.code not in have]
    if not missing:
        return
    insert = dialect_insert(session)
    for c in missing:
        session.execute(insert(InspectionChecklistVersion).values(
            code=c.code, version=c.version, title_zh=c.title_zh, title_en=c.title_en,
            venue_types=[t.value for t in c.venue_types], items=[item_row(i) for i in c.items],
            owner_unit_id=None, published_by=None, published_at=clock.now(),
        ).on_conflict_do_nothing())


def ancestor_ids(unit_path: str) -> list[int]:
    """The ids of the units on a path ("/1/4/17/" -> [1, 4, 17]): the unit and those above it."""
    return [int(p) for p in unit_path.strip("/").split("/") if p]


def applies_at(checklist: Checklist, unit_path: str | None) -> bool:
    """Whether an inspection at a unit may be recorded against this version: a national version
    anywhere, a county's only inside that county."""
    if checklist.owner_unit_id is None:
        return True
    return unit_path is not None and checklist.owner_unit_id in ancestor_ids(unit_path)


def _versions(session: Session, *conditions: Any) -> list[Checklist]:
    ensure_builtin(session)
    rows = session.execute(select(InspectionChecklistVersion).where(*conditions).order_by(
        col(InspectionChecklistVersion.code), col(InspectionChecklistVersion.version))).scalars()
    return [from_row(r) for r in rows]


def _over(unit_path: str | None) -> Any:
    """The versions that apply at a unit: national, or of a county above it (or the unit itself)."""
    owner = col(InspectionChecklistVersion.owner_unit_id)
    if unit_path is None:
        return owner.is_(None)
    return or_(owner.is_(None), owner.in_(ancestor_ids(unit_path)))


def effective(session: Session, unit_path: str | None) -> dict[str, Checklist]:
    """Per code, the version in force at a unit: the county's newest when its county has published one,
    else the newest national version."""
    out: dict[str, Checklist] = {}
    for c in _versions(session, _over(unit_path)):  # ordered by version: the newest wins
        held = out.get(c.code)
        if held is None or (c.owner_unit_id is not None) >= (held.owner_unit_id is not None):
            out[c.code] = c
    return out


def current_by_type(session: Session, unit_path: str | None = None) -> dict[VenueType, Checklist]:
    """For every kind of venue, the checklist in force at the unit on `unit_path`: its county's current
    version where the county has one, else the national one."""
    in_force = sorted(effective(session, unit_path).values(),
                      key=lambda c: (c.owner_unit_id is not None, c.version), reverse=True)
    national = sorted(_versions(session, _over(None)), key=lambda c: c.version, reverse=True)
    out: dict[VenueType, Checklist] = {}
    # A county version that dropped a kind of venue leaves it to the newest national version naming it.
    for c in [*in_force, *national]:
        for t in c.venue_types:
            out.setdefault(t, c)
    for t in VenueType:
        out.setdefault(t, builtin_current(t))
    return out


def current_for(session: Session, venue_type: VenueType, *, unit_path: str | None = None) -> Checklist:
    """The checklist a phone should use for this kind of venue now, at the unit on `unit_path`."""
    return current_by_type(session, unit_path)[venue_type]


def get(session: Session, code: str, version: int) -> Checklist | None:
    """One published version (any owner): what an inspection recorded against it is read with."""
    row = session.execute(select(InspectionChecklistVersion).where(
        col(InspectionChecklistVersion.code) == code, col(InspectionChecklistVersion.version) == version)
    ).scalar_one_or_none()
    if row is None and version == 1 and any(c.code == code for c in BUILTIN):
        ensure_builtin(session)  # a new database: the built-in versions are written on first use
        return get(session, code, version)
    return from_row(row) if row is not None else None


def all_checklists(session: Session, *, unit_path: str | None = None) -> list[Checklist]:
    """Every published version; with `unit_path`, those that concern that unit: the national ones, its
    county's, and those of the counties under it (a city or province sees its counties' versions)."""
    if unit_path is None:
        return _versions(session)
    owner = col(InspectionChecklistVersion.owner_unit_id)
    below = select(col(OrgUnit.id)).where(col(OrgUnit.path) >= unit_path,
                                          col(OrgUnit.path) < subtree_upper_bound(unit_path))
    return _versions(session, or_(_over(unit_path), owner.in_(below)))
