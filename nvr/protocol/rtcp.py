"""RTCP (RFC 3550 section 6) compound packets: parse, build, and receiver-report bookkeeping.

The ingest client reads camera sender reports (to anchor RTP time to wall clock, and as the
source of LSR) and sends receiver reports, which ONVIF servers treat as keep-alive. The replay
server may send sender reports (ONVIF replay B.9). Feedback packets (RFC 4585 RTPFB/PSFB) are
kept because a receiver asks for a sync point with PLI.

Parsing is lenient about compound structure (RFC 5506 reduced-size packets exist in the wild)
but strict about lengths, so nothing reads past a packet boundary. Unknown packet types are
skipped unless ``keep_unknown=True``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

from nvr.protocol.errors import ProtocolError
from nvr.protocol.ntp import ntp_middle32, us_to_ntp_short
from nvr.protocol.rtp import JitterEstimator, SeqStatus, SequenceTracker, SeqUpdate

_IN_ORDER = SeqStatus.IN_ORDER

__all__ = [
    "PT_APP",
    "PT_BYE",
    "PT_PSFB",
    "PT_RR",
    "PT_RTPFB",
    "PT_SDES",
    "PT_SR",
    "SDES_CNAME",
    "App",
    "Bye",
    "Feedback",
    "ReceiverReport",
    "ReceptionStatistics",
    "ReportBlock",
    "RtcpError",
    "RtcpPacket",
    "Sdes",
    "SdesChunk",
    "SenderReport",
    "UnknownRtcp",
    "build_pli",
    "build_receiver_report",
    "build_rtcp",
    "parse_rtcp",
]

PT_SR = 200
PT_RR = 201
PT_SDES = 202
PT_BYE = 203
PT_APP = 204
PT_RTPFB = 205
PT_PSFB = 206

SDES_END = 0
SDES_CNAME = 1
SDES_NAME = 2
SDES_TOOL = 6

_HDR = struct.Struct("!BBH")
_U32 = struct.Struct("!I")
_SR_INFO = struct.Struct("!IQIII")  # SSRC, NTP, RTP ts, packet count, octet count
_BLOCK = struct.Struct("!IIIIII")  # SSRC, fraction|lost, ext seq, jitter, LSR, DLSR
_FB = struct.Struct("!II")

Buffer = bytes | bytearray | memoryview


class RtcpError(ProtocolError):
    """A malformed RTCP packet, or invalid values to build one."""


@dataclass(slots=True)
class ReportBlock:
    """Reception report about one source (SR/RR)."""

    ssrc: int
    fraction_lost: int  # 0..255, fixed point /256
    cumulative_lost: int  # signed 24-bit
    highest_seq: int  # extended highest sequence number, 32-bit
    jitter: int
    lsr: int  # middle 32 bits of the last SR's NTP timestamp, 0 if none
    dlsr: int  # delay since that SR in 1/65536 s

    def _pack(self) -> bytes:
        if not 0 <= self.fraction_lost <= 255:
            raise RtcpError(f"fraction lost {self.fraction_lost} outside 0..255")
        if not -0x80_0000 <= self.cumulative_lost <= 0x7F_FFFF:
            raise RtcpError(f"cumulative lost {self.cumulative_lost} outside signed 24 bits")
        try:
            return _BLOCK.pack(
                self.ssrc,
                (self.fraction_lost << 24) | (self.cumulative_lost & 0xFF_FFFF),
                self.highest_seq,
                self.jitter,
                self.lsr,
                self.dlsr,
            )
        except struct.error as exc:
            raise RtcpError(f"report block field out of range: {exc}") from exc


@dataclass(slots=True)
class SenderReport:
    """SR: sender info (NTP/RTP timestamp pair and counts), report blocks, profile extension."""

    ssrc: int
    ntp_timestamp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: list[ReportBlock] = field(default_factory=list)
    extension: bytes = b""

    def to_bytes(self) -> bytes:
        """Serialise as one RTCP packet."""
        try:
            info = _SR_INFO.pack(
                self.ssrc,
                self.ntp_timestamp,
                self.rtp_timestamp,
                self.packet_count,
                self.octet_count,
            )
        except struct.error as exc:
            raise RtcpError(f"sender report field out of range: {exc}") from exc
        body = info + b"".join(r._pack() for r in self.reports) + self.extension
        return _packet(PT_SR, len(self.reports), body)


@dataclass(slots=True)
class ReceiverReport:
    """RR: reporter SSRC, report blocks (possibly none), profile extension."""

    ssrc: int
    reports: list[ReportBlock] = field(default_factory=list)
    extension: bytes = b""

    def to_bytes(self) -> bytes:
        """Serialise as one RTCP packet."""
        body = _u32(self.ssrc) + b"".join(r._pack() for r in self.reports) + self.extension
        return _packet(PT_RR, len(self.reports), body)


@dataclass(slots=True)
class SdesChunk:
    """The SDES items of one source, as (item type, raw value) pairs in wire order."""

    ssrc: int
    items: list[tuple[int, bytes]] = field(default_factory=list)

    @property
    def cname(self) -> str | None:
        """The CNAME item decoded as UTF-8 (invalid bytes replaced), or None."""
        for kind, value in self.items:
            if kind == SDES_CNAME:
                return value.decode("utf-8", "replace")
        return None


@dataclass(slots=True)
class Sdes:
    """SDES: source description chunks."""

    chunks: list[SdesChunk] = field(default_factory=list)

    def to_bytes(self) -> bytes:
        """Serialise as one RTCP packet; each chunk is null-terminated and word aligned."""
        out = bytearray()
        for chunk in self.chunks:
            out += _u32(chunk.ssrc)
            for kind, value in chunk.items:
                if not 1 <= kind <= 255:
                    raise RtcpError(f"SDES item type {kind} outside 1..255")
                if len(value) > 255:
                    raise RtcpError(f"SDES item of {len(value)} bytes, at most 255 fit")
                out += bytes((kind, len(value)))
                out += value
            # At least one null octet ends the item list, then pad to a word boundary.
            out += bytes(4 - (len(out) & 3))
        return _packet(PT_SDES, len(self.chunks), bytes(out))


@dataclass(slots=True)
class Bye:
    """BYE: sources leaving, with an optional reason text."""

    ssrcs: list[int] = field(default_factory=list)
    reason: str | None = None

    def to_bytes(self) -> bytes:
        """Serialise as one RTCP packet."""
        body = b"".join(_u32(s) for s in self.ssrcs)
        if self.reason is not None:
            text = self.reason.encode("utf-8")
            if len(text) > 255:
                raise RtcpError(f"BYE reason of {len(text)} bytes, at most 255 fit")
            reason = bytes((len(text),)) + text
            body += reason + bytes(-len(reason) & 3)
        return _packet(PT_BYE, len(self.ssrcs), body)


@dataclass(slots=True)
class App:
    """APP: application-defined packet, passed through untouched."""

    subtype: int
    ssrc: int
    name: bytes  # 4 ASCII octets
    data: bytes = b""

    def to_bytes(self) -> bytes:
        """Serialise as one RTCP packet."""
        if len(self.name) != 4:
            raise RtcpError(f"APP name must be 4 octets, got {len(self.name)}")
        if len(self.data) & 3:
            raise RtcpError(f"APP data of {len(self.data)} bytes is not whole 32-bit words")
        return _packet(PT_APP, self.subtype, _u32(self.ssrc) + self.name + self.data)


@dataclass(slots=True)
class Feedback:
    """RFC 4585 transport-layer (205) or payload-specific (206) feedback; FMT in count field.

    PLI is ``Feedback(PT_PSFB, 1, sender, media)``; FCI is kept raw.
    """

    packet_type: int
    fmt: int
    sender_ssrc: int
    media_ssrc: int
    fci: bytes = b""

    def to_bytes(self) -> bytes:
        """Serialise as one RTCP packet."""
        if self.packet_type not in (PT_RTPFB, PT_PSFB):
            raise RtcpError(f"feedback packet type {self.packet_type} is not 205 or 206")
        if len(self.fci) & 3:
            raise RtcpError(f"feedback FCI of {len(self.fci)} bytes is not whole words")
        try:
            body = _FB.pack(self.sender_ssrc, self.media_ssrc)
        except struct.error as exc:
            raise RtcpError(f"feedback SSRC out of range: {exc}") from exc
        return _packet(self.packet_type, self.fmt, body + self.fci)


@dataclass(slots=True)
class UnknownRtcp:
    """A packet type this module does not interpret (returned only with ``keep_unknown``)."""

    packet_type: int
    count: int
    body: bytes = b""

    def to_bytes(self) -> bytes:
        """Serialise as one RTCP packet."""
        if len(self.body) & 3:
            raise RtcpError(f"RTCP body of {len(self.body)} bytes is not whole words")
        return _packet(self.packet_type, self.count, self.body)


RtcpPacket = SenderReport | ReceiverReport | Sdes | Bye | App | Feedback | UnknownRtcp


def _u32(value: int) -> bytes:
    try:
        return _U32.pack(value)
    except struct.error as exc:
        raise RtcpError(f"32-bit RTCP field out of range: {value}") from exc


def _packet(packet_type: int, count: int, body: bytes) -> bytes:
    if not 0 <= count <= 31:
        raise RtcpError(f"RTCP count {count} outside 0..31 for packet type {packet_type}")
    if len(body) & 3:
        raise RtcpError(f"RTCP packet type {packet_type} body is not whole 32-bit words")
    words = len(body) >> 2
    if words > 0xFFFF:
        raise RtcpError(f"RTCP packet of {words + 1} words is too long")
    return _HDR.pack(0x80 | count, packet_type, words) + body


def build_rtcp(packets: Iterable[RtcpPacket]) -> bytes:
    """Serialise packets into one compound RTCP packet (no padding)."""
    return b"".join(p.to_bytes() for p in packets)


def _parse_blocks(body: bytes, off: int, count: int, what: str) -> list[ReportBlock]:
    if off + 24 * count > len(body):
        raise RtcpError(f"{what} announces {count} report blocks but has room for fewer")
    blocks = []
    for _ in range(count):
        ssrc, lost, ext, jitter, lsr, dlsr = _BLOCK.unpack_from(body, off)
        cum = lost & 0xFF_FFFF
        if cum & 0x80_0000:
            cum -= 0x100_0000
        blocks.append(ReportBlock(ssrc, lost >> 24, cum, ext, jitter, lsr, dlsr))
        off += 24
    return blocks


def _parse_sdes(body: bytes, count: int) -> Sdes:
    chunks = []
    off = 0
    n = len(body)
    for _ in range(count):
        if off + 4 > n:
            raise RtcpError(f"SDES announces {count} chunks but the packet ends early")
        (ssrc,) = _U32.unpack_from(body, off)
        off += 4
        items: list[tuple[int, bytes]] = []
        while True:
            if off >= n:
                raise RtcpError("SDES chunk has no terminating null item")
            kind = body[off]
            if kind == SDES_END:
                off = (off + 4) & ~3  # skip the null and pad to the next word
                break
            if off + 2 > n or off + 2 + body[off + 1] > n:
                raise RtcpError(f"SDES item type {kind} overruns the packet")
            length = body[off + 1]
            items.append((kind, bytes(body[off + 2 : off + 2 + length])))
            off += 2 + length
        chunks.append(SdesChunk(ssrc, items))
    return Sdes(chunks)


def _parse_one(pt: int, count: int, body: bytes) -> RtcpPacket | None:
    n = len(body)
    if pt == PT_SR:
        if n < 24:
            raise RtcpError(f"SR body of {n} bytes is shorter than the 24-byte sender info")
        ssrc, ntp, rtp_ts, packets, octets = _SR_INFO.unpack_from(body)
        blocks = _parse_blocks(body, 24, count, "SR")
        return SenderReport(ssrc, ntp, rtp_ts, packets, octets, blocks, body[24 + 24 * count :])
    if pt == PT_RR:
        if n < 4:
            raise RtcpError("RR body lacks the reporter SSRC")
        (ssrc,) = _U32.unpack_from(body)
        blocks = _parse_blocks(body, 4, count, "RR")
        return ReceiverReport(ssrc, blocks, body[4 + 24 * count :])
    if pt == PT_SDES:
        return _parse_sdes(body, count)
    if pt == PT_BYE:
        if 4 * count > n:
            raise RtcpError(f"BYE announces {count} sources but has room for fewer")
        ssrcs = list(struct.unpack_from(f"!{count}I", body))
        reason = None
        off = 4 * count
        if off < n:
            length = body[off]
            if off + 1 + length > n:
                raise RtcpError(f"BYE reason of {length} bytes overruns the packet")
            reason = body[off + 1 : off + 1 + length].decode("utf-8", "replace")
        return Bye(ssrcs, reason)
    if pt == PT_APP:
        if n < 8:
            raise RtcpError(f"APP body of {n} bytes lacks SSRC and name")
        (ssrc,) = _U32.unpack_from(body)
        return App(count, ssrc, body[4:8], body[8:])
    if pt in (PT_RTPFB, PT_PSFB):
        if n < 8:
            raise RtcpError(f"feedback body of {n} bytes lacks the two SSRCs")
        sender, media = _FB.unpack_from(body)
        return Feedback(pt, count, sender, media, body[8:])
    return None


def parse_rtcp(data: Buffer, *, keep_unknown: bool = False) -> list[RtcpPacket]:
    """Parse a compound RTCP packet into its packets, in order.

    Each packet's version and length are checked; padding (P bit) is honoured on any packet.
    Unknown packet types are skipped, or returned as :class:`UnknownRtcp` with ``keep_unknown``.
    """
    buf = bytes(data)
    n = len(buf)
    if n < 4:
        raise RtcpError(f"RTCP packet too short: {n} bytes")
    out: list[RtcpPacket] = []
    off = 0
    while off < n:
        if off + 4 > n:
            raise RtcpError(f"{n - off} trailing bytes after the last RTCP packet")
        b0, pt, words = _HDR.unpack_from(buf, off)
        if b0 >> 6 != 2:
            raise RtcpError(f"RTCP version {b0 >> 6} at offset {off}, expected 2")
        end = off + 4 * (words + 1)
        if end > n:
            raise RtcpError(
                f"RTCP packet type {pt} at offset {off} claims {4 * (words + 1)} bytes, "
                f"only {n - off} left"
            )
        body_end = end
        if b0 & 0x20:
            pad = buf[end - 1]
            if pad == 0 or pad > 4 * words:
                raise RtcpError(f"RTCP padding count {pad} invalid in packet type {pt}")
            body_end = end - pad
        count = b0 & 0x1F
        body = buf[off + 4 : body_end]
        pkt = _parse_one(pt, count, body)
        if pkt is None and keep_unknown:
            pkt = UnknownRtcp(pt, count, body)
        if pkt is not None:
            out.append(pkt)
        off = end
    return out


def build_pli(sender_ssrc: int, media_ssrc: int) -> bytes:
    """A Picture Loss Indication (RFC 4585 6.3.1): asks the camera for a key frame."""
    return Feedback(PT_PSFB, 1, sender_ssrc, media_ssrc).to_bytes()


def build_receiver_report(
    reporter_ssrc: int, blocks: Iterable[ReportBlock], *, cname: str
) -> bytes:
    """A compound RR + SDES CNAME, the minimum RFC 3550 asks a receiver to send.

    More than 31 blocks are split over several RR packets.
    """
    blocks = list(blocks)
    packets: list[RtcpPacket] = []
    for i in range(0, max(len(blocks), 1), 31):
        packets.append(ReceiverReport(reporter_ssrc, blocks[i : i + 31]))
    packets.append(Sdes([SdesChunk(reporter_ssrc, [(SDES_CNAME, cname.encode("utf-8"))])]))
    return build_rtcp(packets)


class ReceptionStatistics:
    """Per-source receive state for RTCP receiver reports (RFC 3550 6.4.1, A.3, A.8).

    Feed it every RTP packet of the source and every sender report; ask it for a report block
    when an RR is due. Arrival and report times are integer µs from one monotonic clock.
    """

    __slots__ = ("jitter", "last_sr_arrival_us", "last_sr_ntp", "ssrc", "tracker")

    def __init__(
        self, ssrc: int, clock_rate: int, *, tracker: SequenceTracker | None = None
    ) -> None:
        self.ssrc = ssrc
        self.tracker = tracker if tracker is not None else SequenceTracker()
        self.jitter = JitterEstimator(clock_rate)
        self.last_sr_ntp: int | None = None
        self.last_sr_arrival_us = 0

    def on_rtp(self, sequence: int, rtp_timestamp: int, arrival_us: int) -> SeqUpdate:
        """Account for one RTP packet; returns the tracker's verdict on its sequence number."""
        upd = self.tracker.update(sequence)
        status = upd.status
        if status is SeqStatus.RESYNC:
            self.jitter.reset()
        if status is not SeqStatus.DUPLICATE and status is not SeqStatus.JUMP:
            self.jitter.update(rtp_timestamp, arrival_us)
        return upd

    def on_rtp_status(self, sequence: int, rtp_timestamp: int, arrival_us: int) -> SeqStatus:
        """:meth:`on_rtp` returning only the status: the per-packet call of a receiver.

        The next expected packet (nearly every packet) is handled inline with a few integer
        operations, with exactly the results of :meth:`SequenceTracker.update` and
        :meth:`JitterEstimator.update`; everything else goes through :meth:`on_rtp`.
        """
        tr = self.tracker
        max_ext = tr.max_ext
        if max_ext is None or (sequence - max_ext) & 0xFFFF != 1 or tr.max_dropout <= 1:
            return self.on_rtp(sequence, rtp_timestamp, arrival_us).status
        tr.max_ext = max_ext + 1
        tr._window = ((tr._window << 1) | 1) & tr._mask
        tr.received += 1
        tr._bad_seq = -1
        jit = self.jitter
        transit = arrival_us * jit.clock_rate // 1_000_000 - rtp_timestamp
        last = jit._last_transit
        jit._last_transit = transit
        if last is not None:
            d = transit - last
            if d < 0:
                d = -d
            if d >= 0x8000_0000:  # the difference wraps as 32-bit timestamps do
                d = (transit - last + 0x8000_0000) % 0x1_0000_0000 - 0x8000_0000
                if d < 0:
                    d = -d
            j16 = jit._j16
            jit._j16 = j16 + d - ((j16 + 8) >> 4)
        return _IN_ORDER

    def on_sender_report(self, sr: SenderReport, arrival_us: int) -> None:
        """Remember the source's latest SR for the LSR/DLSR fields."""
        self.last_sr_ntp = sr.ntp_timestamp
        self.last_sr_arrival_us = arrival_us

    def report_block(self, now_us: int) -> ReportBlock | None:
        """The report block for an RR sent at ``now_us``; None before the first packet.

        Starts a new interval for the fraction-lost field.
        """
        tr = self.tracker
        if tr.max_ext is None:
            return None
        expected, received = tr.take_interval()
        lost_interval = expected - received
        fraction = 0
        if expected > 0 and lost_interval > 0:
            fraction = min((lost_interval << 8) // expected, 255)
        cumulative = max(-0x80_0000, min(tr.cumulative_lost, 0x7F_FFFF))
        lsr = dlsr = 0
        if self.last_sr_ntp is not None:
            lsr = ntp_middle32(self.last_sr_ntp)
            dlsr = us_to_ntp_short(max(now_us - self.last_sr_arrival_us, 0))
        return ReportBlock(
            self.ssrc,
            fraction,
            cumulative,
            tr.max_ext & 0xFFFF_FFFF,
            self.jitter.jitter,
            lsr,
            dlsr,
        )
