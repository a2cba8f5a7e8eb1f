"""Startup recovery: make the index and the files agree again after a crash or power loss.

The writer's promise is that everything below ``segments.bytes`` was fsynced before the index
commit that claims it, so after a crash:

* a file longer than ``bytes`` holds unindexed frames in flight: cut back to ``bytes``;
* a file shorter than ``bytes`` (lost writes, a damaged disk) keeps only the frames fully on
  disk in its index: the index never claims a frame that is not there;
* a row whose file is missing is removed, and its run split or shrunk around it;
* open segments are closed (checksum computed) and open runs closed at their last segment;
  an open segment that never indexed a frame is removed;
* a file no row references (an orphan: a segment created but never indexed, or the copy of
  an interrupted head cut) is deleted through the garbage list, but only if its name is one
  ``layout.segment_relpath`` makes: anything else is someone else's file, reported, kept;
* deletions a crash interrupted are finished first.

Storage directories whose identity file is missing or foreign are left alone entirely, so an
unmounted disk never looks like lost files. Recovery must run before any writer starts (it
closes whatever is open and removes empty folders); it is idempotent: a second run finds
nothing. Cost: one streamed pass over the segment rows and one walk of each directory.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from nvr.db.models import Recording, Run, Segment, SegmentFrames, Track
from nvr.store import disk
from nvr.store.frame_index import FrameIndexError, decode_all, encode
from nvr.store.garbage import (
    RunChanges,
    SegmentRef,
    StorageRoot,
    collect,
    enqueue,
    finish_pending,
    remove_segments,
    session_factory,
    storage_roots,
)
from nvr.store.retention import DeletedRange, merge_ranges, segment_time_us
from nvr.store.types import now_us as _clock

_CLAIMED = -1


class SegmentFix(NamedTuple):
    """What recovery did to one segment.

    ``kind``: ``missing`` (file gone, row removed), ``empty`` (no frame indexed, removed),
    ``truncated`` (unindexed tail of ``bytes_cut`` bytes cut), ``trimmed`` (file short: index
    cut by ``frames_dropped`` frames and ``bytes_cut`` bytes), ``closed`` (open segment
    closed), ``unreadable`` (frame index corrupt: left alone)."""

    kind: str
    segment_id: int
    storage_dir_id: int
    path: str
    bytes_cut: int = 0
    frames_dropped: int = 0


class FileFix(NamedTuple):
    """A file without a row: ``kind`` is ``orphan`` (deleted) or ``foreign`` (kept)."""

    kind: str
    storage_dir_id: int
    path: str
    size: int


@dataclass(slots=True)
class RecoveryReport:
    garbage_finished: int = 0
    unavailable_dirs: list[str] = field(default_factory=list)
    segments: list[SegmentFix] = field(default_factory=list)
    files: list[FileFix] = field(default_factory=list)
    runs_closed: int = 0
    runs_removed: int = 0
    runs_fixed: int = 0
    """Runs split around a removed segment or whose bounds moved to their segments."""
    folders_removed: int = 0
    lost: list[DeletedRange] = field(default_factory=list)
    """Indexed data that is gone (missing or short files): for ``DeleteTrackData`` events."""

    def of(self, kind: str) -> list[SegmentFix]:
        return [f for f in self.segments if f.kind == kind]

    @property
    def changes(self) -> int:
        """Everything recovery changed; 0 means the store was consistent."""
        return (
            self.garbage_finished
            + sum(1 for f in self.segments if f.kind != "unreadable")
            + sum(1 for f in self.files if f.kind == "orphan")
            + self.runs_closed
            + self.runs_removed
            + self.runs_fixed
        )

    def __str__(self) -> str:
        lines = [f"store recovery: {self.changes} change(s)"]
        if self.garbage_finished:
            lines.append(f"  finished {self.garbage_finished} interrupted file deletion(s)")
        lines += [f"  storage dir {p}: unavailable, left alone" for p in self.unavailable_dirs]
        text = {
            "missing": "file missing: index row removed",
            "empty": "no frame indexed: removed",
            "truncated": "{bytes_cut} unindexed byte(s) cut from the end",
            "trimmed": "file short: {frames_dropped} frame(s), {bytes_cut} byte(s) unindexed",
            "closed": "open segment closed",
            "unreadable": "frame index unreadable: left alone",
        }
        for f in self.segments:
            what = text[f.kind].format(bytes_cut=f.bytes_cut, frames_dropped=f.frames_dropped)
            lines.append(f"  segment {f.segment_id} ({f.path}): {what}")
        for f in self.files:
            verb = "orphan deleted" if f.kind == "orphan" else "not ours, kept"
            lines.append(f"  file {f.path} ({f.size} bytes): {verb}")
        for count, what in (
            (self.runs_closed, "open run(s) closed"),
            (self.runs_removed, "empty run(s) removed"),
            (self.runs_fixed, "run(s) split or re-bounded"),
            (self.folders_removed, "empty folder(s) removed"),
        ):
            if count:
                lines.append(f"  {count} {what}")
        for r in self.lost:
            lines.append(f"  lost {r.recording_token}/{r.track_token} {r.start_us}..{r.end_us} us")
        return "\n".join(lines)


def recover(db: object, dirs: Mapping[int, Path] | None = None) -> RecoveryReport:
    """Reconcile index and files (see the module docstring); returns what was found.

    ``db`` is an Engine, a sessionmaker or an object holding one (the ``Store``); ``dirs``
    maps storage dir ids to where they are mounted (default: the paths in the database).
    """
    sessions = session_factory(db)
    now = _clock()
    report = RecoveryReport()
    with sessions.begin() as s:
        roots = storage_roots(s, dirs)
    report.unavailable_dirs = [str(r.path) for r in roots.unavailable]
    paths = roots.paths()
    report.garbage_finished = finish_pending(sessions, paths).files
    fixer = _DirFixer(sessions, now, report)
    for root in roots.usable.values():
        fixer.run(root)
    if fixer.removals:
        runs = RunChanges()
        with sessions.begin() as s:
            garbage = remove_segments(s, fixer.removals, now, close_runs=True, changes=runs)
        collect(sessions, garbage, paths)
        report.runs_fixed += runs.split
        report.runs_removed += runs.deleted
        report.runs_closed += runs.closed
    _close_runs(sessions, report)
    for root_path, folders in fixer.folders:
        report.folders_removed += disk.prune_empty_dirs(root_path, folders)
    report.lost = _resolve(sessions, fixer.lost)
    return report


class _Row(NamedTuple):
    id: int
    track_id: int
    run_id: int
    path: str
    start_us: int
    end_us: int
    clock_rate: int
    duration: int
    frames: int
    bytes: int
    open: bool


class _DirFixer:
    """One storage directory: one walk, one streamed pass over its rows, then the fixes."""

    def __init__(self, sessions: sessionmaker[Session], now: int, report: RecoveryReport) -> None:
        self.sessions = sessions
        self.now = now
        self.report = report
        self.removals: list[SegmentRef] = []
        self.lost: dict[int, list[tuple[int, int]]] = {}
        self.folders: list[tuple[Path, list[str]]] = []
        """Every folder walked, to remove the empty ones once all files are settled."""

    def run(self, root: StorageRoot) -> None:
        found = disk.walk(root.path)
        files = found.files
        longer: list[tuple[_Row, int]] = []
        shorter: list[tuple[_Row, int]] = []
        to_close: list[_Row] = []
        with self.sessions.begin() as s:
            rows = s.execute(
                select(*(getattr(Segment, name) for name in _Row._fields))
                .where(Segment.storage_dir_id == root.id)
                .execution_options(yield_per=2000)
            )
            for raw in rows:
                row = _Row(*raw)
                size = files.get(row.path)
                if size is None or size == _CLAIMED:
                    # A path claimed twice is corrupt, but the file may be the other row's:
                    # removing this row through garbage would delete it, so leave it.
                    if size is None:
                        self._remove(root, row, "missing", lost=(row.start_us, row.end_us))
                    continue
                files[row.path] = _CLAIMED
                if row.frames == 0 or row.bytes == 0:
                    self._remove(root, row, "empty")
                    continue
                if size > row.bytes:
                    longer.append((row, size))
                elif size < row.bytes:
                    shorter.append((row, size))
                if row.open:
                    to_close.append(row)
        for row, size in longer:
            disk.truncate(root.path / row.path, row.bytes)
            self._fix("truncated", root, row, bytes_cut=size - row.bytes)
        rehash = {row.id: row for row in to_close}
        for row, size in shorter:
            trimmed = self._trim(root, row, size)
            if trimmed is None:
                rehash.pop(row.id, None)  # removed, or left alone
            else:
                rehash[row.id] = trimmed
        for row in rehash.values():
            digest = disk.sha256_prefix(root.path / row.path, row.bytes)
            with self.sessions.begin() as s:
                s.execute(
                    update(Segment)
                    .where(Segment.id == row.id)
                    .values(sha256=digest, open=False)
                    .execution_options(synchronize_session=False)
                )
            if row.open:
                self._fix("closed", root, row)
        self._orphans(root, files)
        self.folders.append((root.path, found.dirs))

    def _trim(self, root: StorageRoot, row: _Row, size: int) -> _Row | None:
        """Cut the index back to the frames wholly inside the ``size`` bytes on disk."""
        with self.sessions.begin() as s:
            blob = s.execute(
                select(SegmentFrames.blob).where(SegmentFrames.segment_id == row.id)
            ).scalar_one_or_none()
        try:
            frames = decode_all(blob or b"")
        except FrameIndexError:
            self._fix("unreadable", root, row)
            return None
        kept = [f for f in frames if f.offset + f.size <= size]
        if not kept:
            self._remove(root, row, "missing", lost=(row.start_us, row.end_us))
            return None
        new_bytes = kept[-1].offset + kept[-1].size
        new_duration = kept[-1].pts + kept[-1].duration
        new_end = segment_time_us(row.start_us, row.clock_rate, new_duration)
        with self.sessions.begin() as s:
            s.execute(
                update(Segment)
                .where(Segment.id == row.id)
                .values(
                    bytes=new_bytes,
                    frames=len(kept),
                    key_frames=sum(1 for f in kept if f.key),
                    duration=new_duration,
                    end_us=new_end,
                    sha256=None,
                )
                .execution_options(synchronize_session=False)
            )
            s.execute(
                update(SegmentFrames)
                .where(SegmentFrames.segment_id == row.id)
                .values(blob=encode([(f.size, f.duration, f.key) for f in kept]))
                .execution_options(synchronize_session=False)
            )
        disk.truncate(root.path / row.path, new_bytes)
        self._fix(
            "trimmed",
            root,
            row,
            bytes_cut=row.bytes - new_bytes,
            frames_dropped=len(frames) - len(kept),
        )
        if new_end < row.end_us:
            self.lost.setdefault(row.track_id, []).append((new_end, row.end_us))
        return row._replace(bytes=new_bytes, end_us=new_end, duration=new_duration)

    def _orphans(self, root: StorageRoot, files: dict[str, int]) -> None:
        orphans = []
        for rel, size in files.items():
            if size == _CLAIMED:
                continue
            if disk.SEGMENT_NAME.fullmatch(rel):
                orphans.append((rel, size))
                self.report.files.append(FileFix("orphan", root.id, rel, size))
            else:
                self.report.files.append(FileFix("foreign", root.id, rel, size))
        if not orphans:
            return
        with self.sessions.begin() as s:
            garbage = [enqueue(s, root.id, rel, self.now) for rel, _ in orphans]
        collect(self.sessions, garbage, {root.id: root.path})

    def _remove(
        self, root: StorageRoot, row: _Row, kind: str, lost: tuple[int, int] | None = None
    ) -> None:
        self.removals.append(SegmentRef(row.id, row.run_id, root.id, row.path, row.start_us))
        self._fix(kind, root, row)
        if lost is not None and lost[1] > lost[0]:
            self.lost.setdefault(row.track_id, []).append(lost)

    def _fix(self, kind: str, root: StorageRoot, row: _Row, **extra: int) -> None:
        self.report.segments.append(SegmentFix(kind, row.id, root.id, row.path, **extra))


def _close_runs(sessions: sessionmaker[Session], report: RecoveryReport) -> None:
    """Every run closed and bounded by its segments; runs without segments removed."""
    with sessions.begin() as s:
        bounds = {
            run_id: (start, end)
            for run_id, start, end in s.execute(
                select(
                    Segment.run_id, func.min(Segment.start_us), func.max(Segment.end_us)
                ).group_by(Segment.run_id)
            )
        }
        empty = []
        for run_id, start, end, is_open in s.execute(
            select(Run.id, Run.start_us, Run.end_us, Run.open)
        ).all():
            if run_id not in bounds:
                empty.append(run_id)
                continue
            first, last = bounds[run_id]
            if (start, end, is_open) == (first, last, False):
                continue
            s.execute(
                update(Run)
                .where(Run.id == run_id)
                .values(start_us=first, end_us=last, open=False)
                .execution_options(synchronize_session=False)
            )
            if is_open:
                report.runs_closed += 1
            else:
                report.runs_fixed += 1
        for i in range(0, len(empty), 500):
            s.execute(delete(Run).where(Run.id.in_(empty[i : i + 500])))
        report.runs_removed += len(empty)


def _resolve(
    sessions: sessionmaker[Session], lost: dict[int, list[tuple[int, int]]]
) -> list[DeletedRange]:
    if not lost:
        return []
    with sessions.begin() as s:
        tokens = {
            tid: (rec, tok)
            for tid, tok, rec in s.execute(
                select(Track.id, Track.token, Recording.token)
                .join(Recording, Recording.id == Track.recording_id)
                .where(Track.id.in_(list(lost)))
            )
        }
    out = [
        DeletedRange(*tokens[tid], start, end)
        for tid, ranges in lost.items()
        if tid in tokens
        for start, end in merge_ranges(ranges)
    ]
    out.sort(key=lambda r: (r.recording_token, r.track_token, r.start_us))
    return out
