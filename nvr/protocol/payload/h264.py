"""H.264 over RTP (RFC 6184): NAL syntax, SPS parsing, and the fmtp-aware (de)packetizers.

Supported: packetization-mode 0 and 1 (single NAL, STAP-A, FU-A). Mode 2 (interleaved, STAP-B,
MTAP, FU-B) is refused because cameras do not use it and it needs reordering by DON.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from nvr.protocol.payload.base import (
    PayloadError,
    UnsupportedPayloadError,
    fmtp_int,
    fmtp_params,
)
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

NAL_SLICE = 1
NAL_IDR = 5
NAL_SEI = 6
NAL_SPS = 7
NAL_PPS = 8
NAL_AUD = 9
NAL_STAP_A = 24
NAL_FU_A = 28

# NAL types that begin an access unit whenever they appear (H.264 7.4.1.2.3).
_AU_START_TYPES = frozenset({NAL_SEI, NAL_SPS, NAL_PPS, NAL_AUD, 14, 15, 16, 17, 18})
_VCL_WITH_FIRST_MB = frozenset({NAL_SLICE, 2, NAL_IDR})
# Profiles whose SPS carries chroma format, bit depth and scaling matrices.
_HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})


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

    def nal_type(self, first_byte: int) -> int:
        return first_byte & 0x1F

    def valid_single_type(self, t: int) -> bool:
        return 1 <= t <= 23

    def starts_access_unit(self, t: int, body_byte: int) -> bool:
        if t in _VCL_WITH_FIRST_MB:
            return body_byte >= 0x80  # first_mb_in_slice == 0 is the one-bit code "1"
        return t in _AU_START_TYPES

    def param_id(self, t: int, nal: bytes) -> int:
        r = BitReader(unescape_rbsp(bytes(nal[:24])), 8)
        if t == NAL_SPS:
            r.skip(24)
        return r.ue()

    def fu_nal_header(self, payload: bytes, t: int) -> bytes:
        return bytes(((payload[0] & 0xE0) | t,))

    def fu_payload_header(self, nal: bytes) -> bytes:
        return bytes(((nal[0] & 0xE0) | NAL_FU_A,))

    def aggregation_header(self, nals: list[bytes]) -> bytes:
        return bytes((max(nal[0] & 0x60 for nal in nals) | NAL_STAP_A,))


SYNTAX = H264Syntax()


def is_key_nal(nal: bytes) -> bool:
    """IDR slice: decoding can start here."""
    return (nal[0] & 0x1F) == NAL_IDR


def is_key_unit(data: bytes) -> bool:
    """Whether a stored access unit (length-prefixed) holds an IDR picture."""
    return any(is_key_nal(nal) for nal in length_prefixed_to_nals(data))


def parameter_sets(nals: Iterable[bytes]) -> ParameterSets:
    """The parameter sets among ``nals`` (e.g. a stored key frame), by kind and id."""
    return ParameterSetTable(SYNTAX, nals).snapshot()


def sprop_parameter_sets(fmtp: Mapping[str, str]) -> list[bytes]:
    """SPS/PPS from fmtp ``sprop-parameter-sets`` (keys already lower-case)."""
    return parse_sprop(fmtp.get("sprop-parameter-sets", ""))


def parse_sps(nal: bytes) -> SpsInfo:
    """Resolution (after cropping), profile and level from an SPS NAL unit."""
    if not nal or nal[0] & 0x1F != NAL_SPS:
        raise PayloadError("not an H.264 SPS")
    rbsp = unescape_rbsp(bytes(nal))
    r = BitReader(rbsp, 8)
    profile = r.u(8)
    r.skip(8)  # constraint_set flags
    level = r.u(8)
    sps_id = r.ue()
    chroma, separate_planes, depth_luma, depth_chroma = 1, 0, 8, 8
    if profile in _HIGH_PROFILES:
        chroma = r.ue()
        if chroma > 3:
            raise PayloadError(f"bad chroma_format_idc {chroma}")
        if chroma == 3:
            separate_planes = r.u(1)
        depth_luma = r.ue() + 8
        depth_chroma = r.ue() + 8
        r.skip(1)  # qpprime_y_zero_transform_bypass_flag
        if r.u(1):  # seq_scaling_matrix_present_flag
            for i in range(12 if chroma == 3 else 8):
                if r.u(1):
                    _skip_scaling_list(r, 16 if i < 6 else 64)
    r.ue()  # log2_max_frame_num_minus4
    poc_type = r.ue()
    if poc_type == 0:
        r.ue()  # log2_max_pic_order_cnt_lsb_minus4
    elif poc_type == 1:
        r.skip(1)
        r.se()
        r.se()
        cycle = r.ue()
        if cycle > 255:
            raise PayloadError("bad num_ref_frames_in_pic_order_cnt_cycle")
        for _ in range(cycle):
            r.se()
    r.ue()  # max_num_ref_frames
    r.skip(1)  # gaps_in_frame_num_value_allowed_flag
    width_mbs = r.ue() + 1
    height_units = r.ue() + 1
    frame_mbs_only = r.u(1)
    if not frame_mbs_only:
        r.skip(1)  # mb_adaptive_frame_field_flag
    r.skip(1)  # direct_8x8_inference_flag
    left = right = top = bottom = 0
    if r.u(1):
        left, right, top, bottom = r.ue(), r.ue(), r.ue(), r.ue()
    if chroma == 0 or separate_planes:
        unit_x, unit_y = 1, 2 - frame_mbs_only
    else:
        unit_x = 1 if chroma == 3 else 2
        unit_y = (2 if chroma == 1 else 1) * (2 - frame_mbs_only)
    width = width_mbs * 16 - (left + right) * unit_x
    height = (2 - frame_mbs_only) * height_units * 16 - (top + bottom) * unit_y
    if not (0 < width <= 65535 and 0 < height <= 65535):
        raise PayloadError(f"implausible SPS resolution {width}x{height}")
    return SpsInfo(
        "h264", sps_id, width, height, profile, level, chroma, depth_luma, depth_chroma, rbsp[1:4]
    )


def _skip_scaling_list(r: BitReader, size: int) -> None:
    last = nxt = 8
    for _ in range(size):
        if nxt:
            nxt = (last + r.se()) % 256
            last = nxt or last


class H264Depacketizer(H26xDepacketizer):
    """RTP H.264 -> access units; parameter sets start from ``sprop-parameter-sets``."""

    def __init__(self, fmtp: Mapping[str, str] | None = None, clock_rate: int = 90000) -> None:
        params = fmtp_params(fmtp)
        mode = fmtp_int(params, "packetization-mode", 0)
        if mode not in (0, 1):
            raise UnsupportedPayloadError(f"H.264 packetization-mode {mode} is not supported")
        try:
            sets = sprop_parameter_sets(params)
            error = None
        except PayloadError as exc:  # in-band parameter sets will follow
            sets, error = [], str(exc)
        super().__init__(SYNTAX, clock_rate, sets)
        self.stats.last_error = error


class H264Packetizer(H26xPacketizer):
    """Access units -> RTP H.264 (packetization-mode 1)."""

    def __init__(
        self,
        mtu: int = 1400,
        parameter_sets: Iterable[bytes] = (),
        repeat_parameter_sets: bool = True,
    ) -> None:
        super().__init__(SYNTAX, "H264", mtu, parameter_sets, repeat_parameter_sets)

    def fmtp(self) -> dict[str, str]:
        out = {"packetization-mode": "1"}
        sets = self.parameter_sets
        if sets.sps:
            out["profile-level-id"] = bytes(sets.sps[0][1:4]).hex()
            out["sprop-parameter-sets"] = format_sprop(sets.nals())
        return out
