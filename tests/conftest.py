"""Shared fixtures. The database backend is chosen by NVR_TEST_DATABASE (sqlite, the default,
or postgresql); scripts/test runs the suite once for each."""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from nvr.db.engine import make_engine, make_sessionmaker
from nvr.db.migrate import upgrade
from nvr.db.models import Base

# Speed belongs to bench/: on a loaded CI machine hypothesis's per-example deadline and its
# too-slow health check only turn scheduling noise into failures.
settings.register_profile(
    "nvr", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile("nvr")

BACKEND = os.environ.get("NVR_TEST_DATABASE", "sqlite")
PG_ADMIN_URL = os.environ.get(
    "NVR_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
_counter = itertools.count()


def pytest_report_header(config: pytest.Config) -> str:
    return f"nvr test database backend: {BACKEND}"


def _pg_admin() -> Engine:
    return create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """A fresh, empty (unmigrated) database of the backend under test."""
    if BACKEND == "sqlite":
        yield f"sqlite:///{tmp_path / 'nvr.db'}"
        return
    if BACKEND != "postgresql":
        raise pytest.UsageError(f"NVR_TEST_DATABASE={BACKEND!r}: use sqlite or postgresql")
    name = f"nvr_test_{os.getpid()}_{next(_counter)}"
    admin = _pg_admin()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


_shared_pg_url: str | None = None


def _shared_postgres() -> str:
    """One migrated PostgreSQL database for the whole test process (dropped at exit):
    creating a database costs about a second, too much to pay for every test."""
    global _shared_pg_url
    if _shared_pg_url is None:
        name = f"nvr_test_shared_{os.getpid()}"
        admin = _pg_admin()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))

        def drop() -> None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()

        atexit.register(drop)
        url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
        eng = make_engine(url)
        upgrade(eng)
        eng.dispose()
        _shared_pg_url = url
    return _shared_pg_url


@pytest.fixture
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """An engine on an empty database migrated to the newest schema. SQLite: a fresh file per
    test. PostgreSQL: one migrated database per test process, emptied before each test (as
    good as fresh for tests that neither change the schema nor expect ids from 1)."""
    if BACKEND == "postgresql":
        eng = make_engine(_shared_postgres())
        with eng.begin() as conn:  # DELETE: far cheaper than TRUNCATE on tiny tables
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(table.delete())
    else:
        eng = make_engine(request.getfixturevalue("database_url"))
        upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_sessionmaker(engine)


def require_binary(name: str) -> str:
    """Path of an external tool the test needs; scripts/test installs them, so a missing one
    is a setup error, not a reason to skip silently (set NVR_TEST_ALLOW_MISSING=1 to skip)."""
    path = shutil.which(name)
    if path:
        return path
    if os.environ.get("NVR_TEST_ALLOW_MISSING"):
        pytest.skip(f"{name} not installed")
    pytest.fail(f"{name} is not installed: run scripts/test, which installs it")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With NVR_TEST_DB_ONLY=1 (the PostgreSQL pass of scripts/test) keep only the tests that
    use a database, so pure protocol tests do not run twice."""
    if not os.environ.get("NVR_TEST_DB_ONLY"):
        return
    db_fixtures = {"database_url", "engine", "sessions"}
    keep = [i for i in items if db_fixtures & set(getattr(i, "fixturenames", ()))]
    config.hook.pytest_deselected(items=[i for i in items if i not in keep])
    items[:] = keep
