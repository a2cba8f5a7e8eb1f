"""JPEG interchange-format syntax (ITU-T T.81): markers, the standard tables, marker segments,
header parsing and the picture size.

RTP/JPEG rebuilds and takes apart these headers (``nvr.protocol.payload.jpeg``); the MP4 code
needs the picture size for the ``jpeg`` sample entry.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from nvr.protocol.errors import CodecError

__all__ = [
    "APP14",
    "CHROMA_QUANT",
    "DHT",
    "DQT",
    "DRI",
    "EOI",
    "LUMA_QUANT",
    "SOF0",
    "SOF1",
    "SOF_MARKERS",
    "SOI",
    "SOS",
    "STANDALONE",
    "STANDARD_DHT",
    "STANDARD_HUFFMAN_TABLES",
    "JpegImage",
    "dqt_segment",
    "dri_segment",
    "iter_markers",
    "jpeg_dimensions",
    "parse_jpeg",
    "segment",
    "sof_segment",
    "sos_segment",
    "split_segments",
]

SOI = 0xD8
EOI = 0xD9
SOS = 0xDA
DQT = 0xDB
DHT = 0xC4
DRI = 0xDD
SOF0 = 0xC0
SOF1 = 0xC1
APP14 = 0xEE
# Start-of-frame markers; C4 (DHT), C8 (JPG) and CC (DAC) share the range but are not SOFs.
SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
STANDALONE = frozenset({SOI, EOI, 0x01, *range(0xD0, 0xD8)})  # no length field

# ITU-T T.81 Annex K example tables (K.1, K.2) in zigzag order, i.e. RFC 2435 Q=50.
LUMA_QUANT = bytes.fromhex(
    "100b0c0e0c0a100e0d0e1211101318281a181616183123251d283a333d3c3933"
    "383740485c4e404457453738506d51575f626768673e4d71797064785c656763"
)
CHROMA_QUANT = bytes.fromhex("1112121815182f1a1a2f634238426363") + b"\x63" * 48

# Annex K.3 Huffman tables as DHT table bodies (class/id byte, 16 code counts, symbols).
_AC_LUMA_SYMBOLS = bytes.fromhex(
    "01020300041105122131410613516107227114328191a1082342b1c11552d1f0"
    "2433627282090a161718191a25262728292a3435363738393a43444546474849"
    "4a535455565758595a636465666768696a737475767778797a83848586878889"
    "8a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5"
    "c6c7c8c9cad2d3d4d5d6d7d8d9dae1e2e3e4e5e6e7e8e9eaf1f2f3f4f5f6f7f8f9fa"
)
_AC_CHROMA_SYMBOLS = bytes.fromhex(
    "000102031104052131061241510761711322328108144291a1b1c109233352f0"
    "156272d10a162434e125f11718191a262728292a35363738393a434445464748"
    "494a535455565758595a636465666768696a737475767778797a828384858687"
    "88898a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3"
    "c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae2e3e4e5e6e7e8e9eaf2f3f4f5f6f7f8f9fa"
)
_DC_SYMBOLS = bytes(range(12))
STANDARD_HUFFMAN_TABLES = (
    bytes.fromhex("0000010501010101010100000000000000") + _DC_SYMBOLS,
    bytes.fromhex("100002010303020403050504040000017d") + _AC_LUMA_SYMBOLS,
    bytes.fromhex("0100030101010101010101010000000000") + _DC_SYMBOLS,
    bytes.fromhex("1100020102040403040705040400010277") + _AC_CHROMA_SYMBOLS,
)


def segment(marker: int, body: bytes) -> bytes:
    """A marker segment: FF, marker, 16-bit length (counting itself), body."""
    if len(body) > 65533:
        raise CodecError("JPEG marker segment too long")
    return bytes((0xFF, marker)) + (len(body) + 2).to_bytes(2, "big") + body


STANDARD_DHT = segment(DHT, b"".join(STANDARD_HUFFMAN_TABLES))


def dqt_segment(tables: list[tuple[int, int, bytes]]) -> bytes:
    """One DQT segment holding (id, precision 0=8-bit/1=16-bit, 64 or 128 bytes) tables."""
    return segment(DQT, b"".join(bytes(((p << 4) | i,)) + t for i, p, t in tables))


def sof_segment(
    marker: int, width: int, height: int, components: list[tuple[int, int, int]]
) -> bytes:
    """Frame header with (id, sampling HV byte, quant table id) per component."""
    body = bytearray((8,))
    body += height.to_bytes(2, "big") + width.to_bytes(2, "big") + bytes((len(components),))
    for comp in components:
        body += bytes(comp)
    return segment(marker, bytes(body))


def sos_segment(component_ids: list[int]) -> bytes:
    """Scan header for a sequential scan: Huffman tables 0 for the first component, 1 after."""
    body = bytearray((len(component_ids),))
    for n, cid in enumerate(component_ids):
        body += bytes((cid, 0x00 if n == 0 else 0x11))
    return segment(SOS, bytes(body + b"\x00\x3f\x00"))


def dri_segment(interval: int) -> bytes:
    return segment(DRI, interval.to_bytes(2, "big"))


def iter_markers(data: bytes | memoryview, pos: int = 0) -> Iterator[tuple[int, int, int]]:
    """(marker, offset of its 0xFF, offset just past its segment) for each marker from ``pos``.

    Fill bytes (0xFF) before a marker are skipped, as JPEG allows and the ONVIF extension uses
    for padding. The end offset of the last segment may lie beyond ``data`` (a truncated
    segment): callers that need the whole segment check it.
    """
    end = len(data)
    while pos < end:
        if data[pos] != 0xFF:
            raise CodecError(f"JPEG: expected a marker at offset {pos}")
        while pos < end and data[pos] == 0xFF:
            pos += 1
        if pos == end:
            return  # trailing fill bytes
        marker = data[pos]
        start = pos - 1
        pos += 1
        if marker not in STANDALONE:
            if pos + 2 > end:
                raise CodecError(f"JPEG: truncated marker 0x{marker:02x} segment")
            length = (data[pos] << 8) | data[pos + 1]
            if length < 2:
                raise CodecError(f"JPEG: marker 0x{marker:02x} with length {length}")
            pos += length
        yield marker, start, pos


def split_segments(data: bytes | memoryview) -> tuple[list[tuple[int, bytes]], int]:
    """Marker segments (marker, whole segment bytes) up to and including SOS, and where they end
    (the end of the data when there is no SOS); a truncated segment raises CodecError."""
    out: list[tuple[int, bytes]] = []
    for marker, start, end in iter_markers(data):
        if end > len(data):
            raise CodecError(f"JPEG: marker 0x{marker:02x} segment overruns the data")
        out.append((marker, bytes(data[start:end])))
        if marker == SOS:
            return out, end
    return out, len(data)


def jpeg_dimensions(image: bytes) -> tuple[int, int]:
    """(width, height) from the frame header of any JPEG (baseline, progressive, lossless)."""
    if image[:2] != b"\xff\xd8":
        raise CodecError("JPEG: missing SOI marker")
    for marker, start, end in iter_markers(image, 2):
        if marker in (EOI, SOS):
            break
        if marker in SOF_MARKERS:
            if end - start < 9 or start + 9 > len(image):
                raise CodecError("JPEG: truncated SOF segment")
            height = int.from_bytes(image[start + 5 : start + 7], "big")
            width = int.from_bytes(image[start + 7 : start + 9], "big")
            if width == 0 or height == 0:
                raise CodecError(f"JPEG: SOF gives an empty picture ({width}x{height})")
            return width, height
    raise CodecError("JPEG: no SOF marker before the scan data")


@dataclass(slots=True)
class JpegImage:
    """The header of a single-scan sequential JPEG, taken apart (what RTP/JPEG needs)."""

    sof_marker: int = 0
    width: int = 0
    height: int = 0
    components: list[tuple[int, int, int]] = field(default_factory=list)  # id, HV, Tq
    quant: dict[int, tuple[int, bytes]] = field(default_factory=dict)  # id -> precision, table
    huffman: list[bytes] = field(default_factory=list)  # DHT table bodies
    restart_interval: int = 0
    scan_components: list[tuple[int, int]] = field(default_factory=list)  # id, Td/Ta
    sos: bytes = b""  # the whole SOS segment
    header_segments: list[tuple[int, bytes]] = field(default_factory=list)
    scan: memoryview = field(default_factory=lambda: memoryview(b""))


def parse_jpeg(data: bytes) -> JpegImage:
    """Parse a single-scan sequential (SOF0/SOF1, Huffman) JPEG; anything else, such as a
    progressive image, raises CodecError (RTP/JPEG cannot carry it)."""
    if data[:2] != b"\xff\xd8":
        raise CodecError("not a JPEG (no SOI)")
    img = JpegImage()
    segs, end = split_segments(memoryview(data)[2:])
    if not segs or segs[-1][0] != SOS:
        raise CodecError("JPEG without a scan")
    for marker, seg in segs:
        body = seg[4:]
        if marker in SOF_MARKERS:
            if marker not in (SOF0, SOF1):
                raise CodecError(f"JPEG process SOF{marker - 0xC0} is not sequential Huffman")
            if len(body) < 6 or body[0] != 8 or len(body) < 6 + 3 * body[5]:
                raise CodecError("bad JPEG frame header")
            img.sof_marker = marker
            img.height = int.from_bytes(body[1:3], "big")
            img.width = int.from_bytes(body[3:5], "big")
            img.components = [
                (body[6 + 3 * i], body[7 + 3 * i], body[8 + 3 * i]) for i in range(body[5])
            ]
        elif marker == DQT:
            pos = 0
            while pos < len(body):
                precision, tid = body[pos] >> 4, body[pos] & 15
                size = 128 if precision else 64
                if precision > 1 or tid > 3 or pos + 1 + size > len(body):
                    raise CodecError("bad JPEG quantization table")
                img.quant[tid] = (precision, body[pos + 1 : pos + 1 + size])
                pos += 1 + size
        elif marker == DHT:
            pos = 0
            while pos < len(body):
                if pos + 17 > len(body):
                    raise CodecError("bad JPEG Huffman table")
                size = 17 + sum(body[pos + 1 : pos + 17])
                if pos + size > len(body):
                    raise CodecError("bad JPEG Huffman table")
                img.huffman.append(body[pos : pos + size])
                pos += size
        elif marker == DRI:
            if len(body) != 2:
                raise CodecError("bad JPEG restart interval")
            img.restart_interval = int.from_bytes(body, "big")
        elif marker == SOS:
            n = body[0] if body else 0
            if len(body) != 4 + 2 * n or body[-3:] != b"\x00\x3f\x00":
                raise CodecError("JPEG scan is not a single sequential scan")
            img.scan_components = [(body[1 + 2 * i], body[2 + 2 * i]) for i in range(n)]
            img.sos = seg
        if marker in SOF_MARKERS or marker in (DQT, DHT, DRI, APP14):
            img.header_segments.append((marker, seg))
    if not img.components or not img.width or not img.height:
        raise CodecError("JPEG without frame size")
    scan_start = 2 + end
    scan_end = data.rfind(b"\xff\xd9", scan_start)
    img.scan = memoryview(data)[scan_start : scan_end if scan_end >= 0 else len(data)]
    if not img.scan:
        raise CodecError("JPEG with empty scan")
    return img
