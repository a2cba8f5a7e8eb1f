"""The compact per-segment frame index: a blob of varints, about two to four bytes a frame.

Each frame is two unsigned LEB128 varints:

* ``zigzag(duration - previous duration)``: constant frame rates cost one byte;
* ``size << 1 | key``: the access unit's length in bytes and its key-frame flag.

The first frame's previous duration is 0. Offsets are not stored: a segment file is the
concatenation of its access units, so offsets are the running sum of sizes. The encoding is
append-only, so the writer extends a blob without re-encoding it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import accumulate


class FrameIndexError(ValueError):
    """A frame index blob is truncated or corrupt."""


@dataclass(frozen=True, slots=True)
class FrameInfo:
    """One frame of a segment: where it is and how long it lasts."""

    offset: int
    size: int
    duration: int
    """In the segment's clock units."""
    key: bool
    pts: int
    """Start of the frame relative to the segment start, in clock units."""


def _put_varint(out: bytearray, value: int) -> None:
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _zigzag(value: int) -> int:
    return value << 1 if value >= 0 else ((-value) << 1) - 1


def _unzigzag(value: int) -> int:
    return value >> 1 if not value & 1 else -((value + 1) >> 1)


class FrameIndexEncoder:
    """Appends frames to a growing blob; ``blob`` is always a valid, complete index."""

    __slots__ = ("_buf", "_prev_duration", "frames")

    def __init__(self, blob: bytes = b"") -> None:
        self._buf = bytearray(blob)
        self._prev_duration = 0
        self.frames = 0
        for info in decode(blob):
            self._prev_duration = info.duration
            self.frames += 1

    def append(self, size: int, duration: int, key: bool) -> None:
        if size < 0 or duration < 0:
            raise FrameIndexError(f"negative size {size} or duration {duration}")
        buf = self._buf
        if duration == self._prev_duration:  # the common case: one zero byte
            buf.append(0)
        else:
            _put_varint(buf, _zigzag(duration - self._prev_duration))
            self._prev_duration = duration
        value = (size << 1) | 1 if key else size << 1
        while value >= 0x80:  # _put_varint, inlined: this runs for every frame written
            buf.append((value & 0x7F) | 0x80)
            value >>= 7
        buf.append(value)
        self.frames += 1

    @property
    def blob(self) -> bytes:
        return bytes(self._buf)

    def __len__(self) -> int:
        return len(self._buf)


def encode(frames: list[tuple[int, int, bool]]) -> bytes:
    """Encode ``(size, duration, key)`` triples."""
    enc = FrameIndexEncoder()
    for size, duration, key in frames:
        enc.append(size, duration, key)
    return enc.blob


@dataclass(slots=True)
class DecodeState:
    """Where a decoder stopped in a growing blob, so it can resume without starting over."""

    pos: int = 0
    offset: int = 0
    pts: int = 0
    duration: int = 0
    frames: int = 0


def decode(blob: bytes) -> Iterator[FrameInfo]:
    """Yield every frame with its offset and relative start time."""
    return decode_more(blob, DecodeState())


def decode_more(blob: bytes, state: DecodeState) -> Iterator[FrameInfo]:
    """Yield the frames of ``blob`` past ``state`` (a blob that has grown since), advancing it."""
    pos = state.pos
    end = len(blob)
    while pos < end:
        values = []
        for _ in range(2):
            shift = 0
            value = 0
            while True:
                if pos >= end:
                    raise FrameIndexError(f"frame index truncated at byte {pos}")
                b = blob[pos]
                pos += 1
                value |= (b & 0x7F) << shift
                if b < 0x80:
                    break
                shift += 7
                if shift > 63:
                    raise FrameIndexError(f"varint too long at byte {pos}")
            values.append(value)
        duration = state.duration + _unzigzag(values[0])
        if duration < 0:
            raise FrameIndexError(f"negative frame duration at byte {pos}")
        size = values[1] >> 1
        info = FrameInfo(state.offset, size, duration, bool(values[1] & 1), state.pts)
        state.pos = pos
        state.duration = duration
        state.offset += size
        state.pts += duration
        state.frames += 1
        yield info


def decode_all(blob: bytes) -> list[FrameInfo]:
    return list(decode(blob))


_VARINT = re.compile(rb"[\x80-\xff]*[\x00-\x7f]")
"""One LEB128 varint: continuation bytes, then a final byte below 0x80."""

_LONG_VARINT = re.compile(rb"[\x80-\xff]{9}")
"""Longer varints (never written) go through :func:`decode_more`, which knows the limits."""


def _varint_value(token: bytes) -> int:
    value = shift = 0
    for b in token:
        value |= (b & 0x7F) << shift
        shift += 7
    return value


def decode_columns(
    blob: bytes, state: DecodeState
) -> tuple[list[int], list[int], list[int], list[int], bytes] | None:
    """The frames of ``blob`` past ``state`` in bulk, as columns ``(offsets, sizes, durations,
    pts, keys)`` (``keys``: one 0/1 byte a frame), advancing ``state``: what
    :func:`decode_more` yields, without an object per frame. None (``state`` untouched) when
    the new part is not a plain sequence of whole frames: then :func:`decode_more` must do
    it, and raise where it is corrupt."""
    pos, end = state.pos, len(blob)
    if pos >= end:
        return [], [], [], [], b""
    if blob[-1] & 0x80 or _LONG_VARINT.search(blob, pos):
        return None  # ends inside a varint, or an overlong one
    # The blob ends with a final byte, so the tokens cover every byte from ``pos`` on.
    tokens = _VARINT.findall(blob, pos)
    if len(tokens) & 1:
        return None  # half a frame
    values = [
        t[0]
        if (width := len(t)) == 1
        else (t[0] & 0x7F) | (t[1] << 7)
        if width == 2
        else (t[0] & 0x7F) | ((t[1] & 0x7F) << 7) | (t[2] << 14)
        if width == 3
        else _varint_value(t)
        for t in tokens
    ]
    deltas = values[0::2]
    size_keys = values[1::2]
    n = len(deltas)
    if not any(deltas[1:]):  # the duration is constant after the first frame
        first = state.duration + _unzigzag(deltas[0])
        durations = [first] * n
    else:
        durations = list(accumulate(map(_unzigzag, deltas), initial=state.duration))[1:]
    if min(durations) < 0:
        return None
    sizes = [v >> 1 for v in size_keys]
    keys = bytes([v & 1 for v in size_keys])
    offsets = list(accumulate(sizes, initial=state.offset))
    pts = list(accumulate(durations, initial=state.pts))
    state.pos = end
    state.offset = offsets.pop()
    state.pts = pts.pop()
    state.duration = durations[-1]
    state.frames += n
    return offsets, sizes, durations, pts, keys
