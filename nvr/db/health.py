"""Database reachability checks with messages an operator can act on."""

from __future__ import annotations

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError, OperationalError


class DatabaseUnavailable(RuntimeError):
    """The database cannot be reached or refuses us."""


def describe(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def check(engine: Engine) -> None:
    """Run ``SELECT 1``; raise DatabaseUnavailable naming the URL and the reason."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except (OperationalError, DBAPIError) as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise DatabaseUnavailable(
            f"cannot reach the database {describe(engine)}: {reason}"
        ) from None
