"""Fuzz entry point for the ONVIF metadata depacketizer, plain and gzip.

Run with atheris when installed: ``python tests/fuzz/fuzz_payload_onvif_metadata.py [corpus]``.
"""

from __future__ import annotations

from nvr.protocol.payload.onvif_metadata import OnvifMetadataDepacketizer

try:
    from tests.fuzz.harness import drive, main
except ImportError:  # run as a script
    from harness import drive, main  # type: ignore[no-redef]


def fuzz_one_input(data: bytes) -> None:
    for au in drive(OnvifMetadataDepacketizer, data):
        assert au.data.strip().endswith(b">")
    drive(lambda: OnvifMetadataDepacketizer(gzip=True, max_size=1 << 16), data)


if __name__ == "__main__":
    main(fuzz_one_input)
