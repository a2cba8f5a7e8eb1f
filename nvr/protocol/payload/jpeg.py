"""JPEG over RTP (RFC 2435) with the ONVIF JPEG header extension (streaming.md §6).

The depacketizer rebuilds a complete JFIF-free baseline JPEG per frame: headers derived from the
RTP/JPEG header (types 0/1, restart markers, Q tables 1-99 or in-band Q 128-255), or taken from
the ONVIF extension when the camera sends one, with ONVIF's inheritance rules (Q=0 and width=0
reuse the previous frame's tables and frame header; extension Huffman tables persist). The
packetizer does the reverse and falls back to the extension for anything plain RFC 2435 cannot
describe (odd or large sizes, other sampling, non-standard Huffman tables, greyscale).

Extensions are (profile, data) pairs: profile 0xFFD8 on the first packet of a frame, 0xFFFF on
later ones, data the marker segments padded to whole words. On input the replay form (profile
0xABAC with the JPEG block after the three replay words, replay.md B.5.2) is accepted too; to
send JPEG in replay, append ``Extension`` to the replay words the same way.
"""

from __future__ import annotations

from functools import lru_cache

from nvr.protocol.codecs.jpeg import (
    DHT,
    DQT,
    DRI,
    EOI,
    SOF0,
    SOF1,
    SOF_MARKERS,
    SOI,
    SOS,
    STANDARD_DHT,
    STANDARD_HUFFMAN_TABLES,
    JpegImage,
    dqt_segment,
    dri_segment,
    parse_jpeg,
    sof_segment,
    sos_segment,
    split_segments,
)
from nvr.protocol.payload.base import (
    BaseDepacketizer,
    Extension,
    HeaderExtension,
    PayloadError,
    PayloadPacket,
)
from nvr.protocol.payload.jpeg_headers import quant_tables_for_q

_SOI = b"\xff\xd8"
_EOI = b"\xff\xd9"
_PROFILE_FIRST = 0xFFD8
_PROFILE_NEXT = 0xFFFF
_PROFILE_REPLAY = 0xABAC
_MAX_DIMENSION = 2040  # 255 blocks of 8 pixels
_STANDARD_HUFFMAN = frozenset(STANDARD_HUFFMAN_TABLES)


def _components(jpeg_type: int) -> list[tuple[int, int, int]]:
    """RFC 2435 types 0 (4:2:2) and 1 (4:2:0): Y uses table 0, Cb and Cr table 1."""
    return [(1, 0x21 if jpeg_type == 0 else 0x22, 0), (2, 0x11, 1), (3, 0x11, 1)]


def _jpeg_extension(ext: HeaderExtension) -> tuple[bool, memoryview] | None:
    """(first packet of the frame?, JPEG marker data) from an RTP header extension."""
    profile = ext.profile
    raw = ext.data
    data = memoryview(raw if isinstance(raw, bytes) else bytes(raw))  # kept until the frame ends
    if profile == _PROFILE_REPLAY:  # the JPEG block follows the three replay words
        if len(data) < 16:
            return None
        profile = (data[12] << 8) | data[13]
        data = data[16 : 16 + 4 * ((data[14] << 8) | data[15])]
    if profile not in (_PROFILE_FIRST, _PROFILE_NEXT):
        return None
    return profile == _PROFILE_FIRST, data


def _sos_for(sof: bytes) -> bytes:
    """The scan header RFC 2435 implies for a frame header: all its components, in order."""
    if len(sof) < 10 or len(sof) < 10 + 3 * sof[9]:
        raise PayloadError("bad JPEG frame header")
    return sos_segment([sof[10 + 3 * i] for i in range(sof[9])])


def _quant_from_header(precision: int, data: bytes) -> list[tuple[int, int, bytes]]:
    """Split an RFC 2435 quantization table header into (id, precision, table) entries."""
    tables: list[tuple[int, int, bytes]] = []
    pos = 0
    while pos < len(data) and len(tables) < 4:
        p = (precision >> len(tables)) & 1
        size = 128 if p else 64
        if pos + size > len(data):
            raise PayloadError("truncated quantization table")
        tables.append((len(tables), p, data[pos : pos + size]))
        pos += size
    if len(tables) == 1:  # one table for all components
        tables.append((1, tables[0][1], tables[0][2]))
    return tables


class JpegDepacketizer(BaseDepacketizer):
    """RTP/JPEG packets -> complete JPEG images (every frame is a key frame).

    A frame is assembled only from its first packet on (fragment offset 0 and, on streams that
    use the ONVIF extension, the 0xFFD8 extension), with contiguous fragment offsets; anything
    else drops the frame.
    """

    def __init__(self, clock_rate: int = 90000) -> None:
        super().__init__(clock_rate)
        self._parts: list[bytes | memoryview] | None = None  # scan data (and later extensions)
        self._scan = 0  # scan bytes received, i.e. the next expected fragment offset
        self._type = self._q = self._width = self._height = 0
        self._restart = 0
        self._qtables: tuple[int, bytes] | None = None  # (precision, data) of this frame
        self._ext: list[memoryview] = []  # extension data before the scan
        self._q_cache: dict[int, tuple[int, bytes]] = {}  # RFC 2435: tables sent once per Q
        self._prev_dqt: tuple[bytes, bool] | None = None  # ONVIF: Q=0 reuses previous tables
        self._prev_sof: bytes | None = None  # ONVIF: width=height=0 reuses the frame header
        self._ext_dht: bytes | None = None  # ONVIF: Huffman tables sent once persist
        self._uses_extension = False
        self._plain_key: tuple[object, ...] | None = None
        self._plain_header = b""
        self._prev_ts: int | None = None
        self._prev_marker = True
        self._gap_ts: int | None = None  # timestamp of the frame a gap cut into
        self._resync = False

    def _packet(
        self, payload: bytes, marker: bool, ts: int, extension: HeaderExtension | None
    ) -> None:
        if self._parts is not None and ts != self._ts:
            self._complete()  # the camera forgot the marker; sequence numbers were contiguous
        prev_marker = self._prev_marker
        self._prev_ts, self._prev_marker = ts, marker
        ext = _jpeg_extension(extension) if extension else None
        if len(payload) < 8:
            if payload:
                self._malformed("RTP/JPEG payload shorter than its header")
            elif self._parts is not None:  # a packet carrying only extension data
                if ext:
                    self._add_extension(ext[1])
                if marker:
                    self._complete()
            return
        offset = int.from_bytes(payload[1:4], "big")
        jpeg_type, q = payload[4], payload[5]
        pos = 8
        restart = 0
        if 64 <= jpeg_type < 128:
            if len(payload) < 12:
                self._malformed("truncated restart marker header")
                return
            restart = (payload[8] << 8) | payload[9]
            pos = 12
        if self._parts is None:
            if offset or (ts == self._skip_ts) or not self._starts_frame(ext, ts, prev_marker):
                self._skip(ts, marker)
                return
            self._parts = []
            self._ts = ts
            self._scan = 0
            self._type, self._q, self._width, self._height = jpeg_type, q, payload[6], payload[7]
            self._restart = restart
            self._qtables = None
            self._ext = []
        elif offset != self._scan or jpeg_type != self._type or q != self._q:
            self._malformed("RTP/JPEG fragment does not continue the frame")
            return
        if q >= 128 and offset == 0:
            if pos + 4 > len(payload):
                self._malformed("truncated quantization table header")
                return
            length = (payload[pos + 2] << 8) | payload[pos + 3]
            end = pos + 4 + length
            if end > len(payload):
                self._malformed("truncated quantization tables")
                return
            if length:
                self._qtables = (payload[pos + 1], payload[pos + 4 : end])
            pos = end
        if ext:
            self._add_extension(ext[1])
        if pos < len(payload):
            self._parts.append(memoryview(payload)[pos:])
            self._scan += len(payload) - pos
        if marker:
            self._complete()

    def _starts_frame(
        self, ext: tuple[bool, memoryview] | None, ts: int, prev_marker: bool
    ) -> bool:
        """Whether a packet at fragment offset 0 is really the first one of its frame."""
        if ext is not None:
            self._uses_extension = True
            if not ext[0]:
                return False  # the 0xFFD8 packet was lost
        if self._resync:
            if ts == self._gap_ts and not prev_marker:
                return False
            if self._uses_extension and ext is None:
                return False  # its header extension may have been lost
            self._resync = False
        return True

    def _add_extension(self, data: memoryview) -> None:
        if self._scan:
            assert self._parts is not None
            self._parts.append(data)
        else:
            self._ext.append(data)

    def _complete(self) -> None:
        parts = self._parts
        if parts is None:
            return
        if not self._scan:
            self._malformed("RTP/JPEG frame without scan data")
            return
        try:
            header = self._header()
        except PayloadError as exc:
            self._malformed(str(exc))
            return
        tail = () if bytes(parts[-1][-2:]) == _EOI else (_EOI,)
        self._emit(b"".join([header, *parts, *tail]), self._ts)
        self._parts = None

    def _dqt(self) -> tuple[bytes, bool]:
        """The DQT segment for this frame and whether it holds 16-bit tables."""
        q = self._q
        if q >= 128:
            tables = self._qtables
            if tables is None:
                tables = self._q_cache.get(q)
                if tables is None:
                    raise PayloadError(f"no quantization tables received for Q={q}")
            else:
                self._q_cache[q] = tables
            return dqt_segment(_quant_from_header(*tables)), bool(tables[0] & 0x0F)
        if 0 < q < 100:
            t = quant_tables_for_q(q)
            return dqt_segment([(0, 0, t[:64]), (1, 0, t[64:])]), False
        if q == 0 and self._prev_dqt is not None:
            return self._prev_dqt
        raise PayloadError(f"unusable RTP/JPEG Q={q}")

    def _sof(self, sixteen_bit: bool) -> bytes:
        if not self._width or not self._height:
            if self._prev_sof is None:
                raise PayloadError("RTP/JPEG frame without size")
            return self._prev_sof
        base_type = self._type & 0x3F if self._type < 128 else -1
        if base_type not in (0, 1):
            raise PayloadError(f"RTP/JPEG type {self._type} needs a frame header extension")
        # Baseline allows only 8-bit tables; 16-bit ones need the extended process.
        return sof_segment(
            SOF1 if sixteen_bit else SOF0,
            self._width * 8,
            self._height * 8,
            _components(base_type),
        )

    def _header(self) -> bytes:
        """SOI and all marker segments up to and including SOS for the current frame."""
        if self._ext:
            return self._header_with_extension()
        # Q=0 or a zero size are ONVIF's "as the previous frame": nothing may be cached then.
        inherit = not (self._q and self._width and self._height)
        key = (self._type, self._q, self._width, self._height, self._restart, self._qtables)
        if not inherit and key == self._plain_key:
            return self._plain_header
        dqt = self._dqt()
        sof = self._sof(dqt[1])
        parts = [_SOI, dqt[0], sof, (inherit and self._ext_dht) or STANDARD_DHT]
        if self._restart:
            parts.append(dri_segment(self._restart))
        parts.append(_sos_for(sof))
        self._prev_dqt, self._prev_sof = dqt, sof
        header = b"".join(parts)
        if not inherit:
            self._plain_key, self._plain_header = key, header
        return header

    def _header_with_extension(self) -> bytes:
        segs, _ = split_segments(b"".join(self._ext))
        out = [_SOI]
        dqt: list[bytes] = []
        dht: list[bytes] = []
        sof: bytes | None = None
        sos: bytes | None = None
        has_dri = False
        for marker, seg in segs:
            if marker == SOS:
                sos = seg
            elif marker not in (SOI, EOI):
                out.append(seg)
                if marker == DQT:
                    dqt.append(seg)
                elif marker == DHT:
                    dht.append(seg)
                elif marker in SOF_MARKERS:
                    sof = seg
                elif marker == DRI:
                    has_dri = True
        if dqt:
            joined = b"".join(dqt)
            self._prev_dqt = (joined, any(seg[4] >> 4 for seg in dqt))
        else:
            self._prev_dqt = self._dqt()
            out.append(self._prev_dqt[0])
        if dht:
            self._ext_dht = b"".join(dht)
        else:
            out.append(self._ext_dht or STANDARD_DHT)
        if sof is None:
            sof = self._sof(self._prev_dqt[1])
            out.append(sof)
        self._prev_sof = sof
        if self._restart and not has_dri:
            out.append(dri_segment(self._restart))
        out.append(sos or _sos_for(sof))
        self._plain_key = None
        return b"".join(out)

    def _has_partial(self) -> bool:
        return self._parts is not None

    def _reset(self) -> None:
        self._parts = None

    def _lost(self) -> None:
        self._resync = True
        self._gap_ts = self._prev_ts


class JpegPacketizer:
    """JPEG images -> RTP/JPEG payloads (Q=255 with in-band tables, ONVIF extension if needed)."""

    encoding_name = "JPEG"
    clock_rate = 90000

    def __init__(self, mtu: int = 1400) -> None:
        if mtu < 160:
            raise ValueError(f"MTU {mtu} too small for RTP/JPEG")
        self.mtu = mtu

    def fmtp(self) -> dict[str, str]:
        return {}

    def packetize(self, data: bytes) -> list[PayloadPacket]:
        img = parse_jpeg(data)
        if 0 not in img.quant:
            raise PayloadError("JPEG without quantization table 0")
        comps = img.components
        jpeg_type = 1 if comps[0][1] == 0x22 else 0
        width = img.width // 8 if img.width % 8 == 0 and img.width <= _MAX_DIMENSION else 0
        height = img.height // 8 if img.height % 8 == 0 and img.height <= _MAX_DIMENSION else 0
        table_ids = [c[2] for c in comps]
        if table_ids == [0, 0, 0]:  # one table for all: send it as both luma and chroma
            tables = [img.quant[0], img.quant[0]]
        else:
            tables = [img.quant[i] for i in (0, 1) if i in img.quant]
        plain = (
            [c[:2] for c in comps] == [c[:2] for c in _components(jpeg_type)]
            and table_ids in ([0, 1, 1], [0, 0, 0])
            and img.scan_components == [(1, 0x00), (2, 0x11), (3, 0x11)]
            and all(t in _STANDARD_HUFFMAN for t in img.huffman)
            and len(tables) == 2
            and width
            and height
        )
        restart = b""
        if img.restart_interval:
            jpeg_type += 64
            restart = img.restart_interval.to_bytes(2, "big") + b"\xff\xff"  # F=L=1: whole frame
        precision = sum(p << i for i, (p, _) in enumerate(tables))
        qdata = b"".join(t for _, t in tables)
        q = _standard_q(qdata) if plain and not precision else None
        if q is None:
            q = 255
            qheader = bytes((0, precision)) + len(qdata).to_bytes(2, "big") + qdata
        else:
            qheader = b""  # the receiver computes these tables from Q
        kind = bytes((jpeg_type, q, width, height))
        ext = b"" if plain else _extension_data(img)
        return self._split(kind, restart, qheader, ext, img.scan)

    def _split(
        self, kind: bytes, restart: bytes, qheader: bytes, ext: bytes, scan: memoryview
    ) -> list[PayloadPacket]:
        """Lay out the packets: extension data first, then scan data by fragment offset."""
        mtu = self.mtu
        out: list[PayloadPacket] = []
        first_header = b"\x00\x00\x00\x00" + kind + restart + qheader
        profile = _PROFILE_FIRST
        block: Extension | None = None
        room = (mtu - len(first_header) - 4) & ~3
        while ext:  # what does not fit beside the first scan data goes in leading packets
            if len(first_header) + 4 + len(ext) < mtu:
                block = Extension(profile, ext)
                break
            if room < 4:
                raise ValueError(f"MTU {mtu} too small for these JPEG tables")
            out.append(PayloadPacket(first_header, False, Extension(profile, ext[:room])))
            ext = ext[room:]
            profile = _PROFILE_NEXT
        offset = 0
        total = len(scan)
        while offset < total:
            header = b"\x00" + offset.to_bytes(3, "big") + kind + restart
            if offset == 0:
                header += qheader
            room = mtu - len(header) - (4 + len(block.data) if block else 0)
            if room <= 0:
                raise ValueError(f"MTU {mtu} too small for these JPEG headers")
            end = min(offset + room, total)
            out.append(PayloadPacket(b"".join((header, scan[offset:end])), end == total, block))
            offset = end
            block = None
        return out


@lru_cache(maxsize=1)
def _q_by_tables() -> dict[bytes, int]:
    return {quant_tables_for_q(q): q for q in range(1, 100)}


def _standard_q(tables: bytes) -> int | None:
    """The RFC 2435 Q (1-99) whose computed tables are exactly ``tables``, if any."""
    return _q_by_tables().get(tables)


def _extension_data(img: JpegImage) -> bytes:
    """The ONVIF extension content: the header segments, 0xFF fill, SOS last."""
    data = b"".join(seg for _, seg in img.header_segments)
    return data + b"\xff" * (-(len(data) + len(img.sos)) % 4) + img.sos
