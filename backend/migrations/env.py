"""Alembic environment: one engine factory for both backends, GeoAlchemy2's helpers wired in."""

from __future__ import annotations

from alembic import context
from geoalchemy2 import alembic_helpers

from backend.core.db import create_db_engine, metadata
from backend.models import import_all_models

import_all_models()

config = context.config


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("hulei_database_url"),
        target_metadata=metadata,
        literal_binds=True,
        include_object=alembic_helpers.include_object,
        render_item=alembic_helpers.render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    url = config.get_main_option("hulei_database_url")
    engine = create_db_engine(url)
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=metadata,
                include_object=alembic_helpers.include_object,
                process_revision_directives=alembic_helpers.writer,
                render_item=alembic_helpers.render_item,
                render_as_batch=connection.dialect.name == "sqlite",
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
