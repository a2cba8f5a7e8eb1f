"""Fuzz entry point for the ONVIF replay (0xABAC) header extension parser.

The input is tried both as extension data and as a whole RTP packet. Run with atheris
(``python tests/fuzz/fuzz_onvif_replay.py [corpus dir]``) or through
``tests/protocol/test_fuzz_rtp_sdp.py``. Only ``ProtocolError`` may escape the code under test.
"""

from __future__ import annotations

from nvr.protocol.errors import ProtocolError
from nvr.protocol.onvif_replay import REPLAY_PROFILE, ReplayExtension, parse_replay_extension
from nvr.protocol.rtp import parse_rtp

try:
    from tests.fuzz.harness import main
except ImportError:  # run as a script
    from harness import main  # type: ignore[no-redef]


def _check(ext: ReplayExtension, data: bytes | memoryview) -> None:
    out = ext.to_data()
    raw = bytes(data)
    # Everything but the reserved bits (flags low nibble, bytes 10-11) survives a rebuild.
    assert out[:8] == raw[:8] and out[8] == raw[8] & 0xF0 and out[9] == raw[9]
    assert out[10:12] == b"\0\0" and out[12:] == raw[12:]
    try:
        ext.jpeg_extension()
    except ProtocolError:
        pass


def fuzz_one_input(data: bytes) -> None:
    """Decode ``data`` as replay extension data, then as an RTP packet carrying one."""
    try:
        _check(parse_replay_extension(REPLAY_PROFILE, data), data)
    except ProtocolError:
        pass
    try:
        pkt = parse_rtp(data)
        ext = ReplayExtension.from_packet(pkt)
    except ProtocolError:
        return
    if ext is not None and pkt.extension is not None:
        _check(ext, pkt.extension.data)


if __name__ == "__main__":
    main(fuzz_one_input)
