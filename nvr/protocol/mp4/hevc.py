"""H.265: the ``hvcC`` decoder configuration record (the SPS parser is in ``codecs.h265``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from nvr.protocol.codecs.h265 import (
    NAL_PPS,
    NAL_PREFIX_SEI,
    NAL_SPS,
    NAL_SUFFIX_SEI,
    NAL_VPS,
    HevcSps,
    nal_type,
    parse_sps,
)
from nvr.protocol.mp4 import nal_config
from nvr.protocol.mp4.cursor import Cursor
from nvr.protocol.mp4.errors import Mp4Error

__all__ = [
    "NAL_PPS",
    "NAL_PREFIX_SEI",
    "NAL_SPS",
    "NAL_SUFFIX_SEI",
    "NAL_VPS",
    "HevcDecoderConfig",
    "HevcNalArray",
    "HevcSps",
    "nal_type",
    "parse_sps",
]


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
        nal_config.check_length_size("hvcC", self.length_size)
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
            out += nal_config.pack_nal_units(array.nalus)
        return bytes(out)

    @classmethod
    def parse(cls, payload: bytes) -> HevcDecoderConfig:
        cur = Cursor(payload, "hvcC")
        nal_config.read_version(cur)
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
        length_size = nal_config.read_length_size(cur, packed)
        arrays = []
        for _ in range(cur.u8("numOfArrays")):
            head = cur.u8("array header")
            count = cur.u16("numNalus")
            nalus = nal_config.read_nal_units(cur, count, "NAL unit")
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
