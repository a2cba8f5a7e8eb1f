"""What an H.264 or H.265 sequence parameter set tells the recorder, in one type.

:class:`SpsInfo` holds what both users need: the RTP side (codec string, resolution for the
store's codec row, parameter-set id) and the MP4 side (the fields of ``avcC``/``hvcC`` and the
picture size for ``tkhd``). The codec modules return the subclasses :class:`~.h264.AvcSps` and
:class:`~.h265.HevcSps`, which add the views that only make sense for one codec.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from nvr.protocol.errors import CodecError


@dataclass(frozen=True, slots=True)
class SpsInfo:
    """Decoded SPS fields; ``width``/``height`` are the displayed size (after cropping).

    ``ptl`` is the profile/tier/level block as the sample entry stores it: for H.264 the three
    bytes profile_idc, constraint flags, level_idc (``avcC``); for H.265 the 12-byte general
    profile_tier_level (``hvcC``).
    """

    codec: ClassVar[str] = ""

    sps_id: int
    width: int
    height: int
    profile_idc: int
    level_idc: int
    chroma_format_idc: int
    bit_depth_luma: int
    bit_depth_chroma: int
    ptl: bytes

    @property
    def codec_string(self) -> str:
        """RFC 6381 ``codecs`` value (``avc1.64001f``, ``hvc1.1.6.L93.B0``)."""
        raise NotImplementedError


def check_picture_size(what: str, window: str, width: int, height: int) -> None:
    """Refuse a size that the cropping ``window`` left empty, or that no sample entry can hold."""
    if width <= 0 or height <= 0:
        raise CodecError(f"{what}: {window} leaves an empty picture ({width}x{height})")
    if width > 0xFFFF or height > 0xFFFF:
        raise CodecError(f"{what}: picture size {width}x{height} out of range")
