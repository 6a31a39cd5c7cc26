"""The monthly report's files as a coordinator reads them: every per-unit sheet ends with the whole
unit's 合计 row (equal to the sum above it and to the API's figures), labels instead of codes, and a
map with a Chinese legend of coverage classes, the unit boundaries, labels and the total."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select
from sqlmodel import Session

from backend.accounts.permissions import Role
from backend.campaigns import service as campaigns
from backend.core.config import get_settings
from backend.coverage import service as coverage
from backend.helpers.models import AssignmentStatus
from backend.inspections.models import PenaltyKind, ProblemSource, ProblemStatus
from backend.referrals.models import ReportSource
from backend.registry.models import Person, RiskLevelChange, RiskLevelCode
from backend.reports import render
from backend.reports.service import RISK_SOURCES_ZH, TOTAL_ZH, map_caption
from backend.venues.models import VenueStatus, VenueType
from tests.coverage.fixture import MONTH, build_world, cst
from tests.factories import user_client
from tests.xlsx_support import read_workbook

PER_UNIT_SHEETS = ("走访", "覆盖", "帮扶", "场所检查", "问题清单", "强制报告", "个案与服务")
CODES = ({*RiskLevelCode, *RISK_SOURCES_ZH, *ProblemStatus, *ProblemSource, *VenueType, *VenueStatus, *PenaltyKind,
          *AssignmentStatus, *ReportSource, "one_to_one", "many_to_one"})


@pytest.fixture(autouse=True)
def _media_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HULEI_MEDIA_ROOT", str(tmp_path / "media"))
    get_settings.cache_clear()


def _rows(ws: Any) -> list[list[Any]]:
    return [list(r) for r in ws.iter_rows(values_only=True)]


def _report(client: TestClient, session: Session) -> tuple[Any, dict[str, Any], dict[str, Any], Any]:
    world = build_world(session)
    severe, major = world.children["severe"], world.children["major"]
    changes = ((severe, None, "重大风险", "import"), (major, "一般风险", "较大风险", "visit"),
               (major, "较大风险", "major", "override"))  # the last stored as a code: printed as its label
    for person, before, after, source in changes:
        session.add(RiskLevelChange(person_id=person.id or 0, previous_level=before, level=after, source=source,
                                    created_at=cst(3, 5)))
    session.commit()
    coordinator = user_client(client, session, world.town.town, Role.coordinator)
    report = client.post("/api/v1/reports/monthly", json={"month": MONTH}, headers=coordinator.headers).json()
    api = client.get("/api/v1/coverage", params={"month": MONTH}, headers=coordinator.headers).json()
    book = read_workbook(client.get(report["xlsx_url"], headers=coordinator.headers).content)
    png = client.get(report["png_url"], headers=coordinator.headers).content
    return world, report, api, (book, png)


def _unit_block(rows: list[list[Any]]) -> tuple[list[list[Any]], list[Any]]:
    """The per-unit rows under the header and the 合计 row under them."""
    at = next(i for i, r in enumerate(rows) if len(r) > 1 and r[1] == TOTAL_ZH)
    width = len([h for h in rows[0] if h is not None])  # openpyxl pads rows to the sheet's width
    return [r[:width] for r in rows[1:at]], rows[at][:width]


def test_every_per_unit_sheet_ends_with_the_town_total_equal_to_the_sum_and_the_api(
        client: TestClient, session: Session) -> None:
    world, report, api, (book, _png) = _report(client, session)
    totals = api["totals"]
    for title in PER_UNIT_SHEETS:
        units, total = _unit_block(_rows(book[title]))
        assert [r[1] for r in units] == [v.name for v in world.town.villages], title
        assert total[0] == world.town.town.code
        for column in range(2, len(total)):
            values = [r[column] for r in units]
            if title == "覆盖" and column in (4, 12):
                continue  # the percent and the counting rule: checked against the API below
            assert total[column] == sum(v or 0 for v in values), (title, column)

    _, cov = _unit_block(_rows(book["覆盖"]))
    children = totals["children"]
    assert cov[2:] == [totals["households"], totals["visited"], totals["percent"], totals["never_visited"],
                       totals["mismatch_visits"], children["low"], children["general"], children["major"],
                       children["severe"], children["none"], "计入全部走访"]
    assert all(r[12] == "计入全部走访" for r in _unit_block(_rows(book["覆盖"]))[0])
    assert cov[2:5] == [7, 3, round(100 * 3 / 7, 1)]
    assert report["figures"]["percent"] == cov[4]
    _, referrals = _unit_block(_rows(book["强制报告"]))
    r = totals["referrals"]
    assert referrals[2:] == [r["new"] + r["received"] + r["handled"], r["new"], r["received"], r["handled"],
                             r["overdue"]]
    _, cases = _unit_block(_rows(book["个案与服务"]))
    assert cases[2:9] == [totals["cases"]["open"], totals["cases"]["active"], totals["cases"]["opened"],
                          totals["cases"]["closed"], totals["services"]["in_progress"],
                          totals["services"]["overdue"], totals["services"]["done"]]
    _, helpers = _unit_block(_rows(book["帮扶"]))
    assert helpers[7] == totals["overdue_followups"]


def test_no_cell_holds_a_raw_code_and_risk_changes_read_in_chinese(client: TestClient, session: Session) -> None:
    _world, _report_json, _api, (book, _png) = _report(client, session)
    for ws in book.worksheets:
        for row in _rows(ws):
            for value in row:
                assert not (isinstance(value, str) and value.strip() in CODES), (ws.title, value, row)
    risk = [r for r in _rows(book["风险变化"])[1:] if r and r[2]]
    assert [r[3:6] for r in risk] == [[None, "重大风险", "台账导入"], ["一般风险", "较大风险", "入户走访研判"],
                                       ["较大风险", "较大风险", "人工调整"]]


CAPTION = "护蕾镇合计：已走访 3 / 7 户，覆盖率 42.9%"
KNOWN_UNITS = [
    render.MapUnit("青山村", "V1", [[(0, 0), (1, 0), (1, 1), (0, 1), (0, 0)]], 40.0),
    render.MapUnit("溪口村", "V2", [[(1, 0), (2, 0), (2, 1), (1, 1), (1, 0)]], 85.0),
    render.MapUnit("柳湾村", "V3", [[(0, 1), (1, 1), (1, 2), (0, 2), (0, 1)]], 97.5),
    render.MapUnit("石桥村", "V4", [[(1, 1), (2, 1), (2, 2), (1, 2), (1, 1)]], None),
    render.MapUnit("桃源村", "V5", [[(2, 0), (3, 0), (3, 2), (2, 2), (2, 0)]], 60.0),
]


def test_the_map_has_a_chinese_legend_of_classes_labels_and_the_total_and_no_axes() -> None:
    from matplotlib import pyplot as plt

    fig = render.coverage_figure("护蕾镇 2026年3月 走访覆盖率", KNOWN_UNITS, CAPTION)
    try:
        [ax] = fig.axes
        assert not ax.axison  # no lon/lat ticks or labels
        legend = ax.get_legend()
        assert [t.get_text() for t in legend.get_texts()] == ["≥90%", "70–90%", "50–70%", "30–50%", "<30%", "无数据"]
        assert legend.get_title().get_text() == "走访覆盖率"
        *labels, caption = [t.get_text() for t in ax.texts]
        assert labels == ["青山村\n40.0%", "溪口村\n85.0%", "柳湾村\n97.5%", "石桥村\n无数据", "桃源村\n60.0%"]
        assert "2026年3月" in ax.get_title()
        assert "合计" in caption and "42.9%" in caption
        # Each unit's boundary is drawn (a dark edge), filled with its class's colour.
        assert len(ax.patches) == len(KNOWN_UNITS)
        fills = [tuple(round(c * 255) for c in p.get_facecolor()[:3]) for p in ax.patches]
        assert fills == [_rgb(render.coverage_class(u.percent).colour) for u in KNOWN_UNITS]
        assert all(p.get_edgecolor()[:3] == (34 / 255, 34 / 255, 34 / 255) for p in ax.patches)
    finally:
        plt.close(fig)


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return int(hex_colour[1:3], 16), int(hex_colour[3:5], 16), int(hex_colour[5:7], 16)


def test_the_map_png_shows_every_legend_colour() -> None:
    data = render.coverage_png("护蕾镇 2026年3月 走访覆盖率", KNOWN_UNITS, CAPTION)
    image = Image.open(io.BytesIO(data)).convert("RGB")
    colours = {c for _n, c in image.getcolors(maxcolors=10_000_000) or []}
    for cls in (*render.COVERAGE_CLASSES, render.NO_DATA):
        assert _rgb(cls.colour) in colours, cls.label


def test_the_report_map_is_drawn_from_the_months_figures(client: TestClient, session: Session) -> None:
    _world, _report_json, _api, (_book, png) = _report(client, session)
    image = Image.open(io.BytesIO(png)).convert("RGB")
    colours = {c for _n, c in image.getcolors(maxcolors=10_000_000) or []}
    # 青山村 40% (30–50%), 溪口村 50% (50–70%), six villages without households (无数据); the legend
    # shows every class's colour too, so this checks only that the map is drawn in the classes' colours.
    for cls in (render.COVERAGE_CLASSES[1], render.COVERAGE_CLASSES[2], render.NO_DATA):
        assert _rgb(cls.colour) in colours, cls.label


APP_JS = Path(__file__).resolve().parents[2] / "backend" / "dashboard" / "static" / "app.js"


def test_the_map_colours_a_village_as_the_dashboard_does() -> None:
    """The dashboard's colour() (app.js) and the report's classes agree at every percent, no data included."""
    source = APP_JS.read_text(encoding="utf-8")
    body = source[source.index("function colour(percent)"):]
    body = body[:body.index("\n  }")]
    no_data = re.search(r'undefined\) return "(#[0-9a-f]{6})"', body)
    steps = [(float(b), c) for b, c in re.findall(r'percent >= (\d+)\) return "(#[0-9a-f]{6})"', body)]
    fallback = re.findall(r'\n\s*return "(#[0-9a-f]{6})";', body)
    assert no_data and steps and fallback

    def dashboard(percent: float | None) -> str:
        if percent is None:
            return no_data.group(1)
        return next((c for bound, c in steps if percent >= bound), fallback[-1])

    for percent in [None, *(x / 2 for x in range(0, 201))]:
        assert render.coverage_class(percent).colour == dashboard(percent), percent
    legend = re.search(r"\[\[90, .*?\]\]", source)
    assert legend is not None
    labels = re.findall(r'"([^"]+)"\]', legend.group(0))
    assert labels == [c.label for c in reversed(render.COVERAGE_CLASSES)]


def test_an_approved_only_town_s_workbook_and_map_say_so(client: TestClient, session: Session) -> None:
    """The 覆盖 sheet (per unit and 合计) and the map's caption name the counting rule the figures used."""
    from matplotlib import pyplot as plt

    world = build_world(session)
    coordinator = user_client(client, session, world.town.town, Role.coordinator)
    setting = client.put("/api/v1/reviews/settings", params={"unit_id": world.town.town.id},
                         json={"approved_only": True}, headers=coordinator.headers)
    assert setting.status_code == 200, setting.text
    report = client.post("/api/v1/reports/monthly", json={"month": MONTH}, headers=coordinator.headers).json()
    assert report["figures"]["counting"] == "approved_only"
    book = read_workbook(client.get(report["xlsx_url"], headers=coordinator.headers).content)
    rows = _rows(book["覆盖"])
    assert rows[0][12] == "计数口径"
    units, total = _unit_block(rows)
    assert [r[12] for r in units] == ["仅计已审核走访"] * len(units) and total[12] == "仅计已审核走访"

    # The map's caption, from the same figures the report drew (a PNG's text cannot be read back).
    town = world.town.town
    _kids, result = coverage.unit_coverage(session, town, campaigns.month_period(MONTH))
    total = coverage.UnitNumbers(unit_id=town.id or 0)
    for n in result.numbers.values():
        total.add(n)
    caption = map_caption(town, total)
    assert caption.endswith("（计数口径：仅计已审核走访）") and f"/ {report['figures']['households']} 户" in caption
    fig = render.coverage_figure("t", [], caption)
    try:
        assert any("仅计已审核走访" in t.get_text() for t in fig.axes[0].texts)
    finally:
        plt.close(fig)
    mixed = coverage.UnitNumbers(unit_id=1, counting="all")
    mixed.add(coverage.UnitNumbers(unit_id=2, counting="approved_only"))
    assert map_caption(town, mixed).endswith("（计数口径：部分单位仅计已审核走访）")


def test_children_are_numbered_within_the_report_not_by_their_database_id(
        client: TestClient, session: Session) -> None:
    """C001, C002 … by first appearance (risk changes, then the helpers' lines); one child keeps one number
    across sheets; no number is built from a person's id."""
    _world, _report_json, _api, (book, _png) = _report(client, session)
    ids = {int(pid) for pid in session.execute(select(Person.id)).scalars()}
    risk = [r[2] for r in _rows(book["风险变化"])[1:] if r and r[2]]
    helpers = _rows(book["帮扶"])
    at = next(i for i, r in enumerate(helpers) if r[:3] == ["单位代码", "单位", "儿童编号"] and i > 0)
    helped = [r[2] for r in helpers[at + 1:] if r and r[2]]
    assert risk and helped
    order = list(dict.fromkeys([*risk, *helped]))
    assert order == [f"C{n:03d}" for n in range(1, len(order) + 1)]
    assert not {*risk, *helped} & {f"C{pid:06d}" for pid in ids}
    # the severe child (first risk change, C001) keeps its number in the helpers' lines (two helpers)
    assert risk[:2] == ["C001", "C002"]
    assert [r[2] for r in helpers[at + 1:] if r and r[3] == "重大风险"] == ["C001", "C001"]
