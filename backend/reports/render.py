"""Server-side rendering of the report's files: the workbook (openpyxl) and the map (matplotlib)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backend.core import workbook

if TYPE_CHECKING:
    from matplotlib.font_manager import FontProperties

CJK_FONT_FILES = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
)


@dataclass(frozen=True)
class Sheet:
    title: str
    header: Sequence[str]
    rows: Sequence[Sequence[Any]]
    note: str | None = None


def workbook_bytes(sheets: Sequence[Sheet]) -> bytes:
    """One sheet per section: a bold frozen header row, then the rows (and a note under them)."""
    return workbook.xlsx_bytes([workbook.Table(title=s.title, header=s.header, rows=s.rows, note=s.note)
                                for s in sheets])


def _cjk_font() -> FontProperties | None:
    from matplotlib.font_manager import FontProperties

    for path in CJK_FONT_FILES:
        if path.exists():
            return FontProperties(fname=str(path))
    return None


@dataclass(frozen=True)
class MapUnit:
    name: str
    code: str
    rings: Sequence[Sequence[tuple[float, float]]]  # exterior rings of the unit's polygons
    percent: float | None


@dataclass(frozen=True)
class CoverageClass:
    label: str
    colour: str  # "#rrggbb"
    below: float | None  # upper bound (exclusive) of the percent; None: no upper bound


# The map's classes, the same as the dashboard's map (backend/dashboard/static/app.js `colour()` and its
# legend): they MUST match, class bounds and colours both, so a village has one colour in either place.
# A percent falls in the first class whose bound it is below; the legend lists them highest first, as
# the dashboard's does.
COVERAGE_CLASSES: tuple[CoverageClass, ...] = (
    CoverageClass("<30%", "#d73027", 30.0),
    CoverageClass("30–50%", "#fc8d59", 50.0),
    CoverageClass("50–70%", "#fee08b", 70.0),
    CoverageClass("70–90%", "#91cf60", 90.0),
    CoverageClass("≥90%", "#1a9850", None),
)
NO_DATA = CoverageClass("无数据", "#9aa5b1", None)  # no households in the unit (app.js: no percent)


def coverage_class(percent: float | None) -> CoverageClass:
    """The legend class a unit's coverage falls in."""
    if percent is None:
        return NO_DATA
    return next(c for c in COVERAGE_CLASSES if c.below is None or percent < c.below)


def _label_point(ring: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """A point inside the ring for its label (the polygon's representative point)."""
    from shapely.geometry import Polygon

    try:
        point = Polygon(ring).representative_point()
        return float(point.x), float(point.y)
    except Exception:  # a degenerate ring: its vertices' mean will do
        return sum(p[0] for p in ring) / len(ring), sum(p[1] for p in ring) / len(ring)


def coverage_figure(title: str, units: Sequence[MapUnit], caption: str) -> Any:
    """The map as a matplotlib figure: units filled by coverage class, boundaries drawn, each labelled
    with its name and percent; the legend lists the classes; no axes."""
    # matplotlib is imported here, not at module level: it costs every API and worker process about
    # a second and a half at start-up, and only the monthly report draws.
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.patches import Patch
    from matplotlib.patches import Polygon as PolygonPatch

    font = _cjk_font()
    fig, ax = plt.subplots(figsize=(8, 6.5), dpi=120)
    xs: list[float] = []
    ys: list[float] = []
    for unit in units:
        colour = coverage_class(unit.percent).colour
        for ring in unit.rings:
            ax.add_patch(PolygonPatch(list(ring), closed=True, facecolor=colour, edgecolor="#222222",
                                      linewidth=1.0))
            xs.extend(p[0] for p in ring)
            ys.extend(p[1] for p in ring)
    for unit in units:
        if not unit.rings:
            continue
        ring = max(unit.rings, key=len)
        cx, cy = _label_point(ring)
        label = (unit.name if font is not None else unit.code) + "\n" + (
            "无数据" if unit.percent is None and font is not None else
            "—" if unit.percent is None else f"{unit.percent:.1f}%")
        ax.text(cx, cy, label, ha="center", va="center", fontsize=8, fontproperties=font,
                bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "alpha": 0.75, "linewidth": 0})
    if xs:
        pad_x = (max(xs) - min(xs)) * 0.03 or 0.001
        pad_y = (max(ys) - min(ys)) * 0.03 or 0.001
        ax.set_xlim(min(xs) - pad_x, max(xs) + pad_x)
        ax.set_ylim(min(ys) - pad_y, max(ys) + pad_y)
    ax.set_aspect("equal")
    ax.set_axis_off()  # lon/lat ticks tell a coordinator nothing
    ax.set_title(title if font is not None else "coverage", fontproperties=font, fontsize=13)
    handles = [Patch(facecolor=c.colour, edgecolor="#222222", label=c.label)
               for c in (*reversed(COVERAGE_CLASSES), NO_DATA)]
    legend_font = font.copy() if font is not None else None
    if legend_font is not None:
        legend_font.set_size(9)
    ax.legend(handles=handles, title="走访覆盖率" if font is not None else "coverage", loc="upper left",
              bbox_to_anchor=(1.01, 1.0), prop=legend_font, title_fontproperties=legend_font, frameon=True)
    if caption and font is not None:
        ax.text(0.5, -0.02, caption, transform=ax.transAxes, ha="center", va="top", fontproperties=font,
                fontsize=10)
    return fig


def coverage_png(title: str, units: Sequence[MapUnit], caption: str = "") -> bytes:
    """The map (coverage_figure) as a PNG."""
    fig = coverage_figure(title, units, caption)
    from matplotlib import pyplot as plt

    out = io.BytesIO()
    fig.savefig(out, format="png", bbox_inches="tight")
    plt.close(fig)
    return out.getvalue()
