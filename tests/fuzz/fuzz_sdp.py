"""Fuzz entry point for the SDP parser, generator and stream view.

Run with atheris (``python tests/fuzz/fuzz_sdp.py [corpus dir]``) or through
``tests/protocol/test_fuzz_rtp_sdp.py``. Only ``ProtocolError`` may escape the code under test;
anything else (or a failed assertion) is a finding.
"""

from __future__ import annotations

from nvr.protocol.errors import ProtocolError
from nvr.protocol.sdp import (
    SessionDescription,
    generate_sdp,
    media_streams,
    parse_sdp,
    resolve_control,
    session_control_url,
)

try:
    from tests.fuzz.harness import main
except ImportError:  # run as a script
    from harness import main  # type: ignore[no-redef]

_BASES = ("rtsp://cam.example:554/onvif/profile1/", "rtsps://[fe80::1]/live?ch=1")


def _exercise(sd: SessionDescription) -> None:
    for base in _BASES:
        try:
            session_control_url(sd, base)
            media_streams(sd, base)
            media_streams(sd, base, append_control=True)
        except ProtocolError:
            pass
    for m in sd.media:
        for pt in m.payload_types:
            try:
                m.rtpmap(pt)
            except ProtocolError:
                pass
            m.fmtp(pt)
        try:
            m.rtpmaps()
        except ProtocolError:
            pass
        try:
            m.framerate  # noqa: B018 - property with validation
        except ProtocolError:
            pass
        _ = (m.control, m.onvif_track, m.direction, m.range)
        if m.control is not None:
            try:
                resolve_control(m.control, _BASES[0])
            except ProtocolError:
                pass


def fuzz_one_input(data: bytes) -> None:
    """Parse ``data`` leniently and strictly; regenerated text must be a fixed point."""
    try:
        parse_sdp(data, strict=True)
    except ProtocolError:
        pass
    try:
        sd = parse_sdp(data)
    except ProtocolError:
        return
    _exercise(sd)
    try:
        text = generate_sdp(sd)
    except ProtocolError:
        return
    again = parse_sdp(text)
    assert generate_sdp(again) == text, "generate(parse(generate(x))) is not a fixed point"


if __name__ == "__main__":
    main(fuzz_one_input)
