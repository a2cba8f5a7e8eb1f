"""NAL units as RTP sees them: SDP ``sprop-*`` values and the parameter sets of a stream.

The NAL framing, bit reader and SPS parser are codec syntax shared with the MP4 code; they live
in :mod:`nvr.protocol.codecs` and are re-exported here for the payload code and its users.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass

from nvr.protocol.codecs.annexb import (
    length_prefixed_to_nals,
    nals_to_annexb,
    nals_to_length_prefixed,
    split_annexb,
)
from nvr.protocol.codecs.bits import BitReader, unescape_rbsp
from nvr.protocol.codecs.sps import SpsInfo
from nvr.protocol.payload.base import PayloadError

__all__ = [
    "BitReader",
    "ParameterSets",
    "SpsInfo",
    "format_sprop",
    "length_prefixed_to_nals",
    "nals_to_annexb",
    "nals_to_length_prefixed",
    "parse_sprop",
    "split_annexb",
    "unescape_rbsp",
]


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
