"""RTP and RTCP of one replay track: access units to packets with the 0xABAC extension.

The replay extension (replay.md B.5) goes on the first packet of every access unit: the
stored capture time as NTP, the C/E/D/T flags and the low byte of the PLAY's CSeq. The rest
of the access unit is plain RTP, except JPEG packets that need the ONVIF JPEG extension: it is
appended after the replay words (B.5.2), which then repeat the first packet's values without
D (D would make a depacketizer drop the frame it is assembling).

Sender reports take raw NTP/RTP values because replay with ``Rate-Control: no`` sends zeros
(B.9). After the last access unit of a playback (T) an RTCP BYE follows, which is how
RTP-only clients (FFmpeg) learn that the stream ended.
"""

from __future__ import annotations

from nvr.playback.replay_wire import fragmenter
from nvr.playback.sequencer import RtpSequencer
from nvr.protocol.onvif_replay import (
    FLAG_D,
    REPLAY_PROFILE,
    ReplayExtension,
    pack_replay_words,
)
from nvr.protocol.onvif_replay import build_replay_header as _replay_header
from nvr.protocol.payload import Packetizer
from nvr.protocol.payload.h26x import H26xPacketizer
from nvr.protocol.rtp import RtpExtension, build_rtp
from nvr.protocol.rtsp import interleaved_header

__all__ = ["TrackSender"]

_U32 = 0xFFFFFFFF


def _extension(
    ntp: int, flags: int, cseq: int, jpeg_profile: int, jpeg_data: bytes
) -> RtpExtension:
    """The replay words with the packet's JPEG extension appended (B.5.2)."""
    jpeg = ReplayExtension.jpeg_words(jpeg_profile, jpeg_data)
    return RtpExtension(REPLAY_PROFILE, pack_replay_words(ntp, flags, cseq) + jpeg)


class TrackSender:
    """Numbering (SSRC, sequence, timestamps via :class:`RtpSequencer`) and packetization of
    one track of one session. ``index`` is the track's index in the session's sink."""

    __slots__ = ("_fragment", "_fu_bytes", "cname", "index", "media", "packetizer", "seq")

    def __init__(
        self,
        index: int,
        media: str,
        payload_type: int,
        clock_rate: int,
        packetizer: Packetizer,
        *,
        cname: str = "nvr",
    ) -> None:
        self.index = index
        self.media = media
        self.packetizer = packetizer
        self.seq = RtpSequencer(payload_type, clock_rate)
        self.cname = cname
        # ``replay_wire``'s fast path for this track's access units (H.264/H.265).
        h26x = isinstance(packetizer, H26xPacketizer)
        self._fragment = fragmenter(packetizer) if h26x else None
        self._fu_bytes = packetizer.syntax.header_len + 1 if h26x else 0

    def packets(
        self, data: bytes | memoryview, timestamp: int, ntp: int, flags: int, cseq: int
    ) -> list[bytes]:
        """The RTP packets of one stored access unit (PayloadError if it cannot be split)."""
        if type(data) is not bytes:
            data = bytes(data)  # a view of the reader's span (the packetizers slice bytes)
        seq = self.seq
        pt, ssrc, n = seq.payload_type, seq.ssrc, seq.next_seq
        out: list[bytes] = []
        octets = 0
        first = True
        for p in self.packetizer.packetize(data):
            ts = (timestamp + p.ts_offset) & _U32
            if p.extension is not None:
                ext = _extension(ntp, flags if first else flags & ~FLAG_D, cseq, *p.extension)
                out.append(build_rtp(pt, n, ts, ssrc, p.payload, marker=p.marker, extension=ext))
            elif first:
                head = _replay_header(pt, n, ts, ssrc, ntp, flags, cseq, marker=p.marker)
                out.append(head + p.payload)
            else:
                out.append(build_rtp(pt, n, ts, ssrc, p.payload, marker=p.marker))
            first = False
            n = (n + 1) & 0xFFFF
            octets += len(p.payload)
        seq.next_seq = n
        seq.packet_count += len(out)
        seq.octet_count += octets
        return out

    def frame_into(
        self,
        out: bytearray,
        channel: int,
        data: bytes | memoryview,
        timestamp: int,
        ntp: int,
        flags: int,
        cseq: int,
    ) -> int:
        """Append the packets of one access unit to ``out`` as interleaved frames on
        ``channel`` (the same packets as :meth:`packets`); returns how many."""
        seq = self.seq
        fragment = self._fragment
        count = 0
        if fragment is not None:
            count = fragment(
                out, data, channel, seq.payload_type, seq.next_seq, timestamp & _U32, seq.ssrc,
                ntp, flags, cseq & 0xFF,
            )  # fmt: skip
        if not count:
            packets = self.packets(data, timestamp, ntp, flags, cseq)
            for packet in packets:
                out += interleaved_header(channel, len(packet))
                out += packet
            return len(packets)
        fu_bytes = self._fu_bytes
        seq.next_seq = (seq.next_seq + count) & 0xFFFF
        seq.packet_count += count
        seq.octet_count += len(data) - 4 - (fu_bytes - 1) + count * fu_bytes
        return count

    def report(self, ntp: int, rtp_timestamp: int, *, bye: bool = False) -> bytes:
        """A compound SR + SDES CNAME (+ BYE) with the given NTP/RTP pair (zeros allowed)."""
        return self.seq.ntp_report(ntp, rtp_timestamp, self.cname, bye=bye)
