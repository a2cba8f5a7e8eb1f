"""Fuzz entry point for the G.711 depacketizer (each packet is a frame: it must stay so).

Run with atheris when installed: ``python tests/fuzz/fuzz_payload_g711.py [corpus_dir]``.
"""

from __future__ import annotations

from nvr.protocol.payload.g711 import G711Depacketizer

try:
    from tests.fuzz.harness import drive, main
except ImportError:  # run as a script
    from harness import drive, main  # type: ignore[no-redef]


def fuzz_one_input(data: bytes) -> None:
    for au in drive(lambda: G711Depacketizer(8000), data):
        assert au.duration == len(au.data)


if __name__ == "__main__":
    main(fuzz_one_input)
