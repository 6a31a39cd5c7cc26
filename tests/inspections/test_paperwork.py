"""Printable paperwork from an inspection: the record (检查记录) and the rectification notice
(责令整改通知书), read back with a real PDF text extractor."""

from __future__ import annotations

import io
import re
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from pypdf import PdfReader
from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts.models import Agency
from backend.accounts.permissions import Role
from backend.audit.models import AuditEntry
from backend.core import clock
from backend.inspections import checklists, paperwork
from backend.orgunits import service as orgunits
from backend.orgunits.models import OrgLevel
from backend.venues.models import VenueType
from tests.factories import user_client
from tests.media.conftest import camera_jpeg, media_root  # noqa: F401  (fixture)
from tests.media.test_uploads import put, run_worker
from tests.venues.factories import grid_point, inspection_body, make_venue, make_world

TRICKY_NAME = "=1+1 <b>粗体</b> &amp; 悦来客栈"


def _squash(text: str) -> str:
    """Text without whitespace: a PDF breaks lines wherever the column ends."""
    return re.sub(r"\s+", "", text)


def pdf_text(data: bytes) -> str:
    return _squash("".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages))


def _fonts(data: bytes) -> list[Any]:
    """The fonts the pages' text is shown in (Tf then Tj/TJ; ReportLab names Helvetica, unused)."""
    reader = PdfReader(io.BytesIO(data))
    found = []
    for page in reader.pages:
        fonts = page["/Resources"].get_object().get("/Font", {}).get_object()
        used = set(re.findall(rb"/(F[0-9+]+) [0-9.]+ Tf[^\n]*T[jJ]", page.get_contents().get_data()))
        assert used
        found.extend(fonts[f"/{name.decode()}"].get_object() for name in used)
    return found


def _china_date(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def _today() -> date:
    return clock.now().astimezone(clock.SHANGHAI).date()


def test_the_record_prints_venue_officers_every_answer_problems_penalty_and_photos(
        client: TestClient, session: Session, media_root: Path) -> None:  # noqa: F811
    w = make_world(client, session)
    hotel = make_venue(session, w.town, venue_type=VenueType.hotel, name=TRICKY_NAME)
    at = grid_point((0, 0))
    body = inspection_body(hotel, no=("five_musts.guardian",), at=at, inspector_ids=[w.police.user.id],
                           findings=[{"item_code": "five_musts.guardian", "description": "登记表无监护人电话栏",
                                      "measure": "增设监护人联系方式栏"}],
                           penalties=[{"kind": "warning", "decision_number": "市监罚〔2026〕1号"}],
                           notes="前台称张小明昨晚入住")
    photo = uuid.uuid4()
    sent = put(client, w.market.headers, photo, camera_jpeg(1600, 1200, lon=at[0], lat=at[1]),
               parent=uuid.UUID(body["client_uuid"]), kind="inspection")
    assert sent.status_code == 201, sent.text
    created = client.post("/api/v1/inspections", json=body, headers=w.market.headers)
    assert created.status_code == 201, created.text
    run_worker()
    inspection_id = created.json()["id"]

    resp = client.get(f"/api/v1/inspections/{inspection_id}/record.pdf", headers=w.coordinator.headers)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/pdf"
    text = pdf_text(resp.content)
    assert "场所检查记录" in text
    assert _squash(TRICKY_NAME) in text  # markup-like and formula-like text printed literally
    assert "旅馆/酒店" in text and "测试地址" in text
    checklist = checklists.get(session, "accommodation", 1)
    assert checklist is not None
    for item in checklist.items:
        assert _squash(item.text_zh) in text, item.text_zh
    assert "否" in text and "是" in text
    assert "登记表无监护人电话栏" in text and "增设监护人联系方式栏" in text
    assert _china_date(_today() + timedelta(days=3)) in text
    assert "市场监管所" in text and "公安（派出所）" in text
    assert _squash(checklist.title_zh) in text and "第1版" in text
    assert "警告" in text and "市监罚〔2026〕1号" in text
    started = datetime.fromisoformat(body["started_at"]).astimezone(clock.SHANGHAI).strftime("%Y-%m-%d%H:%M")
    assert started in text  # China time
    assert "张小明" not in text  # the free notes (which may name a child) are not printed

    # Every font is an embedded TrueType subset ("AAAAAA+WenQuanYiMicroHei-0"): it prints anywhere.
    fonts = _fonts(resp.content)
    assert fonts and all("/FontFile2" in f["/FontDescriptor"] for f in fonts)
    assert all(re.match(r"^/[A-Z]{6}\+", str(f["/BaseFont"])) for f in fonts)
    images = [img for page in PdfReader(io.BytesIO(resp.content)).pages for img in page.images]
    assert len(images) == 1
    shown = Image.open(io.BytesIO(images[0].data))
    assert max(shown.size) <= paperwork.PHOTO_MAX_PX and len(shown.getexif()) == 0


def test_the_notice_lists_open_problems_with_deadlines_and_the_issuing_agency(
        client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    cafe = make_venue(session, w.town, venue_type=VenueType.internet_cafe, name="星际网咖")
    body = inspection_body(cafe, no=("no_minors.sign", "no_minors.id_checks"))
    inspection = client.post("/api/v1/inspections", json=body, headers=w.market.headers).json()

    resp = client.get(f"/api/v1/inspections/{inspection['id']}/rectification-notice.pdf",
                      headers=w.market.headers)
    assert resp.status_code == 200, resp.text
    text = pdf_text(resp.content)
    assert "责令整改通知书" in text and "星际网咖" in text and "测试负责人" in text
    for problem in inspection["problems_opened"]:
        assert _squash(problem["measure"]) in text
        assert _china_date(date.fromisoformat(problem["deadline_date"])) + "前" in text
    assert f"{w.town.town.name}市场监管所（盖章）" in text
    assert _china_date(_today()) in text
    assert "签收" in text


def test_no_notice_for_an_inspection_that_raised_no_problem(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    hotel = make_venue(session, w.town)
    inspection = client.post("/api/v1/inspections", json=inspection_body(hotel), headers=w.police.headers).json()
    resp = client.get(f"/api/v1/inspections/{inspection['id']}/rectification-notice.pdf", headers=w.police.headers)
    assert resp.status_code == 409
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["code"] == "inspection-no-open-problems"
    record = client.get(f"/api/v1/inspections/{inspection['id']}/record.pdf", headers=w.police.headers)
    assert record.status_code == 200 and "本次检查未发现问题" in pdf_text(record.content)


def test_no_notice_once_every_problem_is_verified(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    hotel = make_venue(session, w.town)
    first = client.post("/api/v1/inspections", json=inspection_body(hotel, no=("five_musts.identity",)),
                        headers=w.market.headers).json()
    notice = f"/api/v1/inspections/{first['id']}/rectification-notice.pdf"
    assert client.get(notice, headers=w.market.headers).status_code == 200
    recheck = inspection_body(hotel, rechecks=[{"problem_id": first["problems_opened"][0]["id"], "fixed": True}])
    assert client.post("/api/v1/inspections", json=recheck, headers=w.market.headers).status_code == 201
    refused = client.get(notice, headers=w.market.headers)
    assert refused.status_code == 409 and refused.json()["code"] == "inspection-no-open-problems"


def test_a_long_problem_list_runs_over_several_pages_and_loses_none(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    bar = make_venue(session, w.town, venue_type=VenueType.bar)
    findings = [{"description": f"第{n}号问题：消防通道堆放杂物，未成年人禁入标志被遮挡",
                 "measure": f"措施{n}：清理并重新张贴"} for n in range(1, 41)]
    inspection = client.post("/api/v1/inspections", json=inspection_body(bar, findings=findings),
                             headers=w.market.headers).json()
    resp = client.get(f"/api/v1/inspections/{inspection['id']}/rectification-notice.pdf", headers=w.market.headers)
    assert resp.status_code == 200
    assert len(PdfReader(io.BytesIO(resp.content)).pages) >= 2
    text = pdf_text(resp.content)
    for n in range(1, 41):
        assert f"第{n}号问题" in text and f"措施{n}：" in text


def test_another_units_officer_or_coordinator_is_refused_like_the_json_read_and_reads_are_audited(
        client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    hotel = make_venue(session, w.town, village=0, venue_type=VenueType.hotel)
    inspection = client.post("/api/v1/inspections", json=inspection_body(hotel, no=("five_musts.patrol",)),
                             headers=w.market.headers).json()
    neighbour = orgunits.create_unit(session, code="990101900000", name="邻镇", level=OrgLevel.town,
                                     parent=w.town.county)
    session.commit()
    stranger = user_client(client, session, neighbour, Role.coordinator, agency=Agency.government)
    base = f"/api/v1/inspections/{inspection['id']}"
    for who in (w.foreign_market, stranger):
        json_read = client.get(base, headers=who.headers)
        assert json_read.status_code == 404
        for doc in ("record.pdf", "rectification-notice.pdf"):
            refused = client.get(f"{base}/{doc}", headers=who.headers)
            assert refused.status_code == json_read.status_code
            assert refused.json()["type"] == json_read.json()["type"]
    assert client.get(f"{base}/record.pdf").status_code == 401

    assert client.get(f"{base}/record.pdf", headers=w.coordinator.headers).status_code == 200
    assert client.get(f"{base}/rectification-notice.pdf", headers=w.coordinator.headers).status_code == 200
    rows = session.execute(select(AuditEntry).where(col(AuditEntry.action).startswith("inspection.pdf."),
                                                    col(AuditEntry.object_id) == str(inspection["id"]))
                           .order_by(col(AuditEntry.id))).scalars().all()
    assert [(r.action, r.actor_user_id, r.details["document"]) for r in rows] == [
        ("inspection.pdf.record", w.coordinator.user.id, "record"),
        ("inspection.pdf.rectification_notice", w.coordinator.user.id, "rectification_notice"),
    ]


def _paperwork(name: str, finding: str) -> paperwork.Paperwork:
    return paperwork.Paperwork(
        inspection_id=7, venue_name=name, venue_type="网吧", venue_address="某路1号", operator="某公司",
        started_at=clock.now(), finished_at=None, officers=[paperwork.Officer("李警官", "公安（派出所）")],
        issuing_agency="某镇公安（派出所）", checklist_title="检查表", checklist_version=1, is_joint=False,
        is_reinspection=False, items=[paperwork.ItemLine("未招用未成年人", "否", finding)],
        problems=[paperwork.ProblemLine(finding, "整改", _today(), True)], penalties=[], photos=[])


# Printable text (CJK included) spliced with what a Paragraph would read as markup or an entity.
_MARKUP = st.sampled_from(["<", ">", "&", "&amp;", "&lt;", "<b>", "</b>", "<br/>", "</para>", "<font size=40>",
                           "=1+1", "=HYPERLINK(\"x\")", "&#20013;", "<img src='x'/>"])
_PRINTABLE = st.text(st.characters(codec="utf-8", categories=("L", "N", "P", "S", "Zs")), min_size=1, max_size=30)
_TEXT = st.lists(st.one_of(_MARKUP, _PRINTABLE), min_size=1, max_size=6).map("".join)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=_TEXT, finding=_TEXT)
def test_any_venue_name_or_finding_prints_without_crashing_and_reads_back(name: str, finding: str) -> None:
    record = paperwork.record_pdf(_paperwork(name, finding))
    notice = paperwork.notice_pdf(_paperwork(name, finding), _today())
    for data in (record, notice):
        text = pdf_text(data)
        for value in (name, finding):
            if paperwork.has_glyphs(value) and _squash(value):
                assert _squash(value) in text, (value, text)


# Each field's text is drawn from characters no fixed wording of either form uses, so a field reads back
# complete by keeping only its own characters, wherever a page break, a repeated table header or the
# footer fell into it (a row taller than a page is split; its cells continue on the next page).
_FIELDS = {"name": "鹦鹉螺a", "address": "蜻蜓蝴蝶b", "operator": "麒麟凤凰c", "item": "龟鹤鹭鸥d",
           "description": "蝙蝠鼹鼠e", "measure": "蚂蚁蜈蚣f", "decision": "珊瑚琥珀g"}
_LIMITS = {"name": 120, "address": 200, "operator": 60, "item": 300, "description": 1000, "measure": 1000,
           "decision": 60}  # venues/schemas.py, inspections/schemas.py (checklist item text_zh 300)


def _own(text: str, field: str) -> str:
    return "".join(ch for ch in text if ch in _FIELDS[field])


def _long_paperwork(v: dict[str, str], problems: int) -> paperwork.Paperwork:
    return paperwork.Paperwork(
        inspection_id=7, venue_name=v["name"], venue_type="网吧", venue_address=v["address"],
        operator=v["operator"], started_at=clock.now(), finished_at=None,
        officers=[paperwork.Officer("李警官", "公安（派出所）")], issuing_agency="某镇公安（派出所）",
        checklist_title="检查表", checklist_version=1, is_joint=False, is_reinspection=False,
        items=[paperwork.ItemLine(v["item"], "否", v["description"])],
        problems=[paperwork.ProblemLine(v["description"], v["measure"], _today(), True)] * problems,
        penalties=[paperwork.PenaltyLine("罚款", 5000, v["decision"], _today())], photos=[])


def _field_text(field: str) -> Any:
    """Up to the field's maximum length of its characters, no spaces: CJK alone, or CJK and Latin mixed."""
    alphabet = _FIELDS[field]
    length = st.one_of(st.just(_LIMITS[field]), st.integers(1, _LIMITS[field]))
    return st.tuples(length, st.booleans(), st.randoms(use_true_random=False)).map(
        lambda t: "".join(t[2].choice(alphabet if t[1] else alphabet[:-1]) for _ in range(t[0])))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=st.fixed_dictionaries({f: _field_text(f) for f in _FIELDS}), problems=st.integers(1, 3))
def test_every_text_at_its_maximum_length_without_spaces_prints_complete_in_both_pdfs(
        values: dict[str, str], problems: int) -> None:
    p = _long_paperwork(values, problems)
    record = pdf_text(paperwork.record_pdf(p))
    notice = pdf_text(paperwork.notice_pdf(p, _today()))
    # the record prints the finding in the checklist table and in the problems table
    for field, times in (("name", 1), ("address", 1), ("operator", 1), ("item", 1), ("description", 1 + problems),
                         ("measure", problems), ("decision", 1)):
        assert _own(record, field) == values[field] * times, field
    for field, times in (("name", 1), ("address", 1), ("operator", 1), ("description", problems),
                         ("measure", problems)):
        assert _own(notice, field) == values[field] * times, field


def test_a_finding_of_1000_chinese_characters_prints_over_pages_in_both_documents(
        client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    hotel = make_venue(session, w.town, venue_type=VenueType.hotel, name="鹦" * 120)
    hotel.address, hotel.owner_name = "蜻" * 200, "麒" * 60
    session.add(hotel)
    session.commit()
    findings = [{"item_code": "five_musts.identity", "description": "蝙" * 1000, "measure": "蚂" * 1000},
                {"description": "蝠e" * 500, "measure": "蚁f" * 500}]  # CJK and Latin mixed, no spaces
    body = inspection_body(hotel, no=("five_musts.identity",), findings=findings,
                           penalties=[{"kind": "fine", "amount_yuan": 5000, "decision_number": "珊" * 60}])
    created = client.post("/api/v1/inspections", json=body, headers=w.market.headers)
    assert created.status_code == 201, created.text
    base = f"/api/v1/inspections/{created.json()['id']}"
    record = client.get(f"{base}/record.pdf", headers=w.market.headers)
    notice = client.get(f"{base}/rectification-notice.pdf", headers=w.market.headers)
    assert record.status_code == 200 and notice.status_code == 200, (record.text, notice.text)
    assert len(PdfReader(io.BytesIO(notice.content)).pages) >= 2
    for data in (record.content, notice.content):
        text = pdf_text(data)
        assert text.count("鹦") == 120 and text.count("蜻") == 200 and text.count("麒") == 60
        assert text.count("蚂") == 1000 and _squash("蚁f" * 500) in re.sub(r"[^蚁f]", "", text)
    assert pdf_text(record.content).count("蝙") == 2000 and pdf_text(notice.content).count("蝙") == 1000
    assert pdf_text(record.content).count("珊") == 60
