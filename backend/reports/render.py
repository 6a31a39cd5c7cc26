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


def coverage_png(title: str, units: Sequence[MapUnit]) -> bytes:
    """Units filled by coverage (red 0% to green 100%, grey without households), labelled."""
    # matplotlib is imported here, not at module level: it costs every API and worker process about
    # a second and a half at start-up, and only the monthly report draws.
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.patches import Polygon as PolygonPatch

    font = _cjk_font()
    fig, ax = plt.subplots(figsize=(8, 6), dpi=120)
    cmap = matplotlib.colormaps["RdYlGn"]
    xs: list[float] = []
    ys: list[float] = []
    for unit in units:
        colour = "#cccccc" if unit.percent is None else cmap(unit.percent / 100.0)
        for ring in unit.rings:
            ax.add_patch(PolygonPatch(list(ring), closed=True, facecolor=colour, edgecolor="#333333", linewidth=0.8))
            xs.extend(p[0] for p in ring)
            ys.extend(p[1] for p in ring)
        if unit.rings:
            ring = unit.rings[0]
            cx = sum(p[0] for p in ring) / len(ring)
            cy = sum(p[1] for p in ring) / len(ring)
            label = (unit.name if font is not None else unit.code) + "\n" + (
                "—" if unit.percent is None else f"{unit.percent:.1f}%")
            ax.text(cx, cy, label, ha="center", va="center", fontsize=7, fontproperties=font)
    if xs:
        pad_x = (max(xs) - min(xs)) * 0.03 or 0.001
        pad_y = (max(ys) - min(ys)) * 0.03 or 0.001
        ax.set_xlim(min(xs) - pad_x, max(xs) + pad_x)
        ax.set_ylim(min(ys) - pad_y, max(ys) + pad_y)
    ax.set_aspect("equal")
    ax.set_xlabel("lon (WGS-84)")
    ax.set_ylabel("lat")
    ax.set_title(title if font is not None else "coverage", fontproperties=font)
    mappable = matplotlib.cm.ScalarMappable(cmap=cmap, norm=matplotlib.colors.Normalize(0, 100))
    fig.colorbar(mappable, ax=ax, label="%")
    out = io.BytesIO()
    fig.savefig(out, format="png", bbox_inches="tight")
    plt.close(fig)
    return out.getvalue()
