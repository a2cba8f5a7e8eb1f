"""The alembic migrations and the SQLAlchemy models describe the same schema."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

from nvr.db.migrate import current_revision, upgrade
from nvr.db.models import Base


def test_migrations_match_models(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_upgrade_is_idempotent(engine: Engine) -> None:
    head = current_revision(engine)
    before, after = upgrade(engine)
    assert before == head == after
    tables = set(inspect(engine).get_table_names())
    assert {"segments", "segment_frames", "runs", "users", "holds", "garbage"} <= tables
