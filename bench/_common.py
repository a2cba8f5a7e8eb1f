"""What the store benchmarks share: their command line's common part, a scratch database and
storage directory that are removed afterwards, and a plain table printer. Import it after
``sys.path`` holds the repository."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from nvr.db.engine import make_engine, normalise_url
from nvr.db.migrate import upgrade

REPO = Path(__file__).resolve().parents[1]


def bench_parser(doc: str) -> argparse.ArgumentParser:
    """A benchmark's command line: the first paragraph of its docstring ``doc`` as the
    description, and ``--dir`` and ``--database-url`` for :func:`scratch_dir` and
    :func:`scratch_database`."""
    ap = argparse.ArgumentParser(
        description=doc.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--dir", type=Path, help="parent of the scratch storage directory")
    ap.add_argument("--database-url", help="PostgreSQL server (default: SQLite in the scratch dir)")
    return ap


@contextlib.contextmanager
def scratch_dir(given: Path | None) -> Iterator[Path]:
    """A fresh directory inside ``given``, else in the temp dir when it is on the same
    filesystem as the repository, else next to the repository; removed at the end."""
    if given is not None:
        parent = given
    elif os.stat(tempfile.gettempdir()).st_dev == os.stat(REPO).st_dev:
        parent = Path(tempfile.gettempdir())
    else:
        parent = REPO.parent
    parent.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix="nvr-bench-", dir=parent))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def scratch_database(url: str | None, work: Path) -> Iterator[tuple[Engine, str]]:
    """A migrated, empty database: SQLite in ``work`` by default; with a PostgreSQL URL, a
    database ``nvr_bench_<pid>`` created on that server and dropped at the end. Yields the
    engine and a printable description."""
    if url is None:
        engine = make_engine(f"sqlite:///{work / 'bench.db'}")
        upgrade(engine)
        try:
            yield engine, f"SQLite ({work / 'bench.db'})"
        finally:
            engine.dispose()
        return
    parsed = make_url(normalise_url(url))
    if parsed.get_backend_name() != "postgresql":
        engine = make_engine(url)
        upgrade(engine)
        try:
            yield engine, str(parsed.render_as_string(hide_password=True))
        finally:
            engine.dispose()
        return
    name = f"nvr_bench_{os.getpid()}"
    admin = create_engine(parsed, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(parsed.set(database=name).render_as_string(hide_password=False))
    try:
        upgrade(engine)
        with engine.connect() as conn:
            version = conn.scalar(text("SHOW server_version"))
        yield engine, f"PostgreSQL {version} ({parsed.host}:{parsed.port or 5432}/{name})"
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A fixed-width text table: the first column left-aligned, the others right-aligned."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(r: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )

    out = [line(cells[0]), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells[1:]]
    return "\n".join(out)
