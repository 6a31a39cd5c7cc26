"""Every benchmark in one table (`make bench`).

    uv run python scripts/bench.py [--only NAME ...] [--json PATH]

Runs each benchmark script in its own process, one after another so they do not disturb one
another, collects the figures each writes with ``--json`` (scripts/benchkit.py), and prints one
table: figure, measured value, target, ratio to target (>= 1.0 means met, whichever way the target
points), the baseline measured in the same run (a plain FastAPI hello-world under the same client,
plain psycopg inserts, the naive image path, pushes sent without the outbox) and whether the target
is met. A missed target is reported, not failed: the exit status is non-zero only when a script
did not finish. `--only` takes a name below (``notifications`` selects both of its variants).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ADMIN_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@dataclass(frozen=True)
class Bench:
    name: str
    script: str
    args: tuple[str, ...] = ()


BENCHES = (
    Bench("sync", "bench_sync.py", ("--admin-url", ADMIN_URL)),
    Bench("media", "bench_media.py"),
    Bench("schedule", "bench_schedule.py"),
    Bench("notifications", "bench_notifications.py"),  # SpatiaLite, the embedded default
    Bench("notifications-postgis", "bench_notifications.py", ("--admin-url", ADMIN_URL)),
    Bench("coverage", "bench_coverage.py", ("--admin-url", ADMIN_URL)),
)


@dataclass
class Run:
    """One script's run: how it ended, how long it took, the load around it, its figures."""

    name: str
    command: list[str]
    exit_code: int
    seconds: float
    load_before: float
    load_after: float
    figures: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""

    @property
    def crashed(self) -> bool:
        return self.exit_code != 0 or not self.figures


def ratio(row: dict[str, Any]) -> float | None:
    """Measured over target, inverted when lower is better, so >= 1.0 always means met."""
    target, measured, comparison = row.get("target"), row["measured"], row.get("comparison")
    if target is None or comparison not in ("ge", "le"):
        return None
    numerator, denominator = (measured, target) if comparison == "ge" else (target, measured)
    if denominator == 0:
        return None if numerator == 0 else math.inf
    return float(numerator / denominator)


def met(row: dict[str, Any]) -> bool | None:
    target, comparison = row.get("target"), row.get("comparison")
    if target is None or comparison not in ("ge", "le"):
        return None
    return bool(row["measured"] >= target if comparison == "ge" else row["measured"] <= target)


def number(value: float) -> str:
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def quantity(value: float | None, unit: str | None) -> str:
    if value is None:
        return "—"
    if unit in (None, "", "ratio"):
        return number(value)
    if unit == "x":
        return f"{number(value)}x"
    return f"{number(value)} {unit}"


def table_rows(runs: list[Run]) -> list[dict[str, Any]]:
    """Every figure of every run with its ratio and verdict; a crashed script is a row of its own."""
    rows = []
    for run in runs:
        for figure in run.figures:
            rows.append({"script": run.name, **figure, "ratio": ratio(figure), "met": met(figure)})
        if run.crashed:
            rows.append({"script": run.name, "figure": f"{run.name}: did not finish ({run.error})",
                         "measured": None, "unit": None, "target": None, "comparison": None, "baseline": None,
                         "baseline_unit": None, "note": "", "ratio": None, "met": False})
    return rows


def render(rows: list[dict[str, Any]]) -> str:
    """The markdown table, then the notes that say what each baseline is."""
    header = ["figure", "measured", "target", "ratio to target", "baseline (same run)", "met?"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    notes = []
    for row in rows:
        r = row["ratio"]
        target = (f"{'≥' if row['comparison'] == 'ge' else '≤'} {quantity(row['target'], row['unit'])}"
                  if row.get("target") is not None else "—")
        verdict = {True: "yes", False: "NO", None: "—"}[row["met"]]
        if row["measured"] is None:
            verdict = "CRASHED"
        cells = [
            row["figure"],
            quantity(row["measured"], row["unit"]),
            target,
            "—" if r is None else ("∞" if math.isinf(r) else f"{r:.2f}"),
            quantity(row.get("baseline"), row.get("baseline_unit")),
            verdict,
        ]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
        if row.get("note"):
            notes.append(f"- {row['figure']}: {row['note']}")
    return "\n".join(lines + (["", *notes] if notes else []))


def run_bench(bench: Bench, workdir: Path) -> Run:
    out = workdir / f"{bench.name}.json"
    command = [sys.executable, str(ROOT / "scripts" / bench.script), *bench.args, "--json", str(out)]
    env = {**os.environ}
    env.setdefault("SPATIALITE_LIBRARY_PATH", "mod_spatialite")
    print(f"\n=== {bench.name}: {' '.join(command[1:])}", flush=True)
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    exit_code = subprocess.run(command, cwd=ROOT, env=env, check=False).returncode
    seconds = time.perf_counter() - started
    run = Run(bench.name, command, exit_code, seconds, load_before, os.getloadavg()[0])
    try:
        run.figures = json.loads(out.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        run.error = f"exit {exit_code}, no figures: {type(exc).__name__}"
    else:
        if exit_code != 0:
            run.error = f"exit {exit_code}"
    if not run.figures and not run.error:
        run.error = f"exit {exit_code}, no figures"
    print(f"=== {bench.name}: exit {exit_code} in {seconds:.0f} s", flush=True)
    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help=f"run only these ({', '.join(b.name for b in BENCHES)}); repeat or comma-separate")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the whole table as JSON")
    args = parser.parse_args()
    wanted = {n.strip() for item in args.only for n in item.split(",") if n.strip()}
    unknown = {n for n in wanted if not any(b.name == n or b.name.startswith(f"{n}-") for b in BENCHES)}
    if unknown:
        parser.error(f"unknown benchmark {', '.join(sorted(unknown))}; known: {', '.join(b.name for b in BENCHES)}")
    selected = [b for b in BENCHES
                if not wanted or any(b.name == n or b.name.startswith(f"{n}-") for n in wanted)]

    load_before = os.getloadavg()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hulei-bench-") as tmp:
        runs = [run_bench(b, Path(tmp)) for b in selected]
    total = time.perf_counter() - started
    load_after = os.getloadavg()
    rows = table_rows(runs)

    print(f"\n## Benchmarks ({os.cpu_count()} CPUs; load average {load_before[0]:.2f} before, "
          f"{load_after[0]:.2f} after; {total:.0f} s in all)\n")
    print(render(rows))
    print("\n| script | exit | seconds | 1-min load before / after |\n|---|---|---|---|")
    for run in runs:
        print(f"| {run.name} | {run.exit_code} | {run.seconds:.0f} | {run.load_before:.2f} / {run.load_after:.2f} |")
    if args.json is not None:
        args.json.write_text(json.dumps({
            "cpus": os.cpu_count(), "load_before": load_before, "load_after": load_after, "total_seconds": total,
            "scripts": [{k: v for k, v in asdict(r).items() if k != "figures"} for r in runs],
            "rows": [{**r, "ratio": None if r["ratio"] is None or math.isinf(r["ratio"]) else r["ratio"]}
                     for r in rows],
        }, ensure_ascii=False, indent=1), encoding="utf-8")
    crashed = [r.name for r in runs if r.crashed]
    if crashed:
        print(f"\ndid not finish: {', '.join(crashed)}", file=sys.stderr)
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
