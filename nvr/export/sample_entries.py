"""Stored codec parameters (``SampleEntrySpec``) to MP4 sample entries for an export.

H.264/H.265 use ``avc1``/``hvc1`` when the parameter sets live only in the sample entry, and
``avc3``/``hev1`` when the stored access units carry them in-band or the parameters change
inside the export (``hvc1`` even forbids in-band parameter sets). Access units are never
edited (media signing, export.md B.8), so the stream decides, not us.
"""

from __future__ import annotations

from nvr.protocol.codecs import h264, h265
from nvr.protocol.codecs.annexb import length_prefixed_to_nals
from nvr.protocol.mp4 import (
    Mp4Error,
    SampleEntry,
    aac_entry,
    avc_entry,
    g711_entry,
    hevc_entry,
    jpeg_entry,
    jpeg_entry_for,
    metx_entry,
)
from nvr.store.types import SampleEntrySpec

_PARAMETER_SETS = {
    "H264": (h264.NAL_SPS, h264.NAL_PPS),
    "H265": (h265.NAL_VPS, h265.NAL_SPS, h265.NAL_PPS),
}
_NAL_TYPE = {"H264": h264.nal_type, "H265": h265.nal_type}


class UnsupportedCodec(ValueError):
    """The stored track cannot be described in an MP4 sample entry."""


def parameter_sets(codec: str, data: bytes) -> dict[int, list[bytes]]:
    """Parameter-set NAL units in ``data`` by type (empty lists if none, or if ``data`` is not
    a well-formed length-prefixed access unit)."""
    found: dict[int, list[bytes]] = {t: [] for t in _PARAMETER_SETS.get(codec, ())}
    if not found:
        return found
    nal_type = _NAL_TYPE[codec]
    try:
        units = [(nal_type(nal), nal) for nal in length_prefixed_to_nals(data)]
    except ValueError:
        return found
    for kind, nal in units:
        if kind in found and nal not in found[kind]:
            found[kind].append(nal)
    return found


def has_inband_parameter_sets(codec: str, access_unit: bytes) -> bool:
    return any(parameter_sets(codec, access_unit).values())


def mp4_entry(
    spec: SampleEntrySpec, *, inband: bool, key_frame: bytes | None = None
) -> SampleEntry:
    """The sample entry for stored parameters. ``key_frame`` (an access unit of this entry)
    supplies parameter sets or the JPEG size when the stored parameters lack them."""
    codec = spec.codec
    try:
        if codec in _PARAMETER_SETS:
            sets = parameter_sets(codec, spec.parameters)
            if not all(sets.values()) and key_frame is not None:
                sets = parameter_sets(codec, key_frame)
            if not all(sets.values()):
                raise UnsupportedCodec(f"{codec} track without parameter sets")
            if codec == "H264":
                fourcc = b"avc3" if inband else b"avc1"
                return avc_entry(sets[h264.NAL_SPS], sets[h264.NAL_PPS], fourcc=fourcc)
            fourcc = b"hev1" if inband else b"hvc1"
            return hevc_entry(
                sets[h265.NAL_VPS], sets[h265.NAL_SPS], sets[h265.NAL_PPS], fourcc=fourcc
            )
        if codec == "JPEG":
            if spec.width and spec.height:
                return jpeg_entry(spec.width, spec.height)
            if key_frame is None:
                raise UnsupportedCodec("JPEG track without picture size")
            return jpeg_entry_for(key_frame)
        if codec == "AAC":
            return aac_entry(spec.parameters)
        if codec in ("PCMU", "PCMA"):
            return g711_entry(
                "ulaw" if codec == "PCMU" else "alaw",
                sample_rate=spec.sample_rate or spec.clock_rate,
                channels=spec.channels or 1,
            )
        if codec == "ONVIF-METADATA":
            return metx_entry()
    except (Mp4Error, ValueError) as exc:
        if isinstance(exc, UnsupportedCodec):
            raise
        raise UnsupportedCodec(f"{codec} parameters cannot be described: {exc}") from None
    raise UnsupportedCodec(f"codec {codec!r} cannot be exported")
