"""Reading a recording track: runs and gaps, clean points, frames forward, GOPs backward.

Readers see what the last checkpoint committed (the index is the single source of truth, for
in-process and out-of-process readers alike): a segment's frame-index blob names exactly the
frames below its indexed length, so a reader never sees a partial frame, even in a segment
that is still being written. Frames are read with ``os.pread`` by offset, a contiguous span per
call. A cursor that has caught up with a growing track waits on :class:`~nvr.store.live.LiveHub`,
which the committer signals after every checkpoint; so the live edge lags the camera by at most
one checkpoint interval (``checkpoint_seconds``).

Flags: ``first_in_run`` is set on the first frame of a run (after a gap, or the start of
footage), ``last_in_run`` on the last frame of a run that has ended. A run still being recorded
has no last frame yet (replay.md B.5.1: no E bit on the live tail).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Select, bindparam, func, or_, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from nvr.db.models import Run, SampleEntry, Segment, SegmentFrames
from nvr.store.index_cache import DecodedIndex, IndexCache
from nvr.store.live import LiveHub
from nvr.store.storage_dirs import StorageDirs
from nvr.store.types import (
    CleanPoint,
    Frame,
    Interval,
    RunInfo,
    SampleEntryInfo,
    SampleEntrySpec,
    SegmentInfo,
    TrackInfo,
    new_frame,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_LIVE_SLACK_US = 10_000_000
"""A forward start this far past the indexed end of a run still being recorded starts at the
run's newest clean point (the index trails the camera by up to one checkpoint)."""

MAX_SPAN_BYTES = 8 * 1024 * 1024
SPLIT_READ_BYTES = 8 * 1024
"""Frames this large on average are read one ``pread`` each rather than sliced from a span."""


class SegmentUnreadable(OSError):
    """A segment's file is missing, short, or in an unavailable storage directory."""


@dataclass(frozen=True, slots=True)
class _Seg:
    """A segment row joined with its run: all a reader needs besides the frame index."""

    id: int
    run_id: int
    start_us: int
    end_us: int
    clock_rate: int
    sample_entry_id: int
    storage_dir_id: int
    path: str
    open: bool
    frames: int
    bytes: int
    run_start_us: int
    run_end_us: int
    run_open: bool

    @property
    def key(self) -> tuple[int, str]:
        return (self.id, self.path)

    @property
    def starts_run(self) -> bool:
        return self.start_us <= self.run_start_us

    @property
    def ends_run(self) -> bool:
        return not self.open and not self.run_open and self.end_us >= self.run_end_us

    def time_us(self, pts: int) -> int:
        return self.start_us + pts * 1_000_000 // self.clock_rate

    def info(self) -> SegmentInfo:
        return SegmentInfo(
            id=self.id,
            run_id=self.run_id,
            start_us=self.start_us,
            end_us=self.end_us,
            clock_rate=self.clock_rate,
            sample_entry_id=self.sample_entry_id,
            storage_dir_id=self.storage_dir_id,
            path=self.path,
            frames=self.frames,
            bytes=self.bytes,
            open=self.open,
        )


_SEG_COLUMNS = (
    Segment.id,
    Segment.run_id,
    Segment.start_us,
    Segment.end_us,
    Segment.clock_rate,
    Segment.sample_entry_id,
    Segment.storage_dir_id,
    Segment.path,
    Segment.open,
    Segment.frames,
    Segment.bytes,
    Run.start_us,
    Run.end_us,
    Run.open,
)


def _seg(row: Any) -> _Seg:
    return _Seg(*row[: len(_SEG_COLUMNS)])


# The statements of the hot paths (seeks, segment to segment), built once: executing a
# prebuilt Core statement reuses its cache key and compiled form, where building a select per
# call cost more than running it. Plain table columns keep them out of the ORM. Each returns
# the segment's frame-index blob with its row (a few kB; ignored when the index is cached):
# one statement, so one round trip, per segment, and one consistent snapshot of a growing one.
_seg_t = Segment.__table__
_run_t = Run.__table__
_frames_t = SegmentFrames.__table__
_SEG_ROW = (  # _SEG_COLUMNS as table columns
    _seg_t.c.id,
    _seg_t.c.run_id,
    _seg_t.c.start_us,
    _seg_t.c.end_us,
    _seg_t.c.clock_rate,
    _seg_t.c.sample_entry_id,
    _seg_t.c.storage_dir_id,
    _seg_t.c.path,
    _seg_t.c.open,
    _seg_t.c.frames,
    _seg_t.c.bytes,
    _run_t.c.start_us,
    _run_t.c.end_us,
    _run_t.c.open,
)
_BLOB = len(_SEG_ROW)
"""Where the blob is in a row of the statements below."""
_SEG_FROM = _seg_t.join(_run_t, _run_t.c.id == _seg_t.c.run_id).outerjoin(
    _frames_t, _frames_t.c.segment_id == _seg_t.c.id
)
_IN_TRACK = _seg_t.c.track_id == bindparam("track")
_s2 = _seg_t.alias("s2")


def _start_bound(agg: Any, cond: Any) -> Any:
    """The min or max segment start of the track under ``cond``: one index probe."""
    return (
        select(agg(_s2.c.start_us))
        .where(_s2.c.track_id == bindparam("track"), cond)
        .scalar_subquery()
    )


# Each finds the start of the segment it wants with one index probe, then the segment(s)
# with exactly that start: ``(track_id, start_us)`` is indexed but the ``id`` tie-break is
# not, so "ORDER BY start_us, id LIMIT 1" over a time range sorted the range on PostgreSQL,
# and "after (start, id)" written with an OR scanned the track from one end, on both backends.
_ROW = select(*_SEG_ROW, _frames_t.c.blob).select_from(_SEG_FROM)
_Q_AT_OR_BEFORE = (  # the last segment starting at or before t
    _ROW.where(
        _IN_TRACK,
        _seg_t.c.start_us == _start_bound(func.max, _s2.c.start_us <= bindparam("t")),
    )
    .order_by(_seg_t.c.id.desc())
    .limit(1)
)
_Q_AFTER_TIME = (  # the first segment starting after t
    _ROW.where(
        _IN_TRACK,
        _seg_t.c.start_us == _start_bound(func.min, _s2.c.start_us > bindparam("t")),
    )
    .order_by(_seg_t.c.id)
    .limit(1)
)
_Q_NEXT = (  # the segment after (t, id) in (start_us, id) order
    _ROW.where(
        _IN_TRACK,
        _seg_t.c.start_us.in_(
            [bindparam("t"), _start_bound(func.min, _s2.c.start_us > bindparam("t"))]
        ),
        or_(_seg_t.c.start_us > bindparam("t"), _seg_t.c.id > bindparam("id")),
    )
    .order_by(_seg_t.c.start_us, _seg_t.c.id)
    .limit(1)
)
_Q_PREVIOUS = (  # the segment before (t, id) in (start_us, id) order
    _ROW.where(
        _IN_TRACK,
        _seg_t.c.start_us.in_(
            [bindparam("t"), _start_bound(func.max, _s2.c.start_us < bindparam("t"))]
        ),
        or_(_seg_t.c.start_us < bindparam("t"), _seg_t.c.id < bindparam("id")),
    )
    .order_by(_seg_t.c.start_us.desc(), _seg_t.c.id.desc())
    .limit(1)
)
_Q_REFRESH = _ROW.where(_seg_t.c.id == bindparam("id"))

_Db = Connection | Session
"""What the hot paths query through: a Core connection, or a session if no engine is known."""


def _read_engine(engine: Engine) -> Engine:
    """The engine the hot paths read through. On PostgreSQL it runs in autocommit: each
    statement is its own snapshot anyway (READ COMMITTED, as in a transaction), and there is
    no BEGIN and no ROLLBACK round trip around it. SQLite keeps its transactions (the
    connection's ``begin`` hook is how its locking is set up)."""
    if engine.dialect.name == "postgresql":
        return engine.execution_options(isolation_level="AUTOCOMMIT")  # shares the pool
    return engine


class SampleEntries:
    """Sample entries by id, cached forever (rows are immutable)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._cache: dict[int, SampleEntryInfo] = {}
        self._lock = threading.Lock()

    def get(self, entry_id: int) -> SampleEntryInfo:
        found = self._cache.get(entry_id)
        if found is not None:
            return found
        with self._sessions() as s:
            row = s.get(SampleEntry, entry_id)
            if row is None:
                raise LookupError(f"no sample entry {entry_id}")
            info = SampleEntryInfo(
                id=row.id,
                spec=SampleEntrySpec(
                    codec=row.codec,
                    clock_rate=row.clock_rate,
                    parameters=row.parameters,
                    width=row.width,
                    height=row.height,
                    sample_rate=row.sample_rate,
                    channels=row.channels,
                ),
            )
        with self._lock:
            self._cache[entry_id] = info
        return info


class TrackReader:
    """Read access to one recording track. Thread-safe; cursors are not (one per consumer)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        dirs: StorageDirs,
        live: LiveHub,
        cache: IndexCache,
        entries: SampleEntries,
        track: TrackInfo,
        *,
        live_slack_us: int = DEFAULT_LIVE_SLACK_US,
    ) -> None:
        self._sessions = sessions
        bind = sessions.kw.get("bind")
        self._engine = _read_engine(bind) if isinstance(bind, Engine) else None
        self._dirs = dirs
        self.live = live
        self._cache = cache
        self._entries = entries
        self.track = track
        self.live_slack_us = live_slack_us

    def _db(self) -> contextlib.AbstractContextManager[_Db]:
        """A short-lived connection for the hot paths (a session, which costs more, only when
        the session factory is not bound to an engine)."""
        return self._sessions() if self._engine is None else self._engine.connect()

    def _query(self, fn: Callable[[_Db], T]) -> T:
        """``fn`` (reads only, safe to repeat) on a short-lived connection; again on a new one
        if the first turned out dead (the database restarted: pooled connections are only
        pinged when they were idle, see ``nvr.db.engine``)."""
        try:
            with self._db() as s:
                return fn(s)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            log.info("database connection lost, reading again: %s", exc.orig)
        with self._db() as s:
            return fn(s)

    # ---- listings ---------------------------------------------------------------------------

    def runs(self, start_us: int | None = None, end_us: int | None = None) -> list[RunInfo]:
        """Runs (blocks of contiguous data) overlapping ``[start_us, end_us]``, oldest first."""
        q = select(Run.id, Run.start_us, Run.end_us, Run.open).where(Run.track_id == self.track.id)
        if start_us is not None:
            q = q.where(Run.end_us >= start_us)
        if end_us is not None:
            q = q.where(Run.start_us <= end_us)
        with self._sessions() as s:
            rows = s.execute(q.order_by(Run.start_us, Run.id)).all()
        return [RunInfo(*row) for row in rows]

    def data_intervals(
        self, start_us: int | None = None, end_us: int | None = None
    ) -> list[Interval]:
        """The track's data blocks overlapping the range (search: IsDataPresent intervals)."""
        return [Interval(r.start_us, r.end_us) for r in self.runs(start_us, end_us)]

    def gaps(self, start_us: int, end_us: int) -> list[Interval]:
        """Where ``[start_us, end_us]`` has no data."""
        gaps: list[Interval] = []
        cursor = start_us
        for run in self.runs(start_us, end_us):
            if run.start_us > cursor:
                gaps.append(Interval(cursor, run.start_us))
            cursor = max(cursor, run.end_us)
        if cursor < end_us:
            gaps.append(Interval(cursor, end_us))
        return gaps

    def data_range(self) -> Interval | None:
        """Oldest and newest data (tt:TrackInformation DataFrom/DataTo), None if empty."""
        with self._sessions() as s:
            lo, hi = s.execute(
                select(func.min(Run.start_us), func.max(Run.end_us)).where(
                    Run.track_id == self.track.id
                )
            ).one()
        return None if lo is None else Interval(int(lo), int(hi))

    def segments(self, start_us: int | None = None, end_us: int | None = None) -> list[SegmentInfo]:
        """Indexed segments overlapping the range, oldest first."""
        q = self._seg_query()
        if start_us is not None:
            q = q.where(Segment.end_us >= start_us)
        if end_us is not None:
            q = q.where(Segment.start_us <= end_us)
        with self._sessions() as s:
            rows = s.execute(q.order_by(Segment.start_us, Segment.id)).all()
        return [_seg(r).info() for r in rows]

    def sample_entry(self, entry_id: int) -> SampleEntryInfo:
        return self._entries.get(entry_id)

    def sample_entry_at(self, time_us: int | None = None) -> SampleEntryInfo | None:
        """The parameters in force at a time (default: the newest), e.g. for an SDP."""
        q = select(Segment.sample_entry_id).where(Segment.track_id == self.track.id)
        if time_us is not None:
            q = q.where(Segment.start_us <= time_us)
        with self._sessions() as s:
            entry_id = s.scalar(q.order_by(Segment.start_us.desc(), Segment.id.desc()).limit(1))
            if entry_id is None and time_us is not None:
                entry_id = s.scalar(
                    select(Segment.sample_entry_id)
                    .where(Segment.track_id == self.track.id)
                    .order_by(Segment.start_us, Segment.id)
                    .limit(1)
                )
        return None if entry_id is None else self._entries.get(entry_id)

    # ---- positioning ------------------------------------------------------------------------

    def clean_point(self, time_us: int, *, reverse: bool = False) -> CleanPoint | None:
        """Where a stream asked to start at ``time_us`` begins (replay.md B.6): the last key
        frame at or before it inside data; in a gap the first key frame after the gap
        (forward) or the last one before it (reverse); None if there is none."""
        loc = self._query(lambda s: self._locate(s, time_us, reverse, 0))
        if loc is None:
            return None
        seg, idx, k, _ = loc
        return CleanPoint(seg.time_us(idx.pts[k]), seg.id, k, seg.run_id)

    def _locate(
        self, s: _Db, t: int, reverse: bool, slack_us: int
    ) -> tuple[_Seg, DecodedIndex, int, int] | None:
        """(segment, index, clean point frame, last frame at or before ``t``) per B.6."""
        row = s.execute(_Q_AT_OR_BEFORE, {"track": self.track.id, "t": t}).first()
        if row is not None:
            seg = _seg(row)
            if reverse or t <= seg.run_end_us or (seg.run_open and t - seg.run_end_us <= slack_us):
                loaded = self._load(row)
                if loaded is not None:
                    seg, idx = loaded
                    i = idx.frame_at(t - seg.start_us, seg.clock_rate)
                    if i >= 0:
                        return seg, idx, max(0, idx.key_at_or_before(i)), i
        if reverse:
            return None
        row = s.execute(_Q_AFTER_TIME, {"track": self.track.id, "t": t}).first()
        if row is None:
            return None
        loaded = self._load(row)
        if loaded is None or not len(loaded[1]):
            return None
        seg, idx = loaded
        k = max(0, idx.key_at_or_after(0))
        return seg, idx, k, k

    # ---- reading ----------------------------------------------------------------------------

    def cursor(
        self,
        start_us: int,
        end_us: int | None = None,
        *,
        key_only: bool = False,
        min_spacing_us: int = 0,
        views: bool = False,
    ) -> ForwardCursor:
        """A forward cursor from the clean point for ``start_us`` (see :meth:`clean_point`)
        to frames before ``end_us`` (None: open-ended, it can follow the live edge).

        ``views``: frame data as ``memoryview`` slices of one read buffer per span instead of
        ``bytes`` of their own: no copy per frame and one ``pread`` per span, for a consumer
        that accepts any buffer (replay's packetizing); a view keeps its span alive."""
        return ForwardCursor(self, start_us, end_us, key_only, min_spacing_us, views)

    def frames(
        self,
        start_us: int,
        end_us: int | None = None,
        *,
        key_only: bool = False,
        min_spacing_us: int = 0,
        follow: bool = False,
        stop: threading.Event | None = None,
        idle_timeout: float | None = None,
        batch: int = 64,
    ) -> Iterator[Frame]:
        """Frames forward (blocking I/O: use from a thread). With ``follow`` it waits at the
        live edge for new frames until ``stop`` is set or nothing arrived for
        ``idle_timeout`` seconds."""
        cur = self.cursor(start_us, end_us, key_only=key_only, min_spacing_us=min_spacing_us)
        idle = 0.0
        try:
            while stop is None or not stop.is_set():
                frames = cur.read(batch)
                if frames:
                    idle = 0.0
                    yield from frames
                    continue
                if cur.done or not follow:
                    return
                step = 0.5 if idle_timeout is None else min(0.5, idle_timeout - idle)
                if step <= 0:
                    return
                if not cur.wait(step):
                    idle += step
        finally:
            cur.close()

    def gops_backward(
        self,
        start_us: int,
        end_us: int | None = None,
        *,
        key_only: bool = False,
        min_spacing_us: int = 0,
    ) -> Iterator[list[Frame]]:
        """GOPs in reverse time order, frames inside each GOP in forward order (replay.md B.7),
        from the clean point for ``start_us`` (reverse rule) back to the GOP holding
        ``end_us`` (a lower bound; None: the start of footage). Frames after ``start_us`` are
        not included. With ``key_only`` every GOP is a single key frame, at least
        ``min_spacing_us`` apart."""
        loc = self._query(lambda s: self._locate(s, start_us, True, 0))
        if loc is None:
            return
        seg, idx, k, limit = loc
        last_time: int | None = None
        while True:
            fd = self._open(seg)
            try:
                pos = bisect_right(idx.key_idx, k) - 1
                while pos >= 0:
                    kk = idx.key_idx[pos]
                    t = seg.time_us(idx.pts[kk])
                    hi = idx.key_idx[pos + 1] if pos + 1 < len(idx.key_idx) else len(idx)
                    pos -= 1
                    if key_only:
                        if end_us is not None and t < end_us:
                            return
                        if last_time is not None and t > last_time - min_spacing_us:
                            continue
                        hi = kk + 1
                    last_time = t
                    if fd >= 0:
                        try:
                            gop = self._read(seg, idx, kk, min(hi, limit + 1), fd)
                        except OSError as exc:
                            log.warning("segment %s skipped: %s", seg.id, exc)
                            break
                        yield gop
                    if end_us is not None and t <= end_us:
                        return
            finally:
                if fd >= 0:
                    os.close(fd)
            loaded = self._query(functools.partial(self._previous, seg=seg))
            if loaded is None:
                return
            seg, idx = loaded
            k = limit = len(idx) - 1

    # ---- internals shared with the cursor ---------------------------------------------------

    def _seg_query(self) -> Select[Any]:
        return (
            select(*_SEG_COLUMNS)
            .join(Run, Run.id == Segment.run_id)
            .where(Segment.track_id == self.track.id)
        )

    def _previous(self, s: _Db, seg: _Seg) -> tuple[_Seg, DecodedIndex] | None:
        """The segment before ``seg`` with its frame index (None: none, or deleted)."""
        row = s.execute(
            _Q_PREVIOUS, {"track": self.track.id, "t": seg.start_us, "id": seg.id}
        ).first()
        return None if row is None else self._load(row)

    def _next(self, s: _Db, seg: _Seg) -> tuple[_Seg, DecodedIndex] | None:
        """The segment after ``seg`` with its frame index (None: none, or deleted)."""
        row = s.execute(_Q_NEXT, {"track": self.track.id, "t": seg.start_us, "id": seg.id}).first()
        return None if row is None else self._load(row)

    def _load(self, row: Any) -> tuple[_Seg, DecodedIndex] | None:
        """A segment row (with its blob) and its frame index: cached if closed, else decoded
        from the row's blob (None if the segment was deleted meanwhile)."""
        seg = _seg(row)
        if not seg.open:
            idx = self._cache.get(seg.key)
            if idx is None:
                blob = row[_BLOB]
                if blob is None:
                    return None
                idx = DecodedIndex(blob)
                self._cache.put(seg.key, idx)
            return seg, idx
        blob = row[_BLOB]
        return None if blob is None else (seg, DecodedIndex(blob))

    def _refresh(self, s: _Db, seg: _Seg, idx: DecodedIndex) -> _Seg | None:
        """Re-read a growing segment's row and blob together (one consistent snapshot) and
        extend ``idx`` with the new frames."""
        row = s.execute(_Q_REFRESH, {"id": seg.id}).first()
        if row is None or row[_BLOB] is None:
            return None
        idx.extend(row[_BLOB])
        fresh = _seg(row)
        if not fresh.open:
            self._cache.put(fresh.key, idx)
        return fresh

    def _open(self, seg: _Seg) -> int:
        """A read descriptor for the segment's file, or -1 if it cannot be read."""
        root = self._dirs.root(seg.storage_dir_id)
        if root is None:
            log.warning("segment %s: storage directory %s unavailable", seg.id, seg.storage_dir_id)
            return -1
        try:
            return os.open(root / seg.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            log.warning("segment %s unreadable: %s", seg.id, exc)
            return -1

    def _read(
        self, seg: _Seg, idx: DecodedIndex, lo: int, hi: int, fd: int, views: bool = False
    ) -> list[Frame]:
        """Frames ``lo..hi-1`` of a segment, read with as few ``pread`` calls as possible
        (``views``: see :meth:`cursor`)."""
        out: list[Frame] = []
        offsets, sizes = idx.offsets, idx.sizes
        start, rate = seg.start_us, seg.clock_rate
        entry_id, run_id, seg_id = seg.sample_entry_id, seg.run_id, seg.id
        i = lo
        while i < hi:
            base = offsets[i]
            # The frames starting within MAX_SPAN_BYTES, less the last if it ends beyond.
            limit = base + MAX_SPAN_BYTES
            j = bisect_right(offsets, limit, i + 1, hi)
            if j - 1 > i and offsets[j - 1] + sizes[j - 1] > limit:
                j -= 1
            span = offsets[j - 1] + sizes[j - 1] - base
            if views:
                buf = os.pread(fd, span, base)
                short = len(buf) != span
                whole = memoryview(buf)
                datas = [
                    whole[o - base : o - base + n]
                    for o, n in zip(offsets[i:j], sizes[i:j], strict=True)
                ]
            elif span >= SPLIT_READ_BYTES * (j - i):
                # Large frames: one pread each, so the kernel copies them (without the GIL)
                # instead of a slice copy of a span (with it).
                datas = [os.pread(fd, n, o) for o, n in zip(offsets[i:j], sizes[i:j], strict=True)]
                short = any(len(d) != n for d, n in zip(datas, sizes[i:j], strict=True))
            else:
                buf = os.pread(fd, span, base)
                short = len(buf) != span
                datas = [
                    buf[o - base : o - base + n]
                    for o, n in zip(offsets[i:j], sizes[i:j], strict=True)
                ] if j - i > 1 else [buf]  # fmt: skip
            if short:
                raise SegmentUnreadable(f"segment {seg.id} ({seg.path}) is shorter than indexed")
            out += [
                new_frame(
                    data,
                    start + p * 1_000_000 // rate,
                    d,
                    rate,
                    k == 1,
                    entry_id,
                    run_id,
                    seg_id,
                    n,
                    False,
                    False,
                )
                for data, p, d, k, n in zip(
                    datas,
                    idx.pts[i:j],
                    idx.durations[i:j],
                    idx.keys[i:j],
                    range(i, j),
                    strict=True,
                )
            ]
            i = j
        # The run flags: only the first and the last frame of a segment can carry one.
        if out and lo == 0 and seg.starts_run:
            out[0] = replace(out[0], first_in_run=True)
        if out and hi == len(idx) and seg.ends_run:
            out[-1] = replace(out[-1], last_in_run=True)
        return out


class ForwardCursor:
    """Reads frames forward in batches; at the live edge ``read`` returns [] and ``wait`` /
    ``wait_async`` block until the next checkpoint. Blocking I/O: call ``read`` from a thread
    (asyncio: ``await asyncio.to_thread(cursor.read)``)."""

    def __init__(
        self,
        reader: TrackReader,
        start_us: int,
        end_us: int | None,
        key_only: bool,
        min_spacing_us: int,
        views: bool = False,
    ) -> None:
        self._r = reader
        self._views = views
        self._start_us = start_us
        self._end_us = end_us
        self._key_only = key_only
        self._spacing = min_spacing_us
        self._seg: _Seg | None = None
        self._idx = DecodedIndex()
        self._i = 0
        self._fd = -1
        self._fd_seg = -1
        self._last_key_time: int | None = None
        self._seq = 0
        self.done = False
        """The end time was reached: no more frames will come."""
        self.skipped_segments = 0
        """Segments skipped because their file could not be read (a hole in the output)."""

    def read(self, max_frames: int = 64, max_bytes: int = 4 * 1024 * 1024) -> list[Frame]:
        """The next frames available now (at least one if any), [] at the current end."""
        out: list[Frame] = []
        if self.done:
            return out
        r = self._r
        self._seq = r.live.seq(r.track.id)
        nbytes = 0
        if self._seg is None:
            loc = r._query(lambda s: r._locate(s, self._start_us, False, r.live_slack_us))
            if loc is None:
                return out
            self._seg, self._idx, self._i, _ = loc
        while len(out) < max_frames and nbytes < max_bytes and not self.done:
            seg, idx = self._seg, self._idx
            if self._i >= len(idx):
                # Short sessions: no transaction stays open while files are read.
                if not r._query(self._advance):
                    break
                continue
            span = self._next_span(seg, idx, max_frames - len(out), max_bytes - nbytes)
            if span is None:
                continue
            lo, hi = span
            try:
                frames = r._read(seg, idx, lo, hi, self._fd_for(seg), self._views)
            except OSError as exc:
                log.warning("segment %s skipped: %s", seg.id, exc)
                self.skipped_segments += 1
                self._i = len(idx)
                continue
            out.extend(frames)
            nbytes += idx.offsets[hi - 1] + idx.sizes[hi - 1] - idx.offsets[lo]
        return out

    def _next_span(
        self, seg: _Seg, idx: DecodedIndex, max_frames: int, max_bytes: int
    ) -> tuple[int, int] | None:
        """The frames to read next from this segment, [lo, hi); None if none qualify here."""
        i, n, end = self._i, len(idx), self._end_us
        if self._key_only:
            k = idx.key_at_or_after(i)
            if k < 0:
                self._i = n
                return None
            t = seg.time_us(idx.pts[k])
            if end is not None and t >= end:
                self.done = True
                return None
            self._i = k + 1
            if self._last_key_time is not None and t < self._last_key_time + self._spacing:
                return None
            self._last_key_time = t
            return k, k + 1
        hi = min(n, i + max_frames)
        if hi > i:
            # Up to and including the frame that reaches ``max_bytes``...
            offsets = idx.offsets
            hi = min(hi, bisect_left(offsets, offsets[i] + max_bytes, i + 1, hi))
            # ... and before the first frame at or after the end time.
            if end is not None:
                start, rate = seg.start_us, seg.clock_rate
                e = bisect_left(idx.pts, end - start, i, hi, key=lambda p: p * 1_000_000 // rate)
                if e < hi:
                    hi = e
                    self.done = True
        self._i = max(hi, i)
        return None if hi <= i else (i, hi)

    def _advance(self, s: _Db) -> bool:
        """Move past the end of the current segment: pick up frames a growing segment gained,
        or go to the next segment. False at the current end of the track."""
        r, seg = self._r, self._seg
        assert seg is not None
        if seg.open:
            fresh = r._refresh(s, seg, self._idx)
            if fresh is not None:
                self._seg = seg = fresh
                if self._i < len(self._idx):
                    return True
        loaded = r._next(s, seg)
        if loaded is None:
            return False
        self._seg, self._idx = loaded
        self._i = 0
        return True

    def _fd_for(self, seg: _Seg) -> int:
        if self._fd_seg != seg.id:
            self._close_fd()
            self._fd = self._r._open(seg)
            self._fd_seg = seg.id
        if self._fd < 0:
            raise SegmentUnreadable(f"segment {seg.id} ({seg.path}) cannot be opened")
        return self._fd

    def _close_fd(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
        self._fd, self._fd_seg = -1, -1

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the index of this track changed since the last ``read``."""
        r = self._r
        return r.live.wait(r.track.id, self._seq, timeout) != self._seq

    async def wait_async(self, timeout: float | None = None) -> bool:
        """The asyncio form of :meth:`wait`."""
        r = self._r
        return await r.live.wait_async(r.track.id, self._seq, timeout) != self._seq

    def close(self) -> None:
        self._close_fd()

    def __enter__(self) -> ForwardCursor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
