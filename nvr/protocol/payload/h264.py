"""H.264 over RTP (RFC 6184): the NAL syntax of its packets and the fmtp-aware (de)packetizers.

Supported: packetization-mode 0 and 1 (single NAL, STAP-A, FU-A). Mode 2 (interleaved, STAP-B,
MTAP, FU-B) is refused because cameras do not use it and it needs reordering by DON.
The H.264 bitstream syntax (NAL unit types, SPS parsing) is :mod:`nvr.protocol.codecs.h264`.
"""

from __future__ import annotations

from collections.abc import Mapping

from nvr.protocol.codecs.h264 import (
    NAL_AUD,
    NAL_IDR,
    NAL_PPS,
    NAL_SEI,
    NAL_SLICE,
    NAL_SPS,
    parameter_set_id,
    parse_sps,
)
from nvr.protocol.payload.base import UnsupportedPayloadError, fmtp_int, fmtp_params
from nvr.protocol.payload.h26x import H26xDepacketizer, H26xPacketizer, NalSyntax
from nvr.protocol.payload.nal import format_sprop

__all__ = [
    "NAL_FU_A",
    "NAL_STAP_A",
    "SYNTAX",
    "H264Depacketizer",
    "H264Packetizer",
    "H264Syntax",
    "is_key_nal",
    "is_key_unit",
    "parameter_sets",
    "parse_sps",
    "sprop_parameter_sets",
]

NAL_STAP_A = 24
NAL_FU_A = 28

# NAL types that begin an access unit whenever they appear (H.264 7.4.1.2.3).
_AU_START_TYPES = frozenset({NAL_SEI, NAL_SPS, NAL_PPS, NAL_AUD, 14, 15, 16, 17, 18})
_VCL_WITH_FIRST_MB = frozenset({NAL_SLICE, 2, NAL_IDR})


class H264Syntax(NalSyntax):
    name = "H.264"
    header_len = 1
    max_single_type = 23
    agg_type = NAL_STAP_A
    fu_type = NAL_FU_A
    max_vcl_type = 5
    fu_type_mask = 0x1F
    key_types = frozenset({NAL_IDR})
    sure_start_types = frozenset({NAL_AUD, NAL_SPS})
    param_kinds = {NAL_SPS: "sps", NAL_PPS: "pps"}
    sprop_keys = ("sprop-parameter-sets",)

    def nal_type(self, first_byte: int) -> int:
        return first_byte & 0x1F

    def valid_single_type(self, t: int) -> bool:
        return 1 <= t <= 23

    def starts_access_unit(self, t: int, body_byte: int) -> bool:
        if t in _VCL_WITH_FIRST_MB:
            return body_byte >= 0x80  # first_mb_in_slice == 0 is the one-bit code "1"
        return t in _AU_START_TYPES

    def param_id(self, nal: bytes) -> int:
        return parameter_set_id(nal)

    def fu_nal_header(self, payload: bytes, t: int) -> bytes:
        return bytes(((payload[0] & 0xE0) | t,))

    def fu_payload_header(self, nal: bytes) -> bytes:
        return bytes(((nal[0] & 0xE0) | NAL_FU_A,))

    def aggregation_header(self, nals: list[bytes]) -> bytes:
        return bytes((max(nal[0] & 0x60 for nal in nals) | NAL_STAP_A,))


SYNTAX = H264Syntax()
is_key_nal = SYNTAX.is_key_nal
is_key_unit = SYNTAX.is_key_unit
parameter_sets = SYNTAX.parameter_sets
sprop_parameter_sets = SYNTAX.sprop_parameter_sets


class H264Depacketizer(H26xDepacketizer):
    """RTP H.264 -> access units; parameter sets start from ``sprop-parameter-sets``."""

    syntax = SYNTAX

    def __init__(self, fmtp: Mapping[str, str] | None = None, clock_rate: int = 90000) -> None:
        params = fmtp_params(fmtp)
        mode = fmtp_int(params, "packetization-mode", 0)
        if mode not in (0, 1):
            raise UnsupportedPayloadError(f"H.264 packetization-mode {mode} is not supported")
        super().__init__(params, clock_rate)


class H264Packetizer(H26xPacketizer):
    """Access units -> RTP H.264 (packetization-mode 1)."""

    syntax = SYNTAX
    encoding_name = "H264"

    def fmtp(self) -> dict[str, str]:
        out = {"packetization-mode": "1"}
        sets = self.parameter_sets
        if sets.sps:
            out["profile-level-id"] = bytes(sets.sps[0][1:4]).hex()
            out["sprop-parameter-sets"] = format_sprop(sets.nals())
        return out
