"""JPEG: picture size from the SOF marker, for the ``jpeg`` sample entry and ``tkhd``."""

from __future__ import annotations

from nvr.protocol.mp4.errors import Mp4Error

# SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC).
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})


def jpeg_dimensions(image: bytes) -> tuple[int, int]:
    """(width, height) of a baseline or progressive JPEG image."""
    if image[:2] != b"\xff\xd8":
        raise Mp4Error("JPEG: missing SOI marker")
    pos = 2
    n = len(image)
    while pos + 4 <= n:
        if image[pos] != 0xFF:
            raise Mp4Error(f"JPEG: expected a marker at offset {pos}")
        marker = image[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _STANDALONE:
            pos += 2
            continue
        if marker in (0xD9, 0xDA):  # EOI / SOS before any SOF
            break
        length = int.from_bytes(image[pos + 2 : pos + 4], "big")
        if length < 2:
            raise Mp4Error(f"JPEG: marker 0x{marker:02x} with length {length}")
        if marker in _SOF:
            if length < 7 or pos + 9 > n:
                raise Mp4Error("JPEG: truncated SOF segment")
            height = int.from_bytes(image[pos + 5 : pos + 7], "big")
            width = int.from_bytes(image[pos + 7 : pos + 9], "big")
            if width == 0 or height == 0:
                raise Mp4Error(f"JPEG: SOF gives an empty picture ({width}x{height})")
            return width, height
        pos += 2 + length
    raise Mp4Error("JPEG: no SOF marker before the scan data")
