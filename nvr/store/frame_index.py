"""The compact per-segment frame index: a blob of varints, about two to four bytes a frame.

Each frame is two unsigned LEB128 varints:

* ``zigzag(duration - previous duration)``: constant frame rates cost one byte;
* ``size << 1 | key``: the access unit's length in bytes and its key-frame flag.

The first frame's previous duration is 0. Offsets are not stored: a segment file is the
concatenation of its access units, so offsets are the running sum of sizes. The encoding is
append-only, so the writer extends a blob without re-encoding it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


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
        _put_varint(self._buf, _zigzag(duration - self._prev_duration))
        _put_varint(self._buf, (size << 1) | int(key))
        self._prev_duration = duration
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
