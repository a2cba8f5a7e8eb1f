"""H.265 over RTP (RFC 7798): NAL syntax, SPS parsing, and the fmtp-aware (de)packetizers.

Supported: single NAL unit packets, aggregation packets (AP) and fragmentation units (FU), with
or without DONL fields. PACI packets are refused (no camera sends them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from nvr.protocol.payload.base import PayloadError, fmtp_int, fmtp_params
from nvr.protocol.payload.h26x import (
    H26xDepacketizer,
    H26xPacketizer,
    NalSyntax,
    ParameterSetTable,
)
from nvr.protocol.payload.nal import (
    BitReader,
    ParameterSets,
    SpsInfo,
    format_sprop,
    length_prefixed_to_nals,
    parse_sprop,
    unescape_rbsp,
)

NAL_IDR_W_RADL = 19
NAL_CRA = 21
NAL_VPS = 32
NAL_SPS = 33
NAL_PPS = 34
NAL_AUD = 35
NAL_PREFIX_SEI = 39
NAL_AP = 48
NAL_FU = 49

IRAP_TYPES = frozenset(range(16, 24))  # BLA, IDR, CRA and the reserved IRAP types
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

    def nal_type(self, first_byte: int) -> int:
        return (first_byte >> 1) & 0x3F

    def starts_access_unit(self, t: int, body_byte: int) -> bool:
        if t < 32:
            return body_byte >= 0x80  # first_slice_segment_in_pic_flag
        return t in _AU_START_TYPES

    def param_id(self, t: int, nal: bytes) -> int:
        if t == NAL_VPS:
            return nal[2] >> 4 if len(nal) > 2 else 0
        if t == NAL_SPS:
            return _read_sps_head(unescape_rbsp(bytes(nal)))[1]
        return BitReader(unescape_rbsp(bytes(nal[:16])), 16).ue()

    def fu_nal_header(self, payload: bytes, t: int) -> bytes:
        return bytes(((payload[0] & 0x81) | (t << 1), payload[1]))

    def fu_payload_header(self, nal: bytes) -> bytes:
        return bytes(((nal[0] & 0x81) | (NAL_FU << 1), nal[1]))

    def aggregation_header(self, nals: list[bytes]) -> bytes:
        layer = min(((nal[0] & 1) << 5) | (nal[1] >> 3) for nal in nals)
        tid = min(nal[1] & 7 for nal in nals)
        return bytes(((NAL_AP << 1) | (layer >> 5), ((layer & 0x1F) << 3) | tid))


SYNTAX = H265Syntax()


def is_key_nal(nal: bytes) -> bool:
    """IRAP picture (IDR, CRA, BLA): decoding can start here."""
    return ((nal[0] >> 1) & 0x3F) in IRAP_TYPES


def is_key_unit(data: bytes) -> bool:
    """Whether a stored access unit (length-prefixed) holds an IRAP picture."""
    return any(is_key_nal(nal) for nal in length_prefixed_to_nals(data))


def parameter_sets(nals: Iterable[bytes]) -> ParameterSets:
    """The parameter sets among ``nals`` (e.g. a stored key frame), by kind and id."""
    return ParameterSetTable(SYNTAX, nals).snapshot()


def sprop_parameter_sets(fmtp: Mapping[str, str]) -> list[bytes]:
    """VPS, SPS and PPS from fmtp ``sprop-vps/sps/pps`` (keys already lower-case)."""
    return [
        nal
        for key in ("sprop-vps", "sprop-sps", "sprop-pps")
        for nal in parse_sprop(fmtp.get(key, ""))
    ]


def _read_sps_head(rbsp: bytes) -> tuple[bytes, int, BitReader]:
    """Read an SPS up to sps_seq_parameter_set_id: (general PTL bytes, sps id, reader)."""
    r = BitReader(rbsp, 16)
    r.skip(4)  # sps_video_parameter_set_id
    max_sub_layers = r.u(3)
    r.skip(1 + 96)  # sps_temporal_id_nesting_flag; general profile, tier, flags and level
    flags = [(r.u(1), r.u(1)) for _ in range(max_sub_layers)]
    if max_sub_layers:
        r.skip(2 * (8 - max_sub_layers))
    for profile_present, level_present in flags:
        r.skip(88 * profile_present + 8 * level_present)
    return rbsp[3:15], r.ue(), r


def parse_sps(nal: bytes) -> SpsInfo:
    """Resolution (after the conformance window), profile, tier and level from an SPS."""
    if len(nal) < 2 or (nal[0] >> 1) & 0x3F != NAL_SPS:
        raise PayloadError("not an H.265 SPS")
    ptl, sps_id, r = _read_sps_head(unescape_rbsp(bytes(nal)))
    chroma = r.ue()
    if chroma > 3:
        raise PayloadError(f"bad chroma_format_idc {chroma}")
    separate_planes = r.u(1) if chroma == 3 else 0
    width = r.ue()
    height = r.ue()
    left = right = top = bottom = 0
    if r.u(1):  # conformance_window_flag
        left, right, top, bottom = r.ue(), r.ue(), r.ue(), r.ue()
    depth_luma = r.ue() + 8
    depth_chroma = r.ue() + 8
    sub_x = 2 if chroma in (1, 2) and not separate_planes else 1
    sub_y = 2 if chroma == 1 and not separate_planes else 1
    width -= sub_x * (left + right)
    height -= sub_y * (top + bottom)
    if not (0 < width <= 65535 and 0 < height <= 65535):
        raise PayloadError(f"implausible SPS resolution {width}x{height}")
    return SpsInfo(
        "h265", sps_id, width, height, ptl[0] & 0x1F, ptl[11], chroma, depth_luma,
        depth_chroma, ptl,
    )  # fmt: skip


class H265Depacketizer(H26xDepacketizer):
    """RTP H.265 -> access units; parameter sets start from ``sprop-vps/sps/pps``."""

    def __init__(self, fmtp: Mapping[str, str] | None = None, clock_rate: int = 90000) -> None:
        params = fmtp_params(fmtp)
        don = fmtp_int(params, "sprop-max-don-diff", 0) > 0
        try:
            sets = sprop_parameter_sets(params)
            error = None
        except PayloadError as exc:  # in-band parameter sets will follow
            sets, error = [], str(exc)
        super().__init__(SYNTAX, clock_rate, sets, don=don)
        self.stats.last_error = error


class H265Packetizer(H26xPacketizer):
    """Access units -> RTP H.265 (no DONL)."""

    def __init__(
        self,
        mtu: int = 1400,
        parameter_sets: Iterable[bytes] = (),
        repeat_parameter_sets: bool = True,
    ) -> None:
        super().__init__(SYNTAX, "H265", mtu, parameter_sets, repeat_parameter_sets)

    def fmtp(self) -> dict[str, str]:
        sets = self.parameter_sets
        out: dict[str, str] = {}
        for key, nals in (
            ("sprop-vps", sets.vps),
            ("sprop-sps", sets.sps),
            ("sprop-pps", sets.pps),
        ):
            if nals:
                out[key] = format_sprop(nals)
        return out
