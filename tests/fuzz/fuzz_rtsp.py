"""Fuzz entry point for the RTSP byte-stream parser (``nvr.protocol.rtsp``).

Besides "no exception other than ProtocolError", it checks two invariants on every input:
the events do not depend on how the bytes are split across ``feed()`` calls, and every parsed
message serialises to bytes that parse back to the same message.
Run with atheris: ``python tests/fuzz/fuzz_rtsp.py [corpus_dir]``.
"""

from __future__ import annotations

from nvr.protocol.errors import ProtocolError
from nvr.protocol.rtsp import Event, InterleavedFrame, RtspParser

try:
    from tests.fuzz.harness import main
except ImportError:  # run as a script
    from harness import main  # type: ignore[no-redef]

_LIMITS = {"max_header_size": 2048, "max_body_size": 4096}


def _run(chunks: list[bytes]) -> tuple[list[Event], type[ProtocolError] | None]:
    """All events of a stream fed in these chunks, and the error class that ended it."""
    parser = RtspParser(**_LIMITS)
    events: list[Event] = []
    try:
        for chunk in chunks:
            parser.feed(chunk)
            events.extend(parser)
        parser.feed_eof()
    except ProtocolError as exc:
        return events, type(exc)
    return events, None


def _split(data: bytes) -> list[bytes]:
    """Cut points derived from the data itself, so a run is deterministic."""
    if len(data) < 2:
        return [data]
    step = 1 + data[0] % 7 + data[-1] % 13
    return [data[i : i + step] for i in range(0, len(data), step)]


def _check_round_trip(event: Event) -> None:
    if isinstance(event, InterleavedFrame):
        again = RtspParser(**_LIMITS)
        again.feed(event.serialize())
        assert again.next_event() == event
        return
    parser = RtspParser(max_header_size=1 << 20, max_body_size=1 << 20)
    parser.feed(event.serialize())
    assert parser.next_event() == event, event


def fuzz_one_input(data: bytes) -> None:
    """Parse ``data`` whole and in pieces; only ProtocolError may escape the parser."""
    whole = _run([data])
    pieces = _run(_split(data))
    assert whole == pieces, (whole, pieces)
    for event in whole[0]:
        _check_round_trip(event)


if __name__ == "__main__":
    main(fuzz_one_input)
