"""Fuzz entry point for the RFC 3640 (AAC) depacketizer and AudioSpecificConfig parsing.

Run with atheris when installed: ``python tests/fuzz/fuzz_payload_aac.py [corpus_dir]``.
"""

from __future__ import annotations

from nvr.protocol.payload.aac import AacDepacketizer, parse_audio_specific_config

try:
    from tests.fuzz.harness import drive, guard, main
except ImportError:  # run as a script
    from harness import drive, guard, main  # type: ignore[no-redef]


def layout(head: bytes) -> dict[str, str]:
    """RFC 3640 AU-header field sizes taken from the first input bytes, hbr for short input."""
    if len(head) < 4:
        return {"mode": "AAC-hbr"}
    return {
        "sizelength": str(head[0] % 17),
        "indexlength": str(head[1] % 5),
        "indexdeltalength": str(head[1] // 5 % 5),
        "ctsdeltalength": str(head[2] % 4),
        "dtsdeltalength": str(head[2] // 4 % 4),
        "randomaccessindication": str(head[3] & 1),
        "streamstateindication": str(head[3] >> 1 & 3),
        "auxiliarydatasizelength": str(head[3] >> 3 & 7),
        "constantsize": str(head[3] >> 6),
    }


def fuzz_one_input(data: bytes) -> None:
    fmtp = layout(data[:4])
    drive(lambda: AacDepacketizer(fmtp, 48000), data[4:])
    guard(parse_audio_specific_config, data)


if __name__ == "__main__":
    main(fuzz_one_input)
