"""Fuzz entry point for the RTP/JPEG depacketizer (RFC 2435 + ONVIF extension) and the JPEG
header parser behind the packetizer.

Run with atheris when installed: ``python tests/fuzz/fuzz_payload_jpeg.py [corpus_dir]``.
"""

from __future__ import annotations

from nvr.protocol.payload.jpeg import JpegDepacketizer, JpegPacketizer
from nvr.protocol.payload.jpeg_headers import parse_jpeg, split_segments

try:
    from tests.fuzz.harness import drive, guard, main
except ImportError:  # run as a script
    from harness import drive, guard, main  # type: ignore[no-redef]


def fuzz_one_input(data: bytes) -> None:
    for au in drive(JpegDepacketizer, data):
        assert au.data.startswith(b"\xff\xd8") and au.data.endswith(b"\xff\xd9")
    guard(parse_jpeg, data)
    guard(split_segments, data)
    guard(JpegPacketizer(200).packetize, data)
    guard(JpegPacketizer(200).packetize, b"\xff\xd8" + data)


if __name__ == "__main__":
    main(fuzz_one_input)
