"""Bit-level reading of H.264/H.265 parameter sets (RBSP unescaping and exp-Golomb codes).

Kept local to the MP4 package on purpose: the sample entries only need a handful of SPS fields,
and this package must not depend on the RTP payload code.
"""

from __future__ import annotations

from nvr.protocol.mp4.errors import Mp4Error


def unescape_rbsp(nal: bytes) -> bytes:
    """Remove emulation-prevention bytes (``00 00 03`` -> ``00 00``)."""
    if b"\x00\x00\x03" not in nal:
        return bytes(nal)
    out = bytearray()
    zeros = 0
    for byte in nal:
        if zeros >= 2 and byte == 3:
            zeros = 0
            continue
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


class BitReader:
    """MSB-first bit reader; reading past the end raises :class:`Mp4Error` naming ``what``."""

    __slots__ = ("_bits", "_data", "_pos", "what")

    def __init__(self, data: bytes, what: str) -> None:
        self._data = bytes(data)
        self._bits = len(data) * 8
        self._pos = 0
        self.what = what

    @property
    def left(self) -> int:
        return self._bits - self._pos

    def u(self, n: int) -> int:
        """``n`` bits as an unsigned integer."""
        if n == 0:
            return 0
        if self._pos + n > self._bits:
            raise Mp4Error(f"{self.what}: truncated (needed {n} bits, {self.left} left)")
        first = self._pos >> 3
        last = (self._pos + n - 1) >> 3
        chunk = int.from_bytes(self._data[first : last + 1], "big")
        shift = (last + 1) * 8 - (self._pos + n)
        self._pos += n
        return (chunk >> shift) & ((1 << n) - 1)

    def flag(self) -> bool:
        return bool(self.u(1))

    def skip(self, n: int) -> None:
        self.u(n)

    def ue(self) -> int:
        """Unsigned exp-Golomb; values beyond 32 bits are rejected as corrupt."""
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise Mp4Error(f"{self.what}: exp-Golomb code longer than 32 bits")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        """Signed exp-Golomb."""
        code = self.ue()
        return (code + 1) // 2 if code & 1 else -(code // 2)
