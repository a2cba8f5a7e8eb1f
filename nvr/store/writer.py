"""Track writers: append access units to segment files and keep the in-memory index.

Synchronous and single-threaded by design (the :mod:`nvr.store.service` thread drives it):
per frame there is one ``os.write`` and a few integer operations — no database work, no other
syscalls, no hashing. A segment's SHA-256 is computed behind the writer: every ``HASH_STEP``
bytes it hands the frames written to :attr:`StoreWriter.hash_behind` (the writer service's
hasher thread; inline when the writer runs alone), and finishing a segment hashes the rest
(see :class:`~nvr.store.checkpoint.SegmentDigest`). Index commits happen at checkpoints
through :class:`~nvr.store.checkpoint.IndexCommitter`.

Time (DESIGN §4): a run is anchored at the capture time of its first (key) frame; inside a
segment frame times come from RTP-clock durations, ``start_us + pts * 1_000_000 // clock_rate``.
Each new segment of a run starts where the timeline says, pulled towards the capture time by at
most ``max_slew_ppm`` of the elapsed time. A capture time further than ``max_clock_step_us`` from
the timeline (clock step, camera restart, lost data) ends the run; the next key frame starts a
new one. A new run never starts before data already stored for the track (such frames are
dropped and counted), so a track's timeline never overlaps itself.
"""

from __future__ import annotations

import errno
import logging
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from nvr.db.models import Run
from nvr.store.checkpoint import Batch, IndexCommitter, RunSnap, RunState, SegmentSnap, SegmentState
from nvr.store.layout import segment_relpath
from nvr.store.live import LiveHub
from nvr.store.settings import StoreSettings
from nvr.store.storage_dirs import DirHandle, StorageDirs
from nvr.store.types import (
    ClosedSegment,
    NullListener,
    SampleEntrySpec,
    StoreListener,
    TrackRef,
    TrackStatus,
    WriterState,
)

log = logging.getLogger(__name__)

_os_write = os.write
"""Indirection so tests can simulate a full disk."""

ERROR_RETRY_SECONDS = 1.0
"""How often a track in the error state tries again (on a key frame)."""

DEFAULT_IDLE_CLOSE_US = 10_000_000
"""A run that received nothing for this long (wall time) is closed: its data ends there."""

HASH_STEP = 256 * 1024
"""A segment's new frames are handed to the hasher each time it grew by this many bytes (so a
track holds on to at most about this much of its written frames, plus the backlog below)."""

HASH_BACKLOG = 16
"""Handed-over batches a segment may have waiting for the hasher: past that, the writer
thread hashes them itself (the hasher cannot keep up: this bounds the memory they hold)."""


class TrackWriter:
    """Writes one track. Not thread-safe: call it from one thread (the writer service's)."""

    def __init__(
        self,
        owner: StoreWriter,
        ref: TrackRef,
        *,
        last_end_us: int | None = None,
        idle_close_us: int | None = DEFAULT_IDLE_CLOSE_US,
    ) -> None:
        self._owner = owner
        self.ref = ref
        self.track_id = ref.track_id
        settings = owner.settings
        self._step_us = settings.max_clock_step_us
        self._slew_ppm = settings.max_slew_ppm
        self._segment_us = int(settings.segment_seconds * 1_000_000)
        self._idle_close_us = idle_close_us
        self._last_end_us = last_end_us
        self._run: RunState | None = None
        self._seg: SegmentState | None = None
        self._dirty: list[SegmentState] = []
        self._dirty_runs: list[RunState] = []
        self._known_dirs: set[Path] = set()
        self._announced_entry: SampleEntrySpec | None = None
        self._idle_since: float | None = None
        self._idle_mark = -1
        self._retry_at = 0.0
        self.closed = False
        self.state = WriterState.IDLE
        self.error: str | None = None
        self.frames_written = 0
        self.bytes_written = 0
        self.dropped_before_key = 0
        self.dropped_error = 0
        self.dropped_overlap = 0
        self.dropped_queue = 0
        self.queue_gap = False
        """Set by the writer service when it refused a frame of this track."""
        self.runs_started = 0
        self.segments_closed = 0
        self.last_time_us: int | None = None

    # ---- the per-frame path -----------------------------------------------------------------

    def append(
        self, data: bytes, capture_us: int, duration: int, key: bool, entry: SampleEntrySpec
    ) -> bool:
        """Store one access unit; False if it was dropped (counted in :meth:`status`).

        ``duration`` is in ``entry.clock_rate`` units and must not be negative.
        """
        seg = self._seg
        # The entry of the open segment was checked when it was first seen.
        if duration < 0 or ((seg is None or entry is not seg.entry) and entry.clock_rate <= 0):
            raise ValueError(f"bad duration {duration} or clock rate {entry.clock_rate}")
        if seg is not None:
            expected = seg.start_us + seg.pts * 1_000_000 // seg.clock_rate
            step = self._step_us
            if -step <= capture_us - expected <= step:
                if entry is not seg.entry and entry != seg.entry:
                    if key:
                        return self._cut(data, capture_us, duration, key, entry)
                    self._end_run()  # new parameters need a key frame to decode
                elif key and seg.pts >= seg.cut_pts:
                    return self._cut(data, capture_us, duration, key, entry)
                else:
                    return self._write(seg, data, duration, key, expected)
            else:
                log.info(
                    "track %s: capture time %d is %+d us off the timeline: new run",
                    self.track_id,
                    capture_us,
                    capture_us - expected,
                )
                self._end_run()
        if self.closed:
            raise RuntimeError(f"track writer {self.track_id} is closed")
        if self.state is WriterState.ERROR and (not key or time.monotonic() < self._retry_at):
            self.dropped_error += 1
            return False
        if self._last_end_us is not None and capture_us < self._last_end_us:
            self.dropped_overlap += 1
            return False
        if not key:
            self.dropped_before_key += 1
            return False
        return self._start_run(data, capture_us, duration, key, entry)

    def _write(
        self, seg: SegmentState, data: bytes, duration: int, key: bool, time_us: int
    ) -> bool:
        """Append a frame starting at ``time_us`` (the segment's current end)."""
        size = len(data)
        try:
            n = _os_write(seg.fd, data)
            while n < size:  # short write: rare, usually just before ENOSPC
                n += _os_write(seg.fd, memoryview(data)[n:])
        except OSError as exc:
            self._fail(exc)
            return False
        seg.encoder.append(size, duration, key)
        seg.hash_frames.append(data if type(data) is bytes else bytes(data))
        offset = seg.offset + size
        seg.offset = offset
        seg.last_time_us = time_us
        seg.pts += duration
        seg.frames += 1
        if key:
            seg.key_frames += 1
        seg.run.frames += 1
        seg.dir.written += size
        self.frames_written += 1
        self.bytes_written += size
        self.last_time_us = time_us
        if offset >= seg.hash_at:
            seg.hash_at = offset + HASH_STEP
            digest = seg.digest
            digest.add(seg.hash_frames)
            seg.hash_frames = []
            if digest.backlog > HASH_BACKLOG:
                digest.drain()
            else:
                self._owner.hash_behind(seg)
        return True

    # ---- runs and segments ------------------------------------------------------------------

    def _start_run(
        self, data: bytes, capture_us: int, duration: int, key: bool, entry: SampleEntrySpec
    ) -> bool:
        run = RunState(self.track_id, capture_us, entry.clock_rate)
        self._run = run
        seg = self._open_segment(run, capture_us, entry)
        if seg is None or not self._write(seg, data, duration, key, seg.start_us):
            return False
        if self.state is WriterState.ERROR:
            self.state = WriterState.RECORDING
            self.error = None
            log.warning("track %s: writing again", self.track_id)
            self._notify("writer_recovered", self.ref)
        self.state = WriterState.RECORDING
        self.runs_started += 1
        self._dirty_runs.append(run)
        self._notify("run_started", self.ref, capture_us)
        self._announce(entry, capture_us)
        return True

    def _cut(
        self, data: bytes, capture_us: int, duration: int, key: bool, entry: SampleEntrySpec
    ) -> bool:
        """Close the current segment and continue the run in a new one, slewing its start."""
        old, run = self._seg, self._run
        assert old is not None and run is not None
        rate = old.clock_rate  # == run.anchor_rate: a new rate re-anchors below
        nominal = run.anchor_us + run.slew_us + (run.base_pts + old.pts) * 1_000_000 // rate
        allowed = (nominal - old.start_us) * self._slew_ppm // 1_000_000
        offset = max(-allowed, min(allowed, capture_us - nominal))
        start = max(nominal + offset, old.last_time_us + 1)
        old.end_us = start
        self._finish_segment(old)
        if entry.clock_rate == rate:
            run.base_pts += old.pts
            run.slew_us = start - run.anchor_us - run.base_pts * 1_000_000 // rate
        else:  # a new clock rate: re-anchor the run's timeline here
            run.anchor_us, run.anchor_rate, run.base_pts, run.slew_us = (
                start,
                entry.clock_rate,
                0,
                0,
            )
        seg = self._open_segment(run, start, entry)
        if seg is None or not self._write(seg, data, duration, key, seg.start_us):
            return False
        self._announce(entry, start)
        return True

    def _open_segment(
        self, run: RunState, start_us: int, entry: SampleEntrySpec
    ) -> SegmentState | None:
        directory = self._owner.dirs.pick()
        if directory is None:
            self._fail(OSError(errno.ENOSPC, "no usable storage directory"))
            return None
        relpath = segment_relpath(self.track_id, start_us, entry.codec, secrets.token_hex(4))
        try:
            fd, created = self._create_file(directory, relpath)
        except OSError as exc:
            self._fail(exc)
            return None
        seg = SegmentState(
            track_id=self.track_id,
            run=run,
            directory=directory,
            relpath=relpath,
            fd=fd,
            entry=entry,
            start_us=start_us,
            cut_pts=self._segment_us * entry.clock_rate // 1_000_000,
            created_dirs=created,
        )
        seg.hash_at = HASH_STEP
        self._seg = seg
        self._dirty.append(seg)
        return seg

    def _create_file(self, directory: DirHandle, relpath: str) -> tuple[int, tuple[Path, ...]]:
        path = directory.root / relpath
        parent = path.parent
        created: list[Path] = []
        for attempt in range(2):  # a concurrent purge may remove an empty folder under us
            if parent not in self._known_dirs or attempt:
                created = [p for p in (parent.parent, parent) if not p.exists()]
                parent.mkdir(parents=True, exist_ok=True)
                self._known_dirs.add(parent)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o640)
            except FileNotFoundError:
                self._known_dirs.discard(parent)
                if attempt:
                    raise
                continue
            return fd, tuple(created)
        raise AssertionError("unreachable")

    def _finish_segment(self, seg: SegmentState) -> None:
        """Mark a segment complete; its file is fsynced and closed by the next checkpoint."""
        seg.sha256 = seg.digest.finish(seg.hash_frames)
        seg.hash_frames = []
        seg.final = True
        seg.run.end_us = seg.end_us
        self.segments_closed += 1
        if self._seg is seg:
            self._seg = None
        self._notify(
            "segment_closed",
            self.ref,
            ClosedSegment(
                start_us=seg.start_us,
                end_us=seg.end_us,
                frames=seg.frames,
                bytes=seg.offset,
                sha256=seg.sha256,
                storage_dir_id=seg.dir.id,
                path=seg.relpath,
            ),
        )

    def _end_run(self) -> None:
        """End the current run at the end of its last frame."""
        seg, run = self._seg, self._run
        self._seg = self._run = None
        if run is None:
            return
        if seg is not None:
            seg.end_us = seg.current_end_us()
            self._finish_segment(seg)
        run.open = False
        if run.frames == 0:  # never written to: nothing to index or announce
            return
        self._last_end_us = max(self._last_end_us or run.end_us, run.end_us)
        self._owner.note_end(self.track_id, self._last_end_us)
        if self.state is WriterState.RECORDING:
            self.state = WriterState.IDLE
        self._notify("run_ended", self.ref, run.end_us)

    def _fail(self, exc: OSError) -> None:
        """Writing is impossible (disk full, no storage): keep what is complete, drop the rest,
        enter the error state and retry later."""
        seg = self._seg
        if seg is not None:
            try:
                os.ftruncate(seg.fd, seg.offset)  # no partial frame stays in the file
            except OSError:
                pass
            if seg.frames == 0:
                self._discard(seg)
        self._end_run()
        self.dropped_error += 1
        self._retry_at = time.monotonic() + ERROR_RETRY_SECONDS
        message = exc.strerror or str(exc)
        if self.state is not WriterState.ERROR:
            log.error("track %s: cannot write: %s", self.track_id, message)
            self.state = WriterState.ERROR
            self.error = message
            self._notify("writer_error", self.ref, message)

    def _discard(self, seg: SegmentState) -> None:
        """Forget a segment that never received a frame (and was never indexed)."""
        self._dirty.remove(seg)
        if self._seg is seg:
            self._seg = None
        seg.fd_closed = True
        seg.digest.close()
        seg.hash_frames = []
        for op in (lambda: os.close(seg.fd), lambda: os.unlink(seg.path)):
            try:
                op()
            except OSError:
                pass

    def _announce(self, entry: SampleEntrySpec, time_us: int) -> None:
        if entry != self._announced_entry:
            self._announced_entry = entry
            self._notify("sample_entry_changed", self.ref, time_us, entry)

    def _notify(self, event: str, *args: object) -> None:
        try:
            getattr(self._owner.listener, event)(*args)
        except Exception:
            log.exception("store listener %s failed", event)

    # ---- control ----------------------------------------------------------------------------

    def break_run(self) -> None:
        """Frames were lost before reaching the writer: end the run so the timeline stays true
        (the next key frame starts a new one)."""
        self._end_run()

    def close(self) -> None:
        """End the run; the next checkpoint indexes and closes the last segment."""
        self._end_run()
        self.closed = True
        if self.state is not WriterState.ERROR:
            self.state = WriterState.IDLE

    def collect(self, batch: Batch, now: float) -> None:
        """Add snapshots of everything changed since the last checkpoint to ``batch``."""
        self._check_idle(now)
        keep: list[SegmentState] = []
        for seg in self._dirty:
            if seg.frames != seg.snapped_frames or seg.final != seg.snapped_final:
                end = seg.end_us if seg.final else seg.current_end_us()
                batch.segments.append(
                    SegmentSnap(
                        seg=seg,
                        frames=seg.frames,
                        bytes=seg.offset,
                        duration=seg.pts,
                        key_frames=seg.key_frames,
                        end_us=end,
                        blob=seg.encoder.blob,
                        final=seg.final,
                        sha256=seg.sha256,
                    )
                )
                seg.snapped_frames, seg.snapped_final = seg.frames, seg.final
            if not seg.final:
                keep.append(seg)
        self._dirty = keep
        runs: list[RunState] = []
        for run in self._dirty_runs:
            if run.open and self._seg is not None and self._seg.run is run:
                run.end_us = self._seg.current_end_us()
            state = (run.end_us, run.open)
            if state != run.snapped and run.frames:
                batch.runs.append(RunSnap(run, run.end_us, run.open))
                run.snapped = state
            if run.open:
                runs.append(run)
        self._dirty_runs = runs

    def _check_idle(self, now: float) -> None:
        if self._seg is None or self._idle_close_us is None:
            self._idle_since = None
            return
        if self.frames_written != self._idle_mark:
            self._idle_mark = self.frames_written
            self._idle_since = now
        elif self._idle_since is not None and (now - self._idle_since) * 1e6 >= self._idle_close_us:
            log.info("track %s: no data for a while: run ended", self.track_id)
            self._end_run()

    @property
    def finished(self) -> bool:
        """Closed and nothing left to hand to the committer."""
        return self.closed and not self._dirty and not self._dirty_runs

    def status(self) -> TrackStatus:
        return TrackStatus(
            track_id=self.track_id,
            state=self.state,
            error=self.error,
            frames_written=self.frames_written,
            bytes_written=self.bytes_written,
            dropped_before_key=self.dropped_before_key,
            dropped_error=self.dropped_error,
            dropped_overlap=self.dropped_overlap,
            dropped_queue=self.dropped_queue,
            runs_started=self.runs_started,
            segments_closed=self.segments_closed,
            last_time_us=self.last_time_us,
        )


class StoreWriter:
    """All track writers of a store and their checkpoints (synchronous; one thread)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        dirs: StorageDirs,
        settings: StoreSettings,
        *,
        live: LiveHub | None = None,
        listener: StoreListener | None = None,
        committer: IndexCommitter | None = None,
    ) -> None:
        self.sessions = sessions
        self.dirs = dirs
        self.settings = settings
        self.live = live or LiveHub()
        self.listener: StoreListener = listener or NullListener()
        self.committer = committer or IndexCommitter(sessions, self.live)
        self.tracks: dict[int, TrackWriter] = {}
        self._closing: list[TrackWriter] = []
        """Closed writers replaced by a new one before their last snapshots were taken."""
        self._ends: dict[int, int] = {}
        self.hash_behind: Callable[[SegmentState], None] = self.hash_now
        """Called (on the writer thread) with a segment that handed frames to its digest: the
        writer service replaces it with a hand-over to its hasher thread."""

    @staticmethod
    def hash_now(seg: SegmentState) -> None:
        """Hash a segment's handed-over frames here and now (no hasher thread)."""
        seg.digest.drain()

    def prepare_track(
        self, ref: TrackRef, *, idle_close_us: int | None = DEFAULT_IDLE_CLOSE_US
    ) -> TrackWriter:
        """A writer for a track, not yet registered (reads the track's last stored time: this
        queries the database and may raise if it is down)."""
        with self.sessions() as s:
            stored = s.scalar(select(func.max(Run.end_us)).where(Run.track_id == ref.track_id))
        ends = [e for e in (stored, self._ends.get(ref.track_id)) if e is not None]
        return TrackWriter(
            self, ref, last_end_us=max(ends) if ends else None, idle_close_us=idle_close_us
        )

    def register(self, writer: TrackWriter) -> None:
        current = self.tracks.get(writer.track_id)
        if current is not None:
            if not current.closed:
                raise RuntimeError(f"track {writer.track_id} already has an open writer")
            self._closing.append(current)
        self.tracks[writer.track_id] = writer

    def open_track(
        self, ref: TrackRef, *, idle_close_us: int | None = DEFAULT_IDLE_CLOSE_US
    ) -> TrackWriter:
        writer = self.prepare_track(ref, idle_close_us=idle_close_us)
        self.register(writer)
        return writer

    def note_end(self, track_id: int, end_us: int) -> None:
        self._ends[track_id] = end_us

    def collect(self, now: float | None = None) -> Batch:
        """Snapshots of every track's changes; forgets writers that are closed and done."""
        batch = Batch()
        now = time.monotonic() if now is None else now
        for writer in self._closing:
            writer.collect(batch, now)
        self._closing = [w for w in self._closing if not w.finished]
        for track_id, writer in list(self.tracks.items()):
            writer.collect(batch, now)
            if writer.finished:
                del self.tracks[track_id]
        return batch

    def checkpoint(self) -> bool:
        """Collect and commit inline; True if the index is fully up to date."""
        self.committer.offer(self.collect())
        return self.committer.commit()

    def close(self) -> bool:
        for writer in list(self.tracks.values()):
            writer.close()
        return self.checkpoint()
