"""Decoded frame indexes in compact arrays, and an LRU of those of closed segments.

A decoded segment costs about 40 bytes a frame (a minute of 25 fps video: 60 kB), so a few
hundred cached segments make seeks and reverse scans cheap without holding blobs per frame.
The index of an open segment grows: :meth:`DecodedIndex.extend` decodes only the new tail.
"""

from __future__ import annotations

import threading
from array import array
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from itertools import compress

from nvr.store.frame_index import DecodeState, decode_columns, decode_more


class DecodedIndex:
    """Offsets, sizes, durations, relative times and key flags of a segment's frames."""

    __slots__ = ("durations", "key_idx", "keys", "offsets", "pts", "sizes", "state")

    def __init__(self, blob: bytes = b"") -> None:
        self.offsets = array("q")
        self.sizes = array("q")
        self.durations = array("q")
        self.pts = array("q")
        self.keys = bytearray()
        self.key_idx = array("q")
        self.state = DecodeState()
        self.extend(blob)

    def extend(self, blob: bytes) -> int:
        """Decode frames added to ``blob`` since the last call; returns how many."""
        before = len(self.sizes)
        columns = decode_columns(blob, self.state)
        if columns is not None:
            offsets, sizes, durations, pts, keys = columns
            self.key_idx.extend(compress(range(before, before + len(sizes)), keys))
            self.offsets.extend(offsets)
            self.sizes.extend(sizes)
            self.durations.extend(durations)
            self.pts.extend(pts)
            self.keys += keys
            return len(sizes)
        for info in decode_more(blob, self.state):  # corrupt: frames up to the error, then raise
            if info.key:
                self.key_idx.append(len(self.sizes))
            self.offsets.append(info.offset)
            self.sizes.append(info.size)
            self.durations.append(info.duration)
            self.pts.append(info.pts)
            self.keys.append(info.key)
        return len(self.sizes) - before

    def __len__(self) -> int:
        return len(self.sizes)

    @property
    def end_offset(self) -> int:
        return self.state.offset

    def frame_at(self, rel_us: int, clock_rate: int) -> int:
        """The last frame starting at or before ``rel_us`` after the segment start (-1: none)."""
        return bisect_right(self.pts, rel_us, key=lambda p: p * 1_000_000 // clock_rate) - 1

    def key_at_or_before(self, i: int) -> int:
        """The last key frame at or before frame ``i`` (-1: none)."""
        k = bisect_right(self.key_idx, i) - 1
        return self.key_idx[k] if k >= 0 else -1

    def key_at_or_after(self, i: int) -> int:
        """The first key frame at or after frame ``i`` (-1: none)."""
        k = bisect_left(self.key_idx, i)
        return self.key_idx[k] if k < len(self.key_idx) else -1


class IndexCache:
    """A thread-safe LRU of decoded indexes of closed segments, keyed by (segment id, path):
    the path carries a random salt, so a row id reused by SQLite never hits a stale entry."""

    def __init__(self, capacity: int = 256) -> None:
        self._capacity = capacity
        self._items: OrderedDict[tuple[int, str], DecodedIndex] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple[int, str]) -> DecodedIndex | None:
        with self._lock:
            idx = self._items.get(key)
            if idx is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return idx

    def put(self, key: tuple[int, str], idx: DecodedIndex) -> None:
        if self._capacity <= 0:
            return
        with self._lock:
            self._items[key] = idx
            self._items.move_to_end(key)
            while len(self._items) > self._capacity:
                self._items.popitem(last=False)

    def discard(self, key: tuple[int, str]) -> None:
        with self._lock:
            self._items.pop(key, None)
