"""Fuzz entry point for the RTP parser, RFC 8285 elements and the receive-side trackers.

Run with atheris (``python tests/fuzz/fuzz_rtp.py [corpus dir]``) or through
``tests/protocol/test_fuzz_rtp_sdp.py``. Only ``ProtocolError`` may escape the code under test.
"""

from __future__ import annotations

from nvr.protocol.errors import ProtocolError
from nvr.protocol.rtp import (
    SequenceTracker,
    TimestampUnwrapper,
    parse_header_extensions,
    parse_rtp,
)

try:
    from tests.fuzz.harness import main
except ImportError:  # run as a script
    from harness import main  # type: ignore[no-redef]


def fuzz_one_input(data: bytes) -> None:
    """Parse ``data`` as bytes and as a view; a parsed packet must rebuild to the same bytes."""
    try:
        pkt = parse_rtp(data)
    except ProtocolError:
        return
    view = parse_rtp(memoryview(data))
    assert view == pkt, "bytes and memoryview parses differ"
    rebuilt = pkt.to_bytes()
    assert len(rebuilt) == len(data)
    keep = len(data) - pkt.padding  # padding octets other than the count are not preserved
    assert rebuilt[:keep] == data[:keep] and rebuilt[-1:] == data[-1:]
    if pkt.extension is not None:
        try:
            parse_header_extensions(pkt.extension)
        except ProtocolError:
            pass
    # Walk the trackers over numbers derived from the input.
    tracker = SequenceTracker()
    unwrap = TimestampUnwrapper()
    for i in range(0, len(data) - 1, 2):
        seq = (pkt.sequence + data[i] * 256 + data[i + 1]) & 0xFFFF
        upd = tracker.update(seq)
        assert upd.ext_seq & 0xFFFF == seq
        ts = (pkt.timestamp + data[i] * 0x01000193) & 0xFFFFFFFF
        assert unwrap.unwrap(ts) & 0xFFFFFFFF == ts


if __name__ == "__main__":
    main(fuzz_one_input)
