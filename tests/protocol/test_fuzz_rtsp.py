"""Run the RTSP fuzz entry points under hypothesis: random bytes and mutated real messages.

Atheris finds deeper bugs over hours; this keeps the entry points working and catches the
shallow ones on every test run.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nvr.protocol.rtsp import encode_interleaved
from tests.fuzz import fuzz_rtsp, fuzz_rtsp_auth, fuzz_rtsp_headers
from tests.fuzz.harness import FuzzTarget, mutated

RTSP_SEEDS = [
    b"OPTIONS rtsp://10.0.0.5/onvif/replay/REC_CAM1 RTSP/1.0\r\nCSeq: 1\r\n\r\n",
    b"PLAY rtsp://10.0.0.5/onvif/replay/REC_CAM1/ RTSP/1.0\r\nCSeq: 6\r\nSession: 9F3C22A1\r\n"
    b"Range: clock=20250301T100500Z-20250301T090000Z\r\nScale: -1.0\r\nImmediate: yes\r\n\r\n",
    b"RTSP/1.0 200 OK\r\nCSeq: 3\r\nContent-Type: application/sdp\r\nContent-Length: 4\r\n\r\n"
    b"v=0\n" + encode_interleaved(0, b"\x80\x60\x00\x01rtp") + encode_interleaved(1, b""),
    b"RTSP/1.0 200 OK\nCSeq: 5\nRTP-Info: url=rtsp://a/t1;seq=1;rtptime=2,\n url=rtsp://a/t3\n\n",
    b"GET /onvif/media HTTP/1.1\r\nx-sessioncookie: 6f1a\r\n\r\nREVTQ1JJQkU=",
    b"HTTP/1.0 200 OK\r\nContent-Type: application/x-rtsp-tunnelled\r\n\r\nRTSP/1.0 200 OK\r\n\r\n",
]
HEADER_SEEDS = [
    b'\x00RTP/AVP/TCP;unicast;interleaved=0-1;ssrc=1234ABCD;mode="PLAY"',
    b"\x00RTP/AVP;multicast;destination=232.1.1.1;port=5000-5001;ttl=16,RTP/AVP;unicast",
    b"\x01 9F3C22A1;timeout=60",
    b"\x02clock=20250301T101500.440Z-",
    b"\x02clock=2025-03-01T10:15:00.440Z-2025-03-01T09:00:00Z;time=20250301T090000Z",
    b"\x02npt=00:01:02.5-120",
    b'\x03url=rtsp://a/t1;seq=4711;rtptime=3000000, url="rtsp://a/t;3";seq=1',
    b"\x04OPTIONS, DESCRIBE, SETUP",
    b"\x05onvif-replay, www.onvif.org/ver20/backchannel",
    b"\x07-1.0",
    b"\x0bintra/2000",
    b"\x0d20250301T101500.123456789Z",
]
AUTH_SEEDS = [
    b'Digest realm="nvr", nonce="5e1b0c9a77", algorithm=MD5, qop="auth"',
    b'Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple"',
    b'Digest username="operator", realm="nvr", nonce="5e1b0c9a77", uri="rtsp://h/x", '
    b'response="6629fae49393a05397450978507c4ef1", algorithm=MD5, qop=auth, nc=00000001, '
    b'cnonce="a1b2"',
    b"Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==",
    b"rtsp://us%40er:p@ss@cam:554/onvif/profile1",
]
INTERESTING = b' \t\r\n:;,="\\-$.0123456789TZ\x00\x24\xff'


TARGETS = [
    ("rtsp", fuzz_rtsp.fuzz_one_input, RTSP_SEEDS),
    ("headers", fuzz_rtsp_headers.fuzz_one_input, HEADER_SEEDS),
    ("auth", fuzz_rtsp_auth.fuzz_one_input, AUTH_SEEDS),
]
IDS = [t[0] for t in TARGETS]


@pytest.mark.parametrize(("target", "seeds"), [t[1:] for t in TARGETS], ids=IDS)
def test_seeds_pass(target: FuzzTarget, seeds: list[bytes]) -> None:
    for seed in seeds:
        target(seed)


@pytest.mark.parametrize("target", [t[1] for t in TARGETS], ids=IDS)
def test_random_bytes(target: FuzzTarget) -> None:
    @settings(max_examples=200)
    @given(st.binary(max_size=300))
    def check(data: bytes) -> None:
        target(data)

    check()


@pytest.mark.parametrize(("target", "seeds"), [t[1:] for t in TARGETS], ids=IDS)
def test_mutated_messages(target: FuzzTarget, seeds: list[bytes]) -> None:
    @settings(max_examples=300)
    @given(mutated(seeds, INTERESTING))
    def check(data: bytes) -> None:
        target(data)

    check()
