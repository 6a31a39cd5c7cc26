"""Versioned inspection checklists, one per kind of venue, in Chinese and English.

A version, once published, never changes: a phone that recorded an inspection offline against an
older version still syncs, and its answers are read against the items of that version.
"""

from __future__ import annotations

from dataclasses import dataclass

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

_ALL: tuple[Checklist, ...] = (
    Checklist("accommodation", 1, "住宿场所“五必须”检查表", "Accommodation: the five musts",
              (VenueType.hotel, VenueType.on_demand_cinema), FIVE_MUSTS),
    Checklist("esports_hotel", 1, "电竞酒店检查表（五必须+电竞区域）", "E-sports hotel: five musts and gaming area",
              (VenueType.esports_hotel,), FIVE_MUSTS + ESPORTS_EXTRA),
    Checklist("entertainment", 1, "娱乐场所禁止未成年人检查表", "Entertainment venues: no minors",
              (VenueType.internet_cafe, VenueType.bar, VenueType.ktv), NO_MINORS),
    Checklist("generic", 1, "通用检查表", "Generic checklist", (VenueType.training, VenueType.school_shop), GENERIC),
)

CHECKLISTS: dict[tuple[str, int], Checklist] = {(c.code, c.version): c for c in _ALL}
CURRENT: dict[VenueType, Checklist] = {}
for _c in _ALL:
    for _t in _c.venue_types:
        if _t not in CURRENT or CURRENT[_t].version < _c.version:
            CURRENT[_t] = _c


def current_for(venue_type: VenueType) -> Checklist:
    """The checklist a phone should use for this kind of venue now."""
    return CURRENT[venue_type]


def get(code: str, version: int) -> Checklist | None:
    return CHECKLISTS.get((code, version))


def all_checklists() -> list[Checklist]:
    return list(_ALL)
