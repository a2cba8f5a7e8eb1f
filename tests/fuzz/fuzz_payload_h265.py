"""Fuzz entry point for the H.265 depacketizer (with and without DONL) and SPS parsing.

Run with atheris when installed: ``python tests/fuzz/fuzz_payload_h265.py [corpus_dir]``.
"""

from __future__ import annotations

from nvr.protocol.payload.h265 import H265Depacketizer, H265Packetizer, parse_sps
from nvr.protocol.payload.nal import length_prefixed_to_nals

try:
    from tests.fuzz.harness import drive, guard, main
except ImportError:  # run as a script
    from harness import drive, guard, main  # type: ignore[no-redef]


def fuzz_one_input(data: bytes) -> None:
    for don in ("0", "1"):
        for au in drive(lambda: H265Depacketizer({"sprop-max-don-diff": don}), data):  # noqa: B023
            assert length_prefixed_to_nals(au.data)
            H265Packetizer(mtu=300).packetize(au.data)
    guard(parse_sps, data)
    guard(parse_sps, b"\x42\x01" + data)


if __name__ == "__main__":
    main(fuzz_one_input)
