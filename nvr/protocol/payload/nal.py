"""What H.264 and H.265 share below the RTP level: NAL unit framing and bit-level reading.

The store keeps an access unit as 4-byte big-endian length-prefixed NAL units (the MP4 ``mdat``
form); encoders and decoders speak Annex B start codes; parameter sets are Exp-Golomb coded
behind emulation-prevention bytes. These helpers convert between the three.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass

from nvr.protocol.payload.base import PayloadError

_START_CODE = b"\x00\x00\x01"


def nals_to_length_prefixed(nals: Iterable[bytes]) -> bytes:
    """Join NAL units into the storage form."""
    parts: list[bytes] = []
    for nal in nals:
        parts.append(len(nal).to_bytes(4, "big"))
        parts.append(nal)
    return b"".join(parts)


def length_prefixed_to_nals(data: bytes) -> list[bytes]:
    """Split the storage form into NAL units; raises PayloadError on a bad length."""
    out: list[bytes] = []
    pos = 0
    end = len(data)
    while pos < end:
        if pos + 4 > end:
            raise PayloadError("truncated NAL length prefix")
        size = int.from_bytes(data[pos : pos + 4], "big")
        pos += 4
        if size == 0 or pos + size > end:
            raise PayloadError(f"bad NAL length {size} at offset {pos - 4}")
        out.append(data[pos : pos + size])
        pos += size
    return out


def split_annexb(data: bytes) -> list[bytes]:
    """Split an Annex B byte stream (00 00 01 / 00 00 00 01 start codes) into NAL units."""
    pos = data.find(_START_CODE)
    if pos < 0:
        if data.strip(b"\x00"):
            raise PayloadError("no Annex B start code")
        return []
    out: list[bytes] = []
    pos += 3
    while True:
        nxt = data.find(_START_CODE, pos)
        nal = data[pos : len(data) if nxt < 0 else nxt].rstrip(b"\x00")
        if nal:
            out.append(nal)
        if nxt < 0:
            return out
        pos = nxt + 3


def nals_to_annexb(nals: Iterable[bytes]) -> bytes:
    """Join NAL units with 4-byte start codes (what decoders and ``.h264`` files expect)."""
    return b"".join(b"\x00\x00\x00\x01" + bytes(nal) for nal in nals)


def unescape_rbsp(nal: bytes) -> bytes:
    """Remove emulation-prevention bytes (00 00 03 -> 00 00) so the bits can be parsed."""
    return nal.replace(b"\x00\x00\x03", b"\x00\x00")


def parse_sprop(value: str) -> list[bytes]:
    """Decode an SDP ``sprop-*`` value: comma-separated base64 NAL units (padding optional)."""
    out: list[bytes] = []
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            nal = base64.b64decode(item + "=" * (-len(item) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise PayloadError(f"bad base64 in sprop value {item[:40]!r}") from None
        if not nal or nal[0] & 0x80:
            raise PayloadError("sprop value is not a NAL unit")
        out.append(nal)
    return out


def format_sprop(nals: Iterable[bytes]) -> str:
    """The inverse of :func:`parse_sprop`, for the SDP we serve."""
    return ",".join(base64.b64encode(nal).decode("ascii") for nal in nals)


class BitReader:
    """MSB-first bit reader with Exp-Golomb codes; reading past the end raises PayloadError."""

    __slots__ = ("_data", "_nbits", "pos")

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self._data = data
        self._nbits = len(data) * 8
        self.pos = pos

    @property
    def remaining(self) -> int:
        return self._nbits - self.pos

    def u(self, n: int) -> int:
        """Read an n-bit unsigned integer."""
        if n == 0:
            return 0
        start = self.pos
        end = start + n
        if end > self._nbits:
            raise PayloadError("bitstream truncated")
        first = start >> 3
        last = (end + 7) >> 3
        chunk = int.from_bytes(self._data[first:last], "big")
        self.pos = end
        return (chunk >> ((last << 3) - end)) & ((1 << n) - 1)

    def skip(self, n: int) -> None:
        if self.pos + n > self._nbits:
            raise PayloadError("bitstream truncated")
        self.pos += n

    def ue(self) -> int:
        """Unsigned Exp-Golomb; longer than 32 bits is never valid in a parameter set."""
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise PayloadError("Exp-Golomb code too long")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        """Signed Exp-Golomb."""
        k = self.ue()
        return (k + 1) >> 1 if k & 1 else -(k >> 1)


@dataclass(frozen=True, slots=True)
class ParameterSets:
    """The parameter-set NAL units of a stream, each tuple ordered by id (VPS is H.265 only)."""

    vps: tuple[bytes, ...] = ()
    sps: tuple[bytes, ...] = ()
    pps: tuple[bytes, ...] = ()

    def nals(self) -> list[bytes]:
        """All of them in the order a decoder needs them."""
        return [*self.vps, *self.sps, *self.pps]

    def __bool__(self) -> bool:
        return bool(self.sps or self.pps or self.vps)


@dataclass(frozen=True, slots=True)
class SpsInfo:
    """What the ingest needs from a sequence parameter set for the MP4 sample entry.

    ``ptl`` is the profile/tier/level block as the sample entry stores it: for H.264 the three
    bytes profile_idc, constraint flags, level_idc (``avcC``); for H.265 the 12-byte general
    profile_tier_level (``hvcC``).
    """

    codec: str
    sps_id: int
    width: int
    height: int
    profile_idc: int
    level_idc: int
    chroma_format_idc: int
    bit_depth_luma: int
    bit_depth_chroma: int
    ptl: bytes

    @property
    def codec_string(self) -> str:
        """RFC 6381 ``codecs`` value (``avc1.64001f``, ``hvc1.1.6.L93.B0``)."""
        if self.codec == "h264":
            return "avc1." + self.ptl.hex()
        space = "" if self.ptl[0] >> 6 == 0 else "ABC"[(self.ptl[0] >> 6) - 1]
        compat = int.from_bytes(self.ptl[1:5], "big")
        compat_rev = int(f"{compat:032b}"[::-1], 2)
        tier = "H" if self.ptl[0] & 0x20 else "L"
        constraints = list(self.ptl[5:11])
        while constraints and constraints[-1] == 0:
            constraints.pop()
        out = f"hvc1.{space}{self.profile_idc}.{compat_rev:X}.{tier}{self.level_idc}"
        return out + "".join(f".{b:X}" for b in constraints)
