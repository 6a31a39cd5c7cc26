"""What the benchmark scripts share: the figures they write for scripts/bench.py (``--json PATH``),
the uvicorn command line every HTTP benchmark serves with, the client loop that drives a server,
and the hello-world baseline measured with both in the same run.

The hello-world app is served by the same command line as the service (one worker, uvicorn's
default loop and HTTP implementation, which are uvloop and httptools here) and driven by the same
loop and client settings, so "push requests/s vs hello-world requests/s" compares the service
with what this machine, Python, uvicorn and FastAPI allow for one request at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import httpx
from fastapi import FastAPI

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"
HELLO_REQUESTS = 2_000


@dataclass(frozen=True)
class Figure:
    """One measured figure, its target ("ge": higher is better, "le": lower is better) and the
    baseline measured in the same run."""

    figure: str
    measured: float
    unit: str
    target: float | None = None
    comparison: Literal["ge", "le"] | None = None
    baseline: float | None = None
    baseline_unit: str | None = None
    note: str = ""


def add_json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", type=Path, default=None, metavar="PATH",
                        help="also write the figures as JSON (what scripts/bench.py collects)")


def write_json(path: Path | None, figures: list[Figure]) -> None:
    if path is not None:
        path.write_text(json.dumps([asdict(f) for f in figures], ensure_ascii=False, indent=1), encoding="utf-8")


@dataclass(frozen=True)
class Timing:
    """Latencies of requests sent one after another, and the wall time of the whole run."""

    latencies_s: list[float]
    elapsed_s: float

    @property
    def requests_per_s(self) -> float:
        return len(self.latencies_s) / self.elapsed_s

    @property
    def median_ms(self) -> float:
        return statistics.median(self.latencies_s) * 1000

    @property
    def min_ms(self) -> float:
        return min(self.latencies_s) * 1000

    @property
    def max_ms(self) -> float:
        return max(self.latencies_s) * 1000

    @property
    def p95_ms(self) -> float:
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))] * 1000


def drive(send: Callable[[int], object], count: int) -> Timing:
    """Call ``send(0) .. send(count - 1)`` one after another (the next request leaves when the
    previous answered, as a phone syncing does): the load every benchmark puts on a server."""
    latencies = []
    started = time.perf_counter()
    for i in range(count):
        t = time.perf_counter()
        send(i)
        latencies.append(time.perf_counter() - t)
    return Timing(latencies, time.perf_counter() - started)


def http_client(base_url: str) -> httpx.Client:
    """The client every HTTP benchmark uses: one keep-alive connection."""
    return httpx.Client(base_url=base_url, timeout=120)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def uvicorn_command(factory: str, port: int, *, app_dir: Path | None = None) -> list[str]:
    """One uvicorn worker serving an app factory, as the service is benchmarked (and as `hulei
    serve` runs it: loop and HTTP implementation left to uvicorn's choice)."""
    command = [sys.executable, "-m", "uvicorn", factory, "--factory", "--host", "127.0.0.1", "--port", str(port),
               "--workers", "1", "--log-level", "warning", "--no-access-log"]
    if app_dir is not None:
        command += ["--app-dir", str(app_dir)]
    return command


@contextmanager
def serve(factory: str, *, env: dict[str, str] | None = None, app_dir: Path | None = None,
          ready_path: str = "/healthz") -> Iterator[str]:
    """Start uvicorn in its own process, wait until ``ready_path`` answers 200, yield the base URL,
    and stop the server afterwards."""
    port = free_port()
    server = subprocess.Popen(uvicorn_command(factory, port, app_dir=app_dir), cwd=ROOT,
                              env=env if env is not None else dict(os.environ))
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=5) as probe:
            for _ in range(600):
                if server.poll() is not None:
                    raise RuntimeError(f"uvicorn exited with {server.returncode} before answering {ready_path}")
                try:
                    if probe.get(ready_path).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
            else:
                raise RuntimeError(f"uvicorn did not answer {ready_path} within 60 s")
        yield base
    finally:
        server.terminate()
        server.wait(30)


def hello_world_app() -> FastAPI:
    """The baseline: a plain FastAPI app with one route, nothing else."""
    app = FastAPI()

    @app.get("/")
    def hello() -> dict[str, str]:
        return {"hello": "world"}

    return app


def hello_world_over_http(requests: int = HELLO_REQUESTS) -> Timing:
    """Hello-world served by one uvicorn worker, driven over loopback HTTP like the service."""
    with serve("benchkit:hello_world_app", app_dir=SCRIPTS, ready_path="/") as base, http_client(base) as http:
        for _ in range(50):  # warm-up, as the benchmarks warm the service up
            http.get("/").raise_for_status()
        return drive(lambda _: http.get("/").raise_for_status(), requests)


def hello_world_in_process(requests: int = HELLO_REQUESTS) -> Timing:
    """Hello-world through Starlette's TestClient, for the benchmarks that call the app in-process."""
    from fastapi.testclient import TestClient

    with TestClient(hello_world_app()) as client:
        for _ in range(50):
            client.get("/").raise_for_status()
        return drive(lambda _: client.get("/").raise_for_status(), requests)


def describe(timing: Timing) -> str:
    return (f"{timing.requests_per_s:,.0f} requests/s, median {timing.median_ms:.2f} ms, "
            f"p95 {timing.p95_ms:.2f} ms over {len(timing.latencies_s):,} requests")

