"""Printable paperwork from an inspection: the inspection record (检查记录) and the rectification
notice (责令整改通知书), as PDF files an officer prints and signs.

Drawn with ReportLab (pure Python; see README.md "Printable paperwork"): the Chinese font is the
machine's WenQuanYi Micro Hei (or Noto Sans CJK), embedded as a TrueType subset, so the PDF prints the
same on any computer. Every text a person typed (venue names, findings, measures) is escaped before
it reaches a Paragraph, which would otherwise read "<b>" or "&amp;" as markup.

Only the venue (a business), the officers and what they recorded appear: nothing of the registry
(no child, no household) is read here. The inspection's free notes are left out for the same
reason: they are not part of either form and could name a person.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache, partial
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from PIL import Image as PILImage
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFError, TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Image, KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle
from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts.grants import AGENCY_ZH
from backend.accounts.models import Agency, User
from backend.accounts.principal import Principal
from backend.audit import service as audit
from backend.core import clock
from backend.core import text as texts
from backend.core.errors import Conflict
from backend.inspections import checklists
from backend.inspections.models import OPEN_STATUSES, Inspection, InspectionInspector, Penalty, PenaltyKind, Problem
from backend.inspections.schemas import Answer
from backend.inspections.service import get_inspection
from backend.media import service as media
from backend.media.models import MediaState
from backend.media.storage import get_storage
from backend.orgunits.models import OrgLevel, OrgUnit
from backend.orgunits.service import nearest_ancestor
from backend.venues.models import Venue, VenueType

PDF_TYPE = "application/pdf"
FONT_NAME = "HuleiCJK"
FONT_FILES = (
    (Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"), 0),
    (Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"), 2),  # the SC face
)
PHOTO_MAX_PX = 800  # photos are re-encoded this small: a record prints them about 8 cm wide
PHOTO_QUALITY = 70
ANSWER_ZH = {Answer.yes: "是", Answer.no: "否", Answer.na: "不适用"}
PENALTY_ZH = {PenaltyKind.warning: "警告", PenaltyKind.fine: "罚款", PenaltyKind.confiscation: "没收违法所得",
              PenaltyKind.suspension: "责令停业整顿", PenaltyKind.licence_revoked: "吊销许可证",
              PenaltyKind.other: "其他"}


class NoOpenProblems(Conflict):
    code = "inspection-no-open-problems"
    title_zh = "该次检查没有待整改的问题，无需出具责令整改通知书"
    title_en = "The inspection has no open problem to notify"


class FontMissing(RuntimeError):
    """No Chinese font on this machine (scripts/bootstrap installs fonts-wqy-microhei)."""


@cache
def font_name() -> str:
    """Register the Chinese font once per process and return its ReportLab name."""
    for path, index in FONT_FILES:
        if not path.exists():
            continue
        try:
            pdfmetrics.registerFont(TTFont(FONT_NAME, str(path), subfontIndex=index))
        except TTFError:  # e.g. CFF outlines, which ReportLab cannot embed
            continue
        return FONT_NAME
    raise FontMissing("no CJK TrueType font: install fonts-wqy-microhei")


def has_glyphs(text: str) -> bool:
    """Whether the embedded font can draw every character of `text`."""
    face = pdfmetrics.getFont(font_name()).face
    return all(ord(c) in face.charToGlyph for c in text if not c.isspace())


# --- what the documents say --------------------------------------------------------------------


@dataclass(frozen=True)
class Officer:
    name: str
    agency: str


@dataclass(frozen=True)
class ItemLine:
    text: str
    answer: str
    finding: str


@dataclass(frozen=True)
class ProblemLine:
    description: str
    measure: str
    deadline: date
    open: bool


@dataclass(frozen=True)
class PenaltyLine:
    kind: str
    amount_yuan: int | None
    decision_number: str
    decided: date


@dataclass(frozen=True)
class Paperwork:
    inspection_id: int
    venue_name: str
    venue_type: str
    venue_address: str
    operator: str
    started_at: datetime
    finished_at: datetime | None
    officers: list[Officer]
    issuing_agency: str
    checklist_title: str
    checklist_version: int
    is_joint: bool
    is_reinspection: bool
    items: list[ItemLine]
    problems: list[ProblemLine]
    penalties: list[PenaltyLine]
    photos: list[bytes]  # JPEG, re-encoded small, no metadata


def _agency_zh(code: str) -> str:
    try:
        return AGENCY_ZH[Agency(code)]
    except ValueError:
        return "其他单位"


def _issuing_agency(session: Session, inspection: Inspection, officers: Sequence[tuple[int, str]]) -> str:
    """The recording officer's agency (or the first officer's) at the town the venue lies in."""
    agency = next((a for uid, a in officers if uid == inspection.recorded_by_user_id),
                  officers[0][1] if officers else "")
    unit = session.get(OrgUnit, inspection.org_unit_id)
    town = nearest_ancestor(session, unit, OrgLevel.town) if unit is not None else None
    place = town.name if town is not None else (unit.name if unit is not None else "")
    return f"{place}{_agency_zh(agency)}" if agency else place


def small_jpeg(data: bytes) -> bytes | None:
    """The photo re-encoded as a small JPEG with no metadata (None when it does not decode)."""
    try:
        with PILImage.open(io.BytesIO(data)) as im:
            im.load()
            rgb = im.convert("RGB")
    except (OSError, ValueError, PILImage.DecompressionBombError):
        return None
    rgb.thumbnail((PHOTO_MAX_PX, PHOTO_MAX_PX))
    rgb.info = {}
    out = io.BytesIO()
    rgb.save(out, "JPEG", quality=PHOTO_QUALITY)
    return out.getvalue()


def _photos(session: Session, principal: Principal, inspection: Inspection) -> list[bytes]:
    """The inspection's processed photos the caller may see, from their display derivative."""
    try:
        parent = uuid.UUID(inspection.client_uuid)
    except ValueError:
        return []
    storage = get_storage()
    out = []
    for item in media.list_for_parent(session, principal, "inspection", parent):
        if item.state != MediaState.ready.value or item.display_key is None:
            continue
        try:
            data = storage.get_bytes(item.display_key)
        except FileNotFoundError:
            continue
        jpeg = small_jpeg(data)
        if jpeg is not None:
            out.append(jpeg)
    return out


def gather(session: Session, principal: Principal, inspection: Inspection) -> Paperwork:
    """Everything both documents print, read once."""
    assert inspection.id is not None
    venue = session.get(Venue, inspection.venue_id)
    assert venue is not None
    people = session.execute(
        select(InspectionInspector, User).join(User, col(User.id) == col(InspectionInspector.user_id))
        .where(col(InspectionInspector.inspection_id) == inspection.id).order_by(col(InspectionInspector.user_id))
    ).all()
    officers = [Officer(u.display_name, _agency_zh(i.agency)) for i, u in people]
    problems = list(session.execute(select(Problem).where(
        col(Problem.found_in_inspection_id) == inspection.id).order_by(col(Problem.id))).scalars())
    penalties = list(session.execute(select(Penalty).where(
        col(Penalty.inspection_id) == inspection.id).order_by(col(Penalty.id))).scalars())
    checklist = checklists.get(session, inspection.checklist_code, inspection.checklist_version)
    by_item = {p.item_code: p.description for p in problems if p.item_code}
    items: list[ItemLine] = []
    if checklist is not None:
        for item in checklist.items:
            raw = inspection.answers.get(item.code)
            answer = ANSWER_ZH[Answer(raw)] if isinstance(raw, str) and raw in Answer.__members__ else "未作答"
            items.append(ItemLine(item.text_zh, answer, by_item.get(item.code, "")))
    try:
        vtype = VenueType(venue.venue_type).zh
    except ValueError:
        vtype = "其他场所"
    return Paperwork(
        inspection_id=inspection.id, venue_name=venue.name, venue_type=vtype, venue_address=venue.address,
        operator=venue.owner_name, started_at=clock.as_utc(inspection.started_at),
        finished_at=clock.as_utc(inspection.finished_at) if inspection.finished_at else None,
        officers=officers,
        issuing_agency=_issuing_agency(session, inspection, [(i.user_id, i.agency) for i, _ in people]),
        checklist_title=checklist.title_zh if checklist is not None else inspection.checklist_code,
        checklist_version=inspection.checklist_version, is_joint=inspection.is_joint,
        is_reinspection=inspection.is_reinspection, items=items,
        problems=[ProblemLine(p.description, p.measure, p.deadline_date, p.status in OPEN_STATUSES)
                  for p in problems],
        penalties=[PenaltyLine(PENALTY_ZH.get(PenaltyKind(p.kind), "其他") if p.kind in PenaltyKind.__members__
                               else "其他", p.amount_yuan, p.decision_number, p.decided_date) for p in penalties],
        photos=_photos(session, principal, inspection),
    )


# --- drawing ------------------------------------------------------------------------------------


def _styles() -> dict[str, ParagraphStyle]:
    font = font_name()
    base = ParagraphStyle("body", fontName=font, fontSize=10.5, leading=15, wordWrap="CJK")
    return {
        "body": base,
        "cell": ParagraphStyle("cell", parent=base, fontSize=9.5, leading=13),
        "head": ParagraphStyle("head", parent=base, fontSize=9.5, leading=13, textColor=colors.black),
        "title": ParagraphStyle("title", parent=base, fontSize=18, leading=26, alignment=TA_CENTER, spaceAfter=6),
        "h2": ParagraphStyle("h2", parent=base, fontSize=12, leading=18, spaceBefore=8, spaceAfter=4),
        "right": ParagraphStyle("right", parent=base, alignment=TA_RIGHT),
        "indent": ParagraphStyle("indent", parent=base, firstLineIndent=21),
    }


def para(text: str, style: ParagraphStyle) -> Paragraph:
    """A paragraph showing `text` literally: cleaned, markup escaped, line breaks kept."""
    safe = escape(texts.clean(text)).replace("\r\n", "\n").replace("\r", "\n").replace("\n", "<br/>")
    return Paragraph(safe, style)


def china_time_text(at: datetime) -> str:
    return clock.china_time(at).strftime("%Y-%m-%d %H:%M")


def china_date_text(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def _grid(rows: list[list[Any]], widths: Sequence[float], *, header: bool = True) -> Table:
    # splitInRow: a row taller than a page (a 1,000-character finding) splits across pages instead of
    # failing the whole document with a LayoutError.
    table = Table(rows, colWidths=list(widths), repeatRows=1 if header else 0, splitInRow=1)
    style = [("GRID", (0, 0), (-1, -1), 0.5, colors.black), ("VALIGN", (0, 0), (-1, -1), "TOP"),
             ("FONTNAME", (0, 0), (-1, -1), font_name()),
             ("LEFTPADDING", (0, 0), (-1, -1), 3), ("RIGHTPADDING", (0, 0), (-1, -1), 3)]
    if header:
        style.append(("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8e8e8")))
    table.setStyle(TableStyle(style))
    return table


def _footer(label: str) -> Any:
    def draw(canvas: Canvas, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont(font_name(), 8)
        canvas.drawCentredString(A4[0] / 2, 10 * mm, f"{label}　第 {doc.page} 页")
        canvas.restoreState()
    return draw


def _build(story: list[Any], title: str, footer: str) -> bytes:
    out = io.BytesIO()
    doc = SimpleDocTemplate(out, pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm, topMargin=16 * mm,
                            bottomMargin=18 * mm, title=title, author="护蕾 Hulei", creator="Hulei")
    doc.build(story, onFirstPage=_footer(footer), onLaterPages=_footer(footer),
              canvasmaker=partial(Canvas, initialFontName=font_name(), initialFontSize=10))
    return out.getvalue()


WIDTH = A4[0] - 36 * mm


def record_pdf(p: Paperwork) -> bytes:
    """检查记录: the venue, when and by whom, every checklist answer, problems, penalties, photos."""
    s = _styles()
    c = s["cell"]
    when = china_time_text(p.started_at) + (f" 至 {china_time_text(p.finished_at)}" if p.finished_at else "")
    kind = "、".join(k for k, on in (("联合执法", p.is_joint), ("复查", p.is_reinspection)) if on) or "日常检查"
    info = [
        [para("场所名称", c), para(p.venue_name, c), para("场所类型", c), para(p.venue_type, c)],
        [para("地址", c), para(p.venue_address or "—", c), para("经营者/负责人", c), para(p.operator or "—", c)],
        [para("检查时间", c), para(when + "（北京时间）", c), para("检查类别", c), para(kind, c)],
        [para("检查人员", c), para("；".join(f"{o.name}（{o.agency}）" for o in p.officers) or "—", c),
         para("检查表", c), para(f"{p.checklist_title}（第{p.checklist_version}版）", c)],
    ]
    story: list[Any] = [para("场所检查记录", s["title"]), para(f"记录编号：JC-{p.inspection_id:06d}", s["right"]),
                        Spacer(1, 4), _grid(info, [22 * mm, 64 * mm, 26 * mm, WIDTH - 112 * mm], header=False),
                        para("一、检查项目及结果", s["h2"])]
    items = [[para("序号", c), para("检查内容", c), para("结果", c), para("发现问题", c)]]
    items += [[para(str(n), c), para(i.text, c), para(i.answer, c), para(i.finding or "—", c)]
              for n, i in enumerate(p.items, start=1)]
    story.append(_grid(items, [12 * mm, 80 * mm, 16 * mm, WIDTH - 108 * mm]))
    story.append(para("二、发现的问题及整改要求", s["h2"]))
    if p.problems:
        rows = [[para("序号", c), para("问题", c), para("整改措施", c), para("整改期限", c)]]
        rows += [[para(str(n), c), para(q.description, c), para(q.measure, c), para(china_date_text(q.deadline), c)]
                 for n, q in enumerate(p.problems, start=1)]
        story.append(_grid(rows, [12 * mm, 62 * mm, 70 * mm, WIDTH - 144 * mm]))
    else:
        story.append(para("本次检查未发现问题。", s["body"]))
    story.append(para("三、处罚决定", s["h2"]))
    if p.penalties:
        rows = [[para("种类", c), para("金额（元）", c), para("决定书文号", c), para("决定日期", c)]]
        rows += [[para(x.kind, c), para("—" if x.amount_yuan is None else str(x.amount_yuan), c),
                  para(x.decision_number or "—", c), para(china_date_text(x.decided), c)] for x in p.penalties]
        story.append(_grid(rows, [40 * mm, 30 * mm, 60 * mm, WIDTH - 130 * mm]))
    else:
        story.append(para("无。", s["body"]))
    story.append(para("四、现场照片", s["h2"]))
    if p.photos:
        cells = []
        for jpeg in p.photos:
            with PILImage.open(io.BytesIO(jpeg)) as im:
                w, h = im.size
            scale = min(80 * mm / w, 60 * mm / h)
            cells.append(Image(io.BytesIO(jpeg), width=w * scale, height=h * scale))
        grid = [cells[i:i + 2] + [""] * (2 - len(cells[i:i + 2])) for i in range(0, len(cells), 2)]
        story.append(Table(grid, colWidths=[WIDTH / 2, WIDTH / 2]))
    else:
        story.append(para("无。", s["body"]))
    story += [Spacer(1, 14), KeepTogether([
        para("检查人员（签名）：____________________　　被检查单位负责人（签名）：____________________", s["body"]),
        Spacer(1, 8), para("日期：______年____月____日", s["right"])])]
    return _build(story, "场所检查记录", f"场所检查记录 JC-{p.inspection_id:06d}")


def notice_pdf(p: Paperwork, issued: date) -> bytes:
    """责令整改通知书: the open problems with their measure and deadline, issued by the agency."""
    open_problems = [q for q in p.problems if q.open]
    s = _styles()
    c = s["cell"]
    agencies = "、".join(dict.fromkeys(o.agency for o in p.officers)) or p.issuing_agency
    addressee = p.venue_name + (f"（经营者/负责人：{p.operator}）" if p.operator else "")
    story: list[Any] = [
        para("责令整改通知书", s["title"]),
        para(f"编号：ZG-{p.inspection_id:06d}", s["right"]), Spacer(1, 6),
        para(f"{addressee}：", s["body"]), Spacer(1, 4),
        para(f"{china_date_text(clock.china_date(p.started_at))}，{agencies}对你单位"
             f"（{p.venue_type}，地址：{p.venue_address or '—'}）进行了检查，发现存在下列问题。"
             "根据《中华人民共和国未成年人保护法》等有关规定，现责令你单位按下列要求限期整改，"
             f"并于整改期限届满前将整改情况书面报告{p.issuing_agency}。逾期不整改或整改不到位的，将依法处理。",
             s["indent"]),
        Spacer(1, 6),
    ]
    rows = [[para("序号", c), para("存在问题", c), para("整改要求", c), para("整改期限", c)]]
    rows += [[para(str(n), c), para(q.description, c), para(q.measure, c), para(f"{china_date_text(q.deadline)}前", c)]
             for n, q in enumerate(open_problems, start=1)]
    story.append(_grid(rows, [12 * mm, 62 * mm, 70 * mm, WIDTH - 144 * mm]))
    story += [Spacer(1, 18), KeepTogether([
        para(f"发文单位：{p.issuing_agency}（盖章）", s["right"]), Spacer(1, 6),
        para(f"{china_date_text(issued)}", s["right"]), Spacer(1, 14),
        para("检查人员（签名）：____________________", s["body"]), Spacer(1, 10),
        para("被检查单位签收：____________________　　签收日期：______年____月____日", s["body"]),
        Spacer(1, 10),
        para("本通知书一式两份，一份交被检查单位，一份存档。", s["body"]),
    ])]
    return _build(story, "责令整改通知书", f"责令整改通知书 ZG-{p.inspection_id:06d}")


# --- the service --------------------------------------------------------------------------------

DOCUMENTS = {"record": "inspection-record", "rectification_notice": "rectification-notice"}


def document(session: Session, principal: Principal, inspection_id: int, kind: str) -> tuple[bytes, str]:
    """(PDF bytes, file name) of one of an inspection's documents in the caller's jurisdiction; audited."""
    inspection = get_inspection(session, principal, inspection_id)
    paperwork = gather(session, principal, inspection)
    if kind == "rectification_notice":
        if not paperwork.problems:
            raise NoOpenProblems("该次检查未发现问题，无需出具责令整改通知书",
                                 "the inspection raised no problem", inspection_id=inspection_id)
        if not any(q.open for q in paperwork.problems):
            raise NoOpenProblems("该次检查发现的问题均已整改销号", "every problem the inspection raised is verified",
                                 inspection_id=inspection_id)
        data = notice_pdf(paperwork, clock.china_date(clock.now()))
    else:
        data = record_pdf(paperwork)
    audit.record(session, actor=principal, action=f"inspection.pdf.{kind}", object_type="inspection",
                 object_id=inspection_id, org_unit_id=inspection.org_unit_id,
                 details={"document": kind, "venue_id": inspection.venue_id, "bytes": len(data)})
    return data, f"hulei-{DOCUMENTS[kind]}-{inspection_id}.pdf"
