"""`hulei import-boundaries FILE`: validated, all or nothing, bad features reported by index."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlmodel import Session, func, select
from typer.testing import CliRunner

from backend.cli import app
from backend.orgunits import service
from backend.orgunits.models import OrgUnit


def _feature(code: str, level: str, parent: str | None, geometry: dict[str, Any] | None) -> dict[str, Any]:
    return {"type": "Feature", "properties": {"code": code, "name": f"单元{code}", "level": level,
                                              "parent_code": parent}, "geometry": geometry}


def _square(x: float, y: float, d: float = 0.01) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [[[x, y], [x + d, y], [x + d, y + d], [x, y + d], [x, y]]]}


GOOD = {
    "type": "FeatureCollection",
    "features": [
        _feature("11", "province", None, None),
        _feature("1101", "city", "11", None),
        _feature("110101", "county", "1101", None),
        _feature("110101001", "town", "110101", _square(116.0, 39.0, 0.1)),
        _feature("110101001001", "village", "110101001", _square(116.0, 39.0, 0.05)),
        _feature("11010100100101", "grid", "110101001001", _square(116.0, 39.0)),
    ],
}


def _write(tmp_path: Path, doc: dict[str, Any]) -> Path:
    path = tmp_path / "boundaries.geojson"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


def _count(session: Session) -> int:
    session.expire_all()
    return session.exec(select(func.count()).select_from(OrgUnit)).one()


def test_import_creates_the_tree_and_the_grid_is_found_by_point(tmp_path: Path, session: Session) -> None:
    result = CliRunner().invoke(app, ["import-boundaries", str(_write(tmp_path, GOOD))])
    assert result.exit_code == 0, result.output
    assert "6 created" in result.output
    grid = service.locate(session, 116.005, 39.005)
    assert grid is not None and grid.code == "11010100100101"


def test_reimport_updates_instead_of_duplicating(tmp_path: Path, session: Session) -> None:
    runner = CliRunner()
    runner.invoke(app, ["import-boundaries", str(_write(tmp_path, GOOD))])
    again = runner.invoke(app, ["import-boundaries", str(_write(tmp_path, GOOD))])
    assert again.exit_code == 0
    assert "6 updated" in again.output
    assert _count(session) == 6


def test_bad_features_are_reported_by_index_and_nothing_is_imported(tmp_path: Path, session: Session) -> None:
    bowtie = {"type": "Polygon", "coordinates": [[[116, 39], [116.01, 39.01], [116.01, 39], [116, 39.01], [116, 39]]]}
    doc = {"type": "FeatureCollection", "features": [
        *GOOD["features"][:5],
        _feature("G1", "grid", "110101001001", bowtie),                       # 5: self-intersecting
        _feature("G2", "grid", "NOPE", _square(116.02, 39.02)),               # 6: unknown parent
        _feature("G3", "grid", "110101001001", {"type": "Point", "coordinates": [116, 39]}),  # 7: not a polygon
        _feature("G4", "grid", "110101001001", _square(500, 39)),             # 8: not lon/lat
        _feature("G5", "grid", "110101001001", None),                         # 9: grid without boundary
    ]}
    result = CliRunner().invoke(app, ["import-boundaries", str(_write(tmp_path, doc))])
    assert result.exit_code == 1
    for index in (5, 6, 7, 8, 9):
        assert f"feature {index}:" in result.output
    assert "feature 4:" not in result.output
    assert "nothing was imported" in result.output
    assert _count(session) == 0


def test_a_file_that_is_not_geojson_is_refused(tmp_path: Path, session: Session) -> None:
    path = tmp_path / "x.geojson"
    path.write_text("not json", encoding="utf-8")
    result = CliRunner().invoke(app, ["import-boundaries", str(path)])
    assert result.exit_code == 1
    assert _count(session) == 0
