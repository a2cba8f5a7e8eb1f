"""Fuzz entry point for the RTCP compound-packet parser and builder.

Run with atheris (``python tests/fuzz/fuzz_rtcp.py [corpus dir]``) or through
``tests/protocol/test_fuzz_rtp_sdp.py``. Only ``ProtocolError`` may escape the code under test.
"""

from __future__ import annotations

from nvr.protocol.errors import ProtocolError
from nvr.protocol.rtcp import ReceptionStatistics, SenderReport, build_rtcp, parse_rtcp

try:
    from tests.fuzz.harness import main
except ImportError:  # run as a script
    from harness import main  # type: ignore[no-redef]


def fuzz_one_input(data: bytes) -> None:
    """Parse ``data``; whatever parses and rebuilds must parse back to the same packets."""
    try:
        skipped = parse_rtcp(data)
    except ProtocolError:
        return
    packets = parse_rtcp(memoryview(data), keep_unknown=True)
    assert len(skipped) <= len(packets)
    stats = ReceptionStatistics(1, 90000)
    for i, p in enumerate(packets):
        if isinstance(p, SenderReport):
            stats.on_sender_report(p, i * 1000)
            stats.on_rtp(p.packet_count & 0xFFFF, p.rtp_timestamp, p.octet_count)
    block = stats.report_block(10**6)
    if block is not None:
        assert 0 <= block.fraction_lost <= 255
    try:
        raw = build_rtcp(packets)
    except ProtocolError:
        return  # e.g. padding left a body that is not whole words
    assert parse_rtcp(raw, keep_unknown=True) == packets


if __name__ == "__main__":
    main(fuzz_one_input)
