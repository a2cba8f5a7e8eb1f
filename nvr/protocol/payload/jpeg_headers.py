"""JPEG interchange-format syntax: the standard tables, marker segments, and a header parser.

RTP/JPEG (RFC 2435) sends only the entropy-coded scan plus a few numbers, so the receiver has to
rebuild the headers and the sender has to take them apart; both directions live in ``jpeg.py``,
the JPEG syntax they share lives here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from nvr.protocol.payload.base import PayloadError

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
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM, RSTn: no length field

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
        raise PayloadError("JPEG marker segment too long")
    return bytes((0xFF, marker)) + (len(body) + 2).to_bytes(2, "big") + body


STANDARD_DHT = segment(DHT, b"".join(STANDARD_HUFFMAN_TABLES))


@lru_cache(maxsize=128)
def quant_tables_for_q(q: int) -> bytes:
    """RFC 2435 Appendix A: luma and chroma tables (zigzag) scaled for quality ``q`` (1-99)."""
    q = min(max(q, 1), 99)
    scale = 5000 // q if q < 50 else 200 - 2 * q
    return bytes(min(max((v * scale + 50) // 100, 1), 255) for v in (*LUMA_QUANT, *CHROMA_QUANT))


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


def split_segments(data: bytes | memoryview) -> tuple[list[tuple[int, bytes]], int]:
    """Marker segments (marker, whole segment bytes) up to and including SOS, and where they end.

    Fill bytes (0xFF) between segments are skipped, as JPEG allows and the ONVIF extension uses
    for padding; a truncated segment raises PayloadError.
    """
    out: list[tuple[int, bytes]] = []
    pos, end = 0, len(data)
    while pos < end:
        if data[pos] != 0xFF:
            raise PayloadError(f"JPEG marker expected at offset {pos}")
        while pos < end and data[pos] == 0xFF:
            pos += 1
        if pos == end:
            break  # trailing padding
        marker = data[pos]
        start = pos - 1
        pos += 1
        if marker in (SOI, EOI) or marker in _STANDALONE:
            out.append((marker, bytes(data[start:pos])))
            continue
        if pos + 2 > end:
            raise PayloadError("truncated JPEG marker segment")
        length = (data[pos] << 8) | data[pos + 1]
        if length < 2 or pos + length > end:
            raise PayloadError(f"bad JPEG segment length {length}")
        pos += length
        out.append((marker, bytes(data[start:pos])))
        if marker == SOS:
            break
    return out, pos


@dataclass(slots=True)
class JpegImage:
    """The parts of a baseline JPEG that RTP/JPEG cares about."""

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
    """Parse a single-scan JPEG; raises PayloadError for anything RTP/JPEG cannot carry."""
    if data[:2] != b"\xff\xd8":
        raise PayloadError("not a JPEG (no SOI)")
    img = JpegImage()
    segs, end = split_segments(memoryview(data)[2:])
    if not segs or segs[-1][0] != SOS:
        raise PayloadError("JPEG without a scan")
    for marker, seg in segs:
        body = seg[4:]
        if marker in SOF_MARKERS:
            if marker not in (SOF0, SOF1):
                raise PayloadError(f"JPEG process SOF{marker - 0xC0} is not sequential Huffman")
            if len(body) < 6 or body[0] != 8 or len(body) < 6 + 3 * body[5]:
                raise PayloadError("bad JPEG frame header")
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
                    raise PayloadError("bad JPEG quantization table")
                img.quant[tid] = (precision, body[pos + 1 : pos + 1 + size])
                pos += 1 + size
        elif marker == DHT:
            pos = 0
            while pos < len(body):
                if pos + 17 > len(body):
                    raise PayloadError("bad JPEG Huffman table")
                size = 17 + sum(body[pos + 1 : pos + 17])
                if pos + size > len(body):
                    raise PayloadError("bad JPEG Huffman table")
                img.huffman.append(body[pos : pos + size])
                pos += size
        elif marker == DRI:
            if len(body) != 2:
                raise PayloadError("bad JPEG restart interval")
            img.restart_interval = int.from_bytes(body, "big")
        elif marker == SOS:
            n = body[0] if body else 0
            if len(body) != 4 + 2 * n or body[-3:] != b"\x00\x3f\x00":
                raise PayloadError("JPEG scan is not a single sequential scan")
            img.scan_components = [(body[1 + 2 * i], body[2 + 2 * i]) for i in range(n)]
            img.sos = seg
        if marker in SOF_MARKERS or marker in (DQT, DHT, DRI, APP14):
            img.header_segments.append((marker, seg))
    if not img.components or not img.width or not img.height:
        raise PayloadError("JPEG without frame size")
    scan_start = 2 + end
    scan_end = data.rfind(b"\xff\xd9", scan_start)
    img.scan = memoryview(data)[scan_start : scan_end if scan_end >= 0 else len(data)]
    if not img.scan:
        raise PayloadError("JPEG with empty scan")
    return img


def jpeg_dimensions(data: bytes) -> tuple[int, int]:
    """(width, height) of a JPEG, for the codec sample entry."""
    img = parse_jpeg(data)
    return img.width, img.height
