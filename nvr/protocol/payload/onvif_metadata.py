"""ONVIF metadata stream over RTP (streaming.md §7): XML documents split over packets.

A document ends at the packet with the marker bit. Timestamps inside a document may differ
(they are packet creation times), so only the marker, a sequence gap or the start of the next
document (cameras that forget the marker) end one. The ``+gzip`` variant is decompressed, so
the store always holds plain XML.
"""

from __future__ import annotations

import gzip
import re
import zlib

from nvr.protocol.payload.base import BaseDepacketizer, HeaderExtension, PayloadError, PayloadPacket

ENCODING_NAME = "vnd.onvif.metadata"
GZIP_ENCODING_NAME = "vnd.onvif.metadata+gzip"
MAX_DOCUMENT_SIZE = 4 << 20
_XML_START = re.compile(rb"(?:\xef\xbb\xbf)?\s*<(?:\?xml|(?:[\w.-]+:)?MetadataStream\b)")
_XML_DECLARATION = re.compile(rb"(?:\xef\xbb\xbf)?\s*<\?xml")
_GZIP_MAGIC = b"\x1f\x8b"


class OnvifMetadataDepacketizer(BaseDepacketizer):
    """RTP packets -> complete ``tt:MetadataStream`` documents (XML bytes)."""

    def __init__(
        self, clock_rate: int = 90000, gzip: bool = False, max_size: int = MAX_DOCUMENT_SIZE
    ) -> None:
        super().__init__(clock_rate)
        self._gzip = gzip
        self._max_size = max_size
        self._parts: list[bytes] | None = None
        self._size = 0
        self._resync = True  # wait for the start of a document
        self._declared = False  # documents start with an XML declaration
        self._counted = False  # the document being skipped is already counted as dropped

    def _starts_document(self, payload: bytes) -> bool:
        """Whether a packet after a gap begins a document; once the camera's documents have
        shown an XML declaration, only that counts (the root element alone may be what
        follows a lost declaration)."""
        if self._gzip:
            return payload[:2] == _GZIP_MAGIC
        start = _XML_DECLARATION if self._declared else _XML_START
        return start.match(payload) is not None

    def _packet(
        self, payload: bytes, marker: bool, ts: int, extension: HeaderExtension | None
    ) -> None:
        if not payload:
            if marker:
                self._complete()
            return
        if self._parts is None:
            if self._resync and not self._starts_document(payload):
                if not self._counted:  # a document whose start is missing, counted once
                    self._counted = True
                    self.stats.dropped_units += 1
                    if self.stats.units:
                        self._loss = True
                if marker:  # the packet after a marker starts a document
                    self._resync = self._counted = False
                return
            self._resync = False
            self._parts = []
            self._size = 0
            self._ts = ts
        elif self._declared and not self._gzip and _XML_DECLARATION.match(payload):
            self._complete()  # the camera forgot the marker on the previous document
            self._parts, self._size, self._ts = [], 0, ts
        self._parts.append(payload)
        self._size += len(payload)
        if self._size > self._max_size:
            self._malformed("metadata document too large")
        elif marker:
            self._complete()

    def _complete(self) -> None:
        if self._parts is None:
            return
        doc = b"".join(self._parts)
        try:
            if self._gzip:
                doc = _gunzip(doc, self._max_size)
            text = doc.strip()
            if not (text.startswith((b"<", b"\xef\xbb\xbf<")) and text.endswith(b">")):
                raise PayloadError("metadata document is not XML")
        except PayloadError as exc:
            self._malformed(str(exc))
            self._counted = False  # the document ended here; the next one is a new one
            return
        self._parts = None
        self._declared = self._declared or _XML_DECLARATION.match(doc) is not None
        self._emit(doc, self._ts)

    def _has_partial(self) -> bool:
        return self._parts is not None

    def _reset(self) -> None:
        self._counted = self._parts is not None  # _drop just counted it
        self._parts = None

    def _lost(self) -> None:
        self._resync = True


def _gunzip(data: bytes, limit: int) -> bytes:
    """Decompress one gzip member without letting a small packet expand without bound."""
    d = zlib.decompressobj(wbits=31)
    try:
        out = d.decompress(data, limit)
    except zlib.error as exc:
        raise PayloadError(f"bad gzip metadata: {exc}") from None
    if d.unconsumed_tail:
        raise PayloadError("gzip metadata document too large")
    if not d.eof:
        raise PayloadError("truncated gzip metadata document")
    return out


class OnvifMetadataPacketizer:
    """XML documents -> payloads of at most ``mtu`` bytes, marker on the last."""

    clock_rate = 90000

    def __init__(self, mtu: int = 1400, gzip: bool = False) -> None:
        if mtu < 1:
            raise ValueError(f"MTU {mtu} too small")
        self.mtu = mtu
        self._gzip = gzip
        self.encoding_name = GZIP_ENCODING_NAME if gzip else ENCODING_NAME

    def fmtp(self) -> dict[str, str]:
        return {}

    def packetize(self, data: bytes) -> list[PayloadPacket]:
        if not data:
            raise PayloadError("empty metadata document")
        if self._gzip:
            data = gzip.compress(data, mtime=0)
        mtu = self.mtu
        return [
            PayloadPacket(data[pos : pos + mtu], pos + mtu >= len(data))
            for pos in range(0, len(data), mtu)
        ]
