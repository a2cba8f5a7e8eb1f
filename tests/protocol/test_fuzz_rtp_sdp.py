"""Drive the fuzz entry points of tests/fuzz with hypothesis: raw bytes and mutated seeds."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nvr.protocol.onvif_replay import JPEG_PROFILE_FIRST, ReplayExtension
from nvr.protocol.rtcp import (
    App,
    Bye,
    ReceiverReport,
    ReportBlock,
    Sdes,
    SdesChunk,
    SenderReport,
    build_pli,
    build_receiver_report,
    build_rtcp,
)
from nvr.protocol.rtp import (
    ExtensionElement,
    RtpExtension,
    build_header_extensions,
    build_rtp,
)
from tests.fuzz import fuzz_onvif_replay, fuzz_rtcp, fuzz_rtp, fuzz_sdp
from tests.fuzz.harness import mutated

from .test_sdp import AXIS, GSTREAMER, REPLAY, SLOPPY

_replay_ext = ReplayExtension(0xEB6D5CA4_70A3D800, clean_point=True, discontinuity=True, cseq=5)
_jpeg_ext = ReplayExtension(
    0xEB6D5CA4_70A3D800,
    terminal=True,
    extra=ReplayExtension.jpeg_words(JPEG_PROFILE_FIRST, b"\xff\xdd\x00\x04\x00\x08"),
)

RTP_SEEDS = [
    build_rtp(
        96, 4711, 3000000, 0x1234ABCD, b"\x65\x88\x84\x00", extension=_replay_ext.to_extension()
    ),
    build_rtp(
        26,
        1,
        2,
        3,
        b"\x00\x00\x00\x00\x01\x3c\x28\x1e",
        marker=True,
        extension=_jpeg_ext.to_extension(),
    ),
    build_rtp(0, 65535, 0xFFFFFFFF, 9, b"\xff" * 20, csrcs=(1, 2, 3), padding=4),
    build_rtp(
        111,
        7,
        8,
        9,
        b"opus",
        extension=build_header_extensions(
            [ExtensionElement(1, b"\x30"), ExtensionElement(3, b"abc")]
        ),
    ),
    build_rtp(
        97,
        7,
        8,
        9,
        b"",
        extension=build_header_extensions(
            [ExtensionElement(200, b""), ExtensionElement(2, b"x" * 20)]
        ),
    ),
    build_rtp(98, 0, 0, 0, b"", extension=RtpExtension(0xABAC, bytes(12))),
]
RTCP_SEEDS = [
    build_rtcp(
        [
            SenderReport(
                1, 0xEB6D5CA4_70A3D800, 3000000, 10, 12345, [ReportBlock(2, 5, -1, 70000, 30, 1, 2)]
            ),
            Sdes([SdesChunk(1, [(1, b"cam@host"), (6, b"tool")])]),
        ]
    ),
    build_receiver_report(
        0xBEEF, [ReportBlock(1, 0, 3, 65549, 12, 0x5CA470A3, 0x8000)], cname="nvr"
    ),
    build_rtcp([ReceiverReport(5), Bye([5, 6], "bye now")]),
    build_rtcp([ReceiverReport(5), App(1, 5, b"ONVF", b"\0\1\2\3")]),
    build_pli(1, 2),
    b"\xa0\xc9\x00\x02\x00\x00\x00\x2a\x00\x00\x00\x04",
]
SDP_SEEDS = [GSTREAMER.encode(), AXIS.encode(), REPLAY.encode(), SLOPPY]
REPLAY_SEEDS = [
    RTP_SEEDS[0],
    RTP_SEEDS[1],
    _replay_ext.to_data(),
    _jpeg_ext.to_data(),
]

TARGETS: dict[str, tuple[Callable[[bytes], None], list[bytes]]] = {
    "sdp": (fuzz_sdp.fuzz_one_input, SDP_SEEDS),
    "rtp": (fuzz_rtp.fuzz_one_input, RTP_SEEDS),
    "rtcp": (fuzz_rtcp.fuzz_one_input, RTCP_SEEDS),
    "onvif_replay": (fuzz_onvif_replay.fuzz_one_input, REPLAY_SEEDS),
}


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_seeds_are_accepted(target: str) -> None:
    fn, seeds = TARGETS[target]
    for seed in seeds:
        fn(seed)
        for cut in range(len(seed)):
            fn(seed[:cut])


_fast = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("target", sorted(TARGETS))
@_fast
@given(data=st.binary(max_size=600))
def test_random_bytes(target: str, data: bytes) -> None:
    TARGETS[target][0](data)


@pytest.mark.parametrize("target", sorted(TARGETS))
@_fast
@given(data=st.data())
def test_mutated_seeds(target: str, data: st.DataObject) -> None:
    fn, seeds = TARGETS[target]
    fn(data.draw(mutated(seeds)))


@_fast
@given(
    st.lists(
        st.sampled_from(
            [
                "v=0",
                "o=- 1 1 IN IP4 h",
                "s=x",
                "t=0 0",
                "m=video 0 RTP/AVP 96",
                "m=audio 9 RTP/AVP 0",
                "a=rtpmap:96 H264/90000",
                "a=rtpmap:96 H264",
                "a=fmtp:96 a=b;c",
                "a=control:*",
                "a=control:track1",
                "a=control://[::1",
                "a=framerate:1e9999",
                "a=framerate:29.97",
                "a=x-onvif-track:V",
                "c=IN IP4 0.0.0.0",
                "b=AS:1",
                "r=1 2",
                "z=0 0",
                "k=clear:x",
                "a=recvonly",
                "i=t",
                "x=?",
                "1=2",
                "a",
                "=",
                "a=:",
                "\x00",
                "é=1",
                "s=\u2028x",
            ]
        )
        | st.text(max_size=20),
        max_size=25,
    ),
    st.sampled_from(["\r\n", "\n", "\r"]),
)
def test_sdp_line_soup(lines: list[str], sep: str) -> None:
    """Structure-aware SDP fuzzing: shuffled valid and broken lines."""
    fuzz_sdp.fuzz_one_input(sep.join(lines).encode("utf-8", "surrogatepass"))
