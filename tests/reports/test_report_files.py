"""The monthly report's files as a coordinator reads them: every per-unit sheet ends with the whole
unit's 合计 row (equal to the sum above it and to the API's figures), labels instead of codes, and a
map with a Chinese legend of coverage classes, the unit boundaries, labels and the total."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from PIL import Image
from sqlmodel import Session

from backend.accounts.permissions import Role
from backend.core.config import get_settings
from backend.helpers.models import AssignmentStatus
from backend.inspections.models import PenaltyKind, ProblemSource, ProblemStatus
from backend.referrals.models import ReportSource
from backend.registry.models import RiskLevelChange, RiskLevelCode
from backend.reports import render
from backend.reports.service import RISK_SOURCES_ZH, TOTAL_ZH
from backend.venues.models import VenueStatus, VenueType
from tests.coverage.fixture import MONTH, build_world, cst
from tests.factories import user_client

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
    book = load_workbook(io.BytesIO(client.get(report["xlsx_url"], headers=coordinator.headers).content))
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
            if title == "覆盖" and column == 4:
                continue  # the percent: checked against the API below
            assert total[column] == sum(v or 0 for v in values), (title, column)

    _, cov = _unit_block(_rows(book["覆盖"]))
    children = totals["children"]
    assert cov[2:] == [totals["households"], totals["visited"], totals["percent"], totals["never_visited"],
                       totals["mismatch_visits"], children["low"], children["general"], children["major"],
                       children["severe"], children["none"]]
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
        assert [t.get_text() for t in legend.get_texts()] == ["<50%", "50–80%", "80–95%", "≥95%", "无数据"]
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
    # 青山村 40% (<50%), 溪口村 50% (50–80%), six villages without households (无数据); the legend
    # shows every class's colour too, so this checks only that the map is drawn in the classes' colours.
    for cls in (render.COVERAGE_CLASSES[0], render.COVERAGE_CLASSES[1], render.NO_DATA):
        assert _rgb(cls.colour) in colours, cls.label
