"""Live-edge notification: readers following a growing track wait here for new index data.

Each track has a sequence number that the index committer bumps after every checkpoint commit
that touched the track. A reader notes the number *before* it queries the index; if nothing new
was found it waits for the number to move past the noted value, so a commit landing between the
query and the wait is never missed. Waiting is offered both blocking (threads) and as an
awaitable (asyncio), because replay sessions live on the event loop while export runs in
threads.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable


class _Edge:
    __slots__ = ("futures", "seq")

    def __init__(self) -> None:
        self.seq = 0
        self.futures: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[int]]] = []


def _resolve(fut: asyncio.Future[int], seq: int) -> None:
    if not fut.done():
        fut.set_result(seq)


class LiveHub:
    """Per-track change counters with blocking and asyncio waits; safe from any thread."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._edges: dict[int, _Edge] = {}

    def _edge(self, track_id: int) -> _Edge:
        edge = self._edges.get(track_id)
        if edge is None:
            edge = self._edges[track_id] = _Edge()
        return edge

    def seq(self, track_id: int) -> int:
        """The current sequence number: note it before reading the index."""
        with self._cond:
            return self._edge(track_id).seq

    def notify(self, track_ids: Iterable[int]) -> None:
        """New index data is committed for these tracks (called by the index committer)."""
        wake: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[int], int]] = []
        with self._cond:
            for track_id in set(track_ids):
                edge = self._edge(track_id)
                edge.seq += 1
                wake.extend((loop, fut, edge.seq) for loop, fut in edge.futures)
                edge.futures.clear()
            self._cond.notify_all()
        for loop, fut, seq in wake:
            try:
                loop.call_soon_threadsafe(_resolve, fut, seq)
            except RuntimeError:  # the waiter's loop is closed: nobody is listening any more
                pass

    def wait(self, track_id: int, seq: int, timeout: float | None = None) -> int:
        """Block until the track's sequence number differs from ``seq`` or ``timeout`` passes;
        returns the current number (equal to ``seq`` on timeout)."""
        with self._cond:
            edge = self._edge(track_id)
            self._cond.wait_for(lambda: edge.seq != seq, timeout)
            return edge.seq

    async def wait_async(self, track_id: int, seq: int, timeout: float | None = None) -> int:
        """The asyncio form of :meth:`wait`; never blocks the event loop."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[int] = loop.create_future()
        with self._cond:
            edge = self._edge(track_id)
            if edge.seq != seq:
                return edge.seq
            edge.futures.append((loop, fut))
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            return seq
        finally:
            with self._cond:
                try:
                    edge.futures.remove((loop, fut))
                except ValueError:  # already taken by notify()
                    pass
