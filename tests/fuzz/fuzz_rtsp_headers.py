"""Fuzz entry point for the typed RTSP header parsers (``nvr.protocol.rtsp_headers``).

The first byte picks a header, the rest is its value, decoded the way the RTSP parser decodes
header values. Whatever parses must serialise, and the serialised text must parse back equal.
Run with atheris: ``python tests/fuzz/fuzz_rtsp_headers.py [corpus_dir]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nvr.protocol import rtsp_headers as h
from nvr.protocol.errors import ProtocolError

try:
    from tests.fuzz.harness import header_value, main
except ImportError:  # run as a script
    from harness import header_value, main  # type: ignore[no-redef]

PAIRS: list[tuple[Callable[[str], Any], Callable[[Any], str]]] = [
    (h.parse_transport, h.format_transport),
    (h.parse_session, h.format_session),
    (h.parse_range, h.format_range),
    (h.parse_rtp_info, h.format_rtp_info),
    (h.parse_method_list, h.format_method_list),
    (h.parse_option_tags, h.format_option_tags),
    (h.parse_content_base, h.format_content_base),
    (h.parse_scale, h.format_scale),
    (h.parse_speed, h.format_speed),
    (h.parse_rate_control, h.format_rate_control),
    (h.parse_immediate, h.format_immediate),
    (h.parse_frames, h.format_frames),
    (h.parse_cseq, h.format_cseq),
    (h.parse_utc_time, h.format_utc_time),
]


def fuzz_one_input(data: bytes) -> None:
    """Parse, serialise, re-parse; only ProtocolError may come out of the parsers."""
    if not data:
        return
    parse, format_ = PAIRS[data[0] % len(PAIRS)]
    try:
        value = parse(header_value(data[1:]))
    except ProtocolError:
        return
    text = format_(value)  # anything that parsed must serialise
    assert parse(text) == value, (text, value)


if __name__ == "__main__":
    main(fuzz_one_input)
