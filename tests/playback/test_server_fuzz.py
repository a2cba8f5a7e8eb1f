"""Fuzzing the RTSP server's request path with hypothesis: request sequences that look valid
(OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER, ...) with mutated Range,
Scale, Speed, Frames, Rate-Control, Transport, Session, Require, CSeq, Content-Length and
Authorization headers, plus byte-level mutations of real requests.

Two drivers: the fuzz entry point ``tests/fuzz/fuzz_rtsp_server.py`` (in-memory transport,
store-less replay resource; checks the answers byte for byte), and the real server over TCP
serving recorded footage, where a session playing beside the fuzzing client must keep
streaming without losing a packet. Either way every request gets exactly one well-formed
response with an RFC 2326 status, and nothing is logged at ERROR.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nvr.playback import RtspServer, StaticResolver
from nvr.playback.replay import RecordingResolver
from nvr.protocol.rtp import parse_rtp
from nvr.protocol.rtsp import Response
from nvr.protocol.rtsp_headers import format_utc_time
from tests.fuzz import fuzz_rtsp_server
from tests.fuzz.fuzz_rtsp_server import EXTENT, RTSP_STATUSES, SESSION
from tests.fuzz.harness import mutated
from tests.playback.helpers import Firehose, LoopThread, RtspTestClient
from tests.playback.replay_footage import T0, TOKEN, Footage, S, footage, loop

__all__ = ["footage", "loop"]  # fixtures

pytestmark = pytest.mark.timeout(300)

METHODS = ("OPTIONS", "DESCRIBE", "SETUP", "PLAY", "PAUSE", "TEARDOWN", "GET_PARAMETER")
ODD_METHODS = ("SET_PARAMETER", "ANNOUNCE", "RECORD", "REDIRECT", "FOO", "play")
_TEXT = st.text(
    st.characters(min_codepoint=1, max_codepoint=0x2FF, blacklist_characters="\r\n"), max_size=24
)


def _values(*choices: str) -> st.SearchStrategy[str]:
    return st.sampled_from(choices) | _TEXT


def _ranges(t0_us: int) -> st.SearchStrategy[str]:
    """Clock ranges around the footage, absurd ones, and noise."""
    times = st.integers(-20, 30).map(lambda n: format_utc_time((t0_us + n * S) * 1000))
    closed = st.builds(lambda a, b: f"clock={a}-{b}", times, times | st.just(""))
    return closed | _values(
        "clock=99991231T235959Z-",
        "clock=19000101T000000Z-",
        "clock=-20250301T000000Z",
        "clock=20251301T000000Z-",
        "clock=20250301T101500.1234567891234Z-",
        "clock=garbage",
        "clock=",
        "npt=-5",
        "npt=5-3",
        "npt=0-",
        "npt=now-",
        "npt=99999999999999999999999-",
        "smpte=0:00:00-",
        "",
    )


def _header_values(t0_us: int) -> dict[str, st.SearchStrategy[str]]:
    return {
        "Range": _ranges(t0_us),
        "Scale": _values("1", "-1", "-1.0", "2", "0.5", "0", "-0", "1e5", "nan", "9" * 30, "1E-22"),
        "Speed": _values("1", "2", "0", "-1", "0.0000000001", "9" * 30),
        "Frames": _values("all", "intra", "intra/0", "intra/4000", "predicted", "intra/-1", "p/1"),
        "Rate-Control": _values("yes", "no", "maybe"),
        "Immediate": _values("yes", "no"),
        "Transport": _values(
            "RTP/AVP/TCP;unicast;interleaved=0-1",
            "RTP/AVP/TCP;unicast;interleaved=254-255",
            "RTP/AVP/TCP;unicast;interleaved=255",
            "RTP/AVP/TCP;unicast;interleaved=300-301",
            "RTP/AVP/TCP;unicast",
            "RTP/AVP;unicast;client_port=50000-50001",
            "RTP/AVP;multicast",
            "RTP/SAVP;unicast;client_port=5000",
            "RTP/AVP/TCP;unicast;mode=RECORD",
        ),
        "Session": _values(SESSION.decode(), SESSION.decode() + ";timeout=5", "DEADBEEF", "a b"),
        "Require": _values("onvif-replay", "x-unknown", "onvif-replay, x-unknown"),
        "Authorization": _values('Digest username="x", nonce="1"', "Basic Zm9vOmJhcg=="),
        "Content-Type": _values("application/sdp", "text/parameters"),
    }


_CSEQS = st.sampled_from(["auto"] * 8 + ["omit", "-1", "abc", "99999999999999999999", ""])


@st.composite
def request_bytes(draw: st.DrawFn, base: str, t0_us: int, first_cseq: int = 1) -> list[bytes]:
    """A sequence of requests on one recording, each its own message (bytes)."""
    values = _header_values(t0_us)
    urls = st.sampled_from(
        [base, base + "/", base + "/track1", base + "/track2", base + "/track9", "*"]
    ) | st.sampled_from(["rtsp://h/recordings/NOPE", "rtsp://h/", "/relative", "rtsp://[::1"])
    out = []
    cseq = first_cseq
    for _ in range(draw(st.integers(1, 7))):
        method = draw(st.sampled_from(METHODS) | st.sampled_from(ODD_METHODS))
        lines = [f"{method} {draw(urls)} RTSP/1.0"]
        chosen = draw(_CSEQS)
        if chosen == "auto":
            lines.append(f"CSeq: {cseq}")
        elif chosen != "omit":
            lines.append(f"CSeq: {chosen}")
        cseq += 1
        for name in draw(st.lists(st.sampled_from(sorted(values)), unique=True, max_size=5)):
            lines.append(f"{name}: {draw(values[name])}")
        body = draw(st.sampled_from([b"", b"", b"position\r\n"]))
        if body:
            lines.append(f"Content-Length: {len(body)}")
        out.append(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    return out


# -- the fuzz entry point: in memory, deterministic ----------------------------------------------

SEEDS = [
    b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n",
    b"DESCRIBE rtsp://h/recordings/FUZZ RTSP/1.0\r\nCSeq: 2\r\nRequire: onvif-replay\r\n\r\n"
    b"SETUP rtsp://h/recordings/FUZZ/track1 RTSP/1.0\r\nCSeq: 3\r\n"
    b"Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"
    b"PLAY rtsp://h/recordings/FUZZ/ RTSP/1.0\r\nCSeq: 4\r\nSession: $SESSION\r\n"
    b"Range: clock=20231114T221320Z-\r\nRate-Control: no\r\nFrames: intra/2000\r\n\r\n"
    b"PAUSE rtsp://h/recordings/FUZZ/ RTSP/1.0\r\nCSeq: 5\r\nSession: $SESSION\r\n\r\n"
    b"TEARDOWN rtsp://h/recordings/FUZZ/ RTSP/1.0\r\nCSeq: 6\r\nSession: $SESSION\r\n\r\n",
    b"SETUP rtsp://h/recordings/FUZZ/track2 RTSP/1.0\r\nCSeq: 7\r\n"
    b"Transport: RTP/AVP;unicast;client_port=50000-50001\r\n\r\n"
    b"PLAY rtsp://h/recordings/FUZZ RTSP/1.0\r\nCSeq: 8\r\nSession: $SESSION\r\nScale: -1\r\n"
    b"Range: clock=20231114T221330Z-20231114T221321Z\r\nImmediate: yes\r\n\r\n",
    b"GET_PARAMETER rtsp://h/recordings/FUZZ RTSP/1.0\r\nCSeq: 9\r\nContent-Length: 10\r\n\r\n"
    b"position\r\n",
    b"GET /recordings/FUZZ HTTP/1.1\r\nx-sessioncookie: 6f1a\r\n\r\n",
    b"POST /recordings/FUZZ HTTP/1.1\r\nx-sessioncookie: 6f1a\r\n\r\nREVTQ1JJQkU=",
]
FUZZ_BASE = "rtsp://h/recordings/FUZZ"


@settings(max_examples=300, deadline=None)
@given(mutated(SEEDS, interesting=b" \r\n:;,=-$/.0123456789TZ\x00\xff"))
def test_entry_point_on_mutated_requests(data: bytes) -> None:
    fuzz_rtsp_server.fuzz_one_input(data)


@settings(max_examples=300, deadline=None)
@given(request_bytes(FUZZ_BASE, EXTENT.start_us))
def test_entry_point_on_generated_request_sequences(requests: list[bytes]) -> None:
    fuzz_rtsp_server.fuzz_one_input(b"".join(requests))


@given(st.binary(max_size=300))
@settings(max_examples=200, deadline=None)
def test_entry_point_on_random_bytes(data: bytes) -> None:
    fuzz_rtsp_server.fuzz_one_input(data)


# -- the real server over TCP, beside a playing session ------------------------------------------


@pytest.fixture
def fire_server(loop: LoopThread, footage: Footage) -> Iterator[tuple[RtspServer, Firehose]]:
    """Replay of the footage, and a live source at ``/fire`` for the session beside."""
    firehose = Firehose(per_tick=2, tick=0.02)
    resolver = RecordingResolver(footage.store, fallback=StaticResolver({"/fire": firehose}))

    async def start() -> RtspServer:
        server = RtspServer("127.0.0.1", 0, resolver, udp_ports=(33000, 33999))
        await server.start()
        return server

    async def stop() -> None:
        await server.stop()
        if firehose.task is not None:
            firehose.task.cancel()

    server = loop.call(start())
    try:
        yield server, firehose
    finally:
        loop.call(stop())
        resolver.close()


class Beside:
    """A client playing ``/fire`` in a thread of its own while the test fuzzes."""

    def __init__(self, port: int) -> None:
        self.client = RtspTestClient(port)
        self.client.setup_all("/fire", ["data"])
        assert self.client.request("PLAY", self.client.url("/fire")).status == 200
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        while not self._stop.is_set() and self.client.pump(0.05):
            pass

    def stop(self) -> list[int]:
        """Stop reading; the RTP sequence numbers received."""
        self._stop.set()
        self._thread.join(10)
        return [parse_rtp(f.payload).sequence for _, f in self.client.frames if f.channel == 0]


def _exchange(client: RtspTestClient, request: bytes) -> tuple[Response | None, bool]:
    """Send one request; (its response, whether the connection is still open). Exactly one
    response must come, and none other: responses are collected whatever their CSeq."""
    if SESSION in request:
        request = request.replace(SESSION, (client.session or "NONE").encode())
    client.responses.clear()
    client.send_raw(request)
    open_ = True
    for _ in range(200):  # 10 s
        if client.responses:
            break
        if not client.pump(0.05):
            open_ = False
            break
    open_ = open_ and client.pump(0.02)  # a second response would arrive right behind
    assert len(client.responses) <= 1, client.responses
    assert -2 not in client.responses, "a CSeq that does not parse"
    response = next(iter(client.responses.values()), None)
    if response is not None and response.status == 200:
        value = response.headers.get("Session")
        if value is not None:
            client.session = value.split(";")[0].strip()
    return response, open_


def test_fuzzed_requests_leave_the_session_beside_streaming(
    fire_server: tuple[RtspServer, Firehose], caplog: pytest.LogCaptureFixture
) -> None:
    server, firehose = fire_server
    caplog.set_level(logging.WARNING)
    base = f"rtsp://127.0.0.1:{server.port}/recordings/{TOKEN}"
    beside = Beside(server.port)

    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(request_bytes(base, T0))
    def fuzz(requests: list[bytes]) -> None:
        client = RtspTestClient(server.port)
        try:
            for request in requests:
                response, open_ = _exchange(client, request)
                assert response is not None, request
                assert response.status in RTSP_STATUSES, response
                if not open_:  # a broken request: one 400, then the server hangs up
                    assert response.status == 400, response
                    client.close()
                    client = RtspTestClient(server.port)
        finally:
            client.close()

    fuzz()
    seqs = beside.stop()
    assert beside.client.read_for(0.5)  # still streaming after the fuzzing
    assert len(beside.client.frames) > len(seqs)
    seqs = [parse_rtp(f.payload).sequence for _, f in beside.client.frames if f.channel == 0]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs)), "lost"
    assert beside.client.session in server.sessions
    assert firehose.refused == 0
    beside.client.close()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
