"""Replay RTP straight into interleaved wire bytes: the fast path of replay over TCP.

Over a TCP transport the server's cost is work per RTP packet, not bytes: a 20 kB video frame
is fifteen 1400-byte packets. Building each packet as a ``bytes`` (fragment copy, header
concatenation, ``$`` header, ``writelines`` join) cost several times what the socket write
itself costs, and even the leanest Python layout (one ``struct`` call cutting all the
fragments, one shared header, sequence numbers written by slice assignment) spent more time
than everything else of a Rate-Control no session together. So the packets of a fragmented
access unit are laid out by the native module ``_wire`` (``_wire.c``: headers and payload
copies written straight into the batch's ``bytearray``); the session writes a whole batch of
access units with one ``transport.write``.

The common access unit of stored H.264/H.265 (one slice NAL unit that is neither a key frame
nor a parameter set) is fragmented here; everything else (key frames that get their parameter
sets repeated, aggregation of small NAL units, JPEG, audio, metadata) goes through the track's
packetizer and is only framed here. Either way the bytes equal, packet for packet, those of
:meth:`TrackSender.packets <nvr.playback.replay_rtp.TrackSender.packets>` (the tests compare
them); the sequencer's counters advance the same way. Without the native module (no C compiler
at install) every access unit takes the packetizer's path: the same bytes, more CPU.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from nvr.protocol.payload.h26x import H26xPacketizer

try:
    from nvr.playback import _wire
except ImportError:  # built without a C compiler
    _wire = None

__all__ = ["NATIVE", "Fragmenter", "fragmenter"]

NATIVE = _wire is not None
"""Whether the native layout is built (else every access unit takes the packetizer's path)."""

Fragmenter = Callable[[bytearray, bytes, int, int, int, int, int, int, int, int], int]
"""``(out, data, channel, payload_type, seq, timestamp, ssrc, ntp, flags, cseq) -> packets``:
appends the FU packets of an access unit that is one non-key slice larger than the MTU to
``out`` and returns how many; 0 (nothing appended) for anything else."""


def fragmenter(packetizer: H26xPacketizer) -> Fragmenter | None:
    """The native fast path for access units of ``packetizer``'s codec and MTU (None without
    the native module). Key frames and parameter sets stay the packetizer's: it repeats the
    parameter sets before key frames."""
    if _wire is None:
        return None
    syntax = packetizer.syntax
    declined = sum(1 << t for t in {*syntax.param_kinds, *syntax.key_types})
    return functools.partial(
        _wire.fragment_into, syntax.header_len, packetizer.mtu, syntax.fu_type, declined
    )
