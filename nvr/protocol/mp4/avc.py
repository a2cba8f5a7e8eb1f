"""H.264: the ``avcC`` decoder configuration record (the SPS parser is in ``codecs.h264``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from nvr.protocol.codecs.h264 import NAL_PPS, NAL_SPS, NAL_SPS_EXT, AvcSps, nal_type, parse_sps
from nvr.protocol.mp4 import nal_config
from nvr.protocol.mp4.cursor import Cursor
from nvr.protocol.mp4.errors import Mp4Error

__all__ = [
    "NAL_PPS",
    "NAL_SPS",
    "NAL_SPS_EXT",
    "AvcDecoderConfig",
    "AvcSps",
    "parse_sps",
]

# Profiles whose avcC has the chroma format / bit depth extension fields.
_AVCC_EXT_PROFILES = frozenset({100, 110, 122, 144})


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
            if not nal or nal_type(nal) != NAL_PPS:
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
        nal_config.check_length_size("avcC", self.length_size)
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
        out += nal_config.pack_nal_units(self.sps)
        out.append(len(self.pps))
        out += nal_config.pack_nal_units(self.pps)
        if self.chroma_format_idc is not None:
            luma = self.bit_depth_luma if self.bit_depth_luma is not None else 8
            chroma = self.bit_depth_chroma if self.bit_depth_chroma is not None else 8
            out.append(0xFC | self.chroma_format_idc)
            out.append(0xF8 | (luma - 8))
            out.append(0xF8 | (chroma - 8))
            out.append(len(self.sps_ext))
            out += nal_config.pack_nal_units(self.sps_ext)
        return bytes(out)

    @classmethod
    def parse(cls, payload: bytes) -> AvcDecoderConfig:
        cur = Cursor(payload, "avcC")
        nal_config.read_version(cur)
        profile, compat, level = cur.u8(), cur.u8(), cur.u8()
        length_size = nal_config.read_length_size(cur, cur.u8())
        sps = nal_config.read_nal_units(cur, cur.u8() & 0x1F, "SPS")
        pps = nal_config.read_nal_units(cur, cur.u8("numPPS"), "PPS")
        chroma = luma = chroma_depth = None
        sps_ext: tuple[bytes, ...] = ()
        # Many writers omit the extension even for High profiles, so it is optional here.
        if profile in _AVCC_EXT_PROFILES and cur.remaining >= 4:
            chroma = cur.u8() & 3
            luma = (cur.u8() & 7) + 8
            chroma_depth = (cur.u8() & 7) + 8
            count = cur.u8("numOfSequenceParameterSetExt")
            sps_ext = nal_config.read_nal_units(cur, count, "SPS ext")
        return cls(
            profile, compat, level, sps, pps, length_size, chroma, luma, chroma_depth, sps_ext
        )
