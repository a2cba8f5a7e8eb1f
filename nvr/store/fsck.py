"""``nvr fsck``: check that the index and the media files agree, without changing anything.

Per segment: the file is present and holds at least ``bytes`` bytes (more is only unindexed
frames in flight, which recovery cuts); with ``hash=True`` also that the first ``bytes`` bytes
of a closed segment match its stored SHA-256 and that its frame index adds up. Files no row
references are orphans when their name is one the store makes, foreign otherwise.
``problems`` is what the CLI turns into its exit status. Safe on a running store: a file that
looks missing or short is looked at again before it counts (the walk is older than the rows),
but a segment created and not yet indexed shows as an orphan until its first checkpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import Row, func, select
from sqlalchemy.orm import Session, sessionmaker

from nvr.db.models import Garbage, Segment, SegmentFrames
from nvr.store import disk
from nvr.store.frame_index import FrameIndexError, decode_all
from nvr.store.garbage import StorageRoot, session_factory, storage_roots

_CLAIMED = -1


class Finding(NamedTuple):
    """One problem (or, with ``segment_id`` None, one file without a row)."""

    storage_dir_id: int
    path: str
    segment_id: int | None
    problem: str


@dataclass(slots=True)
class FsckReport:
    segments: int = 0
    """Segments checked (those in available storage directories)."""
    ok: int = 0
    hashed: int = 0
    """Closed segments whose checksum was verified."""
    open_segments: int = 0
    unindexed_tails: int = 0
    """Files longer than their indexed length: a crash or a live checkpoint; not a problem."""
    findings: list[Finding] = field(default_factory=list)
    orphans: list[Finding] = field(default_factory=list)
    foreign: list[Finding] = field(default_factory=list)
    """Files that are not ours by name: listed, not counted as problems."""
    unavailable_dirs: list[str] = field(default_factory=list)
    pending_garbage: int = 0

    @property
    def problems(self) -> int:
        return len(self.findings) + len(self.orphans) + len(self.unavailable_dirs)

    def __str__(self) -> str:
        lines = [
            f"{self.segments} segment(s) checked: {self.ok} ok, {self.hashed} checksum(s) "
            f"verified, {self.open_segments} open, {self.unindexed_tails} with an unindexed "
            f"tail; {len(self.orphans)} orphan file(s), {len(self.foreign)} foreign file(s), "
            f"{self.pending_garbage} pending deletion(s); {self.problems} problem(s)"
        ]
        lines += [f"  storage dir {p}: unavailable" for p in self.unavailable_dirs]
        for f in self.findings:
            lines.append(f"  segment {f.segment_id} ({f.path}): {f.problem}")
        for f in self.orphans + self.foreign:
            lines.append(f"  file {f.path}: {f.problem}")
        return "\n".join(lines)


def check(db: object, dirs: Mapping[int, Path] | None = None, *, hash: bool = False) -> FsckReport:
    """Check every segment of every available storage directory; reads only."""
    sessions = session_factory(db)
    report = FsckReport()
    with sessions.begin() as s:
        roots = storage_roots(s, dirs)
        report.pending_garbage = s.execute(select(func.count()).select_from(Garbage)).scalar_one()
    report.unavailable_dirs = [str(r.path) for r in roots.unavailable]
    for root in roots.usable.values():
        _check_dir(sessions, root, report, hash)
    return report


def _check_dir(
    sessions: sessionmaker[Session], root: StorageRoot, report: FsckReport, deep: bool
) -> None:
    found = disk.walk(root.path)
    files = found.files
    columns = [
        Segment.id,
        Segment.path,
        Segment.bytes,
        Segment.frames,
        Segment.open,
        Segment.sha256,
    ]
    query = select(*columns).where(Segment.storage_dir_id == root.id)
    if deep:
        query = query.add_columns(SegmentFrames.blob).outerjoin(
            SegmentFrames, SegmentFrames.segment_id == Segment.id
        )
    after = 0
    while True:  # short read transactions: on SQLite a long one would stall the writer
        with sessions.begin() as s:
            rows = s.execute(query.where(Segment.id > after).order_by(Segment.id).limit(500)).all()
        if not rows:
            break
        after = rows[-1].id
        for row in rows:
            report.segments += 1
            report.open_segments += int(row.open)
            problems = _check_segment(root, row, files, deep, report)
            for problem in problems:
                report.findings.append(Finding(root.id, row.path, row.id, problem))
            if not problems:
                report.ok += 1
    for rel, size in files.items():
        if size == _CLAIMED or _size(root.path / rel) is None:
            continue  # indexed, or deleted since the walk
        if disk.SEGMENT_NAME.fullmatch(rel):
            report.orphans.append(Finding(root.id, rel, None, f"orphan ({size} bytes)"))
        else:
            report.foreign.append(Finding(root.id, rel, None, f"not ours ({size} bytes)"))


def _check_segment(
    root: StorageRoot, row: Row[Any], files: dict[str, int], deep: bool, report: FsckReport
) -> list[str]:
    seg_path: str = row.path
    indexed: int = row.bytes
    size = files.get(seg_path)
    if size == _CLAIMED:
        return ["file shared with another segment"]
    files[seg_path] = _CLAIMED
    if size is None or size < indexed:
        size = _size(root.path / seg_path)  # the walk is older than the row: look again
    if size is None:
        return ["file missing"]
    problems = []
    if size < indexed:
        problems.append(f"file short: {size} of {indexed} indexed bytes")
    elif size > indexed:
        report.unindexed_tails += 1
    if not deep:
        return problems
    problems += _check_index(row)
    if row.open or problems:
        return problems
    if row.sha256 is None:
        return ["closed without a checksum"]
    try:
        digest = disk.sha256_prefix(root.path / seg_path, indexed)
    except FileNotFoundError:
        return []  # deleted by retention since the row was read
    except OSError as exc:
        return [f"unreadable: {exc}"]
    report.hashed += 1
    if digest != row.sha256:
        problems.append("checksum mismatch: the file changed after it was closed")
    return problems


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


def _check_index(row: Row[Any]) -> list[str]:
    blob = row.blob
    if blob is None:
        return ["no frame index"]
    try:
        frames = decode_all(blob)
    except FrameIndexError as exc:
        return [f"frame index unreadable: {exc}"]
    covered = frames[-1].offset + frames[-1].size if frames else 0
    problems = []
    if len(frames) != row.frames:
        problems.append(f"frame index has {len(frames)} frames, row says {row.frames}")
    if covered != row.bytes:
        problems.append(f"frame index covers {covered} bytes, row says {row.bytes}")
    if frames and not frames[0].key:
        problems.append("does not start with a key frame")
    return problems
