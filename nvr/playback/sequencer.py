"""Per-track RTP numbering for resources: SSRC, sequence numbers, timestamps, sender reports.

RFC 3550 wants random origins for the sequence number and timestamp, one SSRC per stream,
sequence numbers +1 per packet in sending order, and sender reports that map an RTP timestamp
to wall-clock time. Every resource needs exactly that, so it lives here once; the shell itself
never touches RTP headers.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from nvr.protocol.ntp import unix_us_to_ntp
from nvr.protocol.payload.base import PayloadPacket
from nvr.protocol.rtcp import SDES_CNAME, Bye, Sdes, SdesChunk, SenderReport, build_rtcp
from nvr.protocol.rtp import RtpExtension, build_rtp

__all__ = ["RtpSequencer"]

_U32 = 0xFFFFFFFF


class RtpSequencer:
    """Numbers the packets of one RTP stream.

    Timestamps come from a caller timeline in microseconds (any epoch, e.g. wall-clock
    microseconds of capture): ``timestamp(us) = origin + us * clock_rate / 10^6`` mod 2^32,
    so every track of a resource that uses the same timeline stays in sync. Not thread-safe:
    one producer per instance (an encoder thread may own one).
    """

    __slots__ = (
        "clock_rate",
        "next_seq",
        "octet_count",
        "packet_count",
        "payload_type",
        "ssrc",
        "ts_origin",
    )

    def __init__(
        self,
        payload_type: int,
        clock_rate: int,
        *,
        ssrc: int | None = None,
        seq: int | None = None,
        ts_origin: int | None = None,
    ) -> None:
        self.payload_type = payload_type
        self.clock_rate = clock_rate
        self.ssrc = secrets.randbits(32) if ssrc is None else ssrc
        self.next_seq = secrets.randbits(16) if seq is None else seq & 0xFFFF
        self.ts_origin = secrets.randbits(32) if ts_origin is None else ts_origin & _U32
        self.packet_count = 0
        self.octet_count = 0

    def timestamp(self, us: int) -> int:
        """The RTP timestamp of instant ``us`` on the caller's timeline."""
        return (self.ts_origin + us * self.clock_rate // 1_000_000) & _U32

    def packet(
        self,
        payload: bytes,
        timestamp: int,
        *,
        marker: bool = False,
        extension: RtpExtension | None = None,
    ) -> bytes:
        """Build the next packet."""
        seq = self.next_seq
        self.next_seq = (seq + 1) & 0xFFFF
        self.packet_count += 1
        self.octet_count += len(payload)
        return build_rtp(
            self.payload_type, seq, timestamp & _U32, self.ssrc, payload,
            marker=marker, extension=extension,
        )  # fmt: skip

    def packets(self, payloads: Sequence[PayloadPacket], timestamp: int) -> list[bytes]:
        """Build the packets of one access unit from a packetizer's output."""
        out = []
        for p in payloads:
            ext = None if p.extension is None else RtpExtension(*p.extension)
            out.append(
                self.packet(p.payload, timestamp + p.ts_offset, marker=p.marker, extension=ext)
            )
        return out

    def sender_report(self, unix_us: int, rtp_timestamp: int, cname: str) -> bytes:
        """A compound SR + SDES CNAME mapping ``rtp_timestamp`` to wall time ``unix_us``."""
        return self.ntp_report(unix_us_to_ntp(unix_us), rtp_timestamp, cname)

    def ntp_report(self, ntp: int, rtp_timestamp: int, cname: str, *, bye: bool = False) -> bytes:
        """The same with a raw NTP value (replay without rate control sends zeros, B.9), and a
        BYE after it when the stream ends."""
        packets: list[SenderReport | Sdes | Bye] = [
            SenderReport(
                self.ssrc,
                ntp,
                rtp_timestamp & _U32,
                self.packet_count & _U32,
                self.octet_count & _U32,
            ),
            Sdes([SdesChunk(self.ssrc, [(SDES_CNAME, cname.encode())])]),
        ]
        if bye:
            packets.append(Bye([self.ssrc]))
        return build_rtcp(packets)
