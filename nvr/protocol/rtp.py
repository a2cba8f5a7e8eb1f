"""RTP (RFC 3550) packets, RFC 8285 header extension elements, and receive-side bookkeeping.

Parsing and building are on the hot path of both ingest (hundreds of camera streams) and replay,
so they use precompiled :mod:`struct` formats and avoid copies: parse a :class:`memoryview` and
the payload and extension data come back as views into the same buffer.

The receive helpers turn 16-bit sequence numbers and 32-bit timestamps into unbounded integers so
that the ingest can detect loss and reordering (:class:`SequenceTracker`, after RFC 3550 A.1)
and compute exact frame durations across wraparound (:class:`TimestampUnwrapper`);
:class:`JitterEstimator` feeds the RTCP receiver reports (RFC 3550 A.8).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import NamedTuple

from nvr.protocol.errors import ProtocolError

__all__ = [
    "ONE_BYTE_PROFILE",
    "RTP_VERSION",
    "TWO_BYTE_PROFILE",
    "ExtensionElement",
    "JitterEstimator",
    "RtpError",
    "RtpExtension",
    "RtpPacket",
    "SeqStatus",
    "SeqUpdate",
    "SequenceTracker",
    "TimestampUnwrapper",
    "build_header_extensions",
    "build_rtp",
    "pack_rtp_into",
    "parse_header_extensions",
    "parse_rtp",
    "rtp_packet_size",
]

RTP_VERSION = 2
#: RFC 8285 "defined by profile" value of the one-byte element form.
ONE_BYTE_PROFILE = 0xBEDE
#: RFC 8285 two-byte form: 0x100 in the top 12 bits, 4 application bits below.
TWO_BYTE_PROFILE = 0x1000

_HDR = struct.Struct("!BBHII")
_EXT_HDR = struct.Struct("!HH")
_HDR_EXT = struct.Struct("!BBHIIHH")  # fixed header + extension header, packed in one call
_unpack_hdr = _HDR.unpack_from
_unpack_ext_hdr = _EXT_HDR.unpack_from
_CSRC = [struct.Struct(f"!{n}I") for n in range(16)]

Buffer = bytes | bytearray | memoryview


class RtpError(ProtocolError):
    """A malformed RTP packet or header extension, or invalid values to build one."""


@dataclass(slots=True)
class RtpExtension:
    """The RFC 3550 header extension: a 16-bit profile value and whole 32-bit words of data."""

    profile: int
    data: Buffer = b""


@dataclass(slots=True)
class RtpPacket:
    """One RTP packet. ``payload`` excludes header, extension and padding.

    ``padding`` is the number of padding octets (including the trailing count octet), 0 if the
    P bit is clear. Built packets get that many padding octets.
    """

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: Buffer = b""
    marker: bool = False
    csrcs: tuple[int, ...] = ()
    extension: RtpExtension | None = None
    padding: int = 0

    def to_bytes(self) -> bytes:
        """Serialise this packet (see :func:`build_rtp`)."""
        return build_rtp(
            self.payload_type,
            self.sequence,
            self.timestamp,
            self.ssrc,
            self.payload,
            marker=self.marker,
            csrcs=self.csrcs,
            extension=self.extension,
            padding=self.padding,
        )


def parse_rtp(data: Buffer) -> RtpPacket:
    """Parse one RTP packet; slices of ``data`` (views if it is a memoryview) are kept."""
    try:
        b0, b1, seq, ts, ssrc = _unpack_hdr(data)
    except struct.error:
        raise RtpError(
            f"RTP packet too short: {len(data)} bytes, the fixed header needs 12"
        ) from None
    if b0 == 0x80:  # the common case: no CSRC, extension or padding
        return RtpPacket(b1 & 0x7F, seq, ts, ssrc, data[12:], b1 > 127)
    if b0 == 0x90:  # extension only: every replay packet
        try:
            profile, words = _unpack_ext_hdr(data, 12)
        except struct.error:
            raise RtpError("RTP X bit set but no room for the extension header") from None
        end_ext = 16 + 4 * words
        if end_ext > len(data):
            raise RtpError(f"RTP extension of {words} words overruns the {len(data)}-byte packet")
        return RtpPacket(
            b1 & 0x7F,
            seq,
            ts,
            ssrc,
            data[end_ext:],
            b1 > 127,
            (),
            RtpExtension(profile, data[16:end_ext]),
        )
    if b0 >> 6 != RTP_VERSION:
        raise RtpError(f"RTP version {b0 >> 6}, expected 2")
    n = len(data)
    off = 12
    csrcs: tuple[int, ...] = ()
    cc = b0 & 0x0F
    if cc:
        off += 4 * cc
        if off > n:
            raise RtpError(f"RTP CSRC list of {cc} entries overruns the {n}-byte packet")
        csrcs = _CSRC[cc].unpack_from(data, 12)
    ext: RtpExtension | None = None
    if b0 & 0x10:
        if off + 4 > n:
            raise RtpError("RTP X bit set but no room for the extension header")
        profile, words = _unpack_ext_hdr(data, off)
        off += 4
        end_ext = off + 4 * words
        if end_ext > n:
            raise RtpError(f"RTP extension of {words} words overruns the {n}-byte packet")
        ext = RtpExtension(profile, data[off:end_ext])
        off = end_ext
    pad = 0
    end = n
    if b0 & 0x20:
        pad = data[n - 1]
        if pad == 0 or off + pad > n:
            raise RtpError(f"RTP padding count {pad} invalid for the {n}-byte packet")
        end = n - pad
    return RtpPacket(b1 & 0x7F, seq, ts, ssrc, data[off:end], b1 > 127, csrcs, ext, pad)


def _header_fields(
    payload_type: int,
    marker: bool,
    csrcs: Sequence[int],
    extension: RtpExtension | None,
    padding: int,
) -> tuple[int, int]:
    if payload_type & ~0x7F:
        raise RtpError(f"RTP payload type {payload_type} outside 0..127")
    cc = len(csrcs)
    if cc > 15:
        raise RtpError(f"RTP CSRC list of {cc} entries, at most 15 fit")
    b0 = 0x80 | cc
    if extension is not None:
        b0 |= 0x10
        if len(extension.data) & 3:
            raise RtpError(
                f"RTP extension data of {len(extension.data)} bytes is not whole 32-bit words"
            )
    if padding:
        if not 0 < padding < 256:
            raise RtpError(f"RTP padding {padding} outside 1..255")
        b0 |= 0x20
    return b0, (0x80 if marker else 0) | payload_type


def rtp_packet_size(
    payload_len: int,
    *,
    csrc_count: int = 0,
    extension_len: int | None = None,
    padding: int = 0,
) -> int:
    """Size in bytes of a packet :func:`pack_rtp_into` will write (for buffer sizing)."""
    size = 12 + 4 * csrc_count + payload_len + padding
    if extension_len is not None:
        size += 4 + extension_len
    return size


def build_rtp(
    payload_type: int,
    sequence: int,
    timestamp: int,
    ssrc: int,
    payload: Buffer,
    *,
    marker: bool = False,
    csrcs: Sequence[int] = (),
    extension: RtpExtension | None = None,
    padding: int = 0,
) -> bytes:
    """Serialise an RTP packet into new bytes.

    ``padding`` adds that many octets (zeros, the last one holding the count) and sets P.
    """
    if not csrcs and not padding:  # fast path: plain packets and replay packets
        if payload_type & ~0x7F:
            raise RtpError(f"RTP payload type {payload_type} outside 0..127")
        b1 = payload_type | 0x80 if marker else payload_type
        try:
            if extension is None:
                return _HDR.pack(0x80, b1, sequence, timestamp, ssrc) + payload
            data = extension.data
            if len(data) & 3:
                raise RtpError(f"RTP extension data of {len(data)} bytes is not whole 32-bit words")
            head = _HDR_EXT.pack(
                0x90, b1, sequence, timestamp, ssrc, extension.profile, len(data) >> 2
            )
            return b"".join((head, data, payload))
        except struct.error as exc:
            raise RtpError(f"RTP header field out of range: {exc}") from exc
    size = rtp_packet_size(
        len(payload),
        csrc_count=len(csrcs),
        extension_len=None if extension is None else len(extension.data),
        padding=padding,
    )
    buf = bytearray(max(size, 0))  # pack_rtp_into refuses a negative padding
    pack_rtp_into(
        buf,
        0,
        payload_type,
        sequence,
        timestamp,
        ssrc,
        payload,
        marker=marker,
        csrcs=csrcs,
        extension=extension,
        padding=padding,
    )
    return bytes(buf)


def pack_rtp_into(
    buf: bytearray | memoryview,
    offset: int,
    payload_type: int,
    sequence: int,
    timestamp: int,
    ssrc: int,
    payload: Buffer,
    *,
    marker: bool = False,
    csrcs: Sequence[int] = (),
    extension: RtpExtension | None = None,
    padding: int = 0,
) -> int:
    """Write an RTP packet into ``buf`` at ``offset``; return the offset just past it.

    Lets a sender leave room in front (e.g. the 4-byte RTSP interleaved frame header) and reuse
    one buffer instead of allocating per packet.
    """
    b0, b1 = _header_fields(payload_type, marker, csrcs, extension, padding)
    n = len(payload)
    cc = len(csrcs)
    ext_data = b"" if extension is None else extension.data
    end = offset + rtp_packet_size(
        n,
        csrc_count=cc,
        extension_len=None if extension is None else len(ext_data),
        padding=padding,
    )
    if offset < 0 or end > len(buf):
        raise RtpError(f"buffer of {len(buf)} bytes too small for a packet ending at {end}")
    try:
        if extension is not None and not cc:
            _HDR_EXT.pack_into(
                buf,
                offset,
                b0,
                b1,
                sequence,
                timestamp,
                ssrc,
                extension.profile,
                len(ext_data) >> 2,
            )
            pos = offset + 16
        else:
            _HDR.pack_into(buf, offset, b0, b1, sequence, timestamp, ssrc)
            pos = offset + 12
            if cc:
                _CSRC[cc].pack_into(buf, pos, *csrcs)
                pos += 4 * cc
            if extension is not None:
                _EXT_HDR.pack_into(buf, pos, extension.profile, len(ext_data) >> 2)
                pos += 4
    except struct.error as exc:
        raise RtpError(f"RTP header field out of range: {exc}") from exc
    if ext_data:
        buf[pos : pos + len(ext_data)] = ext_data
        pos += len(ext_data)
    buf[pos : pos + n] = payload
    if padding:
        pos += n
        buf[pos : end - 1] = bytes(padding - 1)
        buf[end - 1] = padding
    return end


# --------------------------------------------------------------------------------------------
# RFC 8285 header extension elements


@dataclass(slots=True)
class ExtensionElement:
    """One RFC 8285 element: local identifier and its data."""

    id: int
    data: bytes


def parse_header_extensions(extension: RtpExtension) -> list[ExtensionElement]:
    """Split an RFC 8285 one-byte (0xBEDE) or two-byte (0x100x) extension into elements."""
    profile = extension.profile
    data = bytes(extension.data)
    n = len(data)
    out: list[ExtensionElement] = []
    i = 0
    if profile == ONE_BYTE_PROFILE:
        while i < n:
            b = data[i]
            i += 1
            if b == 0:
                continue  # padding
            ident = b >> 4
            if ident == 15:
                break  # reserved: stop processing the rest (RFC 8285 section 4.2)
            length = (b & 0x0F) + 1
            if i + length > n:
                raise RtpError(f"RFC 8285 element id {ident} of {length} bytes overruns data")
            out.append(ExtensionElement(ident, data[i : i + length]))
            i += length
        return out
    if profile & 0xFFF0 == TWO_BYTE_PROFILE:
        while i < n:
            ident = data[i]
            i += 1
            if ident == 0:
                continue  # padding
            if i >= n:
                raise RtpError(f"RFC 8285 element id {ident} lacks its length byte")
            length = data[i]
            i += 1
            if i + length > n:
                raise RtpError(f"RFC 8285 element id {ident} of {length} bytes overruns data")
            out.append(ExtensionElement(ident, data[i : i + length]))
            i += length
        return out
    raise RtpError(f"extension profile 0x{profile:04X} is not an RFC 8285 form")


def build_header_extensions(
    elements: Iterable[ExtensionElement], *, two_byte: bool | None = None, appbits: int = 0
) -> RtpExtension:
    """Pack RFC 8285 elements; the one-byte form is used unless an element needs two bytes."""
    elems = list(elements)
    if two_byte is None:
        two_byte = any(not 1 <= e.id <= 14 or not 1 <= len(e.data) <= 16 for e in elems)
    out = bytearray()
    for e in elems:
        if two_byte:
            if not 1 <= e.id <= 255 or len(e.data) > 255:
                raise RtpError(f"RFC 8285 two-byte element id {e.id} / {len(e.data)} bytes")
            out += bytes((e.id, len(e.data)))
        else:
            if not 1 <= e.id <= 14 or not 1 <= len(e.data) <= 16:
                raise RtpError(f"RFC 8285 one-byte element id {e.id} / {len(e.data)} bytes")
            out.append((e.id << 4) | (len(e.data) - 1))
        out += e.data
    out += bytes(-len(out) & 3)
    if two_byte:
        if not 0 <= appbits <= 15:
            raise RtpError(f"RFC 8285 appbits {appbits} outside 0..15")
        return RtpExtension(TWO_BYTE_PROFILE | appbits, bytes(out))
    return RtpExtension(ONE_BYTE_PROFILE, bytes(out))


# --------------------------------------------------------------------------------------------
# Receive-side bookkeeping


class SeqStatus(IntEnum):
    """How an arriving sequence number relates to what was seen before."""

    FIRST = 0  #: first packet since creation or reset
    IN_ORDER = 1  #: the next expected packet
    GAP = 2  #: ahead of the expected one; ``missing`` packets were skipped (maybe late)
    REORDERED = 3  #: an older packet not seen before (arrived late)
    DUPLICATE = 4  #: already received; drop it
    JUMP = 5  #: a big jump not (yet) confirmed by a following packet; RFC 3550 drops it
    RESYNC = 6  #: a confirmed big jump: the sender restarted its numbering


class SeqUpdate(NamedTuple):
    """Result of :meth:`SequenceTracker.update`."""

    status: SeqStatus
    #: Extended (unbounded, wrap-free) sequence number of this packet.
    ext_seq: int
    #: For ``GAP``: packets skipped between the previous highest and this one.
    missing: int


_FIRST = SeqStatus.FIRST
_IN_ORDER = SeqStatus.IN_ORDER
_GAP = SeqStatus.GAP
_REORDERED = SeqStatus.REORDERED
_DUPLICATE = SeqStatus.DUPLICATE
_JUMP = SeqStatus.JUMP
_RESYNC = SeqStatus.RESYNC


class SequenceTracker:
    """Extends 16-bit RTP sequence numbers and classifies loss, reordering and duplicates.

    Follows RFC 3550 appendix A.1 (dropout and misorder windows, resync after two sequential
    packets of a big jump) without its probation step: an RTSP client already knows its source
    and must not drop the first packet (often the parameter sets). Duplicates within the misorder
    window are recognised exactly with a bitmap and are not counted as received, so cumulative
    loss is never pushed negative by them.

    The extended sequence number is unbounded here; mask with 0xFFFFFFFF for the RTCP field.
    """

    __slots__ = (
        "_bad_seq",
        "_mask",
        "_window",
        "base_ext",
        "expected_prior",
        "max_dropout",
        "max_ext",
        "max_misorder",
        "received",
        "received_prior",
    )

    def __init__(self, max_dropout: int = 3000, max_misorder: int = 100) -> None:
        if not 0 < max_dropout < 0x8000 or not 0 < max_misorder < 0x8000:
            raise ValueError("max_dropout and max_misorder must be in 1..32767")
        self.max_dropout = max_dropout
        self.max_misorder = max_misorder
        self._mask = (1 << (max_misorder + 1)) - 1
        self.reset()

    def reset(self) -> None:
        """Forget everything; the next packet is ``FIRST``."""
        self.max_ext: int | None = None
        self.base_ext = 0
        self.received = 0
        self.expected_prior = 0
        self.received_prior = 0
        self._bad_seq = -1
        self._window = 0  # bit i set <=> packet max_ext - i received

    def _restart(self, ext: int) -> None:
        self.max_ext = ext
        self.base_ext = ext
        self.received = 1
        self.expected_prior = 0
        self.received_prior = 0
        self._bad_seq = -1
        self._window = 1

    def update(self, seq: int) -> SeqUpdate:
        """Account for one arriving packet with 16-bit sequence number ``seq``."""
        max_ext = self.max_ext
        if max_ext is None:
            self._restart(seq & 0xFFFF)
            return SeqUpdate(_FIRST, seq & 0xFFFF, 0)
        udelta = (seq - max_ext) & 0xFFFF
        if udelta == 0:
            return SeqUpdate(_DUPLICATE, max_ext, 0)
        if udelta < self.max_dropout:
            ext = max_ext + udelta
            self.max_ext = ext
            self._window = ((self._window << udelta) | 1) & self._mask
            self.received += 1
            self._bad_seq = -1
            if udelta == 1:
                return SeqUpdate(_IN_ORDER, ext, 0)
            return SeqUpdate(_GAP, ext, udelta - 1)
        if udelta <= 0x10000 - self.max_misorder:
            ext = max_ext + udelta
            if seq & 0xFFFF == self._bad_seq:
                # Two sequential packets after a big jump: the source restarted. Loss
                # statistics start over (the jump is not loss); count the previous packet.
                self._restart(ext)
                self.base_ext = ext - 1
                self.received = 2
                self._window = 0b11
                return SeqUpdate(_RESYNC, ext, 0)
            self._bad_seq = (seq + 1) & 0xFFFF
            return SeqUpdate(_JUMP, ext, 0)
        back = 0x10000 - udelta
        ext = max_ext - back
        bit = 1 << back
        if self._window & bit:
            return SeqUpdate(_DUPLICATE, ext, 0)
        self._window |= bit
        self.received += 1
        if ext < self.base_ext:
            self.base_ext = ext
        return SeqUpdate(_REORDERED, ext, 0)

    @property
    def expected(self) -> int:
        """Packets expected so far: extended highest minus base, plus one."""
        if self.max_ext is None:
            return 0
        return self.max_ext - self.base_ext + 1

    @property
    def cumulative_lost(self) -> int:
        """Packets expected but not received (late arrivals reduce it again)."""
        return self.expected - self.received

    def take_interval(self) -> tuple[int, int]:
        """(expected, received) since the previous call; for the RR fraction-lost field."""
        expected, received = self.expected, self.received
        interval = (expected - self.expected_prior, received - self.received_prior)
        self.expected_prior, self.received_prior = expected, received
        return interval


class TimestampUnwrapper:
    """Turns wrapping ``bits``-bit counters (RTP timestamps) into unbounded integers.

    Each value is placed within half the counter range of the previous one, so B-frames and
    reordering may step back but wraparound never looks like a jump. The first value is returned
    as is; values before it may therefore come out negative. Durations are differences of
    unwrapped values and are exact.
    """

    __slots__ = ("_half", "_last", "_mod")

    def __init__(self, bits: int = 32) -> None:
        self._mod = 1 << bits
        self._half = 1 << (bits - 1)
        self._last: int | None = None

    def reset(self) -> None:
        """Forget the reference; the next value is returned unchanged."""
        self._last = None

    @property
    def last(self) -> int | None:
        """The most recent unwrapped value, or None before the first."""
        return self._last

    def unwrap(self, value: int) -> int:
        """Unwrap one counter value relative to the previous one."""
        last = self._last
        if last is None:
            out = value % self._mod
        else:
            delta = (value - last) % self._mod
            if delta >= self._half:
                delta -= self._mod
            out = last + delta
        self._last = out
        return out


class JitterEstimator:
    """RFC 3550 interarrival jitter (A.8 integer form), in RTP timestamp units.

    Arrival times are integer µs from any monotonic clock; they are converted to the stream's
    clock rate so that transit differences compare with RTP timestamps.
    """

    __slots__ = ("_j16", "_last_transit", "clock_rate")

    def __init__(self, clock_rate: int) -> None:
        if clock_rate <= 0:
            raise ValueError(f"clock rate {clock_rate} must be positive")
        self.clock_rate = clock_rate
        self.reset()

    def reset(self) -> None:
        """Start over (e.g. after a sender restart)."""
        self._j16 = 0
        self._last_transit: int | None = None

    def update(self, rtp_timestamp: int, arrival_us: int) -> None:
        """Account for one packet's RTP timestamp and arrival time."""
        transit = arrival_us * self.clock_rate // 1_000_000 - rtp_timestamp
        last = self._last_transit
        self._last_transit = transit
        if last is None:
            return
        d = (transit - last + 0x8000_0000) % 0x1_0000_0000 - 0x8000_0000
        if d < 0:
            d = -d
        self._j16 += d - ((self._j16 + 8) >> 4)

    @property
    def jitter(self) -> int:
        """Current estimate in timestamp units (the RR jitter field, saturated to 32 bits)."""
        return min(self._j16 >> 4, 0xFFFF_FFFF)
