"""H.265 (ITU-T H.265) NAL unit syntax: unit types, parameter-set ids, SPS parsing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from nvr.protocol.codecs.bits import BitReader, unescape_rbsp
from nvr.protocol.codecs.sps import SpsInfo, check_picture_size
from nvr.protocol.errors import CodecError

NAL_IDR_W_RADL = 19
NAL_CRA = 21
NAL_VPS = 32
NAL_SPS = 33
NAL_PPS = 34
NAL_AUD = 35
NAL_PREFIX_SEI = 39
NAL_SUFFIX_SEI = 40

IRAP_TYPES = frozenset(range(16, 24))  # BLA, IDR, CRA and the reserved IRAP types


def nal_type(nal: bytes) -> int:
    """The nal_unit_type of a NAL unit (2-byte header)."""
    if len(nal) < 2:
        raise CodecError("H.265 NAL unit: shorter than its 2-byte header")
    return (nal[0] >> 1) & 0x3F


@dataclass(frozen=True, slots=True)
class HevcSps(SpsInfo):
    """An H.265 SPS; ``ptl`` is the 12-byte general profile_tier_level."""

    codec: ClassVar[str] = "h265"

    max_sub_layers: int = 1
    temporal_id_nesting: bool = False

    @property
    def profile_space(self) -> int:
        return self.ptl[0] >> 6

    @property
    def tier_flag(self) -> int:
        return (self.ptl[0] >> 5) & 1

    @property
    def profile_compatibility_flags(self) -> int:
        return int.from_bytes(self.ptl[1:5], "big")

    @property
    def constraint_indicator_flags(self) -> int:
        """The 48 bits after the compatibility flags."""
        return int.from_bytes(self.ptl[5:11], "big")

    @property
    def codec_string(self) -> str:
        space = "" if self.profile_space == 0 else "ABC"[self.profile_space - 1]
        compat_rev = int(f"{self.profile_compatibility_flags:032b}"[::-1], 2)
        tier = "H" if self.tier_flag else "L"
        constraints = list(self.ptl[5:11])
        while constraints and constraints[-1] == 0:
            constraints.pop()
        out = f"hvc1.{space}{self.profile_idc}.{compat_rev:X}.{tier}{self.level_idc}"
        return out + "".join(f".{b:X}" for b in constraints)


def parameter_set_id(nal: bytes) -> int:
    """The id of a VPS, SPS or PPS: what a new parameter set replaces."""
    t = nal_type(nal)
    if t == NAL_VPS:
        return nal[2] >> 4 if len(nal) > 2 else 0
    if t == NAL_SPS:
        return _read_sps_head(BitReader(unescape_rbsp(nal[2:]), what="H.265 SPS"))[2]
    return BitReader(unescape_rbsp(nal[2:16]), what="H.265 PPS").ue()


def _read_sps_head(r: BitReader) -> tuple[int, bool, int]:
    """Read an SPS up to sps_seq_parameter_set_id: (max sub-layers, temporal id nesting, id).
    The general profile_tier_level it skips is bytes 1-12 of the RBSP."""
    r.skip(4)  # sps_video_parameter_set_id
    max_sub_layers_minus1 = r.u(3)
    if max_sub_layers_minus1 > 6:
        raise CodecError("H.265 SPS: sps_max_sub_layers_minus1 out of range")
    nesting = r.flag()
    r.skip(96)  # general profile space, tier, profile, flags and level
    present = [(r.u(1), r.u(1)) for _ in range(max_sub_layers_minus1)]
    if max_sub_layers_minus1:
        r.skip(2 * (8 - max_sub_layers_minus1))  # reserved_zero_2bits
    for profile_present, level_present in present:
        r.skip(88 * profile_present + 8 * level_present)
    sps_id = r.ue()
    if sps_id > 15:
        raise CodecError(f"H.265 SPS: sps_seq_parameter_set_id {sps_id} out of range")
    return max_sub_layers_minus1 + 1, nesting, sps_id


def parse_sps(nal: bytes) -> HevcSps:
    """Parse an SPS NAL unit (with its 2-byte header, emulation prevention included)."""
    if nal_type(nal) != NAL_SPS:
        raise CodecError("H.265 SPS: not an SPS NAL unit")
    rbsp = unescape_rbsp(nal[2:])
    r = BitReader(rbsp, what="H.265 SPS")
    max_sub_layers, nesting, sps_id = _read_sps_head(r)
    ptl = rbsp[1:13]
    chroma_format_idc = r.ue()
    if chroma_format_idc > 3:
        raise CodecError(f"H.265 SPS: chroma_format_idc {chroma_format_idc} out of range")
    separate_planes = r.flag() if chroma_format_idc == 3 else False
    width = r.ue()
    height = r.ue()
    left = right = top = bottom = 0
    if r.flag():  # conformance_window_flag
        left, right, top, bottom = r.ue(), r.ue(), r.ue(), r.ue()
    bit_depth_luma = r.ue() + 8
    bit_depth_chroma = r.ue() + 8
    if bit_depth_luma > 16 or bit_depth_chroma > 16:
        raise CodecError("H.265 SPS: bit depth out of range")
    # Conformance window units (7.4.3.2.1): chroma subsampling unless monochrome/separate planes.
    sub_w = 2 if chroma_format_idc in (1, 2) and not separate_planes else 1
    sub_h = 2 if chroma_format_idc == 1 and not separate_planes else 1
    width -= sub_w * (left + right)
    height -= sub_h * (top + bottom)
    check_picture_size("H.265 SPS", "conformance window", width, height)
    return HevcSps(
        sps_id,
        width,
        height,
        ptl[0] & 0x1F,
        ptl[11],
        chroma_format_idc,
        bit_depth_luma,
        bit_depth_chroma,
        ptl,
        max_sub_layers,
        nesting,
    )
