"""Sample entries (the codec description inside ``stsd``), built from codec parameters and parsed.

A :class:`SampleEntry` carries the encoded box, ready to be stored next to a segment and dropped
into ``stsd`` unchanged, plus the handler and the fields the rest of ``moov`` needs (picture
size for ``tkhd``, audio rate).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from nvr.protocol.codecs.h264 import parse_sps as parse_avc_sps
from nvr.protocol.codecs.h265 import NAL_SPS
from nvr.protocol.codecs.h265 import parse_sps as parse_hevc_sps
from nvr.protocol.codecs.jpeg import jpeg_dimensions
from nvr.protocol.mp4.aac import (
    AudioSpecificConfig,
    EsDescriptor,
    parse_audio_specific_config,
)
from nvr.protocol.mp4.avc import AvcDecoderConfig
from nvr.protocol.mp4.box import box, full_box, iter_boxes, type_name
from nvr.protocol.mp4.cursor import Cursor
from nvr.protocol.mp4.errors import Mp4Error
from nvr.protocol.mp4.hevc import HevcDecoderConfig

VIDE = b"vide"
SOUN = b"soun"
META = b"meta"
ONVIF_NAMESPACE = "http://www.onvif.org/ver10/schema"

_VISUAL_FIELDS = 78  # SampleEntry (8) + VisualSampleEntry fields (70)
_AUDIO_FIELDS = 28  # SampleEntry (8) + AudioSampleEntry v0 fields (20)
_QT_AUDIO_EXTRA = {0: 0, 1: 16, 2: 36}  # QuickTime sound description versions

_G711_FOURCC = {"ulaw": b"ulaw", "pcmu": b"ulaw", "alaw": b"alaw", "pcma": b"alaw"}


@dataclass(frozen=True)
class SampleEntry:
    """An encoded sample entry and what was learnt from it."""

    box: bytes
    handler: bytes
    width: int = 0
    height: int = 0
    channels: int = 0
    sample_rate: int = 0
    avc: AvcDecoderConfig | None = None
    hevc: HevcDecoderConfig | None = None
    es: EsDescriptor | None = None
    audio_config: AudioSpecificConfig | None = None
    content_encoding: str | None = None
    namespace: str | None = None
    schema_location: str | None = None

    @property
    def fourcc(self) -> bytes:
        return self.box[4:8]


def _sample_entry_head() -> bytes:
    return bytes(6) + (1).to_bytes(2, "big")  # reserved, data_reference_index = 1


def _visual(fourcc: bytes, width: int, height: int, children: Iterable[bytes]) -> bytes:
    if not (0 < width <= 0xFFFF and 0 < height <= 0xFFFF):
        raise ValueError(f"picture size {width}x{height} out of range")
    fields = (
        _sample_entry_head()
        + bytes(16)  # pre_defined, reserved, pre_defined[3]
        + width.to_bytes(2, "big")
        + height.to_bytes(2, "big")
        + (0x00480000).to_bytes(4, "big") * 2  # 72 dpi
        + bytes(4)  # reserved
        + (1).to_bytes(2, "big")  # frame_count
        + bytes(32)  # compressorname (empty Pascal string)
        + (0x0018).to_bytes(2, "big")  # depth
        + b"\xff\xff"  # pre_defined = -1
    )
    return box(fourcc, fields, *children)


def _audio(fourcc: bytes, channels: int, sample_rate: int, children: Iterable[bytes]) -> bytes:
    if not 0 < channels <= 0xFFFF:
        raise ValueError(f"channel count {channels} out of range")
    # Rates above 65535 Hz do not fit the 16.16 field; the codec config then carries the rate.
    rate_field = sample_rate << 16 if 0 < sample_rate <= 0xFFFF else 0
    fields = (
        _sample_entry_head()
        + bytes(8)  # reserved (QuickTime: version, revision, vendor)
        + channels.to_bytes(2, "big")
        + (16).to_bytes(2, "big")  # samplesize
        + bytes(4)  # pre_defined, reserved
        + rate_field.to_bytes(4, "big")
    )
    return box(fourcc, fields, *children)


def avc_entry(
    sps: Sequence[bytes],
    pps: Sequence[bytes],
    *,
    fourcc: bytes = b"avc1",
    extra_boxes: Iterable[bytes] = (),
) -> SampleEntry:
    """``avc1`` (parameter sets in the entry) or ``avc3`` (parameter sets may change in-band)."""
    if fourcc not in (b"avc1", b"avc3"):
        raise ValueError("fourcc must be avc1 or avc3")
    config = AvcDecoderConfig.from_parameter_sets(sps, pps)
    info = parse_avc_sps(sps[0])
    return parse_sample_entry(
        _visual(fourcc, info.width, info.height, [box(b"avcC", config.encode()), *extra_boxes]),
        VIDE,
    )


def hevc_entry(
    vps: Sequence[bytes],
    sps: Sequence[bytes],
    pps: Sequence[bytes],
    *,
    fourcc: bytes = b"hvc1",
    extra_boxes: Iterable[bytes] = (),
) -> SampleEntry:
    """``hvc1`` (parameter sets only in the entry) or ``hev1`` (may also be in-band)."""
    if fourcc not in (b"hvc1", b"hev1"):
        raise ValueError("fourcc must be hvc1 or hev1")
    config = HevcDecoderConfig.from_parameter_sets(vps, sps, pps, complete=fourcc == b"hvc1")
    info = parse_hevc_sps(sps[0])
    return parse_sample_entry(
        _visual(fourcc, info.width, info.height, [box(b"hvcC", config.encode()), *extra_boxes]),
        VIDE,
    )


def jpeg_entry(width: int, height: int) -> SampleEntry:
    """Motion JPEG as QuickTime ``jpeg`` ("Photo - JPEG"), read by FFmpeg and qtdemux."""
    return parse_sample_entry(_visual(b"jpeg", width, height, ()), VIDE)


def jpeg_entry_for(image: bytes) -> SampleEntry:
    """``jpeg`` entry sized from the SOF marker of one frame."""
    return jpeg_entry(*jpeg_dimensions(image))


def aac_entry(
    audio_specific_config: bytes,
    *,
    avg_bitrate: int = 0,
    max_bitrate: int = 0,
    buffer_size: int = 0,
) -> SampleEntry:
    """``mp4a`` with an ``esds`` around the AudioSpecificConfig bytes."""
    asc = parse_audio_specific_config(audio_specific_config)
    es = EsDescriptor(
        bytes(audio_specific_config),
        buffer_size=buffer_size,
        max_bitrate=max_bitrate,
        avg_bitrate=avg_bitrate,
    )
    esds = full_box(b"esds", 0, 0, es.encode())
    return parse_sample_entry(_audio(b"mp4a", asc.channels or 2, asc.output_rate, [esds]), SOUN)


def g711_entry(law: str, *, sample_rate: int = 8000, channels: int = 1) -> SampleEntry:
    """G.711 as a QuickTime-style ``ulaw``/``alaw`` sound entry (one byte per sample).

    samplesize stays 16 as in a version-0 sound description; FFmpeg's mov demuxer derives the
    real 8 bits from the codec, and qtdemux maps the fourcc directly.
    """
    fourcc = _G711_FOURCC.get(law.lower())
    if fourcc is None:
        raise ValueError(f"unknown G.711 law {law!r}; use 'ulaw' or 'alaw'")
    return parse_sample_entry(_audio(fourcc, channels, sample_rate, ()), SOUN)


def metx_entry(
    *,
    namespace: str = ONVIF_NAMESPACE,
    content_encoding: str = "",
    schema_location: str = "",
) -> SampleEntry:
    """XMLMetaDataSampleEntry for ONVIF metadata documents (one document per sample)."""
    if any("\x00" in s for s in (namespace, content_encoding, schema_location)):
        raise ValueError("metx strings must not contain NUL")
    fields = _sample_entry_head() + b"".join(
        s.encode("utf-8") + b"\x00" for s in (content_encoding, namespace, schema_location)
    )
    return parse_sample_entry(box(b"metx", fields), META)


def _children(raw: bytes, start: int, what: str) -> dict[bytes, bytes]:
    """Payloads of the child boxes of a sample entry, first of each type."""
    out: dict[bytes, bytes] = {}
    try:
        for hdr in iter_boxes(raw, start):
            out.setdefault(hdr.type, raw[hdr.payload_offset : hdr.end])
    except Mp4Error as exc:
        raise Mp4Error(f"{what}: {exc}") from exc
    return out


def parse_sample_entry(raw: bytes, handler: bytes) -> SampleEntry:
    """Decode one complete sample entry box found under a track with ``handler``."""
    raw = bytes(raw)
    hdrs = list(iter_boxes(raw))
    if len(hdrs) != 1:
        raise Mp4Error("sample entry: expected exactly one box")
    fourcc = hdrs[0].type
    what = f"sample entry {type_name(fourcc)}"
    start = hdrs[0].payload_offset
    cur = Cursor(raw, what, start)
    if handler == VIDE:
        cur.skip(_VISUAL_FIELDS, "VisualSampleEntry fields")
        width = int.from_bytes(raw[start + 24 : start + 26], "big")
        height = int.from_bytes(raw[start + 26 : start + 28], "big")
        kids = _children(raw, cur.pos, what)
        avc = hevc = None
        if fourcc in (b"avc1", b"avc3") and b"avcC" in kids:
            avc = AvcDecoderConfig.parse(kids[b"avcC"])
        if fourcc in (b"hvc1", b"hev1") and b"hvcC" in kids:
            hevc = HevcDecoderConfig.parse(kids[b"hvcC"])
            sps = hevc.nalus(NAL_SPS)
            if sps and (width == 0 or height == 0):
                info = parse_hevc_sps(sps[0])
                width, height = info.width, info.height
        return SampleEntry(raw, handler, width=width, height=height, avc=avc, hevc=hevc)
    if handler == SOUN:
        cur.skip(8, "SampleEntry fields")
        version = cur.u16("sound version")
        cur.skip(6, "reserved")
        channels = cur.u16("channelcount")
        cur.skip(6, "samplesize/reserved")
        sample_rate = cur.u32("samplerate") >> 16
        extra = _QT_AUDIO_EXTRA.get(version)
        if extra is None:
            raise cur.fail(f"unsupported sound description version {version}")
        cur.skip(extra, "QuickTime sound fields")
        kids = _children(raw, cur.pos, what)
        es = asc = None
        if b"esds" in kids:
            esds = Cursor(kids[b"esds"], f"{what} esds")
            esds.full_box()
            es = EsDescriptor.parse(esds.rest())
            if fourcc == b"mp4a" and es.object_type == 0x40 and es.decoder_specific_info:
                asc = parse_audio_specific_config(es.decoder_specific_info)
                sample_rate = asc.output_rate
                channels = asc.channels or channels
        return SampleEntry(
            raw,
            handler,
            channels=channels,
            sample_rate=sample_rate,
            es=es,
            audio_config=asc,
        )
    if handler == META and fourcc == b"metx":
        cur.skip(8, "SampleEntry fields")
        encoding = cur.cstring("content_encoding")
        namespace = cur.cstring("namespace")
        location = cur.cstring("schema_location") if cur.remaining else ""
        return SampleEntry(
            raw,
            handler,
            content_encoding=encoding,
            namespace=namespace,
            schema_location=location,
        )
    return SampleEntry(raw, handler)
