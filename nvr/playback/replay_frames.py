"""The order and the replay flags of the access units a plan sends (replay.md B.5.1, B.7, B.8).

Sans-IO over cursor-like objects: the store's :class:`~nvr.store.reader.ForwardCursor` and
``TrackReader.gops_backward`` in production, lists in the unit tests. The objects here do
blocking reads, so the replay session drives them from a worker thread; they keep all their
state between calls, so a batch that was read but never sent (the producer was cancelled) is
not lost.

Forward, tracks are merged by capture time, so several tracks keep their relative timing on one
clock. Every access unit gets its flags when the next one of its track is known (one frame of
lookahead, taken from the batch already read): E on the last one before a gap, D on the first
one after it, T on the last one of the playback. At the live edge of a track still being
recorded the newest frame has no known successor: it goes out at once without E (B.8), unless
the store says its run has ended meanwhile.

Reverse, GOPs come newest first with their frames in forward order; each GOP starts with D,
its last frame carries E when the GOP begins a block (a gap or the start of footage lies just
behind it), and the last frame sent carries T (B.7).
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import NamedTuple, Protocol

from nvr.protocol.onvif_replay import FLAG_C, FLAG_D, FLAG_E, FLAG_T
from nvr.store.types import Frame

__all__ = ["Batch", "ForwardMerge", "FrameCursor", "Item", "ReverseGops", "Status"]


class Status(enum.Enum):
    MORE = "more"
    """More is readable now: read again."""
    EDGE = "edge"
    """Nothing more now; a track still recording (or an open range) may bring more later."""
    DONE = "done"
    """The plan is complete: nothing more will ever come."""


class Item(NamedTuple):
    """One access unit to send: its track (index into the plan's tracks) and C/E/D/T flags."""

    track: int
    frame: Frame
    flags: int


class Batch(NamedTuple):
    items: list[Item]
    status: Status


class FrameCursor(Protocol):
    """What :class:`ForwardMerge` needs of a forward cursor."""

    done: bool

    def read(self, max_frames: int = 64, max_bytes: int = 4 * 1024 * 1024) -> list[Frame]: ...


RunEnded = Callable[[int, Frame], bool]
"""``(track, frame) -> bool``: the frame's run has ended and nothing was recorded after it."""


class _Track:
    __slots__ = ("cursor", "emitted", "finished", "queue", "started")

    def __init__(self, cursor: FrameCursor, started: bool) -> None:
        self.cursor = cursor
        self.queue: deque[Frame] = deque()
        self.started = started  # anything of this track sent before this plan
        self.emitted = False  # anything emitted by this plan
        self.finished = False


class ForwardMerge:
    """Frames of several tracks in capture-time order, with their flags.

    ``primary`` is the track whose clean point the plan starts at; the other tracks drop what
    lies before ``start_us``. ``started`` lists the tracks that sent something before this plan
    (their first access unit carries D when ``jump``); ``closed`` (a closed range) ends the plan
    after each track's T. ``run_ended`` asks the store whether a frame with no known successor
    ended its run (used when the frame itself does not say so: key-frame scans, or a run that
    ended after the frame was read). ``ids`` names the tracks in the items (default: position).
    """

    def __init__(
        self,
        cursors: Sequence[FrameCursor],
        *,
        start_us: int,
        primary: int = 0,
        started: Collection[int] = (),
        jump: bool = False,
        closed: bool = False,
        run_ended: RunEnded | None = None,
        read_frames: int = 64,
        ids: Sequence[int] | None = None,
    ) -> None:
        self._tracks = [_Track(c, i in started) for i, c in enumerate(cursors)]
        self._ids = list(ids) if ids is not None else list(range(len(cursors)))
        self._start_us = start_us
        self._primary = primary
        self._jump = jump
        self._closed = closed
        self._run_ended = run_ended
        self._read_frames = read_frames

    def peek_time(self, track: int) -> int | None:
        """Capture time of the next frame of ``track`` already read, if any."""
        queue = self._tracks[track].queue
        return queue[0].time_us if queue else None

    def read(self, max_items: int = 256, max_bytes: int = 2 * 1024 * 1024) -> Batch:
        """The next access units in time order (blocking I/O)."""
        tracks = self._tracks
        dry: set[int] = set()  # tracks found at their current end during this call
        items: list[Item] = []
        size = 0
        while len(items) < max_items and size < max_bytes:
            best = -1
            best_time = 0
            for i, track in enumerate(tracks):
                if track.finished:
                    continue
                if not track.queue and i not in dry and not self._fill(i, max_bytes):
                    dry.add(i)
                if track.queue and (best < 0 or track.queue[0].time_us < best_time):
                    best, best_time = i, track.queue[0].time_us
            if best < 0:
                break
            track = tracks[best]
            frame = track.queue.popleft()
            if not track.queue and best not in dry and not self._fill(best, max_bytes):
                dry.add(best)
            items.append(Item(self._ids[best], frame, self._flags(best, track, frame)))
            size += len(frame.data)
        if all(t.finished for t in tracks):
            return Batch(items, Status.DONE)
        if all(t.finished or (not t.queue and i in dry) for i, t in enumerate(tracks)):
            return Batch(items, Status.EDGE)
        return Batch(items, Status.MORE)

    def _fill(self, i: int, max_bytes: int) -> bool:
        """Read more frames of track ``i``; False if none are available now."""
        track = self._tracks[i]
        cursor = track.cursor
        while not cursor.done:
            frames = cursor.read(self._read_frames, max_bytes)
            if not frames:
                break
            if i != self._primary:
                start = self._start_us
                frames = [f for f in frames if f.time_us >= start]
                if not frames:
                    continue
            track.queue.extend(frames)
            return True
        if cursor.done:
            track.finished = True
        return False

    def _flags(self, i: int, track: _Track, frame: Frame) -> int:
        flags = FLAG_C if frame.key else 0
        if track.emitted:
            if frame.first_in_run:
                flags |= FLAG_D
        elif track.started and (self._jump or frame.first_in_run):
            flags |= FLAG_D
        track.emitted = True
        nxt = track.queue[0] if track.queue else None
        if nxt is not None:
            if frame.last_in_run or nxt.first_in_run:
                flags |= FLAG_E
            return flags
        if track.finished:  # the end of the requested range
            flags |= FLAG_T | (FLAG_E if frame.last_in_run else 0)
        elif frame.last_in_run or (self._run_ended is not None and self._run_ended(i, frame)):
            flags |= FLAG_E | FLAG_T  # the end of the footage
            if self._closed:
                track.finished = True
        return flags


class ReverseGops:
    """GOPs newest first (B.7), from an iterator of GOPs (frames in forward order), with flags.

    One GOP of lookahead tells which one is the last (T). Every GOP starts with D: it does
    not follow what was sent before it.
    """

    def __init__(self, gops: Iterator[list[Frame]], track: int = 0) -> None:
        self._gops = gops
        self._track = track
        self._held: list[Frame] | None = None
        self._started = False
        self._done = False

    def read(self, max_items: int = 256, max_bytes: int = 2 * 1024 * 1024) -> Batch:
        """The next GOPs, whole (blocking I/O)."""
        items: list[Item] = []
        size = 0
        while not self._done and len(items) < max_items and size < max_bytes:
            if not self._started:
                self._started = True
                self._held = next(self._gops, None)
            gop = self._held
            if not gop:
                self._done = True
                break
            self._held = next(self._gops, None)
            last = len(gop) - 1
            tail = (FLAG_E if gop[0].first_in_run else 0) | (0 if self._held else FLAG_T)
            for n, frame in enumerate(gop):
                flags = FLAG_C if frame.key else 0
                if n == 0:
                    flags |= FLAG_D
                if n == last:
                    flags |= tail
                items.append(Item(self._track, frame, flags))
                size += len(frame.data)
            if self._held is None:
                self._done = True
        return Batch(items, Status.DONE if self._done else Status.MORE)

    def close(self) -> None:
        close = getattr(self._gops, "close", None)
        if close is not None:
            close()
