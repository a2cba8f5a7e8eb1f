"""AAC: the MPEG-4 ``esds`` elementary stream descriptor (AudioSpecificConfig: ``codecs.aac``)."""

from __future__ import annotations

from dataclasses import dataclass

from nvr.protocol.codecs.aac import SAMPLE_RATES, AacConfig, parse_audio_specific_config
from nvr.protocol.mp4.cursor import Cursor

__all__ = [
    "OBJECT_TYPE_AAC",
    "SAMPLE_RATES",
    "STREAM_TYPE_AUDIO",
    "AudioSpecificConfig",
    "EsDescriptor",
    "parse_audio_specific_config",
]

AudioSpecificConfig = AacConfig  # the name this package has always exported
OBJECT_TYPE_AAC = 0x40  # objectTypeIndication for MPEG-4 audio
STREAM_TYPE_AUDIO = 0x05

_TAG_ES = 0x03
_TAG_DECODER_CONFIG = 0x04
_TAG_DECODER_SPECIFIC = 0x05
_TAG_SL_CONFIG = 0x06


def _descriptor(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n >= 1 << 28:
        raise ValueError("descriptor too large")
    size = bytearray()
    for shift in (21, 14, 7):
        if n >> shift:
            size.append(0x80 | ((n >> shift) & 0x7F))
    size.append(n & 0x7F)
    return bytes((tag,)) + bytes(size) + body


def _read_descriptor(cur: Cursor) -> tuple[int, Cursor]:
    tag = cur.u8("descriptor tag")
    size = 0
    for _ in range(4):
        b = cur.u8("descriptor size")
        size = (size << 7) | (b & 0x7F)
        if not b & 0x80:
            break
    else:
        raise cur.fail(f"descriptor 0x{tag:02x}: size field longer than 4 bytes")
    body = Cursor(cur.data, f"{cur.what} descriptor 0x{tag:02x}", cur.pos, cur.pos + size)
    cur.skip(size, f"descriptor 0x{tag:02x} body")
    return tag, body


@dataclass(frozen=True)
class EsDescriptor:
    """ES_Descriptor as stored in ``esds`` (ISO/IEC 14496-1 7.2.6.5, 14496-14 5.6)."""

    decoder_specific_info: bytes
    object_type: int = OBJECT_TYPE_AAC
    stream_type: int = STREAM_TYPE_AUDIO
    buffer_size: int = 0
    max_bitrate: int = 0
    avg_bitrate: int = 0
    es_id: int = 0

    def encode(self) -> bytes:
        """The ``esds`` payload after version/flags."""
        config = (
            bytes((self.object_type, (self.stream_type << 2) | 1))
            + self.buffer_size.to_bytes(3, "big")
            + self.max_bitrate.to_bytes(4, "big")
            + self.avg_bitrate.to_bytes(4, "big")
            + _descriptor(_TAG_DECODER_SPECIFIC, self.decoder_specific_info)
        )
        body = (
            self.es_id.to_bytes(2, "big")
            + b"\x00"
            + _descriptor(_TAG_DECODER_CONFIG, config)
            + _descriptor(_TAG_SL_CONFIG, b"\x02")
        )
        return _descriptor(_TAG_ES, body)

    @classmethod
    def parse(cls, payload: bytes) -> EsDescriptor:
        """Parse the ``esds`` payload after version/flags."""
        tag, es = _read_descriptor(Cursor(payload, "esds"))
        if tag != _TAG_ES:
            raise es.fail("first descriptor is not an ES_Descriptor")
        es_id = es.u16("ES_ID")
        flags = es.u8("ES flags")
        if flags & 0x80:
            es.skip(2, "dependsOn_ES_ID")
        if flags & 0x40:
            es.skip(es.u8("URLlength"), "URLstring")
        if flags & 0x20:
            es.skip(2, "OCR_ES_Id")
        while es.remaining:
            tag, config = _read_descriptor(es)
            if tag != _TAG_DECODER_CONFIG:
                continue
            object_type = config.u8("objectTypeIndication")
            stream_type = config.u8("streamType") >> 2
            buffer_size = config.u24("bufferSizeDB")
            max_bitrate = config.u32("maxBitrate")
            avg_bitrate = config.u32("avgBitrate")
            info = b""
            while config.remaining:
                sub_tag, sub = _read_descriptor(config)
                if sub_tag == _TAG_DECODER_SPECIFIC:
                    info = sub.rest()
                    break
            return cls(info, object_type, stream_type, buffer_size, max_bitrate, avg_bitrate, es_id)
        raise es.fail("no DecoderConfigDescriptor")
