"""Retention: what old data goes, and when.

Three rules, applied by ``sweep`` every few seconds:

1. per recording ``MaximumRetentionTime`` (``max_retention_us > 0``): every frame whose END is
   older than ``now - retention`` goes;
2. per storage directory, a size cap (sum of our indexed bytes > ``max_bytes``) and a
   free-space floor (free < ``min_free_bytes``): the oldest data of that directory goes, across
   all its tracks, until both hold again;
3. frames inside an active hold (unexpired ``holds`` row of that recording, and of that track or
   of all tracks) never go.

Whole segments are deleted through the garbage list. When only the head of a segment may go,
the kept tail (from the last key frame at or before the first frame to keep, so it stays
decodable) is copied into a new file and the segment row is switched to it; the tail of a
segment is never cut (the data after a hold inside a segment stays with it). Open segments are
never touched, so the newest data goes last and the writer's file is never pulled away.

Frame times are the reader's: ``start_us + pts * 1e6 // clock_rate`` (``segment_time_us``);
the last frame of a segment ends at ``end_us`` (the next segment's start in a slewed run).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import and_, case, func, null, or_, select, true, update
from sqlalchemy.orm import Session, sessionmaker

from nvr.db.models import (
    Hold,
    Recording,
    SampleEntry,
    Segment,
    SegmentFrames,
    Track,
)
from nvr.durable import fsync_dir
from nvr.store import disk
from nvr.store.frame_index import FrameInfo, decode_all, encode
from nvr.store.garbage import (
    SegmentRef,
    StorageRoot,
    collect,
    enqueue,
    remove_segments,
    repair_runs,
    session_factory,
    storage_roots,
)
from nvr.store.layout import segment_relpath
from nvr.store.types import now_us as _clock

log = logging.getLogger(__name__)


class DeletedRange(NamedTuple):
    """Data of one track deleted as one contiguous range: one ``DeleteTrackData`` event."""

    recording_token: str
    track_token: str
    start_us: int
    end_us: int


@dataclass(slots=True)
class SweepResult:
    deleted: list[DeletedRange] = field(default_factory=list)
    segments_deleted: int = 0
    segments_rewritten: int = 0
    """Segments whose head was cut (the kept tail copied into a new file)."""
    bytes_freed: int = 0
    """Indexed bytes that left the store."""
    nothing_deletable: bool = False
    """A size cap or free-space floor is still not met and everything left is held or open:
    the writer should go to its error state instead of filling the disk."""
    starved_dirs: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def segment_time_us(start_us: int, clock_rate: int, pts: int) -> int:
    """Wall-clock time of the point ``pts`` clock units into a segment (as the reader has it)."""
    return start_us + pts * 1_000_000 // clock_rate


def sweep(
    db: object,
    dirs: Mapping[int, Path] | None = None,
    *,
    now_us: int | None = None,
    batch: int = 256,
) -> SweepResult:
    """Apply the retention rules once; never raises (problems land in ``errors``).

    ``db`` is an Engine, a sessionmaker or an object holding one; ``dirs`` maps storage dir
    ids to where they are mounted (default: the paths in the database). With nothing to do it
    costs three small indexed queries (storage dirs, tracks with a retention time, their
    expired segments) and a ``statvfs`` per directory; the usage sum of a capped directory is
    only asked for when the whole filesystem holds more than the cap.
    """
    result = SweepResult()
    try:
        sessions = session_factory(db)
        with sessions.begin() as s:
            roots = storage_roots(s, dirs)
        now = _clock() if now_us is None else now_us
        run = _Sweep(sessions, roots.paths(), now, batch, result)
    except Exception as exc:
        log.exception("retention sweep could not start")
        result.errors.append(f"sweep: {exc}")
        return result
    try:
        run.by_age()
    except Exception as exc:
        log.exception("retention by age failed")
        result.errors.append(f"retention time: {exc}")
    for root in roots.usable.values():
        try:
            run.by_space(root)
        except Exception as exc:
            log.exception("retention of storage dir %s failed", root.path)
            result.errors.append(f"storage dir {root.path}: {exc}")
    try:
        result.deleted = run.report()
    except Exception as exc:
        log.exception("retention report failed")
        result.errors.append(f"report: {exc}")
    result.nothing_deletable = bool(result.starved_dirs)
    return result


class _Seg(NamedTuple):
    id: int
    track_id: int
    recording_id: int
    run_id: int
    storage_dir_id: int
    path: str
    start_us: int
    end_us: int
    clock_rate: int
    duration: int
    bytes: int
    codec: str
    blob: bytes | None


_COLUMNS = (
    Segment.id,
    Segment.track_id,
    Track.recording_id,
    Segment.run_id,
    Segment.storage_dir_id,
    Segment.path,
    Segment.start_us,
    Segment.end_us,
    Segment.clock_rate,
    Segment.duration,
    Segment.bytes,
    SampleEntry.codec,
)


def _closed_segments(blob: Any) -> Any:
    return (
        select(*_COLUMNS, blob.label("blob"))
        .join(Track, Track.id == Segment.track_id)
        .join(SampleEntry, SampleEntry.id == Segment.sample_entry_id)
        .where(Segment.open.is_(False))
        .order_by(Segment.start_us, Segment.id)
    )


def _after(key: tuple[int, int] | None) -> Any:
    if key is None:
        return true()
    return or_(Segment.start_us > key[0], and_(Segment.start_us == key[0], Segment.id > key[1]))


_GROUPS_PER_QUERY = 50
"""Distinct retention limits per candidate query (usually there are one or two)."""


class _Verdict(NamedTuple):
    cut: int | None
    """None: delete the whole segment; 0: keep it; k > 0: cut the head before frame k."""
    frames: list[FrameInfo] | None


class _Sweep:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        paths: dict[int, Path],
        now: int,
        batch: int,
        result: SweepResult,
    ) -> None:
        self.sessions = sessions
        self.paths = paths
        self.now = now
        self.batch = batch
        self.result = result
        self.ranges: dict[int, list[tuple[int, int]]] = {}
        self._holds: dict[int, list[tuple[int | None, int, int]]] | None = None

    # -- the rules ------------------------------------------------------------------------

    def by_age(self) -> None:
        with self.sessions.begin() as s:
            tracks = s.execute(
                select(Track.id, Recording.max_retention_us)
                .join(Recording, Recording.id == Track.recording_id)
                .where(Recording.max_retention_us > 0)
            ).all()
        groups: dict[int, list[int]] = {}
        for track_id, retention in tracks:
            groups.setdefault(self.now - retention, []).append(track_id)
        limits = sorted(groups.items())
        for i in range(0, len(limits), _GROUPS_PER_QUERY):
            self._by_age(dict(limits[i : i + _GROUPS_PER_QUERY]))

    def _by_age(self, groups: dict[int, list[int]]) -> None:
        """The expired segments of tracks grouped by their limit; literal limits let both
        databases use the (track_id, start_us) index. Only segments that straddle their limit
        come with their frame index, the rest need none unless a hold touches them."""
        straddles = case(
            *(
                (and_(Segment.track_id.in_(ids), Segment.end_us > limit), SegmentFrames.blob)
                for limit, ids in groups.items()
            ),
            else_=None,
        )
        query = (
            _closed_segments(straddles)
            .outerjoin(SegmentFrames, SegmentFrames.segment_id == Segment.id)
            .where(
                or_(
                    *(
                        and_(Segment.track_id.in_(ids), Segment.start_us < limit)
                        for limit, ids in groups.items()
                    )
                )
            )
        )
        limit_of = {track_id: limit for limit, ids in groups.items() for track_id in ids}
        after = None
        while True:
            with self.sessions.begin() as s:
                rows = s.execute(query.where(_after(after)).limit(self.batch)).all()
            if not rows:
                return
            whole: list[_Seg] = []
            cuts: list[tuple[_Seg, list[FrameInfo], int]] = []
            for row in rows:
                seg = _Seg(*row)
                verdict = self._decide(seg, limit_of[seg.track_id])
                if verdict.cut is None:
                    whole.append(seg)
                elif verdict.cut > 0 and verdict.frames is not None:
                    cuts.append((seg, verdict.frames, verdict.cut))
            self._apply(whole, cuts)
            if len(rows) < self.batch:
                return
            after = (rows[-1].start_us, rows[-1].id)

    def by_space(self, root: StorageRoot) -> None:
        need = 0
        if root.min_free_bytes > 0:
            need = root.min_free_bytes - disk.free_bytes(root.path)
        if root.max_bytes is not None and disk.used_bytes(root.path) > root.max_bytes:
            with self.sessions.begin() as s:
                usage = s.execute(
                    select(func.coalesce(func.sum(Segment.bytes), 0)).where(
                        Segment.storage_dir_id == root.id
                    )
                ).scalar_one()
            need = max(need, int(usage) - root.max_bytes)
        if need <= 0:
            return
        query = _closed_segments(null()).where(Segment.storage_dir_id == root.id)
        freed = 0
        after = None
        while freed < need:
            with self.sessions.begin() as s:
                rows = s.execute(query.where(_after(after)).limit(self.batch)).all()
            planned = 0
            exhausted = False
            whole: list[_Seg] = []
            cuts: list[tuple[_Seg, list[FrameInfo], int]] = []
            for row in rows:
                seg = _Seg(*row)
                after = (seg.start_us, seg.id)
                verdict = self._decide(seg, None)
                if verdict.cut is None:
                    whole.append(seg)
                    planned += seg.bytes
                elif verdict.cut > 0 and verdict.frames is not None:
                    cuts.append((seg, verdict.frames, verdict.cut))
                    planned += verdict.frames[verdict.cut].offset
                if freed + planned >= need:
                    break
            else:
                exhausted = len(rows) < self.batch
            freed += self._apply(whole, cuts)
            if freed < need and exhausted:
                log.warning(
                    "storage dir %s: %d bytes still to free but nothing left is deletable",
                    root.path,
                    need - freed,
                )
                self.result.starved_dirs.append(root.id)
                return

    # -- deciding ------------------------------------------------------------------------

    def _decide(self, seg: _Seg, limit: int | None) -> _Verdict:
        """How much of ``seg`` may go: everything ending at or before ``limit`` (None: all of
        it), except frames inside active holds, cut back to a key frame."""
        frames: list[FrameInfo] | None = None
        cut: int | None = None
        if limit is not None and seg.end_us > limit:
            frames = self._frames(seg)
            times = _frame_times(seg, frames)
            first_kept = next((i for i, (_, end) in enumerate(times) if end > limit), None)
            cut = None if first_kept is None else _key_at_or_before(frames, first_kept)
            if cut == 0:
                return _Verdict(0, frames)  # holds only ever keep more
        holds = [
            (start, end)
            for start, end in self._holds_of(seg.recording_id, seg.track_id)
            if start <= seg.end_us and end >= seg.start_us
        ]
        if not holds:
            return _Verdict(cut, frames)
        frames = frames or self._frames(seg)
        if not frames:
            return _Verdict(0, frames)  # no frame index: keep what a hold touches
        for i, (start, end) in enumerate(_frame_times(seg, frames)):
            end = max(end, start + 1)
            if any(start <= h_end and end > h_start for h_start, h_end in holds):
                held = _key_at_or_before(frames, i)
                return _Verdict(held if cut is None else min(cut, held), frames)
        return _Verdict(cut, frames)

    def _frames(self, seg: _Seg) -> list[FrameInfo]:
        blob = seg.blob
        if blob is None:
            with self.sessions.begin() as s:
                blob = s.execute(
                    select(SegmentFrames.blob).where(SegmentFrames.segment_id == seg.id)
                ).scalar_one_or_none()
        return decode_all(blob or b"")

    def _holds_of(self, recording_id: int, track_id: int) -> list[tuple[int, int]]:
        if self._holds is None:
            self._holds = {}
            with self.sessions.begin() as s:
                rows = s.execute(
                    select(Hold.recording_id, Hold.track_id, Hold.start_us, Hold.end_us).where(
                        or_(Hold.expires_us.is_(None), Hold.expires_us > self.now)
                    )
                ).all()
            for rec, track, start, end in rows:
                self._holds.setdefault(rec, []).append((track, start, end))
        return [
            (start, end)
            for track, start, end in self._holds.get(recording_id, ())
            if track is None or track == track_id
        ]

    # -- acting --------------------------------------------------------------------------

    def _apply(self, whole: list[_Seg], cuts: list[tuple[_Seg, list[FrameInfo], int]]) -> int:
        """Delete ``whole`` in one transaction, then cut heads one by one; returns the
        indexed bytes that left the store."""
        freed = 0
        if whole:
            with self.sessions.begin() as s:
                garbage = remove_segments(
                    s,
                    (
                        SegmentRef(g.id, g.run_id, g.storage_dir_id, g.path, g.start_us)
                        for g in whole
                    ),
                    self.now,
                )
            collect(self.sessions, garbage, self.paths)
            for seg in whole:
                self.ranges.setdefault(seg.track_id, []).append((seg.start_us, seg.end_us))
                freed += seg.bytes
            self.result.segments_deleted += len(whole)
        for seg, frames, cut in cuts:
            try:
                freed += self._cut_head(seg, frames, cut)
            except Exception as exc:
                log.exception("cannot cut the head of segment %d", seg.id)
                self.result.errors.append(f"segment {seg.id} ({seg.path}): {exc}")
        self.result.bytes_freed += freed
        return freed

    def _cut_head(self, seg: _Seg, frames: list[FrameInfo], cut: int) -> int:
        """Copy frames ``cut..`` into a new file and switch the segment row to it (new path,
        start, sizes, frame index, checksum) while listing the old file as garbage, in one
        transaction. A crash before that commit leaves the new file as an orphan, which
        recovery deletes; it is deliberately not listed as garbage first, since any purge of
        the garbage list could then delete it under us."""
        root = self.paths.get(seg.storage_dir_id)
        if root is None:
            return 0  # directory unavailable: retried on a later sweep
        indexed = frames[-1].offset + frames[-1].size
        if indexed != seg.bytes:
            raise ValueError(f"frame index covers {indexed} bytes, row says {seg.bytes}")
        first = frames[cut]
        kept = frames[cut:]
        new_start = segment_time_us(seg.start_us, seg.clock_rate, first.pts)
        new_path = segment_relpath(seg.track_id, new_start, seg.codec, secrets.token_hex(4))
        target = root / new_path
        try:
            for attempt in range(2):  # a concurrent purge may remove an empty folder under us
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    digest = disk.copy_range(
                        root / seg.path, target, first.offset, seg.bytes - first.offset
                    )
                    break
                except FileNotFoundError:
                    if attempt or target.parent.exists():
                        raise
            fsync_dir(target.parent)
            with self.sessions.begin() as s:
                run_id = s.execute(  # the run as it is now: a split may have moved it
                    update(Segment)
                    .where(
                        Segment.id == seg.id,
                        Segment.path == seg.path,
                        Segment.open.is_(False),
                    )
                    .values(
                        path=new_path,
                        start_us=new_start,
                        duration=seg.duration - first.pts,
                        frames=len(kept),
                        key_frames=sum(1 for f in kept if f.key),
                        bytes=seg.bytes - first.offset,
                        sha256=digest,
                    )
                    .returning(Segment.run_id)
                    .execution_options(synchronize_session=False)
                ).scalar_one_or_none()
                if run_id is None:
                    raise _Changed
                s.execute(
                    update(SegmentFrames)
                    .where(SegmentFrames.segment_id == seg.id)
                    .values(blob=encode([(f.size, f.duration, f.key) for f in kept]))
                    .execution_options(synchronize_session=False)
                )
                old = enqueue(s, seg.storage_dir_id, seg.path, self.now)
                repair_runs(s, {run_id: ()})
        except _Changed:
            _unlink_quietly(target)
            return 0
        except BaseException:
            _unlink_quietly(target)
            raise
        collect(self.sessions, [old], self.paths)
        self.ranges.setdefault(seg.track_id, []).append((seg.start_us, new_start))
        self.result.segments_rewritten += 1
        return first.offset

    # -- reporting -----------------------------------------------------------------------

    def report(self) -> list[DeletedRange]:
        if not self.ranges:
            return []
        with self.sessions.begin() as s:
            tokens = {
                tid: (rec, tok)
                for tid, tok, rec in s.execute(
                    select(Track.id, Track.token, Recording.token)
                    .join(Recording, Recording.id == Track.recording_id)
                    .where(Track.id.in_(list(self.ranges)))
                )
            }
        out = []
        for track_id, ranges in self.ranges.items():
            if track_id not in tokens:
                continue  # the track itself was deleted meanwhile
            rec, tok = tokens[track_id]
            out.extend(DeletedRange(rec, tok, a, b) for a, b in merge_ranges(ranges))
        out.sort(key=lambda r: (r.recording_token, r.track_token, r.start_us))
        return out


class _Changed(Exception):
    """The segment row changed under us (deleted, or cut by someone else): skip it."""


def merge_ranges(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted union of ``(start, end)`` ranges; touching ranges join."""
    out: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("cannot remove %s: %s (recovery will)", path, exc)


def _frame_times(seg: _Seg, frames: list[FrameInfo]) -> list[tuple[int, int]]:
    """``(start, end)`` of every frame; a frame ends where the next starts, the last at the
    segment's end."""
    starts = [segment_time_us(seg.start_us, seg.clock_rate, f.pts) for f in frames]
    return list(zip(starts, [*starts[1:], seg.end_us], strict=False))


def _key_at_or_before(frames: list[FrameInfo], index: int) -> int:
    """Where a cut keeping frame ``index`` may start: the last key frame at or before it
    (0 when there is none: keep all)."""
    for i in range(index, 0, -1):
        if frames[i].key:
            return i
    return 0
