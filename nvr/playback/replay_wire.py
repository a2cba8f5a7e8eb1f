"""Replay RTP straight into interleaved wire bytes: the ``Rate-Control: no`` fast path.

With Rate-Control no over a TCP transport the server's cost is Python work per RTP packet, not
bytes: a 20 kB video frame is fifteen 1400-byte packets. Building each packet as a ``bytes``
(fragment copy, header concatenation, ``$`` header, ``writelines`` join) cost several times
what the socket write itself costs. Here the packets of many access units are appended to one
``bytearray`` as ``$``-framed RTP, each packet with one ``struct`` call for ``$`` header, RTP
header (with the 0xABAC words on the first packet of the access unit) and FU header together,
and one copy of its payload slice from the stored frame; the session writes the whole batch
with one ``transport.write``.

The common access unit of stored H.264/H.265 (one slice NAL unit that is neither a key frame
nor a parameter set) is fragmented here; everything else (key frames that get their parameter
sets repeated, aggregation of small NAL units, JPEG, audio, metadata) goes through the track's
packetizer and is only framed here. Either way the bytes equal, packet for packet, those of
:meth:`TrackSender.packets <nvr.playback.replay_rtp.TrackSender.packets>` (the tests compare
them); the sequencer's counters advance the same way.
"""

from __future__ import annotations

import struct

from nvr.protocol.onvif_replay import REPLAY_PROFILE
from nvr.protocol.payload.h26x import H26xPacketizer

__all__ = ["fragment_into"]

_FU_START = 0x80
_FU_END = 0x40
_U32 = 0xFFFFFFFF

# "$", channel, length | V=2 X, M|PT, sequence, timestamp, SSRC | [0xABAC, 3, NTP, flags, CSeq,
# 0] | FU payload header (1 or 2 bytes), FU header
_PLAIN = {hl: struct.Struct("!BBHBBHII" + fmt + "B") for hl, fmt in ((1, "B"), (2, "H"))}
_REPLAY = {hl: struct.Struct("!BBHBBHIIHHQBBH" + fmt + "B") for hl, fmt in ((1, "B"), (2, "H"))}


def fragment_into(
    out: bytearray,
    packetizer: H26xPacketizer,
    data: bytes,
    channel: int,
    payload_type: int,
    seq: int,
    timestamp: int,
    ssrc: int,
    ntp: int,
    flags: int,
    cseq: int,
) -> tuple[int, int] | None:
    """Append the FU packets of a stored H.26x access unit that is one non-key slice larger
    than the MTU; returns (packets, payload octets), or None (nothing appended) when the access
    unit is anything else and the packetizer has to do it."""
    if len(data) < 8:
        return None
    syntax = packetizer.syntax
    hl = syntax.header_len
    size = len(data) - 4
    mtu = packetizer.mtu
    if int.from_bytes(data[:4], "big") != size or size <= mtu or data[4] & 0x80:
        return None
    nal = memoryview(data)[4:]
    t = syntax.nal_type(data[4])
    if t in syntax.param_kinds or t in syntax.key_types:
        return None
    prefix = int.from_bytes(syntax.fu_payload_header(nal), "big")
    step = mtu - hl - 1
    fu_bytes = hl + 1
    timestamp &= _U32
    # First fragment (replay words, S bit), the middle ones (all alike but their sequence
    # number: the loop does nothing else), the last (E bit, marker).
    tail = hl + (size - hl - 1) // step * step  # where the last fragment starts
    out += _REPLAY[hl].pack(
        0x24, channel, 28 + fu_bytes + step, 0x90, payload_type, seq, timestamp, ssrc,
        REPLAY_PROFILE, 3, ntp, flags, cseq & 0xFF, 0, prefix, t | _FU_START,
    )  # fmt: skip
    out += nal[hl : hl + step]
    pack = _PLAIN[hl].pack
    length = 12 + fu_bytes + step
    n = seq
    for pos in range(hl + step, tail, step):
        n += 1
        out += pack(
            0x24, channel, length, 0x80, payload_type, n & 0xFFFF, timestamp, ssrc, prefix, t
        )
        out += nal[pos : pos + step]
    n += 1
    out += pack(
        0x24, channel, 12 + fu_bytes + size - tail, 0x80, payload_type | 0x80, n & 0xFFFF,
        timestamp, ssrc, prefix, t | _FU_END,
    )  # fmt: skip
    out += nal[tail:]
    count = n - seq + 1
    return count, size - hl + count * fu_bytes
