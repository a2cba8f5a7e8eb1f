"""A bounds-checked big-endian reader for box payloads.

Every box parser reads through :class:`Cursor` so that truncated or lying input surfaces as an
:class:`Mp4Error` naming the box, never as ``struct.error`` or ``IndexError``.
"""

from __future__ import annotations

from nvr.protocol.mp4.errors import Mp4Error


class Cursor:
    """Sequential reader over ``data``; ``what`` names the box in error messages."""

    __slots__ = ("data", "end", "pos", "what")

    def __init__(self, data: bytes, what: str, pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.what = what
        self.pos = pos
        self.end = len(data) if end is None else end

    @property
    def remaining(self) -> int:
        return self.end - self.pos

    def fail(self, problem: str) -> Mp4Error:
        return Mp4Error(f"{self.what}: {problem}")

    def need(self, n: int, field: str) -> None:
        if n < 0 or self.pos + n > self.end:
            raise self.fail(f"truncated reading {field} ({n} bytes needed, {self.remaining} left)")

    def take(self, n: int, field: str = "bytes") -> bytes:
        self.need(n, field)
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return bytes(out)

    def uint(self, n: int, field: str = "integer") -> int:
        self.need(n, field)
        value = int.from_bytes(self.data[self.pos : self.pos + n], "big")
        self.pos += n
        return value

    def u8(self, field: str = "u8") -> int:
        return self.uint(1, field)

    def u16(self, field: str = "u16") -> int:
        return self.uint(2, field)

    def u24(self, field: str = "u24") -> int:
        return self.uint(3, field)

    def u32(self, field: str = "u32") -> int:
        return self.uint(4, field)

    def u64(self, field: str = "u64") -> int:
        return self.uint(8, field)

    def i32(self, field: str = "i32") -> int:
        value = self.uint(4, field)
        return value - (1 << 32) if value & 0x80000000 else value

    def skip(self, n: int, field: str = "reserved") -> None:
        self.need(n, field)
        self.pos += n

    def rest(self) -> bytes:
        out = bytes(self.data[self.pos : self.end])
        self.pos = self.end
        return out

    def cstring(self, field: str = "string") -> str:
        """A NUL-terminated UTF-8 string; a missing NUL at the very end is tolerated."""
        idx = self.data.find(b"\x00", self.pos, self.end)
        if idx < 0:
            raw = bytes(self.data[self.pos : self.end])
            self.pos = self.end
        else:
            raw = bytes(self.data[self.pos : idx])
            self.pos = idx + 1
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.fail(f"{field} is not UTF-8") from exc

    def full_box(self) -> tuple[int, int]:
        """Version and flags of a FullBox."""
        return self.u8("version"), self.u24("flags")
