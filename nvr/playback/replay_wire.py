"""Replay RTP straight into interleaved wire bytes: the ``Rate-Control: no`` fast path.

With Rate-Control no over a TCP transport the server's cost is Python work per RTP packet, not
bytes: a 20 kB video frame is fifteen 1400-byte packets, and even one ``struct`` call and one
slice copy per packet cost more than the socket write of those bytes. Here the packets of many
access units are appended to one ``bytearray`` as ``$``-framed RTP, and a fragmented access
unit costs a fixed number of C-level calls whatever its packet count: its first and last
packets are packed one by one (replay words, S and E bits, marker, short length); the middle
ones are all alike but for their sequence number, so one ``struct`` call cuts their payloads,
``bytes.join`` puts one shared header before each, and two extended-slice assignments write
the sequence numbers' high and low bytes at the packet stride. (A list of header and payload
views for ``writelines`` instead copies less but makes two objects a packet, and was slower.)
The session writes the whole batch with one ``transport.write``.

The common access unit of stored H.264/H.265 (one slice NAL unit that is neither a key frame
nor a parameter set) is fragmented here; everything else (key frames that get their parameter
sets repeated, aggregation of small NAL units, JPEG, audio, metadata) goes through the track's
packetizer and is only framed here. Either way the bytes equal, packet for packet, those of
:meth:`TrackSender.packets <nvr.playback.replay_rtp.TrackSender.packets>` (the tests compare
them); the sequencer's counters advance the same way.
"""

from __future__ import annotations

import struct
from functools import lru_cache

from nvr.protocol.onvif_replay import REPLAY_PROFILE
from nvr.protocol.payload.h26x import H26xPacketizer

__all__ = ["fragment_into"]

_FU_START = 0x80
_FU_END = 0x40
_U32 = 0xFFFFFFFF
_SEQ_AT = 4 + 2  # offset of the sequence number in a framed packet

# "$", channel, length | V=2 X, M|PT, sequence, timestamp, SSRC | [0xABAC, 3, NTP, flags, CSeq,
# 0] | FU payload header (1 or 2 bytes), FU header
_PLAIN = {hl: struct.Struct("!BBHBBHII" + fmt + "B") for hl, fmt in ((1, "B"), (2, "H"))}
_REPLAY = {hl: struct.Struct("!BBHBBHIIHHQBBH" + fmt + "B") for hl, fmt in ((1, "B"), (2, "H"))}

# The high and the low byte of every sequence number, and of the ones a frame can run past
# 0xFFFF (the counter wraps): ``_SEQ_HIGH[s : s + n]`` are those of s, s + 1, ... s + n - 1.
# An access unit of more middle packets than that (over 5 MB at MTU 1400) is the packetizer's.
_WRAP_ROOM = 4096
_SEQ_HIGH = bytes(k >> 8 & 0xFF for k in range(0x10000 + _WRAP_ROOM))
_SEQ_LOW = bytes(range(256)) * ((0x10000 + _WRAP_ROOM) // 256)


@lru_cache(maxsize=1024)
def _cutter(step: int, count: int) -> struct.Struct:
    """Cuts ``count`` consecutive ``step``-byte payloads in one call."""
    return struct.Struct(f"{step}s" * count)


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
    # number), the last (E bit, marker).
    tail = hl + (size - hl - 1) // step * step  # where the last fragment starts
    middle = (tail - hl) // step - 1
    if middle > _WRAP_ROOM:
        return None
    out += _REPLAY[hl].pack(
        0x24, channel, 28 + fu_bytes + step, 0x90, payload_type, seq, timestamp, ssrc,
        REPLAY_PROFILE, 3, ntp, flags, cseq & 0xFF, 0, prefix, t | _FU_START,
    )  # fmt: skip
    out += nal[hl : hl + step]
    plain = _PLAIN[hl]
    n = seq + middle
    if middle:
        # One header for all (sequence number 0), then the sequence numbers in place.
        header = plain.pack(0x24, channel, 12 + fu_bytes + step, 0x80, payload_type, 0,
                            timestamp, ssrc, prefix, t)  # fmt: skip
        stride = len(header) + step
        base = len(out)
        out += header
        out += header.join(_cutter(step, middle).unpack_from(nal, hl + step))
        first = (seq + 1) & 0xFFFF
        end = base + stride * middle
        out[base + _SEQ_AT : end : stride] = _SEQ_HIGH[first : first + middle]
        out[base + _SEQ_AT + 1 : end : stride] = _SEQ_LOW[first : first + middle]
    n += 1
    out += plain.pack(
        0x24, channel, 12 + fu_bytes + size - tail, 0x80, payload_type | 0x80, n & 0xFFFF,
        timestamp, ssrc, prefix, t | _FU_END,
    )  # fmt: skip
    out += nal[tail:]
    count = n - seq + 1
    return count, size - hl + count * fu_bytes
