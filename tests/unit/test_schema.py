"""The migrations build exactly the schema the models describe: a model change without its
migration (or the reverse) fails here, not on an operator's database."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from worker.store.database import make_engine, upgrade
from worker.store.models import Base


def test_migrated_database_matches_the_models(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'dialer.db'}")
    try:
        upgrade(engine)
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()
