"""Every process holds every registry: what a domain declares at import time (push kinds, photo
parent kinds, scheduled jobs, tables) must not depend on which modules a process happened to import.

Each entry point runs in a fresh interpreter, as `hulei serve` and `hulei worker` do; its registries
are then compared with those of the same interpreter after importing every module under backend/.
A new registering module that no entry point loads fails here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Reads the registries without importing anything: a registry whose module nobody imported is empty.
_PROBE = r"""
import importlib, json, pkgutil, sys

def registries():
    mods = sys.modules
    kinds = getattr(mods.get("backend.sync.kinds"), "KINDS", {})
    parents = getattr(mods.get("backend.media.parents"), "_RESOLVERS", {})
    jobs = getattr(mods.get("backend.core.jobs"), "_JOBS", {})
    sqlmodel = mods.get("sqlmodel")
    tables = sqlmodel.SQLModel.metadata.tables if sqlmodel else {}
    return {"push kinds": sorted(kinds), "photo parent kinds": sorted(parents), "jobs": sorted(jobs),
            "tables": sorted(tables)}

entry = sys.argv[1]
if entry == "api":  # what `hulei serve` runs (uvicorn's factory)
    from backend.main import create_app
    create_app()
else:  # the worker command itself, one round of due jobs
    from backend.cli import app
    try:
        app(["worker", "--once"])
    except SystemExit as exit_:
        assert exit_.code in (0, None), exit_.code
loaded = registries()

import backend
for module in pkgutil.walk_packages(backend.__path__, "backend."):
    if ".migrations" not in module.name:
        importlib.import_module(module.name)
print("REGISTRIES " + json.dumps({"loaded": loaded, "everything": registries()}))
"""


def _registries_of(entry: str) -> dict[str, dict[str, list[str]]]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", _PROBE, entry], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("REGISTRIES "))
    found: dict[str, dict[str, list[str]]] = json.loads(line.removeprefix("REGISTRIES "))
    return found


@pytest.mark.parametrize("entry", ["api", "worker"])
def test_a_fresh_process_holds_every_registry_a_domain_declares(entry: str, database_url: str) -> None:
    found = _registries_of(entry)
    everything = found["everything"]
    # The registries are not trivially empty: the domains this build ships are all there.
    assert {"household", "person", "visit", "amendment", "inspection"} <= set(everything["push kinds"])
    assert {"visit", "inspection"} <= set(everything["photo parent kinds"])
    assert "media.link_parents" in everything["jobs"]
    assert found["loaded"] == everything
