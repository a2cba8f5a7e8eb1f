"""Bit-level reading of codec headers: RBSP unescaping and an MSB-first reader with Exp-Golomb."""

from __future__ import annotations

from nvr.protocol.errors import CodecError

_EMULATION = b"\x00\x00\x03"


def unescape_rbsp(nal: bytes | bytearray | memoryview) -> bytes:
    """Remove emulation-prevention bytes (``00 00 03`` -> ``00 00``) so the bits can be parsed.

    ``bytes.replace`` works left to right without overlaps, which is exactly the rule: a 03 is
    dropped when the two input bytes before it are zeros that no earlier match consumed.
    """
    data = bytes(nal)
    return data.replace(_EMULATION, b"\x00\x00") if _EMULATION in data else data


class BitReader:
    """MSB-first bit reader; reading past the end raises :class:`CodecError` naming ``what``.

    ``pos`` is the bit position, which callers may read (and start from other than 0).
    """

    __slots__ = ("_data", "_nbits", "pos", "what")

    def __init__(
        self, data: bytes | bytearray | memoryview, pos: int = 0, what: str = "bitstream"
    ) -> None:
        self._data = bytes(data)
        self._nbits = len(self._data) * 8
        self.pos = pos
        self.what = what

    @property
    def remaining(self) -> int:
        """Bits left to read."""
        return self._nbits - self.pos

    def _need(self, n: int) -> None:
        if self.pos + n > self._nbits:
            raise CodecError(f"{self.what}: truncated (needed {n} bits, {self.remaining} left)")

    def u(self, n: int) -> int:
        """``n`` bits as an unsigned integer."""
        if n == 0:
            return 0
        self._need(n)
        start = self.pos
        end = start + n
        last = (end + 7) >> 3
        chunk = int.from_bytes(self._data[start >> 3 : last], "big")
        self.pos = end
        return (chunk >> ((last << 3) - end)) & ((1 << n) - 1)

    def flag(self) -> bool:
        return bool(self.u(1))

    def skip(self, n: int) -> None:
        self._need(n)
        self.pos += n

    def ue(self) -> int:
        """Unsigned Exp-Golomb; a code longer than 32 bits is never valid in a codec header."""
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise CodecError(f"{self.what}: exp-Golomb code longer than 32 bits")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        """Signed Exp-Golomb."""
        code = self.ue()
        return (code + 1) >> 1 if code & 1 else -(code >> 1)
