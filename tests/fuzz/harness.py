"""What the fuzz entry points share: running under atheris (or replaying inputs without it),
guarding parsers, turning fuzz bytes into RTP packet streams, and mutating seeds.

Every entry point defines ``fuzz_one_input(data: bytes) -> None`` and ends with::

    if __name__ == "__main__":
        main(fuzz_one_input)

Run one with ``python tests/fuzz/fuzz_rtsp.py [corpus_dir | input files] [-atheris_flags]``.
The hypothesis drivers in ``tests/protocol`` call ``fuzz_one_input`` directly, on random bytes
and on seeds edited by :func:`mutated`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from nvr.protocol.errors import ProtocolError
from nvr.protocol.payload.base import AccessUnit, Depacketizer, Extension, PayloadPacket

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

FuzzTarget = Callable[[bytes], None]


# -- running -----------------------------------------------------------------------------------


def main(fuzz_one_input: FuzzTarget, argv: Sequence[str] | None = None) -> None:
    """Fuzz under atheris when installed; else replay the inputs named on the command line
    (files, or directories of them such as a corpus or crash reproducers)."""
    argv = list(sys.argv if argv is None else argv)
    try:
        import atheris  # type: ignore[import-not-found]
    except ImportError:
        paths = [p for arg in argv[1:] if not arg.startswith("-") for p in _inputs(Path(arg))]
        for path in paths:
            fuzz_one_input(path.read_bytes())
        print(f"atheris is not installed; replayed {len(paths)} input(s)", file=sys.stderr)
        return
    atheris.instrument_all()
    atheris.Setup(argv, fuzz_one_input)
    atheris.Fuzz()


def _inputs(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]


def guard(fn: Callable[..., object], *args: object) -> object:
    """Call a parser: malformed input may only be refused with a ProtocolError (then None)."""
    try:
        return fn(*args)
    except ProtocolError:
        return None


def header_value(data: bytes) -> str:
    """Bytes -> an RTSP/HTTP header value as ``RtspParser`` would deliver it (one line, trimmed)."""
    text = data.decode("utf-8", "surrogateescape")
    for char in "\r\n\0":
        text = text.replace(char, " ")
    return text.strip(" \t")


# -- RTP packet streams ------------------------------------------------------------------------
#
# Each packet in the input is a 3-byte control header (flags, 16-bit payload length) and the
# payload. Flags: bit 0 marker; bit 1 the first 4 payload bytes are a header extension profile
# and length instead; bits 2-3 the sequence step (+1, +1, +2 = a loss, +0 = a duplicate);
# bits 4-5 the timestamp step (0, 0, +3000, +1). A depacketizer may reject anything, but only by
# dropping it: it must never raise, and what it emits must be well-formed.

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


# -- seed mutation -----------------------------------------------------------------------------

#: Byte values that tend to matter to parsers: zero, one, line ends, separators, sign bits.
INTERESTING = bytes((0x00, 0x01, 0x0A, 0x0D, 0x20, 0x2F, 0x3A, 0x3D, 0x7F, 0x80, 0xC8, 0xFF))
_OPS = ("flip", "set", "insert", "delete", "truncate", "splice", "graft")


def mutated(
    seeds: Sequence[bytes], interesting: bytes = INTERESTING, max_edits: int = 6
) -> SearchStrategy[bytes]:
    """A hypothesis strategy: one of ``seeds`` with 1 to ``max_edits`` byte-level edits (bit
    flips, overwrites and inserts favouring ``interesting`` bytes, deletions, truncation, and
    splices of another seed), so a fuzz target reaches the states deep inside valid input.

    Built once per set of arguments: ``data.draw(mutated(seeds))`` in every example is cheap."""
    return _mutated(tuple(seeds), bytes(interesting), max_edits)


@cache
def _mutated(seeds: tuple[bytes, ...], interesting: bytes, max_edits: int) -> SearchStrategy[bytes]:
    from hypothesis import strategies as st  # only the hypothesis drivers need it

    some_byte = st.sampled_from(interesting) | st.integers(0, 255)

    @st.composite
    def strategy(draw: st.DrawFn) -> bytes:
        data = bytearray(draw(st.sampled_from(seeds)))
        for _ in range(draw(st.integers(1, max_edits))):
            op = draw(st.sampled_from(_OPS))
            pos = draw(st.integers(0, len(data)))
            if op == "flip" and pos < len(data):
                data[pos] ^= 1 << draw(st.integers(0, 7))
            elif op == "set" and pos < len(data):
                data[pos] = draw(some_byte)
            elif op == "insert":
                data[pos:pos] = bytes(draw(st.lists(some_byte, min_size=1, max_size=8)))
            elif op == "delete":
                del data[pos : pos + draw(st.integers(1, 16))]
            elif op == "truncate":
                del data[pos:]
            else:  # splice: another seed's tail replaces ours; graft: a piece of it goes in
                other = draw(st.sampled_from(seeds))
                start = draw(st.integers(0, len(other)))
                if op == "splice":
                    data[pos:] = other[start:]
                else:
                    data[pos:pos] = other[start : start + draw(st.integers(1, 40))]
        return bytes(data)

    return strategy()
