"""H.265: the SPS fields a sample entry needs, and the ``hvcC`` decoder configuration record."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from nvr.protocol.mp4.bits import BitReader, unescape_rbsp
from nvr.protocol.mp4.cursor import Cursor
from nvr.protocol.mp4.errors import Mp4Error

NAL_VPS = 32
NAL_SPS = 33
NAL_PPS = 34
NAL_PREFIX_SEI = 39
NAL_SUFFIX_SEI = 40


def nal_type(nal: bytes) -> int:
    """The H.265 nal_unit_type of a NAL unit (2-byte header)."""
    if len(nal) < 2:
        raise Mp4Error("H.265 NAL unit: shorter than its 2-byte header")
    return (nal[0] >> 1) & 0x3F


@dataclass(frozen=True)
class HevcSps:
    """Decoded SPS fields; ``width``/``height`` are after the conformance window."""

    profile_space: int
    tier_flag: int
    profile_idc: int
    profile_compatibility_flags: int
    constraint_indicator_flags: int  # 48 bits
    level_idc: int
    max_sub_layers: int
    temporal_id_nesting: bool
    chroma_format_idc: int
    bit_depth_luma: int
    bit_depth_chroma: int
    width: int
    height: int


def parse_sps(nal: bytes) -> HevcSps:
    """Parse an H.265 SPS NAL unit (with its 2-byte header, emulation prevention included)."""
    if nal_type(nal) != NAL_SPS:
        raise Mp4Error("H.265 SPS: not an SPS NAL unit")
    br = BitReader(unescape_rbsp(nal[2:]), "H.265 SPS")
    br.skip(4)  # sps_video_parameter_set_id
    max_sub_layers_minus1 = br.u(3)
    if max_sub_layers_minus1 > 6:
        raise Mp4Error("H.265 SPS: sps_max_sub_layers_minus1 out of range")
    nesting = br.flag()
    profile_space = br.u(2)
    tier = br.u(1)
    profile_idc = br.u(5)
    compat = br.u(32)
    constraints = br.u(48)
    level_idc = br.u(8)
    present = [(br.flag(), br.flag()) for _ in range(max_sub_layers_minus1)]
    if max_sub_layers_minus1 > 0:
        br.skip(2 * (8 - max_sub_layers_minus1))  # reserved_zero_2bits
    for profile_present, level_present in present:
        if profile_present:
            br.skip(88)
        if level_present:
            br.skip(8)
    if br.ue() > 15:
        raise Mp4Error("H.265 SPS: sps_seq_parameter_set_id out of range")
    chroma_format_idc = br.ue()
    if chroma_format_idc > 3:
        raise Mp4Error(f"H.265 SPS: chroma_format_idc {chroma_format_idc} out of range")
    separate_planes = br.flag() if chroma_format_idc == 3 else False
    width = br.ue()
    height = br.ue()
    left = right = top = bottom = 0
    if br.flag():  # conformance_window_flag
        left, right, top, bottom = br.ue(), br.ue(), br.ue(), br.ue()
    bit_depth_luma = br.ue() + 8
    bit_depth_chroma = br.ue() + 8
    if bit_depth_luma > 16 or bit_depth_chroma > 16:
        raise Mp4Error("H.265 SPS: bit depth out of range")
    if separate_planes or chroma_format_idc in (0, 3):
        sub_w = sub_h = 1
    else:
        sub_w, sub_h = 2, 2 if chroma_format_idc == 1 else 1
    width -= sub_w * (left + right)
    height -= sub_h * (top + bottom)
    if width <= 0 or height <= 0:
        raise Mp4Error(f"H.265 SPS: conformance window leaves an empty picture ({width}x{height})")
    if width > 0xFFFF or height > 0xFFFF:
        raise Mp4Error(f"H.265 SPS: picture size {width}x{height} out of range")
    return HevcSps(
        profile_space,
        tier,
        profile_idc,
        compat,
        constraints,
        level_idc,
        max_sub_layers_minus1 + 1,
        nesting,
        chroma_format_idc,
        bit_depth_luma,
        bit_depth_chroma,
        width,
        height,
    )


@dataclass(frozen=True)
class HevcNalArray:
    nal_type: int
    nalus: tuple[bytes, ...]
    complete: bool = True


@dataclass(frozen=True)
class HevcDecoderConfig:
    """HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 8.3.3), the payload of ``hvcC``.

    Fields that need the VUI or PPS (min_spatial_segmentation_idc, parallelismType, frame
    rates) are written as 0, which the format defines as "unknown"; decoders do not need them.
    """

    profile_space: int
    tier_flag: int
    profile_idc: int
    profile_compatibility_flags: int
    constraint_indicator_flags: int
    level_idc: int
    chroma_format_idc: int
    bit_depth_luma: int
    bit_depth_chroma: int
    arrays: tuple[HevcNalArray, ...]
    min_spatial_segmentation_idc: int = 0
    parallelism_type: int = 0
    avg_frame_rate: int = 0
    constant_frame_rate: int = 0
    num_temporal_layers: int = 1
    temporal_id_nested: bool = False
    length_size: int = 4

    def nalus(self, wanted: int) -> tuple[bytes, ...]:
        """All NAL units of one type (e.g. :data:`NAL_SPS`) across the arrays."""
        return tuple(n for a in self.arrays if a.nal_type == wanted for n in a.nalus)

    @classmethod
    def from_parameter_sets(
        cls,
        vps: Sequence[bytes],
        sps: Sequence[bytes],
        pps: Sequence[bytes],
        *,
        complete: bool = True,
    ) -> HevcDecoderConfig:
        """Build the record from VPS/SPS/PPS NAL units; the first SPS decides the fields.

        ``complete`` is array_completeness: true for ``hvc1`` (no other parameter sets needed),
        false for ``hev1`` (more may arrive in-band).
        """
        if not vps or not sps or not pps:
            raise Mp4Error("hvcC: at least one VPS, SPS and PPS are required")
        for wanted, group in ((NAL_VPS, vps), (NAL_SPS, sps), (NAL_PPS, pps)):
            for nal in group:
                if nal_type(nal) != wanted:
                    raise Mp4Error(f"hvcC: NAL unit of type {nal_type(nal)} in the {wanted} list")
        info = parse_sps(sps[0])
        return cls(
            profile_space=info.profile_space,
            tier_flag=info.tier_flag,
            profile_idc=info.profile_idc,
            profile_compatibility_flags=info.profile_compatibility_flags,
            constraint_indicator_flags=info.constraint_indicator_flags,
            level_idc=info.level_idc,
            chroma_format_idc=info.chroma_format_idc,
            bit_depth_luma=info.bit_depth_luma,
            bit_depth_chroma=info.bit_depth_chroma,
            arrays=tuple(
                HevcNalArray(t, tuple(bytes(n) for n in group), complete)
                for t, group in ((NAL_VPS, vps), (NAL_SPS, sps), (NAL_PPS, pps))
            ),
            num_temporal_layers=info.max_sub_layers,
            temporal_id_nested=info.temporal_id_nesting,
        )

    def encode(self) -> bytes:
        if self.length_size not in (1, 2, 4):
            raise ValueError("hvcC: length_size must be 1, 2 or 4")
        out = bytearray()
        out.append(1)
        out.append((self.profile_space << 6) | (self.tier_flag << 5) | self.profile_idc)
        out += self.profile_compatibility_flags.to_bytes(4, "big")
        out += self.constraint_indicator_flags.to_bytes(6, "big")
        out.append(self.level_idc)
        out += (0xF000 | self.min_spatial_segmentation_idc).to_bytes(2, "big")
        out.append(0xFC | self.parallelism_type)
        out.append(0xFC | self.chroma_format_idc)
        out.append(0xF8 | (self.bit_depth_luma - 8))
        out.append(0xF8 | (self.bit_depth_chroma - 8))
        out += self.avg_frame_rate.to_bytes(2, "big")
        out.append(
            (self.constant_frame_rate << 6)
            | (self.num_temporal_layers << 3)
            | (int(self.temporal_id_nested) << 2)
            | (self.length_size - 1)
        )
        out.append(len(self.arrays))
        for array in self.arrays:
            out.append((int(array.complete) << 7) | array.nal_type)
            out += len(array.nalus).to_bytes(2, "big")
            for nal in array.nalus:
                out += len(nal).to_bytes(2, "big") + nal
        return bytes(out)

    @classmethod
    def parse(cls, payload: bytes) -> HevcDecoderConfig:
        cur = Cursor(payload, "hvcC")
        if cur.u8("configurationVersion") != 1:
            raise cur.fail("unsupported configurationVersion")
        b = cur.u8()
        compat = cur.u32()
        constraints = cur.uint(6)
        level = cur.u8()
        min_seg = cur.u16() & 0x0FFF
        parallelism = cur.u8() & 3
        chroma = cur.u8() & 3
        luma = (cur.u8() & 7) + 8
        chroma_depth = (cur.u8() & 7) + 8
        avg_rate = cur.u16()
        packed = cur.u8()
        length_size = (packed & 3) + 1
        if length_size == 3:
            raise cur.fail("lengthSizeMinusOne of 2 is not allowed")
        arrays = []
        for _ in range(cur.u8("numOfArrays")):
            head = cur.u8("array header")
            count = cur.u16("numNalus")
            nalus = tuple(cur.take(cur.u16("nalUnitLength"), "NAL unit") for _ in range(count))
            arrays.append(HevcNalArray(head & 0x3F, nalus, bool(head & 0x80)))
        return cls(
            profile_space=b >> 6,
            tier_flag=(b >> 5) & 1,
            profile_idc=b & 0x1F,
            profile_compatibility_flags=compat,
            constraint_indicator_flags=constraints,
            level_idc=level,
            chroma_format_idc=chroma,
            bit_depth_luma=luma,
            bit_depth_chroma=chroma_depth,
            arrays=tuple(arrays),
            min_spatial_segmentation_idc=min_seg,
            parallelism_type=parallelism,
            avg_frame_rate=avg_rate,
            constant_frame_rate=packed >> 6,
            num_temporal_layers=(packed >> 3) & 7,
            temporal_id_nested=bool(packed & 4),
            length_size=length_size,
        )
