"""Bad input to the replay server (issue #5): malformed requests, absurd ranges, unknown
sessions, huge headers, half-open connections and clients that never read are all answered
(RFC 2326 status) or dropped, and a session playing beside them keeps streaming."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator

import pytest

from nvr.playback.transport import DEFAULT_HIGH_WATER
from tests.playback.helpers import LoopThread, RtspTestClient, wait_until
from tests.playback.replay_footage import (
    T0,
    Footage,
    ReplayServer,
    S,
    access_units,
    big_recording,
    clock,
    footage,
    loop,
    read_until_terminal,
    replay_server,
    rtp_packets,
    setup,
)

__all__ = ["footage", "loop"]  # fixtures

pytestmark = pytest.mark.timeout(120)

NO_RC = ("Rate-Control", "no")


@pytest.fixture
def server(loop: LoopThread, footage: Footage) -> Iterator[ReplayServer]:
    """Short request and send timeouts, so that the reaper acts within the test."""
    with replay_server(loop, footage.store, request_timeout=0.5, send_timeout=1.0) as srv:
        yield srv


class Beside:
    """A Rate-Control yes session playing the footage next to the misbehaving client."""

    def __init__(self, server: ReplayServer) -> None:
        self.client = RtspTestClient(server.port)
        url = server.url()
        setup(self.client, url, ("track1",))
        play = self.client.request("PLAY", url + "/", [("Range", f"clock={clock(T0)}-")])
        assert play.status == 200
        self.client.read_for(0.3)
        self.mark = len(rtp_packets(self.client))

    def still_streaming(self) -> None:
        """Packets came after the mark, and not one was lost."""
        self.client.read_for(0.5)
        packets = rtp_packets(self.client, 0)
        assert len(packets) > self.mark
        assert all((b.seq - a.seq) & 0xFFFF == 1 for a, b in itertools.pairwise(packets))

    def close(self) -> None:
        self.client.close()


@pytest.fixture
def beside(server: ReplayServer) -> Iterator[Beside]:
    session = Beside(server)
    yield session
    session.close()


def closed_by_server(client: RtspTestClient, timeout: float = 10) -> bool:
    """Read until the server closes the connection (True) or ``timeout`` passes (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if not client.pump(0.1):
                return True
        except OSError:  # reset: the server closed with our bytes unread
            return True
    return False


# -- absurd ranges and rates ------------------------------------------------------------------


def test_absurd_ranges_and_rates(server: ReplayServer, beside: Beside) -> None:
    url = server.url()
    with RtspTestClient(server.port) as c:
        setup(c, url, ("track1",))
        statuses = {
            "clock=99991231T235959Z-": 457,  # far after the footage
            f"clock={clock(T0 + 5 * S)}-{clock(T0 + S)}": 457,  # end before start, forward
            "npt=5-3": 457,  # the same in npt
            "npt=1000000-": 457,
            "clock=20251301T000000Z-": 400,  # no such date
            "clock=2025-03-01T25:00:00Z-": 400,
            "clock=20250301T101500Zgarbage-": 400,
            "npt=99999999999999999999999-": 400,
            "smpte=00:00:01-": 400,  # a unit the server does not play
            "clock=": 400,
        }
        for value, status in statuses.items():
            assert c.request("PLAY", url + "/", [("Range", value)]).status == status, value
        reverse = [("Range", f"clock={clock(T0 + S)}-{clock(T0 + 5 * S)}"), ("Scale", "-1")]
        assert c.request("PLAY", url + "/", reverse).status == 457  # increasing, reverse
        for name, value in (("Scale", "0"), ("Scale", "-0"), ("Scale", "nan"), ("Speed", "0")):
            assert c.request("PLAY", url + "/", [(name, value)]).status == 400, (name, value)
        assert c.request("PLAY", url + "/", [("Frames", "intra/-1")]).status == 400
        # npt=-5: from the start of the footage to 5 s into it
        response = c.request("PLAY", url + "/", [("Range", "npt=-5"), NO_RC])
        assert response.status == 200
        units = read_until_terminal(c)
        assert units[-1].time_us is not None and units[-1].time_us < T0 + 5 * S
        # absurd but well-formed rates are served (and stopped) like any other
        crawl = [("Range", f"clock={clock(T0)}-"), ("Speed", "0.0000000001")]
        assert c.request("PLAY", url + "/", crawl).status == 200
        assert c.request("PAUSE", url + "/").status == 200
        huge = [("Range", f"clock={clock(T0)}-"), ("Scale", "9" * 30)]
        assert c.request("PLAY", url + "/", huge).status == 200
        assert c.request("TEARDOWN", url + "/").status == 200
    beside.still_streaming()


def test_unknown_sessions_are_454(server: ReplayServer) -> None:
    url = server.url()
    with RtspTestClient(server.port) as c:
        for method in ("PLAY", "PAUSE", "TEARDOWN", "GET_PARAMETER", "SET_PARAMETER", "OPTIONS"):
            response = c.request(method, url + "/", [("Session", "0123456789ABCDEF")])
            assert response.status == 454, method
        setup_ = c.request(
            "SETUP",
            url + "/track1",
            [("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1"), ("Session", "FEEDFACE")],
        )
        assert setup_.status == 454
        setup(c, url, ("track1",))
        session = c.session
        assert c.request("TEARDOWN", url + "/").status == 200
        assert c.request("PLAY", url + "/", [("Session", str(session))]).status == 454


# -- huge requests --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n",
        b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n" + b"X-Many: 1\r\n" * 10_000 + b"\r\n",
        b"GET_PARAMETER * RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 1000000000\r\n\r\n",
        b"OPTIONS " + b"/x" * 20_000 + b" RTSP/1.0\r\nCSeq: 1\r\n\r\n",
    ],
    ids=["1 MB header line", "10k headers", "1 GB body", "40 kB URL"],
)
def test_huge_requests_get_400_and_the_connection_closes(
    server: ReplayServer, beside: Beside, request_bytes: bytes
) -> None:
    with RtspTestClient(server.port) as c:
        try:
            c.send_raw(request_bytes)
        except OSError:
            pass  # closed while we were still sending: also a clean drop
        assert closed_by_server(c)
        assert [r.status for r in c.responses.values()] in ([400], [])
    beside.still_streaming()


# -- half-open connections and clients that never read -------------------------------------------


def test_a_half_sent_request_is_dropped_after_the_request_timeout(
    server: ReplayServer, beside: Beside
) -> None:
    url = server.url()
    with RtspTestClient(server.port) as c:
        setup(c, url, ("track1",))
        session = c.session
        assert session in server.server.sessions
        c.send_raw(f"PLAY {url}/ RTSP/1.0\r\nCSeq: 9\r\nSession: {session}\r\n".encode())
        assert closed_by_server(c)  # after the 0.5 s request timeout
        assert [r.status for r in c.responses.values()] == [408]  # no CSeq: it never came
    assert session not in server.server.sessions  # its interleaved session went with it
    beside.still_streaming()


def test_a_client_that_never_reads_costs_bounded_memory(
    server: ReplayServer, footage: Footage
) -> None:
    big_recording(footage.store, frames=500)
    url = server.url("BIG")
    with RtspTestClient(server.port, rcvbuf=4096) as stalled, RtspTestClient(server.port) as c:
        setup(stalled, url, ("track1",))
        stalled.send("PLAY", url + "/", [("Range", f"clock={clock(T0)}-"), NO_RC])
        time.sleep(0.5)  # its socket and its session queue fill up
        ((stalled_id, session),) = server.server.sessions.items()
        connections = list(server.server._connections)  # what the server holds for them
        buffered = max(conn.transport.get_write_buffer_size() for conn in connections)
        assert session.sink.backlog <= 2 * 1024 * 1024  # the session queue bound
        assert buffered <= DEFAULT_HIGH_WATER + 512 * 1024  # high water + one batch
        # Another Rate-Control no session goes through meanwhile; the silent one is dropped.
        setup(c, url, ("track1",))
        c.request("PLAY", url + "/", [("Range", f"clock={clock(T0)}-"), NO_RC])
        assert len(read_until_terminal(c, timeout=60)) == 500
        # silent and congested past the send timeout: aborted, its session gone
        assert wait_until(lambda: stalled_id not in server.server.sessions, 10)
        assert len(access_units(c)) == 500


def test_a_broken_request_from_a_client_that_never_reads_is_dropped(
    server: ReplayServer, footage: Footage
) -> None:
    """The 400 and the close wait behind the media the client does not read: once that has
    lasted the send timeout, the connection is aborted instead of lingering."""
    big_recording(footage.store, frames=500)
    url = server.url("BIG")
    with RtspTestClient(server.port, rcvbuf=4096) as stalled:
        setup(stalled, url, ("track1",))
        stalled.send("PLAY", url + "/", [("Range", f"clock={clock(T0)}-"), NO_RC])
        time.sleep(0.3)  # its socket fills up
        stalled.send_raw(b"\x01\x02garbage\r\n\r\n")
        assert wait_until(lambda: not server.server.sessions, 10)  # the session goes at once
        assert wait_until(lambda: server.server.connection_count == 0, 10)  # the socket later
