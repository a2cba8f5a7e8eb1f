"""Fuzz entry point for the H.264 depacketizer and SPS/sprop parsing.

Run with atheris when installed: ``python tests/fuzz/fuzz_payload_h264.py [corpus_dir]``.
"""

from __future__ import annotations

from nvr.protocol.payload.h264 import H264Depacketizer, H264Packetizer, parse_sps
from nvr.protocol.payload.nal import length_prefixed_to_nals, parse_sprop, split_annexb

try:
    from tests.fuzz.harness import drive, guard, main
except ImportError:  # run as a script
    from harness import drive, guard, main  # type: ignore[no-redef]


def fuzz_one_input(data: bytes) -> None:
    for au in drive(lambda: H264Depacketizer({"packetization-mode": "1"}), data):
        # Whatever comes out is valid storage form and packetizes again.
        assert length_prefixed_to_nals(au.data)
        H264Packetizer(mtu=300).packetize(au.data)
    guard(parse_sps, data)
    guard(parse_sps, b"\x67" + data)
    guard(split_annexb, data)
    guard(lambda d: parse_sprop(d.decode("latin-1")), data)


if __name__ == "__main__":
    main(fuzz_one_input)
