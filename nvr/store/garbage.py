"""The one deletion path of the store: index rows and files go away through the garbage list.

A deletion is three steps: (1) in ONE transaction, segment rows are deleted or rewritten and
every file they let go of is inserted into ``garbage``; (2) the files are unlinked (and their
folders fsynced); (3) the garbage rows are deleted. A crash after (1) leaves garbage rows that
``finish_pending`` completes on the next start; a crash before (1) changed nothing. Every step
is idempotent: an already missing file counts as deleted.

This module also holds what retention and recovery share about the database: how to get a
session factory from what the caller hands in, which storage directories are usable, and how
runs are repaired when segments leave them.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from nvr.db.engine import make_sessionmaker
from nvr.db.models import Garbage, Run, Segment, SegmentFrames, StorageDir
from nvr.durable import fsync_dir
from nvr.store import disk

log = logging.getLogger(__name__)


def session_factory(db: object) -> sessionmaker[Session]:
    """A session factory from an Engine, a sessionmaker, or an object carrying one (the
    ``Store`` façade calls ``recover(store)``: any attribute ``sessions``, ``sessionmaker``,
    ``session_factory`` or ``engine`` will do)."""
    if isinstance(db, sessionmaker):
        return db
    if isinstance(db, Engine):
        return make_sessionmaker(db)
    for name in ("sessions", "sessionmaker", "session_factory", "engine", "_sessions", "_engine"):
        value = getattr(db, name, None)
        if isinstance(value, sessionmaker | Engine):
            return session_factory(value)
    raise TypeError(f"no database in {type(db).__name__}: pass an Engine or a sessionmaker")


@dataclass(frozen=True, slots=True)
class StorageRoot:
    """A storage directory as the database describes it, with where it is mounted now."""

    id: int
    path: Path
    uuid: str
    max_bytes: int | None
    min_free_bytes: int


@dataclass(slots=True)
class Roots:
    """Storage directories split into usable ones and ones to leave alone this time."""

    usable: dict[int, StorageRoot]
    unavailable: list[StorageRoot]

    def paths(self) -> dict[int, Path]:
        return {i: r.path for i, r in self.usable.items()}


def storage_roots(session: Session, dirs: Mapping[int, Path] | None = None) -> Roots:
    """The storage dir rows (only those in ``dirs`` when given, mounted where it says); a dir
    whose identity file is missing or foreign is unavailable (unmounted or swapped disk)."""
    usable: dict[int, StorageRoot] = {}
    unavailable: list[StorageRoot] = []
    for row in session.execute(select(StorageDir)).scalars():
        if dirs is not None and row.id not in dirs:
            continue
        path = Path(dirs[row.id]) if dirs is not None else Path(row.path)
        root = StorageRoot(row.id, path, row.uuid, row.max_bytes, row.min_free_bytes or 0)
        if disk.available(path, row.uuid):
            usable[row.id] = root
        else:
            unavailable.append(root)
    return Roots(usable, unavailable)


def enqueue(session: Session, storage_dir_id: int, relpath: str, when_us: int) -> int:
    """Put a file on the garbage list inside the caller's transaction; returns the row id."""
    return session.execute(
        insert(Garbage)
        .values(storage_dir_id=storage_dir_id, path=relpath, created_us=when_us)
        .returning(Garbage.id)
    ).scalar_one()


@dataclass(slots=True)
class Collected:
    files: int = 0
    """Garbage rows completed (the file was unlinked now or was already gone)."""
    bytes: int = 0
    """Sizes of the files actually unlinked."""
    failed: int = 0
    """Rows left pending: the unlink failed, or their directory is unavailable."""


def collect(
    sessions: sessionmaker[Session], ids: Iterable[int], roots: Mapping[int, Path]
) -> Collected:
    """Steps (2) and (3) for the given garbage rows. Rows of directories not in ``roots``
    (unavailable) stay pending; so do rows whose unlink fails for any reason but ENOENT."""
    ids = list(ids)
    out = Collected()
    if not ids:
        return out
    with sessions.begin() as s:
        rows = s.execute(
            select(Garbage.id, Garbage.storage_dir_id, Garbage.path).where(Garbage.id.in_(ids))
        ).all()
    done: list[int] = []
    touched: set[Path] = set()
    for gid, dir_id, rel in rows:
        root = roots.get(dir_id)
        if root is None:
            out.failed += 1
            continue
        path = root / rel
        try:
            size = path.stat().st_size
            os.unlink(path)
            out.bytes += size
            touched.add(path.parent)
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("cannot delete %s: %s (left on the garbage list)", path, exc)
            out.failed += 1
            continue
        done.append(gid)
    for folder in touched:
        try:
            fsync_dir(folder)
        except OSError:
            pass
        _prune_old_day(folder)
    for i in range(0, len(done), 500):
        with sessions.begin() as s:
            s.execute(delete(Garbage).where(Garbage.id.in_(done[i : i + 500])))
    out.files = len(done)
    return out


def _prune_old_day(folder: Path) -> None:
    """Remove a day folder (``layout.segment_relpath``) once empty, if it is older than
    yesterday (UTC): no writer creates files there any more, so rmdir cannot race one."""
    try:
        day = dt.date.fromisoformat(folder.name)
    except ValueError:
        return
    if day < dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1):
        try:
            os.rmdir(folder)
        except OSError:
            pass


def finish_pending(db: object, dirs: Mapping[int, Path] | None = None) -> Collected:
    """Complete deletions a crash interrupted (on start, before writers run); idempotent."""
    sessions = session_factory(db)
    with sessions.begin() as s:
        roots = storage_roots(s, dirs).paths()
        ids = list(s.execute(select(Garbage.id).order_by(Garbage.id)).scalars())
    return collect(sessions, ids, roots)


class SegmentRef(NamedTuple):
    """What removing a segment needs to know about it."""

    id: int
    run_id: int
    storage_dir_id: int
    path: str
    start_us: int


@dataclass(slots=True)
class RunChanges:
    """What ``repair_runs`` did, for reports."""

    split: int = 0
    """New runs made from the older pieces of split runs."""
    deleted: int = 0
    closed: int = 0


def remove_segments(
    session: Session,
    segments: Iterable[SegmentRef],
    when_us: int,
    *,
    close_runs: bool = False,
    changes: RunChanges | None = None,
) -> list[int]:
    """Step (1) for whole segments: delete their rows and frame blobs, list their files as
    garbage and repair their runs, in the caller's transaction. Returns the garbage ids to
    ``collect`` after the commit."""
    segments = list(segments)
    if not segments:
        return []
    by_run: dict[int, list[tuple[int, int]]] = {}
    garbage_ids = []
    for seg in segments:
        by_run.setdefault(seg.run_id, []).append((seg.start_us, seg.id))
        garbage_ids.append(enqueue(session, seg.storage_dir_id, seg.path, when_us))
    ids = [seg.id for seg in segments]
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        session.execute(delete(SegmentFrames).where(SegmentFrames.segment_id.in_(chunk)))
        session.execute(delete(Segment).where(Segment.id.in_(chunk)))
    repair_runs(session, by_run, close=close_runs, changes=changes)
    return garbage_ids


def repair_runs(
    session: Session,
    removed: Mapping[int, Iterable[tuple[int, int]]],
    *,
    close: bool = False,
    changes: RunChanges | None = None,
) -> RunChanges:
    """Make runs describe their remaining segments again, after segments were removed
    (``removed``: run id -> ``(start_us, id)`` of each removed segment) or had their head cut.

    A removal inside a run opens a gap, so the run splits. The newest piece keeps the run's
    id (a writer may still be appending to it under that id); older pieces become new, closed
    runs. A run left empty is deleted unless it is open and ``close`` is false: a writer may
    be between two segments of it. ``close`` (recovery) also closes open runs.
    """
    changes = RunChanges() if changes is None else changes
    if not removed:
        return changes
    runs = session.execute(
        select(Run.id, Run.track_id, Run.end_us, Run.open).where(Run.id.in_(list(removed)))
    ).all()
    for run_id, track_id, end_us, is_open in runs:
        gaps = sorted(removed[run_id])
        in_run = select(Segment.id, Segment.start_us, Segment.end_us).where(
            Segment.run_id == run_id
        )
        first = session.execute(in_run.order_by(Segment.start_us, Segment.id).limit(1)).first()
        if first is None:
            if is_open and not close:
                session.execute(update(Run).where(Run.id == run_id).values(start_us=end_us))
            else:
                session.execute(delete(Run).where(Run.id == run_id))
                changes.deleted += 1
            continue
        last = session.execute(
            in_run.order_by(Segment.start_us.desc(), Segment.id.desc()).limit(1)
        ).one()
        at = bisect.bisect_right(gaps, (first.start_us, first.id))
        if at < len(gaps) and gaps[at] < (last.start_us, last.id):
            # A removal inside the run (rare: a hold or a lost file): split it.
            segs = session.execute(in_run.order_by(Segment.start_us, Segment.id)).all()
            pieces: list[list[Any]] = [[segs[0]]]
            for prev, seg in itertools.pairwise(segs):
                at = bisect.bisect_right(gaps, (prev.start_us, prev.id))
                if at < len(gaps) and gaps[at] < (seg.start_us, seg.id):
                    pieces.append([])
                pieces[-1].append(seg)
        else:
            pieces = [[first, last]]
        newest = pieces[-1]
        values: dict[str, object] = {"start_us": newest[0].start_us}
        if close or not is_open:
            values["end_us"] = newest[-1].end_us
            values["open"] = False
            changes.closed += int(is_open)
        session.execute(update(Run).where(Run.id == run_id).values(**values))
        for piece in pieces[:-1]:
            new_id = session.execute(
                insert(Run)
                .values(
                    track_id=track_id,
                    start_us=piece[0].start_us,
                    end_us=piece[-1].end_us,
                    open=False,
                )
                .returning(Run.id)
            ).scalar_one()
            session.execute(
                update(Segment).where(Segment.id.in_([p.id for p in piece])).values(run_id=new_id)
            )
            changes.split += 1
    return changes
