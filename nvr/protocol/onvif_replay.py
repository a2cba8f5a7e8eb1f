"""The ONVIF replay RTP header extension (profile 0xABAC; ONVIF replay digest B.5).

Three 32-bit words follow the RFC 3550 extension header: the 64-bit NTP capture time of the
access unit, a flags byte (C clean point 0x80, E end of contiguous block 0x40, D discontinuity
0x20, T terminal 0x10, low nibble zero), the low byte of the PLAY's CSeq, and two zero bytes.
For JPEG the ONVIF JPEG extension is appended after these words inside the same extension
(B.5.2); its words are exposed as :attr:`ReplayExtension.extra`.

The replay server builds one of these per access unit on the hot path, so :func:`pack_replay_words`
is a single ``struct.pack``; the ingest side (pulling replay from another device) parses them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from nvr.protocol.errors import ProtocolError
from nvr.protocol.rtp import RtpExtension, RtpPacket

__all__ = [
    "FLAG_C",
    "FLAG_D",
    "FLAG_E",
    "FLAG_T",
    "JPEG_PROFILE_FIRST",
    "JPEG_PROFILE_NEXT",
    "REPLAY_PROFILE",
    "OnvifReplayError",
    "ReplayExtension",
    "build_replay_header",
    "pack_replay_words",
    "parse_replay_extension",
]

#: RFC 3550 "defined by profile" value of the replay extension.
REPLAY_PROFILE = 0xABAC
FLAG_C = 0x80  #: clean point (key frame)
FLAG_E = 0x40  #: last access unit of a contiguous block (before a gap / end of data)
FLAG_D = 0x20  #: discontinuity: does not follow the previously sent access unit
FLAG_T = 0x10  #: terminal: last access unit of this track in this playback
#: ONVIF JPEG extension profile values, first packet of a frame / following packets.
JPEG_PROFILE_FIRST = 0xFFD8
JPEG_PROFILE_NEXT = 0xFFFF

_WORDS = struct.Struct("!QBBH")  # NTP, flags, CSeq low byte, zero padding
# RTP fixed header (X set), extension header (0xABAC, 3 words) and the replay words: 28 bytes.
_RTP_REPLAY = struct.Struct("!BBHIIHHQBBH")
_JPEG_HDR = struct.Struct("!HH")


class OnvifReplayError(ProtocolError):
    """A malformed replay header extension, or invalid values to build one."""


def pack_replay_words(ntp_timestamp: int, flags: int, cseq: int) -> bytes:
    """The 12 bytes of replay extension data; ``cseq`` is reduced to its low byte."""
    if flags & ~0xF0:
        raise OnvifReplayError(f"replay flags 0x{flags:X} use bits outside C|E|D|T")
    try:
        return _WORDS.pack(ntp_timestamp, flags, cseq & 0xFF, 0)
    except struct.error as exc:
        raise OnvifReplayError(f"replay NTP timestamp {ntp_timestamp} not 64-bit") from exc


def build_replay_header(
    payload_type: int,
    sequence: int,
    timestamp: int,
    ssrc: int,
    ntp_timestamp: int,
    flags: int,
    cseq: int,
    *,
    marker: bool = False,
) -> bytes:
    """The 28-byte RTP header of a replay packet, extension included, in one ``struct.pack``.

    The replay server's per-packet fast path: send it followed by the payload (e.g. with
    ``writelines``) so the payload is never copied. Equivalent to ``build_rtp(..., payload=b"",
    extension=ReplayExtension(...).to_extension())``.
    """
    if payload_type & ~0x7F:
        raise OnvifReplayError(f"RTP payload type {payload_type} outside 0..127")
    if flags & ~0xF0:
        raise OnvifReplayError(f"replay flags 0x{flags:X} use bits outside C|E|D|T")
    try:
        return _RTP_REPLAY.pack(
            0x90,
            payload_type | 0x80 if marker else payload_type,
            sequence,
            timestamp,
            ssrc,
            REPLAY_PROFILE,
            3,
            ntp_timestamp,
            flags,
            cseq & 0xFF,
            0,
        )
    except struct.error as exc:
        raise OnvifReplayError(f"replay RTP header field out of range: {exc}") from exc


@dataclass(slots=True)
class ReplayExtension:
    """Decoded replay extension of one RTP packet.

    ``extra`` holds any whole words after the three replay words (the JPEG extension, B.5.2).
    Reserved bits (flags low nibble, bytes 10-11) are ignored on parse and written as zero.
    """

    ntp_timestamp: int
    clean_point: bool = False
    end_of_block: bool = False
    discontinuity: bool = False
    terminal: bool = False
    cseq: int = 0
    extra: bytes = b""

    @property
    def flags(self) -> int:
        """The C/E/D/T flags byte."""
        return (
            (FLAG_C if self.clean_point else 0)
            | (FLAG_E if self.end_of_block else 0)
            | (FLAG_D if self.discontinuity else 0)
            | (FLAG_T if self.terminal else 0)
        )

    def to_data(self) -> bytes:
        """The extension data words (replay words then ``extra``)."""
        if len(self.extra) & 3:
            raise OnvifReplayError(f"extra data of {len(self.extra)} bytes is not whole words")
        return pack_replay_words(self.ntp_timestamp, self.flags, self.cseq) + self.extra

    def to_extension(self) -> RtpExtension:
        """An :class:`RtpExtension` ready for :func:`nvr.protocol.rtp.build_rtp`."""
        return RtpExtension(REPLAY_PROFILE, self.to_data())

    @classmethod
    def from_packet(cls, packet: RtpPacket) -> ReplayExtension | None:
        """The replay extension of a parsed packet, or None if it carries none."""
        ext = packet.extension
        if ext is None or ext.profile != REPLAY_PROFILE:
            return None
        return parse_replay_extension(ext.profile, ext.data)

    def jpeg_extension(self) -> tuple[int, bytes] | None:
        """The appended ONVIF JPEG extension as (0xFFD8 or 0xFFFF, marker-segment bytes).

        None when ``extra`` does not start with a JPEG profile value (B.5.2 detection rule).
        """
        extra = self.extra
        if len(extra) < 4:
            return None
        profile, words = _JPEG_HDR.unpack_from(extra)
        if profile not in (JPEG_PROFILE_FIRST, JPEG_PROFILE_NEXT):
            return None
        end = 4 + 4 * words
        if end > len(extra):
            raise OnvifReplayError(
                f"JPEG extension claims {words} words, only {(len(extra) - 4) // 4} follow"
            )
        return profile, extra[4:end]

    @staticmethod
    def jpeg_words(profile: int, marker_data: bytes) -> bytes:
        """Encode a JPEG extension to append as ``extra``; pads marker data with 0xFF."""
        if profile not in (JPEG_PROFILE_FIRST, JPEG_PROFILE_NEXT):
            raise OnvifReplayError(f"JPEG extension profile 0x{profile:04X} invalid")
        data = marker_data + b"\xff" * (-len(marker_data) & 3)
        if len(data) > 4 * 0xFFFF:
            raise OnvifReplayError(f"JPEG extension of {len(data)} bytes is too long")
        return _JPEG_HDR.pack(profile, len(data) >> 2) + data


def parse_replay_extension(profile: int, data: bytes | bytearray | memoryview) -> ReplayExtension:
    """Decode replay extension data (the words after the RFC 3550 extension header)."""
    if profile != REPLAY_PROFILE:
        raise OnvifReplayError(f"extension profile 0x{profile:04X} is not the replay 0xABAC")
    n = len(data)
    if n < 12:
        raise OnvifReplayError(f"replay extension of {n} bytes, needs at least 12 (3 words)")
    if n & 3:
        raise OnvifReplayError(f"replay extension of {n} bytes is not whole 32-bit words")
    ntp, flags, cseq, _zero = _WORDS.unpack_from(data)
    return ReplayExtension(
        ntp,
        bool(flags & FLAG_C),
        bool(flags & FLAG_E),
        bool(flags & FLAG_D),
        bool(flags & FLAG_T),
        cseq,
        bytes(data[12:]),
    )
