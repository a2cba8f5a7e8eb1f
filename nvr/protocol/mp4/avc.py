"""H.264: the few SPS fields a sample entry needs, and the ``avcC`` decoder configuration record."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from nvr.protocol.mp4.bits import BitReader, unescape_rbsp
from nvr.protocol.mp4.cursor import Cursor
from nvr.protocol.mp4.errors import Mp4Error

NAL_SPS = 7
NAL_PPS = 8
NAL_SPS_EXT = 13

# Profiles whose SPS carries chroma_format_idc etc., and whose avcC has the extension fields.
_HIGH_SPS_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})
_AVCC_EXT_PROFILES = frozenset({100, 110, 122, 144})


@dataclass(frozen=True)
class AvcSps:
    """Decoded SPS fields; ``width``/``height`` are the displayed size after cropping."""

    profile_idc: int
    constraint_flags: int
    level_idc: int
    sps_id: int
    chroma_format_idc: int
    bit_depth_luma: int
    bit_depth_chroma: int
    width: int
    height: int


def _skip_scaling_list(br: BitReader, size: int) -> None:
    last = 8
    nxt = 8
    for _ in range(size):
        if nxt != 0:
            delta = br.se()
            nxt = (last + delta + 256) % 256
        last = nxt if nxt != 0 else last


def parse_sps(nal: bytes) -> AvcSps:
    """Parse an H.264 SPS NAL unit (with its 1-byte header, emulation prevention included)."""
    if not nal or nal[0] & 0x1F != NAL_SPS:
        raise Mp4Error("H.264 SPS: not an SPS NAL unit")
    br = BitReader(unescape_rbsp(nal[1:]), "H.264 SPS")
    profile_idc = br.u(8)
    constraint_flags = br.u(8)
    level_idc = br.u(8)
    sps_id = br.ue()
    if sps_id > 31:
        raise Mp4Error(f"H.264 SPS: seq_parameter_set_id {sps_id} out of range")
    chroma_format_idc = 1
    separate_colour_plane = False
    bit_depth_luma = bit_depth_chroma = 8
    if profile_idc in _HIGH_SPS_PROFILES:
        chroma_format_idc = br.ue()
        if chroma_format_idc > 3:
            raise Mp4Error(f"H.264 SPS: chroma_format_idc {chroma_format_idc} out of range")
        if chroma_format_idc == 3:
            separate_colour_plane = br.flag()
        bit_depth_luma = br.ue() + 8
        bit_depth_chroma = br.ue() + 8
        if bit_depth_luma > 14 or bit_depth_chroma > 14:
            raise Mp4Error("H.264 SPS: bit depth out of range")
        br.skip(1)  # qpprime_y_zero_transform_bypass_flag
        if br.flag():  # seq_scaling_matrix_present_flag
            for i in range(8 if chroma_format_idc != 3 else 12):
                if br.flag():
                    _skip_scaling_list(br, 16 if i < 6 else 64)
    br.ue()  # log2_max_frame_num_minus4
    poc_type = br.ue()
    if poc_type == 0:
        br.ue()  # log2_max_pic_order_cnt_lsb_minus4
    elif poc_type == 1:
        br.skip(1)  # delta_pic_order_always_zero_flag
        br.se()  # offset_for_non_ref_pic
        br.se()  # offset_for_top_to_bottom_field
        cycle = br.ue()
        if cycle > 255:
            raise Mp4Error(f"H.264 SPS: num_ref_frames_in_pic_order_cnt_cycle {cycle} > 255")
        for _ in range(cycle):
            br.se()
    elif poc_type != 2:
        raise Mp4Error(f"H.264 SPS: pic_order_cnt_type {poc_type} out of range")
    br.ue()  # max_num_ref_frames
    br.skip(1)  # gaps_in_frame_num_value_allowed_flag
    width_mbs = br.ue() + 1
    height_map_units = br.ue() + 1
    frame_mbs_only = br.flag()
    if not frame_mbs_only:
        br.skip(1)  # mb_adaptive_frame_field_flag
    br.skip(1)  # direct_8x8_inference_flag
    crop_left = crop_right = crop_top = crop_bottom = 0
    if br.flag():  # frame_cropping_flag
        crop_left, crop_right, crop_top, crop_bottom = br.ue(), br.ue(), br.ue(), br.ue()
    chroma_array_type = 0 if separate_colour_plane else chroma_format_idc
    if chroma_array_type == 0:
        crop_x, crop_y = 1, 2 - frame_mbs_only
    else:
        sub_w = 1 if chroma_format_idc == 3 else 2
        sub_h = 2 if chroma_format_idc == 1 else 1
        crop_x, crop_y = sub_w, sub_h * (2 - frame_mbs_only)
    width = width_mbs * 16 - crop_x * (crop_left + crop_right)
    height = (2 - frame_mbs_only) * height_map_units * 16 - crop_y * (crop_top + crop_bottom)
    if width <= 0 or height <= 0:
        raise Mp4Error(f"H.264 SPS: cropping leaves an empty picture ({width}x{height})")
    if width > 0xFFFF or height > 0xFFFF:
        raise Mp4Error(f"H.264 SPS: picture size {width}x{height} out of range")
    return AvcSps(
        profile_idc,
        constraint_flags,
        level_idc,
        sps_id,
        chroma_format_idc,
        bit_depth_luma,
        bit_depth_chroma,
        width,
        height,
    )


@dataclass(frozen=True)
class AvcDecoderConfig:
    """AVCDecoderConfigurationRecord (ISO/IEC 14496-15 5.3.3), the payload of ``avcC``."""

    profile_idc: int
    profile_compatibility: int
    level_idc: int
    sps: tuple[bytes, ...]
    pps: tuple[bytes, ...]
    length_size: int = 4
    chroma_format_idc: int | None = None
    bit_depth_luma: int | None = None
    bit_depth_chroma: int | None = None
    sps_ext: tuple[bytes, ...] = ()

    @classmethod
    def from_parameter_sets(cls, sps: Sequence[bytes], pps: Sequence[bytes]) -> AvcDecoderConfig:
        """Build the record from SPS/PPS NAL units; the first SPS decides profile and level."""
        if not sps or not pps:
            raise Mp4Error("avcC: at least one SPS and one PPS are required")
        for nal in pps:
            if not nal or nal[0] & 0x1F != NAL_PPS:
                raise Mp4Error("avcC: PPS list holds a NAL unit that is not a PPS")
        info = parse_sps(sps[0])
        ext = info.profile_idc in _AVCC_EXT_PROFILES
        return cls(
            profile_idc=info.profile_idc,
            profile_compatibility=info.constraint_flags,
            level_idc=info.level_idc,
            sps=tuple(bytes(s) for s in sps),
            pps=tuple(bytes(p) for p in pps),
            chroma_format_idc=info.chroma_format_idc if ext else None,
            bit_depth_luma=info.bit_depth_luma if ext else None,
            bit_depth_chroma=info.bit_depth_chroma if ext else None,
        )

    def encode(self) -> bytes:
        if not 1 <= len(self.sps) <= 31 or len(self.pps) > 255:
            raise ValueError("avcC: 1..31 SPS and at most 255 PPS")
        if self.length_size not in (1, 2, 4):
            raise ValueError("avcC: length_size must be 1, 2 or 4")
        out = bytearray(
            (
                1,
                self.profile_idc,
                self.profile_compatibility,
                self.level_idc,
                0xFC | (self.length_size - 1),
                0xE0 | len(self.sps),
            )
        )
        for nal in self.sps:
            out += len(nal).to_bytes(2, "big") + nal
        out.append(len(self.pps))
        for nal in self.pps:
            out += len(nal).to_bytes(2, "big") + nal
        if self.chroma_format_idc is not None:
            luma = self.bit_depth_luma if self.bit_depth_luma is not None else 8
            chroma = self.bit_depth_chroma if self.bit_depth_chroma is not None else 8
            out.append(0xFC | self.chroma_format_idc)
            out.append(0xF8 | (luma - 8))
            out.append(0xF8 | (chroma - 8))
            out.append(len(self.sps_ext))
            for nal in self.sps_ext:
                out += len(nal).to_bytes(2, "big") + nal
        return bytes(out)

    @classmethod
    def parse(cls, payload: bytes) -> AvcDecoderConfig:
        cur = Cursor(payload, "avcC")
        if cur.u8("configurationVersion") != 1:
            raise cur.fail("unsupported configurationVersion")
        profile, compat, level = cur.u8(), cur.u8(), cur.u8()
        length_size = (cur.u8() & 3) + 1
        if length_size == 3:
            raise cur.fail("lengthSizeMinusOne of 2 is not allowed")
        sps = tuple(cur.take(cur.u16("SPS length"), "SPS") for _ in range(cur.u8() & 0x1F))
        pps = tuple(cur.take(cur.u16("PPS length"), "PPS") for _ in range(cur.u8("numPPS")))
        chroma = luma = chroma_depth = None
        sps_ext: tuple[bytes, ...] = ()
        # Many writers omit the extension even for High profiles, so it is optional here.
        if profile in _AVCC_EXT_PROFILES and cur.remaining >= 4:
            chroma = cur.u8() & 3
            luma = (cur.u8() & 7) + 8
            chroma_depth = (cur.u8() & 7) + 8
            count = cur.u8("numOfSequenceParameterSetExt")
            sps_ext = tuple(cur.take(cur.u16("SPS ext length"), "SPS ext") for _ in range(count))
        return cls(
            profile, compat, level, sps, pps, length_size, chroma, luma, chroma_depth, sps_ext
        )
