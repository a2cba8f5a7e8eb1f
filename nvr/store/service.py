"""The writer service: every track writer runs on ONE dedicated thread fed by a queue.

Producers (ingest tasks on the event loop, or any thread) call :meth:`TrackHandle.submit`,
which never blocks: it puts a tuple on a ``SimpleQueue``. The writer thread appends frames and,
every ``checkpoint_seconds``, collects snapshots of all dirty tracks and hands them to the
committer thread, which fsyncs and commits them in one transaction. The writer thread never
waits for the database, so a slow or absent database does not slow recording; a full queue
(the disk cannot keep up) drops frames at the producer, counted per track. A third thread, the
hasher, computes segment checksums behind the writer (see
:class:`~nvr.store.checkpoint.SegmentDigest`), so the writer thread does not hash.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from sqlalchemy.exc import SQLAlchemyError

from nvr.store.checkpoint import SegmentState
from nvr.store.types import IndexStatus, SampleEntrySpec, TrackBusy, TrackRef, TrackStatus
from nvr.store.writer import DEFAULT_IDLE_CLOSE_US, StoreWriter, TrackWriter

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_MAX_QUEUE_BYTES = 256 * 1024 * 1024

BURST = 64
"""Queued items the writer thread takes in a row before it looks at the clock again."""

NAP_SECONDS = 0.005
NAPS_BEFORE_IDLE = 8
"""While frames keep coming, the writer thread naps between bursts instead of blocking on the
queue, so a producer's put finds no waiter and never wakes it (one thread switch per nap, not
per frame); after this many empty naps in a row it blocks until the next put."""

USAGE_REFRESH_SECONDS = 60.0
"""How often the committer thread re-reads each storage directory's indexed bytes (retention
frees space behind the writer's back)."""


class TrackHandle:
    """What ingest holds for one recording track: submit frames, read status, close."""

    __slots__ = ("_service", "_writer", "ref")

    def __init__(self, service: WriterService, writer: TrackWriter) -> None:
        self._service = service
        self._writer = writer
        self.ref = writer.ref

    def submit(
        self, data: bytes, capture_us: int, duration: int, key: bool, entry: SampleEntrySpec
    ) -> bool:
        """Queue one access unit; never blocks. False if refused (queue full: counted)."""
        return self._service._submit(self._writer, data, capture_us, duration, key, entry)

    def status(self) -> TrackStatus:
        return self._writer.status()

    def close(self) -> Future[None]:
        """End the track's run; the future completes once the writer thread has done so."""
        return self._service._close_track(self._writer)

    @property
    def closed(self) -> bool:
        return self._writer.closed


class WriterService:
    """Runs a :class:`StoreWriter` on a writer thread, and its committer on another."""

    def __init__(
        self,
        writer: StoreWriter,
        *,
        checkpoint_seconds: float | None = None,
        max_queue_bytes: int = DEFAULT_MAX_QUEUE_BYTES,
    ) -> None:
        self.writer = writer
        self._interval = checkpoint_seconds or writer.settings.checkpoint_seconds
        self._max_queue_bytes = max_queue_bytes
        self._queue: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        # Bytes queued = in - out; each counter has one writer (producers under the lock, the
        # writer thread), so the writer thread takes no lock per frame.
        self._queued_in = 0
        self._queued_out = 0
        self._qlock = threading.Lock()
        self._hash_queue: queue.SimpleQueue[SegmentState | None] = queue.SimpleQueue()
        self._open: dict[int, TrackHandle] = {}
        self._open_lock = threading.Lock()
        self._commit_wake = threading.Event()
        self._commit_done = threading.Condition()
        self._committed_offer = 0
        self._commit_ok = True
        self._stopping = False
        self._threads: list[threading.Thread] = []
        self._errors_logged = 0

    # ---- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        if self._threads:
            return
        self.writer.hash_behind = self._hash_queue.put
        self._threads = [
            threading.Thread(target=self._writer_loop, name="nvr-writer", daemon=True),
            threading.Thread(target=self._committer_loop, name="nvr-index", daemon=True),
            threading.Thread(target=self._hasher_loop, name="nvr-hash", daemon=True),
        ]
        for t in self._threads:
            t.start()

    def stop(self, timeout: float = 30.0) -> bool:
        """Close every track, checkpoint, stop both threads; True if the index is complete."""
        if not self._threads:
            return True
        deadline = time.monotonic() + timeout
        done: Future[bool] = Future()
        self._queue.put((None, self._shutdown, done, None, None, None))
        try:
            ok = done.result(timeout)
        except TimeoutError:
            ok = False
        while not ok and time.monotonic() < deadline:  # the database may come back in time
            self._commit_wake.set()
            ok = self._wait_commit(self.writer.committer.offered, 1.0)
        self._stopping = True
        self._commit_wake.set()
        self._hash_queue.put(None)
        for t in self._threads:
            t.join(max(0.1, deadline - time.monotonic()))
        self._threads = []
        self.writer.hash_behind = self.writer.hash_now
        self.writer.committer.close()
        return ok

    def _shutdown(self) -> bool:
        for w in list(self.writer.tracks.values()):
            w.close()
        target = self._checkpoint()
        with self._open_lock:
            self._open.clear()
        return self._wait_commit(target, 10.0)

    # ---- tracks -----------------------------------------------------------------------------

    def open_track(
        self, ref: TrackRef, *, idle_close_us: int | None = DEFAULT_IDLE_CLOSE_US
    ) -> TrackHandle:
        """A handle to write one track (blocking: reads the track's last time from the DB)."""
        with self._open_lock:
            handle = self._open.get(ref.track_id)
            if handle is not None and not handle.closed:
                raise TrackBusy(f"track {ref.track_id} already has a writer")
            writer = self.writer.prepare_track(ref, idle_close_us=idle_close_us)
            handle = self._open[ref.track_id] = TrackHandle(self, writer)
        self._call(lambda: self.writer.register(writer))
        return handle

    def handles(self) -> list[TrackHandle]:
        with self._open_lock:
            return [h for h in self._open.values() if not h.closed]

    def close_tracks(self, track_ids: set[int], timeout: float = 10.0) -> bool:
        """Close the writers of these tracks and wait until their index is committed."""
        with self._open_lock:
            handles = [h for tid, h in self._open.items() if tid in track_ids]
        for h in handles:
            h.close().result(timeout)
        return self.flush(timeout)

    def _submit(
        self,
        writer: TrackWriter,
        data: bytes,
        capture_us: int,
        duration: int,
        key: bool,
        entry: SampleEntrySpec,
    ) -> bool:
        if writer.closed:
            return False
        size = len(data)
        with self._qlock:
            queued = self._queued_in - self._queued_out
            if (writer.queue_gap and not key) or queued + size > self._max_queue_bytes:
                # After a refused frame, the rest of its GOP cannot be decoded: drop it too.
                writer.dropped_queue += 1
                writer.queue_gap = True
                return False
            self._queued_in += size
            if writer.queue_gap:
                writer.queue_gap = False
                self._queue.put((None, writer.break_run, None, None, None, None))
            self._queue.put((writer, data, capture_us, duration, key, entry))
        return True

    def _close_track(self, writer: TrackWriter) -> Future[None]:
        return self._call(writer.close)

    # ---- checkpoints ------------------------------------------------------------------------

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Checkpoint now and wait for the commit; True if the index is fully up to date."""
        target = self._call(self._checkpoint).result(timeout)
        return self._wait_commit(target, timeout)

    def status(self) -> list[TrackStatus]:
        with self._open_lock:
            return [h.status() for h in self._open.values()]

    def index_status(self) -> IndexStatus:
        return self.writer.committer.status()

    @property
    def queued_bytes(self) -> int:
        return self._queued_in - self._queued_out

    def _checkpoint(self) -> int:
        target = self.writer.committer.offer(self.writer.collect())
        self._commit_wake.set()
        return target

    def _wait_commit(self, target: int, timeout: float | None) -> bool:
        with self._commit_done:
            self._commit_done.wait_for(lambda: self._committed_offer >= target, timeout)
            return self._committed_offer >= target and self._commit_ok

    def _call(self, fn: Callable[[], T]) -> Future[T]:
        fut: Future[T] = Future()
        if not self._threads:
            raise RuntimeError("writer service is not running")
        self._queue.put((None, fn, fut, None, None, None))
        return fut

    # ---- threads ----------------------------------------------------------------------------

    def _writer_loop(self) -> None:
        q = self._queue
        get, get_nowait = q.get, q.get_nowait
        empty = queue.Empty
        mono = time.monotonic
        interval = self._interval
        sleep = time.sleep
        next_checkpoint = mono() + interval
        naps = 0
        while True:
            now = mono()
            if now >= next_checkpoint:
                next_checkpoint = now + interval
                try:
                    self._checkpoint()
                except Exception:  # never let the writer thread die: frames keep coming
                    log.exception("checkpoint collection failed")
            try:
                item = get_nowait()
            except empty:
                if naps < NAPS_BEFORE_IDLE:  # busy: batch wake-ups (see NAP_SECONDS)
                    naps += 1
                    sleep(min(NAP_SECONDS, next_checkpoint - now))
                    continue
                try:
                    item = get(True, next_checkpoint - now)
                except empty:
                    continue
            naps = 0
            # A burst: take what is queued without looking at the clock for every frame.
            burst = BURST
            while True:
                writer, a, b, c, d, e = item
                if writer is None:  # a call: (None, fn, future, ...)
                    try:
                        result = a()
                    except BaseException as exc:
                        if b is None:
                            log.exception("writer service task failed")
                        else:
                            b.set_exception(exc)
                    else:
                        if b is not None:
                            b.set_result(result)
                    if a == self._shutdown:
                        return
                else:
                    self._queued_out += len(a)
                    try:
                        writer.append(a, b, c, d, e)
                    except Exception:
                        writer.dropped_error += 1
                        if self._errors_logged < 100:
                            self._errors_logged += 1
                            log.exception("track %s: append failed", writer.track_id)
                burst -= 1
                if not burst:
                    break
                try:
                    item = get_nowait()
                except empty:
                    break

    def _hasher_loop(self) -> None:
        """Checksum the frames the writer thread hands over."""
        get = self._hash_queue.get
        while True:
            seg = get()
            if seg is None:
                return
            try:
                seg.digest.drain()
            except Exception:  # the writer finishes the checksum itself
                log.exception("segment %s: checksum failed", seg.relpath)

    def _committer_loop(self) -> None:
        committer = self.writer.committer
        next_usage = time.monotonic() + USAGE_REFRESH_SECONDS
        while True:
            self._commit_wake.wait()
            self._commit_wake.clear()
            if self._stopping:
                return
            target = committer.offered
            try:
                ok = committer.commit()
            except Exception:
                log.exception("index checkpoint failed unexpectedly")
                ok = False
            with self._commit_done:
                self._committed_offer = target
                self._commit_ok = ok
                self._commit_done.notify_all()
            if ok and time.monotonic() >= next_usage:
                next_usage = time.monotonic() + USAGE_REFRESH_SECONDS
                try:
                    self.writer.dirs.refresh_usage()
                except SQLAlchemyError as exc:
                    log.warning("cannot refresh storage usage: %s", exc)
