"""`make bench` prints one table from what each benchmark script writes (scripts/bench.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("hulei_bench_table", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def _figure(measured: float, target: float | None, comparison: str | None, **extra: object) -> dict[str, object]:
    return {"figure": extra.pop("figure", "f"), "measured": measured, "unit": extra.pop("unit", "s"),
            "target": target, "comparison": comparison, "baseline": None, "baseline_unit": None, "note": "", **extra}


def test_ratio_to_target_is_at_least_one_exactly_when_the_target_is_met_either_way() -> None:
    bench = _bench()
    faster = _figure(0.25, 1.0, "le")  # lower is better: a quarter of the allowed time
    slower = _figure(2.0, 1.0, "le")
    more = _figure(6000, 3000, "ge")  # higher is better
    fewer = _figure(2550, 3000, "ge")
    assert bench.ratio(faster) == 4.0 and bench.met(faster) is True
    assert bench.ratio(slower) == 0.5 and bench.met(slower) is False
    assert bench.ratio(more) == 2.0 and bench.met(more) is True
    assert round(bench.ratio(fewer), 2) == 0.85 and bench.met(fewer) is False
    none_allowed = _figure(0, 0, "le", unit="violations")
    assert bench.ratio(none_allowed) is None and bench.met(none_allowed) is True
    assert bench.met(_figure(1, 0, "le")) is False
    assert bench.ratio(_figure(30, None, None)) is None and bench.met(_figure(30, None, None)) is None


def test_table_shows_each_figure_with_target_baseline_verdict_and_a_crashed_script(tmp_path: Path) -> None:
    bench = _bench()
    runs = [
        bench.Run("sync", [], 0, 12.0, 0.5, 1.0, figures=[
            _figure(2550.0, 3000, "ge", figure="sync push", unit="visits/s", baseline=32219.5,
                    baseline_unit="rows/s", note="baseline: plain psycopg"),
            _figure(0.181, 1.0, "le", figure="sync pull"),
        ]),
        bench.Run("media", [], 1, 3.0, 1.0, 1.2, error="exit 1, no figures: FileNotFoundError"),
    ]
    lines = bench.render(bench.table_rows(runs)).splitlines()
    assert lines[0] == "| figure | measured | target | ratio to target | baseline (same run) | met? |"
    assert "| sync push | 2,550 visits/s | ≥ 3,000 visits/s | 0.85 | 32,220 rows/s | NO |" in lines
    assert "| sync pull | 0.181 s | ≤ 1 s | 5.52 | — | yes |" in lines
    assert any(line.startswith("| media: did not finish (exit 1") and line.endswith("| CRASHED |") for line in lines)
    assert "- sync push: baseline: plain psycopg" in lines
    assert [r.crashed for r in runs] == [False, True]
