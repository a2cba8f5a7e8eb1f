"""H.264 (ISO/IEC 14496-10) NAL unit syntax: unit types, parameter-set ids, SPS parsing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from nvr.protocol.codecs.bits import BitReader, unescape_rbsp
from nvr.protocol.codecs.sps import SpsInfo, check_picture_size
from nvr.protocol.errors import CodecError

NAL_SLICE = 1
NAL_IDR = 5
NAL_SEI = 6
NAL_SPS = 7
NAL_PPS = 8
NAL_AUD = 9
NAL_SPS_EXT = 13

# Profiles whose SPS carries chroma format, bit depth and scaling matrices (7.3.2.1.1).
HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})


def nal_type(nal: bytes) -> int:
    """The nal_unit_type of a NAL unit (1-byte header)."""
    if not nal:
        raise CodecError("H.264 NAL unit: empty")
    return nal[0] & 0x1F


@dataclass(frozen=True, slots=True)
class AvcSps(SpsInfo):
    """An H.264 SPS; ``ptl`` is profile_idc, the constraint_set flags and level_idc."""

    codec: ClassVar[str] = "h264"

    @property
    def constraint_flags(self) -> int:
        """The constraint_set flags byte (``avcC`` profile_compatibility)."""
        return self.ptl[1]

    @property
    def codec_string(self) -> str:
        return "avc1." + self.ptl.hex()


def parameter_set_id(nal: bytes) -> int:
    """seq_parameter_set_id of an SPS, else pic_parameter_set_id (a PPS): what a new parameter
    set replaces. Reads only the start of the unit."""
    r = BitReader(unescape_rbsp(nal[1:24]), what="H.264 parameter set")
    if nal_type(nal) == NAL_SPS:
        r.skip(24)
    return r.ue()


def parse_sps(nal: bytes) -> AvcSps:
    """Parse an SPS NAL unit (with its 1-byte header, emulation prevention included)."""
    if not nal or nal_type(nal) != NAL_SPS:
        raise CodecError("H.264 SPS: not an SPS NAL unit")
    rbsp = unescape_rbsp(nal[1:])
    r = BitReader(rbsp, what="H.264 SPS")
    profile_idc = r.u(8)
    r.skip(8)  # constraint_set flags
    level_idc = r.u(8)
    sps_id = r.ue()
    if sps_id > 31:
        raise CodecError(f"H.264 SPS: seq_parameter_set_id {sps_id} out of range")
    chroma_format_idc = 1
    separate_colour_plane = False
    bit_depth_luma = bit_depth_chroma = 8
    if profile_idc in HIGH_PROFILES:
        chroma_format_idc = r.ue()
        if chroma_format_idc > 3:
            raise CodecError(f"H.264 SPS: chroma_format_idc {chroma_format_idc} out of range")
        if chroma_format_idc == 3:
            separate_colour_plane = r.flag()
        bit_depth_luma = r.ue() + 8
        bit_depth_chroma = r.ue() + 8
        if bit_depth_luma > 14 or bit_depth_chroma > 14:
            raise CodecError("H.264 SPS: bit depth out of range")
        r.skip(1)  # qpprime_y_zero_transform_bypass_flag
        if r.flag():  # seq_scaling_matrix_present_flag
            for i in range(12 if chroma_format_idc == 3 else 8):
                if r.flag():
                    _skip_scaling_list(r, 16 if i < 6 else 64)
    r.ue()  # log2_max_frame_num_minus4
    poc_type = r.ue()
    if poc_type == 0:
        r.ue()  # log2_max_pic_order_cnt_lsb_minus4
    elif poc_type == 1:
        r.skip(1)  # delta_pic_order_always_zero_flag
        r.se()  # offset_for_non_ref_pic
        r.se()  # offset_for_top_to_bottom_field
        cycle = r.ue()
        if cycle > 255:
            raise CodecError(f"H.264 SPS: num_ref_frames_in_pic_order_cnt_cycle {cycle} > 255")
        for _ in range(cycle):
            r.se()
    elif poc_type != 2:
        raise CodecError(f"H.264 SPS: pic_order_cnt_type {poc_type} out of range")
    r.ue()  # max_num_ref_frames
    r.skip(1)  # gaps_in_frame_num_value_allowed_flag
    width_mbs = r.ue() + 1
    height_map_units = r.ue() + 1
    frame_mbs_only = r.u(1)
    if not frame_mbs_only:
        r.skip(1)  # mb_adaptive_frame_field_flag
    r.skip(1)  # direct_8x8_inference_flag
    left = right = top = bottom = 0
    if r.flag():  # frame_cropping_flag
        left, right, top, bottom = r.ue(), r.ue(), r.ue(), r.ue()
    # Crop units (7.4.2.1.1): ChromaArrayType 0 (monochrome or separate planes) counts luma.
    if chroma_format_idc == 0 or separate_colour_plane:
        crop_x, crop_y = 1, 2 - frame_mbs_only
    else:
        crop_x = 1 if chroma_format_idc == 3 else 2
        crop_y = (2 if chroma_format_idc == 1 else 1) * (2 - frame_mbs_only)
    width = width_mbs * 16 - crop_x * (left + right)
    height = (2 - frame_mbs_only) * height_map_units * 16 - crop_y * (top + bottom)
    check_picture_size("H.264 SPS", "cropping", width, height)
    return AvcSps(
        sps_id,
        width,
        height,
        profile_idc,
        level_idc,
        chroma_format_idc,
        bit_depth_luma,
        bit_depth_chroma,
        rbsp[:3],
    )


def _skip_scaling_list(r: BitReader, size: int) -> None:
    last = nxt = 8
    for _ in range(size):
        if nxt:
            nxt = (last + r.se()) % 256
        last = nxt or last
