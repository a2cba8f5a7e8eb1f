"""Driving the blocking frame workers of ``replay_frames`` from the event loop.

Store reads (database look-ups, ``pread``) run in the replay thread pool, never on the loop.
A :class:`FrameSource` keeps everything a PLAY has read but not yet sent, so a producer task
cancelled anywhere (PAUSE, a new PLAY) loses nothing and a PLAY without Range continues with
exactly the next access unit.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections import deque
from collections.abc import Sequence
from typing import Any, Protocol

from nvr.playback.replay_frames import Batch, ForwardMerge, Item, Status
from nvr.store.reader import ForwardCursor, TrackReader
from nvr.store.types import Frame

__all__ = ["FrameSource", "StoreForward", "run_ended"]


class Worker(Protocol):
    def read(self, max_items: int = ..., max_bytes: int = ...) -> Batch: ...

    def close(self) -> None: ...


class StoreForward(ForwardMerge):
    """A forward merge over store cursors: closes them, and waits for the live edge."""

    def __init__(self, cursors: Sequence[ForwardCursor], *, primary: int, **kw: Any) -> None:
        super().__init__(cursors, primary=primary, **kw)
        self.cursors = cursors
        self._wait_order = [cursors[primary], *(c for c in cursors if c is not cursors[primary])]

    async def wait_live(self, timeout: float) -> None:
        """Until the store committed new data for the first track still open (the primary
        one first: tracks are checkpointed together, so one waiter per session is enough),
        or ``timeout`` (a track that stopped recording is polled)."""
        for cursor in self._wait_order:
            if not cursor.done:
                await cursor.wait_async(timeout)
                return
        await asyncio.sleep(timeout)

    def close(self) -> None:
        for cursor in self.cursors:
            cursor.close()


def run_ended(reader: TrackReader, frame: Frame) -> bool:
    """Whether the frame's run has ended with nothing recorded after it (blocking)."""
    runs = reader.runs(start_us=frame.time_us)
    return all(not run.open and run.id == frame.run_id for run in runs)


class FrameSource:
    """A frame worker driven from the event loop.

    Reads land in ``_ready`` from the worker thread itself; :meth:`take` moves a batch's items
    to ``pending``, which the producer pops only once an item was handed to the sink. The
    next chunk is read while the current one is being sent.
    """

    def __init__(
        self,
        worker: Worker,
        executor: concurrent.futures.Executor,
        read_bytes: int,
        read_ahead: int = 2,
    ) -> None:
        self.worker = worker
        self._executor = executor
        self.read_bytes = read_bytes
        self.read_ahead = read_ahead
        self._waiting = False  # the producer waits for a batch: hand the next one over at once
        """Batches read ahead of the one being sent (more smooth out slow reads)."""
        self._ready: deque[Batch] = deque()
        self._future: concurrent.futures.Future[None] | None = None
        self.pending: deque[Item] = deque()
        self.status = Status.MORE
        """Status of the last batch taken: DONE with ``pending`` empty means finished."""
        self.closed = False

    def _read(self) -> None:
        # Read ahead up to read_ahead batches in one go (one hand-over to the thread pool),
        # but hand a batch over at once when the producer may be waiting for it (a PLAY's
        # first packet, or a producer that caught up).
        while not self.closed:
            batch = self.worker.read(max_bytes=self.read_bytes)
            self._ready.append(batch)
            if (
                self._waiting
                or batch.status is not Status.MORE
                or len(self._ready) >= self.read_ahead
            ):
                break

    def _kick(self) -> concurrent.futures.Future[None]:
        future = self._future
        if future is None or future.done():
            if future is not None:
                future.result()  # a failed read fails the producer
            future = self._future = self._executor.submit(self._read)
        return future

    async def take(self) -> Status:
        """Move the next batch into ``pending``; returns its status."""
        while not self._ready:
            self._waiting = True
            try:
                await asyncio.wrap_future(self._kick())
            finally:
                self._waiting = False
        batch = self._ready.popleft()
        self.pending.extend(batch.items)
        self.status = batch.status
        ready = self._ready
        more = not ready or ready[-1].status is Status.MORE
        if batch.status is Status.MORE and len(ready) < self.read_ahead and more:
            self._kick()  # keep reading ahead (nothing new while a read is in flight)
        return batch.status

    async def wait_live(self, timeout: float) -> None:
        """At the live edge: until new data may be readable."""
        wait = getattr(self.worker, "wait_live", None)
        await (wait(timeout) if wait is not None else asyncio.sleep(timeout))

    def close(self) -> None:
        """Release the worker's files, after a read in flight has finished."""
        if self.closed:
            return
        self.closed = True
        future = self._future
        if future is not None and not future.done():
            future.add_done_callback(lambda _: self.worker.close())
        else:
            self.worker.close()
