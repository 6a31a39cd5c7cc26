"""Migrations are the only way the schema is made: they must match the models exactly."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from geoalchemy2 import alembic_helpers
from sqlmodel import Session

from backend.core.db import metadata
from backend.models import import_all_models


def test_models_and_migrations_agree(session: Session) -> None:
    import_all_models()
    ctx = MigrationContext.configure(
        session.connection(),
        opts={"include_object": alembic_helpers.include_object, "compare_type": True,
              "render_item": alembic_helpers.render_item},
    )
    diff = [d for d in compare_metadata(ctx, metadata) if not _is_spatialite_internal(d)]
    assert diff == []


def _is_spatialite_internal(entry: object) -> bool:
    """SpatiaLite's own metadata tables and virtual index tables are not ours."""
    text = repr(entry)
    markers = ("spatial_ref_sys", "geometry_columns", "spatialite", "SpatialIndex", "idx_", "sql_statements_log",
               "views_geometry_columns", "virts_geometry_columns", "ElementaryGeometries", "KNN", "data_licenses",
               "geom_cols_ref_sys", "spatial_ref_sys_aux", "vector_layers", "rl2map_configurations", "SE_",
               "topologies", "networks", "raster_coverages", "vector_coverages", "wms_", "ISO_metadata",
               "stored_procedures", "stored_variables", "sqlite_", "KNN2", "geometry_columns_")
    return any(m in text for m in markers)
