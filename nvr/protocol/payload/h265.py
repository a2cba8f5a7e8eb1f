"""H.265 over RTP (RFC 7798): the NAL syntax of its packets and the fmtp-aware (de)packetizers.

Supported: single NAL unit packets, aggregation packets (AP) and fragmentation units (FU), with
or without DONL fields. PACI packets are refused (no camera sends them).
The H.265 bitstream syntax (NAL unit types, SPS parsing) is :mod:`nvr.protocol.codecs.h265`.
"""

from __future__ import annotations

from collections.abc import Mapping

from nvr.protocol.codecs.h265 import (
    IRAP_TYPES,
    NAL_AUD,
    NAL_CRA,
    NAL_IDR_W_RADL,
    NAL_PPS,
    NAL_PREFIX_SEI,
    NAL_SPS,
    NAL_VPS,
    parameter_set_id,
    parse_sps,
)
from nvr.protocol.payload.base import fmtp_int, fmtp_params
from nvr.protocol.payload.h26x import H26xDepacketizer, H26xPacketizer, NalSyntax
from nvr.protocol.payload.nal import format_sprop

__all__ = [
    "IRAP_TYPES",
    "NAL_AP",
    "NAL_CRA",
    "NAL_FU",
    "NAL_IDR_W_RADL",
    "SYNTAX",
    "H265Depacketizer",
    "H265Packetizer",
    "H265Syntax",
    "is_key_nal",
    "is_key_unit",
    "parameter_sets",
    "parse_sps",
    "sprop_parameter_sets",
]

NAL_AP = 48
NAL_FU = 49

# NAL types that begin an access unit whenever they appear (H.265 7.4.2.4.4).
_AU_START_TYPES = frozenset({NAL_VPS, NAL_SPS, NAL_PPS, NAL_AUD, NAL_PREFIX_SEI, 41, 42, 43, 44})


class H265Syntax(NalSyntax):
    name = "H.265"
    header_len = 2
    max_single_type = 47
    agg_type = NAL_AP
    fu_type = NAL_FU
    max_vcl_type = 31
    fu_type_mask = 0x3F
    key_types = IRAP_TYPES
    sure_start_types = frozenset({NAL_AUD, NAL_VPS})
    param_kinds = {NAL_VPS: "vps", NAL_SPS: "sps", NAL_PPS: "pps"}
    sprop_keys = ("sprop-vps", "sprop-sps", "sprop-pps")

    def nal_type(self, first_byte: int) -> int:
        return (first_byte >> 1) & 0x3F

    def starts_access_unit(self, t: int, body_byte: int) -> bool:
        if t < 32:
            return body_byte >= 0x80  # first_slice_segment_in_pic_flag
        return t in _AU_START_TYPES

    def param_id(self, nal: bytes) -> int:
        return parameter_set_id(nal)

    def fu_nal_header(self, payload: bytes, t: int) -> bytes:
        return bytes(((payload[0] & 0x81) | (t << 1), payload[1]))

    def fu_payload_header(self, nal: bytes) -> bytes:
        return bytes(((nal[0] & 0x81) | (NAL_FU << 1), nal[1]))

    def aggregation_header(self, nals: list[bytes]) -> bytes:
        layer = min(((nal[0] & 1) << 5) | (nal[1] >> 3) for nal in nals)
        tid = min(nal[1] & 7 for nal in nals)
        return bytes(((NAL_AP << 1) | (layer >> 5), ((layer & 0x1F) << 3) | tid))


SYNTAX = H265Syntax()
is_key_nal = SYNTAX.is_key_nal
is_key_unit = SYNTAX.is_key_unit
parameter_sets = SYNTAX.parameter_sets
sprop_parameter_sets = SYNTAX.sprop_parameter_sets


class H265Depacketizer(H26xDepacketizer):
    """RTP H.265 -> access units; parameter sets start from ``sprop-vps/sps/pps``."""

    syntax = SYNTAX

    def __init__(self, fmtp: Mapping[str, str] | None = None, clock_rate: int = 90000) -> None:
        params = fmtp_params(fmtp)
        super().__init__(params, clock_rate, don=fmtp_int(params, "sprop-max-don-diff", 0) > 0)


class H265Packetizer(H26xPacketizer):
    """Access units -> RTP H.265 (no DONL)."""

    syntax = SYNTAX
    encoding_name = "H265"

    def fmtp(self) -> dict[str, str]:
        sets = self.parameter_sets
        out: dict[str, str] = {}
        for key, nals in zip(SYNTAX.sprop_keys, (sets.vps, sets.sps, sets.pps), strict=True):
            if nals:
                out[key] = format_sprop(nals)
        return out
