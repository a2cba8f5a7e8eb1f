"""Engine and session factory for PostgreSQL (psycopg 3) and SQLite.

SQLite runs in WAL mode with ``synchronous=FULL``: the store's checkpoint promise ("what is
indexed is on disk") needs the index commit itself to be durable across power loss.

PostgreSQL connections are checked before use only when they sat idle in the pool for
``IDLE_PING_SECONDS`` or more (a dead one is replaced, and the rest of the pool with it, as
``pool_pre_ping`` would): a ping on every checkout was a round trip on every seek of a replay.
A connection that dies while in steady use fails its statement instead, which invalidates the
pool; the store's readers retry such a read once, and its index committer retries at the next
checkpoint anyway.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, InvalidatePoolError
from sqlalchemy.orm import Session, sessionmaker

IDLE_PING_SECONDS = 1.0
"""A pooled PostgreSQL connection idle at least this long is pinged before it is used."""


class DatabaseUrlError(ValueError):
    """The database URL is malformed or names an unsupported database."""


def normalise_url(url: str) -> str:
    """Map the common URL spellings onto the drivers we ship (psycopg 3 for PostgreSQL)."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseUrlError(f"cannot parse database URL {url!r}: {exc}") from None
    backend = parsed.get_backend_name()
    if backend in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif backend != "sqlite":
        raise DatabaseUrlError(
            f"unsupported database {backend!r} in {url!r}: use postgresql://... or sqlite:///..."
        )
    return parsed.render_as_string(hide_password=False)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str, *, pool_size: int = 8) -> Engine:
    """Create an engine; nothing is connected until first use."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        connect_args={"connect_timeout": 5},
    )
    _ping_when_idle(engine)
    return engine


def _ping_when_idle(engine: Engine) -> None:
    """``pool_pre_ping``, for connections that were idle for ``IDLE_PING_SECONDS`` only."""
    dialect = engine.dialect

    def checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info["nvr_idle_since"] = time.monotonic()

    def checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop("nvr_idle_since", None)  # absent: a fresh connection
        if since is None or time.monotonic() - since < IDLE_PING_SECONDS:
            return
        try:
            dialect.do_ping(dbapi_conn)
        except Exception as exc:
            # The pool replaces this connection, and all older ones, then tries again.
            raise InvalidatePoolError(f"idle connection failed its ping: {exc}") from exc

    event.listen(engine, "checkin", checkin)
    event.listen(engine, "checkout", checkout)


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    # Take transaction control away from the sqlite3 module so BEGIN is explicit (see below).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _sqlite_begin(conn) -> None:  # type: ignore[no-untyped-def]
    # BEGIN IMMEDIATE avoids the deadlock-prone read-to-write lock upgrade between threads.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
