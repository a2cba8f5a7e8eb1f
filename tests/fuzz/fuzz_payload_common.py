"""Shared driver of the payload fuzz entry points: fuzz bytes -> fake RTP packets.

Each packet in the input is a 3-byte control header (flags, 16-bit payload length) and the
payload. Flags: bit 0 marker; bit 1 the first 4 payload bytes are a header extension profile
and length instead; bits 2-3 the sequence step (+1, +1, +2 = a loss, +0 = a duplicate);
bits 4-5 the timestamp step (0, 0, +3000, +1). A depacketizer may reject anything, but only by
dropping it: it must never raise, and what it emits must be well-formed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from nvr.protocol.errors import ProtocolError
from nvr.protocol.payload.base import AccessUnit, Depacketizer, Extension, PayloadPacket

_SEQ_STEP = (1, 1, 2, 0)
_TS_STEP = (0, 0, 3000, 1)


def drive(make: Callable[[], Depacketizer], data: bytes) -> list[AccessUnit]:
    """Push the packets encoded in ``data``; check the output; return it."""
    dep = make()
    seq = ts = 0
    pos = 0
    out: list[AccessUnit] = []
    while pos + 3 <= len(data):
        flags = data[pos]
        length = int.from_bytes(data[pos + 1 : pos + 3], "big")
        payload = data[pos + 3 : pos + 3 + length]
        pos += 3 + length
        seq = (seq + _SEQ_STEP[(flags >> 2) & 3]) & 0xFFFF
        ts = (ts + _TS_STEP[(flags >> 4) & 3]) & 0xFFFFFFFF
        ext = None
        if flags & 2 and len(payload) >= 4:
            words = int.from_bytes(payload[2:4], "big")
            ext = Extension(int.from_bytes(payload[:2], "big"), payload[4 : 4 + 4 * words])
            payload = payload[4 + 4 * words :]
        out += dep.push(payload, bool(flags & 1), ts, seq, ext)
    out += dep.flush()
    for au in out:
        assert isinstance(au.data, bytes) and au.data, "empty or non-bytes access unit"
        assert 0 <= au.rtp_timestamp <= 0xFFFFFFFF
    assert dep.stats.units == len(out)
    return out


def encode(units: Iterable[list[PayloadPacket]]) -> bytes:
    """The fuzz input that replays the packets of ``units``, one timestamp per unit (a seed
    for corpora and mutation tests)."""
    out = bytearray()
    for packets in units:
        for n, p in enumerate(packets):
            payload = p.payload
            flags = int(p.marker) | ((2 if n == 0 else 0) << 4)
            if p.extension is not None:
                flags |= 2
                data = p.extension.data
                head = p.extension.profile.to_bytes(2, "big") + (len(data) // 4).to_bytes(2, "big")
                payload = head + data + payload
            out += bytes((flags,)) + len(payload).to_bytes(2, "big") + payload
    return bytes(out)


def guard(fn: Callable[[bytes], object], data: bytes) -> None:
    """Call a parser; malformed input may only be refused with a ProtocolError."""
    try:
        fn(data)
    except ProtocolError:
        pass


def main(fuzz_one_input: Callable[[bytes], None], argv: list[str]) -> None:
    """Run under atheris when installed, else replay the files named on the command line."""
    try:
        import atheris
    except ImportError:
        for path in argv[1:]:
            with open(path, "rb") as f:
                fuzz_one_input(f.read())
        print("atheris is not installed; replayed", len(argv) - 1, "input(s)")
    else:
        atheris.instrument_all()
        atheris.Setup(argv, fuzz_one_input)
        atheris.Fuzz()
