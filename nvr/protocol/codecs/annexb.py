"""NAL unit framing shared by H.264 and H.265.

The store and MP4 keep an access unit as 4-byte big-endian length-prefixed NAL units (the
``mdat`` form; ISO/IEC 14496-15 also allows 1 and 2 bytes); encoders, decoders and ``.h264``
files speak Annex B start codes. These helpers
convert between the two and the plain list of NAL units.
"""

from __future__ import annotations

from collections.abc import Iterable

from nvr.protocol.errors import CodecError

START_CODE = b"\x00\x00\x00\x01"
_SHORT_START_CODE = b"\x00\x00\x01"


def split_annexb(data: bytes) -> list[bytes]:
    """Split an Annex B byte stream (00 00 01 / 00 00 00 01 start codes) into NAL units.

    Zero bytes before a start code (the 4-byte form, trailing_zero_8bits) are not part of the
    NAL unit before it. Data with no start code at all is an error unless it is only zeros.
    """
    pos = data.find(_SHORT_START_CODE)
    if pos < 0:
        if data.strip(b"\x00"):
            raise CodecError("Annex B: no start code")
        return []
    out: list[bytes] = []
    pos += 3
    while True:
        nxt = data.find(_SHORT_START_CODE, pos)
        nal = data[pos : len(data) if nxt < 0 else nxt].rstrip(b"\x00")
        if nal:
            out.append(nal)
        if nxt < 0:
            return out
        pos = nxt + 3


def nals_to_annexb(nals: Iterable[bytes]) -> bytes:
    """Join NAL units with 4-byte start codes (what decoders and ``.h264`` files expect)."""
    return b"".join(START_CODE + bytes(nal) for nal in nals)


def nals_to_length_prefixed(nals: Iterable[bytes], length_size: int = 4) -> bytes:
    """Join NAL units into the storage form: each behind its size as a ``length_size``-byte
    big-endian integer (4 in the store and our MP4 samples; 2 in ``avcC``/``hvcC`` lists)."""
    parts: list[bytes] = []
    for nal in nals:
        parts.append(len(nal).to_bytes(length_size, "big"))
        parts.append(nal)
    return b"".join(parts)


def length_prefixed_to_nals(data: bytes, length_size: int = 4) -> list[bytes]:
    """Split the storage form into NAL units; a zero or overrunning length is an error."""
    out: list[bytes] = []
    pos = 0
    end = len(data)
    while pos < end:
        if pos + length_size > end:
            raise CodecError("truncated NAL length prefix")
        size = int.from_bytes(data[pos : pos + length_size], "big")
        pos += length_size
        if size == 0 or pos + size > end:
            raise CodecError(f"bad NAL length {size} at offset {pos - length_size}")
        out.append(data[pos : pos + size])
        pos += size
    return out


def annexb_to_length_prefixed(data: bytes) -> bytes:
    """An Annex B access unit in storage form."""
    return nals_to_length_prefixed(split_annexb(data))


def length_prefixed_to_annexb(data: bytes) -> bytes:
    """A stored access unit as Annex B, for a decoder."""
    return nals_to_annexb(length_prefixed_to_nals(data))
