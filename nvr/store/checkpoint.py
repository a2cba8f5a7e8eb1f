"""Checkpoints: make written frames durable, then index exactly those frames.

The track writers hand over immutable *snapshots* of their runs and segments (frames, bytes,
frame-index blob as of offset X). The committer fsyncs each file (so everything below X is on
disk), fsyncs the directories of new files, and then commits the index for all tracks in ONE
transaction. If the database is unavailable, the snapshots stay pending in memory and newer ones
replace older ones (each is cumulative); the next attempt commits whatever is latest, creating
the rows of segments and runs that were born during the outage. Nothing here blocks the writer
thread: in the writer service the committer runs on its own thread.

Ownership: ``RunState``/``SegmentState`` fields above the marker are written by the writer thread
only; ``db_id``, ``fd_closed`` and ``synced_bytes`` by the committer only; ``digest`` guards
itself with a lock.

Checksums: a segment's SHA-256 is not computed on the writer thread frame by frame: a
:class:`SegmentDigest` hashes the written frames on the writer service's hasher thread, and the
writer thread hashes the rest when it finishes the segment, so a closed segment's checksum is
complete before its final snapshot exists, as before.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections import deque
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from nvr.db.models import Run, SampleEntry, Segment, SegmentFrames, Track
from nvr.durable import fsync_dir
from nvr.store.frame_index import FrameIndexEncoder
from nvr.store.live import LiveHub
from nvr.store.storage_dirs import DirHandle
from nvr.store.types import IndexStatus, SampleEntrySpec, now_us

log = logging.getLogger(__name__)


class SegmentDigest:
    """The SHA-256 of a segment's bytes, computed behind the writer thread.

    The writer thread hands over the frames it has written in batches (:meth:`add`: lists it
    does not touch again); the hasher thread hashes them (:meth:`drain`); finishing the segment
    hashes whatever is left, on the writer thread (:meth:`finish`). Batches are hashed in
    order, under a lock, by whichever thread gets to them. A batch is joined and hashed in one
    call: ``hashlib`` releases the GIL for it, so hashing runs in parallel with the writer,
    where a call per frame would take the GIL back after every frame.
    """

    __slots__ = ("_batches", "_hash", "_lock")

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self._lock = threading.Lock()
        self._batches: deque[list[bytes]] = deque()

    def add(self, frames: list[bytes]) -> None:
        """Queue frames written after those already added (writer thread)."""
        self._batches.append(frames)

    @property
    def backlog(self) -> int:
        """Batches added and not hashed yet."""
        return len(self._batches)

    def drain(self) -> None:
        """Hash every batch added so far."""
        with self._lock:
            self._drain()

    def finish(self, frames: list[bytes]) -> str:
        """The hex digest of everything added, then ``frames`` (writer thread)."""
        with self._lock:
            self._drain()
            self._hash.update(b"".join(frames))
            return self._hash.hexdigest()

    def close(self) -> None:
        """Forget what is not hashed yet (the segment is dropped)."""
        self._batches.clear()

    def _drain(self) -> None:
        batches, update = self._batches, self._hash.update
        while batches:
            update(b"".join(batches.popleft()))


class RunState:
    """A run being written (writer-owned, except ``db_id``)."""

    __slots__ = (
        "anchor_rate",
        "anchor_us",
        "base_pts",
        "db_id",
        "end_us",
        "frames",
        "open",
        "slew_us",
        "snapped",
        "start_us",
        "track_id",
    )

    def __init__(self, track_id: int, start_us: int, clock_rate: int) -> None:
        self.track_id = track_id
        self.start_us = start_us
        self.end_us = start_us
        self.open = True
        self.frames = 0
        # The run's timeline: anchor + slew + base_pts/anchor_rate, exact in integers, so
        # segment starts never accumulate rounding (see TrackWriter._cut).
        self.anchor_us = start_us
        self.anchor_rate = clock_rate
        self.base_pts = 0
        self.slew_us = 0
        self.snapped: tuple[int, bool] | None = None
        # committer-owned
        self.db_id: int | None = None


class SegmentState:
    """A segment file being written or waiting for its final commit."""

    __slots__ = (
        "clock_rate",
        "created_dirs",
        "cut_pts",
        "db_id",
        "digest",
        "dir",
        "encoder",
        "end_us",
        "entry",
        "fd",
        "fd_closed",
        "final",
        "frames",
        "hash_at",
        "hash_frames",
        "key_frames",
        "last_time_us",
        "offset",
        "path",
        "pts",
        "relpath",
        "run",
        "sha256",
        "snapped_final",
        "snapped_frames",
        "start_us",
        "synced_bytes",
        "track_id",
    )

    def __init__(
        self,
        *,
        track_id: int,
        run: RunState,
        directory: DirHandle,
        relpath: str,
        fd: int,
        entry: SampleEntrySpec,
        start_us: int,
        cut_pts: int,
        created_dirs: tuple[Path, ...],
    ) -> None:
        self.track_id = track_id
        self.run = run
        self.dir = directory
        self.relpath = relpath
        self.path = directory.root / relpath
        self.fd = fd
        self.entry = entry
        self.clock_rate = entry.clock_rate
        self.start_us = start_us
        self.cut_pts = cut_pts
        self.created_dirs = created_dirs
        self.digest = SegmentDigest()
        self.hash_frames: list[bytes] = []
        """Frames written and not yet handed to ``digest``."""
        self.hash_at = 0
        """The offset at which ``hash_frames`` are handed over."""
        self.encoder = FrameIndexEncoder()
        self.offset = 0
        self.pts = 0
        self.frames = 0
        self.key_frames = 0
        self.last_time_us = start_us
        self.end_us = start_us
        self.final = False
        self.sha256: str | None = None
        self.snapped_frames = 0
        self.snapped_final = False
        # committer-owned
        self.db_id: int | None = None
        self.fd_closed = False
        self.synced_bytes = 0

    def current_end_us(self) -> int:
        """End of the last frame written so far."""
        return self.start_us + self.pts * 1_000_000 // self.clock_rate


@dataclass(frozen=True, slots=True)
class SegmentSnap:
    seg: SegmentState
    frames: int
    bytes: int
    duration: int
    key_frames: int
    end_us: int
    blob: bytes
    final: bool
    sha256: str | None


@dataclass(frozen=True, slots=True)
class RunSnap:
    run: RunState
    end_us: int
    open: bool


@dataclass(slots=True)
class Batch:
    """What one checkpoint hands to the committer."""

    segments: list[SegmentSnap] = field(default_factory=list)
    runs: list[RunSnap] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.segments or self.runs)


class IndexCommitter:
    """Fsync, then commit pending snapshots in one transaction; keep them if that fails."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        live: LiveHub,
        *,
        fsync_workers: int = 4,
    ) -> None:
        self._sessions = sessions
        self._live = live
        self._lock = threading.Lock()
        self._segs: dict[SegmentState, SegmentSnap] = {}
        self._runs: dict[RunState, RunSnap] = {}
        self._entry_ids: dict[SampleEntrySpec, int] = {}
        self._pool = ThreadPoolExecutor(fsync_workers, thread_name_prefix="nvr-fsync")
        self._commit_lock = threading.Lock()
        self.database_ok = True
        self.checkpoints = 0
        self.failures = 0
        self.last_error: str | None = None
        self.offered = 0
        """Count of :meth:`offer` calls; flushes wait for a commit covering their offer."""

    # ---- intake (writer thread) -------------------------------------------------------------

    def offer(self, batch: Batch) -> int:
        """Queue a checkpoint's snapshots (newer replace older); returns the offer number."""
        with self._lock:
            for snap in batch.segments:
                self._segs[snap.seg] = snap
            for rsnap in batch.runs:
                self._runs[rsnap.run] = rsnap
            self.offered += 1
            return self.offered

    def pending(self) -> int:
        with self._lock:
            return len(self._segs) + len(self._runs)

    def status(self) -> IndexStatus:
        return IndexStatus(
            database_ok=self.database_ok,
            pending_segments=len(self._segs),
            checkpoints=self.checkpoints,
            failures=self.failures,
            last_error=self.last_error,
        )

    # ---- commit (committer thread) ----------------------------------------------------------

    def commit(self) -> bool:
        """One checkpoint attempt over everything pending; True if nothing is left pending."""
        with self._commit_lock:
            with self._lock:
                segs, self._segs = self._segs, {}
                runs, self._runs = self._runs, {}
            if not segs and not runs:
                return True
            unsynced = self._fsync(segs)
            held_runs = {r: runs.pop(r) for r in {seg.run for seg in unsynced} if r in runs}
            try:
                unapplied = self._transaction_with_retry(segs, runs)
            except SQLAlchemyError as exc:
                self._requeue(segs | unsynced, runs | held_runs)
                self._note_failure(exc)
                return False
            held_runs.update(unapplied)
            self._requeue(unsynced, held_runs)
            self._note_success(segs.values(), runs.values())
            return not unsynced and not held_runs

    def _fsync(self, segs: dict[SegmentState, SegmentSnap]) -> dict[SegmentState, SegmentSnap]:
        """Make every snapshot's bytes durable; a segment whose fsync fails is held back."""
        jobs = [snap for snap in segs.values() if not snap.seg.fd_closed]
        failed: dict[SegmentState, SegmentSnap] = {}
        results = list(self._pool.map(_sync_segment, jobs)) if jobs else []
        for snap, error in zip(jobs, results, strict=True):
            if error is not None:
                log.error("fsync %s failed: %s", snap.seg.path, error)
                failed[snap.seg] = segs.pop(snap.seg)
        dirs: set[Path] = set()
        for snap in segs.values():
            if snap.seg.db_id is None:
                dirs.add(snap.seg.path.parent)
                dirs.update(d.parent for d in snap.seg.created_dirs)
        for d in dirs:
            try:
                fsync_dir(d)
            except OSError as exc:
                log.error("fsync of directory %s failed: %s", d, exc)
        return failed

    def _transaction_with_retry(
        self, segs: dict[SegmentState, SegmentSnap], runs: dict[RunState, RunSnap]
    ) -> dict[RunState, RunSnap]:
        try:
            return self._transaction(segs, runs)
        except IntegrityError:
            # Usually a track deleted while its index was pending: drop those and try again.
            if not self._drop_deleted_tracks(segs, runs):
                raise
            return self._transaction(segs, runs)

    def _transaction(
        self, segs: dict[SegmentState, SegmentSnap], runs: dict[RunState, RunSnap]
    ) -> dict[RunState, RunSnap]:
        """Index the snapshots in one transaction; returns run snapshots it could not apply
        yet (a run none of whose segments is indexed)."""
        new_runs: dict[RunState, int] = {}
        new_segs: dict[SegmentState, int] = {}
        new_entries: dict[SampleEntrySpec, int] = {}
        now = now_us()
        # After a failure the last COMMIT may have succeeded without us hearing of it: look
        # for rows we may already have inserted instead of inserting them twice.
        verify = not self.database_ok
        with self._sessions() as s, s.begin():
            for snap in segs.values():
                run = snap.seg.run
                if run.db_id is None and run not in new_runs:
                    rsnap = runs.get(run) or RunSnap(run, snap.end_us, True)
                    found = verify and s.scalar(
                        select(Run.id).where(
                            Run.track_id == run.track_id, Run.start_us == run.start_us
                        )
                    )
                    if found:
                        new_runs[run] = found
                        continue
                    new_runs[run] = s.execute(
                        insert(Run)
                        .values(
                            track_id=run.track_id,
                            start_us=run.start_us,
                            end_us=rsnap.end_us,
                            open=rsnap.open,
                        )
                        .returning(Run.id)
                    ).scalar_one()
            seg_updates = []
            blob_updates = []
            for snap in segs.values():
                seg = snap.seg
                seg_id = seg.db_id
                if seg_id is None and verify:
                    seg_id = s.scalar(
                        select(Segment.id).where(
                            Segment.track_id == seg.track_id, Segment.path == seg.relpath
                        )
                    )
                    if seg_id is not None:
                        new_segs[seg] = seg_id
                if seg_id is None:
                    entry_id = self._entry_id(s, seg.entry, new_entries, now)
                    run_id = seg.run.db_id or new_runs[seg.run]
                    seg_id = s.execute(
                        insert(Segment)
                        .values(
                            track_id=seg.track_id,
                            run_id=run_id,
                            sample_entry_id=entry_id,
                            storage_dir_id=seg.dir.id,
                            path=seg.relpath,
                            start_us=seg.start_us,
                            end_us=snap.end_us,
                            clock_rate=seg.clock_rate,
                            duration=snap.duration,
                            frames=snap.frames,
                            key_frames=snap.key_frames,
                            bytes=snap.bytes,
                            sha256=snap.sha256,
                            open=not snap.final,
                        )
                        .returning(Segment.id)
                    ).scalar_one()
                    new_segs[seg] = seg_id
                    s.execute(insert(SegmentFrames).values(segment_id=seg_id, blob=snap.blob))
                else:
                    seg_updates.append(
                        {
                            "_id": seg_id,
                            "_end": snap.end_us,
                            "_duration": snap.duration,
                            "_frames": snap.frames,
                            "_keys": snap.key_frames,
                            "_bytes": snap.bytes,
                            "_sha": snap.sha256,
                            "_open": not snap.final,
                        }
                    )
                    blob_updates.append({"_id": seg_id, "_blob": snap.blob})
            if seg_updates:
                s.execute(_SEGMENT_UPDATE, seg_updates)
                s.execute(_BLOB_UPDATE, blob_updates)
            run_updates = [
                {"_id": r.run.db_id or new_runs[r.run], "_end": r.end_us, "_open": r.open}
                for r in runs.values()
                if r.run.db_id is not None or r.run in new_runs
            ]
            if run_updates:
                s.execute(_RUN_UPDATE, run_updates)
        # Committed: only now do the new ids become real.
        for run, run_id in new_runs.items():
            run.db_id = run_id
        for seg, seg_id in new_segs.items():
            seg.db_id = seg_id
        self._entry_ids.update(new_entries)
        return {run: rsnap for run, rsnap in runs.items() if run.db_id is None}

    def _entry_id(
        self, s: Session, spec: SampleEntrySpec, new: dict[SampleEntrySpec, int], now: int
    ) -> int:
        found = self._entry_ids.get(spec) or new.get(spec)
        if found is not None:
            return found
        digest = spec.digest()
        entry_id = s.scalar(select(SampleEntry.id).where(SampleEntry.digest == digest))
        if entry_id is None:
            try:
                with s.begin_nested():
                    entry_id = s.execute(
                        insert(SampleEntry)
                        .values(
                            digest=digest,
                            codec=spec.codec,
                            clock_rate=spec.clock_rate,
                            width=spec.width,
                            height=spec.height,
                            sample_rate=spec.sample_rate,
                            channels=spec.channels,
                            parameters=spec.parameters,
                            created_us=now,
                        )
                        .returning(SampleEntry.id)
                    ).scalar_one()
            except IntegrityError:  # another node inserted the same parameters just now
                entry_id = s.scalar(select(SampleEntry.id).where(SampleEntry.digest == digest))
                if entry_id is None:
                    raise
        new[spec] = entry_id
        return entry_id

    def _drop_deleted_tracks(
        self, segs: dict[SegmentState, SegmentSnap], runs: dict[RunState, RunSnap]
    ) -> bool:
        track_ids = {seg.track_id for seg in segs} | {run.track_id for run in runs}
        with self._sessions() as s:
            alive = set(s.scalars(select(Track.id).where(Track.id.in_(track_ids))))
        gone = track_ids - alive
        if not gone:
            return False
        for seg in [seg for seg in segs if seg.track_id in gone]:
            snap = segs.pop(seg)
            if snap.final and not seg.fd_closed:
                _close_quietly(seg)
            try:
                os.unlink(seg.path)
            except OSError:
                pass
        for run in [run for run in runs if run.track_id in gone]:
            del runs[run]
        log.warning("dropped pending index of deleted tracks %s", sorted(gone))
        return True

    def _requeue(
        self, segs: dict[SegmentState, SegmentSnap], runs: dict[RunState, RunSnap]
    ) -> None:
        """Put back snapshots that were not committed, unless a newer one arrived meanwhile."""
        with self._lock:
            for seg, snap in segs.items():
                self._segs.setdefault(seg, snap)
            for run, rsnap in runs.items():
                self._runs.setdefault(run, rsnap)

    def _note_failure(self, exc: SQLAlchemyError) -> None:
        self.failures += 1
        self.last_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if self.database_ok:
            self.database_ok = False
            level = logging.ERROR if isinstance(exc, DBAPIError) else logging.WARNING
            log.log(
                level,
                "index checkpoint failed, media keeps being written and the index is kept in "
                "memory until the database is back: %s",
                self.last_error,
            )

    def _note_success(self, segs: Iterable[SegmentSnap], runs: Iterable[RunSnap]) -> None:
        self.checkpoints += 1
        if not self.database_ok:
            self.database_ok = True
            log.warning("database is back: index caught up")
        self.last_error = None
        tracks = {snap.seg.track_id for snap in segs} | {r.run.track_id for r in runs}
        self._live.notify(tracks)

    def close(self) -> None:
        """Release files of segments whose index could not be committed (shutdown)."""
        with self._lock:
            segs = list(self._segs)
        if segs:
            log.error(
                "shutting down with the index of %d segments uncommitted; startup recovery "
                "will reconcile their files",
                len(segs),
            )
        for seg in segs:
            _close_quietly(seg)
        self._pool.shutdown(wait=True)


def _sync_segment(snap: SegmentSnap) -> OSError | None:
    seg = snap.seg
    try:
        if seg.synced_bytes < snap.bytes:
            os.fdatasync(seg.fd)
            seg.synced_bytes = snap.bytes
        if snap.final:
            seg.fd_closed = True
            os.close(seg.fd)
    except OSError as exc:
        return exc
    return None


def _close_quietly(seg: SegmentState) -> None:
    if not seg.fd_closed:
        seg.fd_closed = True
        try:
            os.close(seg.fd)
        except OSError:
            pass


_seg_t = Segment.__table__
_SEGMENT_UPDATE = (
    update(_seg_t)
    .where(_seg_t.c.id == bindparam("_id"))
    .values(
        end_us=bindparam("_end"),
        duration=bindparam("_duration"),
        frames=bindparam("_frames"),
        key_frames=bindparam("_keys"),
        bytes=bindparam("_bytes"),
        sha256=bindparam("_sha"),
        open=bindparam("_open"),
    )
)
_frames_t = SegmentFrames.__table__
_BLOB_UPDATE = (
    update(_frames_t)
    .where(_frames_t.c.segment_id == bindparam("_id"))
    .values(blob=bindparam("_blob"))
)
_run_t = Run.__table__
_RUN_UPDATE = (
    update(_run_t)
    .where(_run_t.c.id == bindparam("_id"))
    .values(end_us=bindparam("_end"), open=bindparam("_open"))
)
