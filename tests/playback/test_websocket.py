"""RTSP over WebSocket (streaming.md §4.2, replay.md B.10): a recording replayed through the
WebSocket route on uvicorn, by a ``websockets`` client, checked like the TCP replay tests; plus
the handshake rules, text frames, the refused HTTP tunnel and connection life cycle.
(Digest auth over WebSocket runs against the daemon's users in tests/onvif/test_replay_service.)"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from websockets.exceptions import InvalidStatus

from nvr.playback import RtspServer
from nvr.playback.websocket import (
    SUBPROTOCOL,
    WEBSOCKET_PATH,
    WebSocketTransport,
    messages,
    mount_websocket,
)
from nvr.protocol.rtsp import Response, RtspParser
from nvr.protocol.sdp import parse_sdp
from tests.playback.helpers import LoopThread, wait_until
from tests.playback.replay_footage import (
    FRAME_US,
    T0,
    Footage,
    ReplayServer,
    S,
    clock,
    footage,
    loop,
    read_until_terminal,
    rtp_packets,
    server,
    setup,
)
from tests.playback.ws_client import WsRtspClient, http_server

__all__ = ["footage", "loop", "server"]  # fixtures

pytestmark = pytest.mark.timeout(60)

REPLAY = ("Require", "onvif-replay")
NO_RC = ("Rate-Control", "no")


class Door:
    """The WebSocket route in front of a replay server; ``rtsp`` can be switched off."""

    def __init__(self, server: ReplayServer, port: int) -> None:
        self.replay = server
        self.rtsp: RtspServer | None = server.server
        self.url = f"ws://127.0.0.1:{port}{WEBSOCKET_PATH}"

    def client(self, **options: object) -> WsRtspClient:
        return WsRtspClient(self.url, f"rtsp://127.0.0.1:{self.replay.port}", **options)  # type: ignore[arg-type]


@pytest.fixture
def door(loop: LoopThread, server: ReplayServer) -> Iterator[Door]:
    app = Starlette()
    with http_server(loop, app) as port:
        door = Door(server, port)
        mount_websocket(app, lambda: door.rtsp)
        yield door


def one_unit_per_message(received: list[bytes]) -> None:
    """Each message is exactly one RTSP response or one whole interleaved frame."""
    for message in received:
        if message[:1] == b"$":
            assert len(message) == 4 + int.from_bytes(message[2:4], "big")
        else:
            parser = RtspParser()
            parser.feed(message)
            events = list(parser)
            assert len(events) == 1 and isinstance(events[0], Response), message[:80]


def test_replay_over_websocket(door: Door, footage: Footage) -> None:
    with door.client() as c:
        assert c.ws.subprotocol == SUBPROTOCOL
        url = c.url(f"/recordings/{footage.token}")
        options = c.request("OPTIONS", url)
        assert options.status == 200 and "PLAY" in options.headers["Public"]
        described = c.request("DESCRIBE", url, [REPLAY])
        assert described.status == 200
        sdp = parse_sdp(described.body.decode())
        assert [m.onvif_track for m in sdp.media] == ["VIDEO001", "AUDIO001", "META001"]
        setup(c, url)
        end = T0 + 2 * S
        response = c.request(
            "PLAY", url + "/", [REPLAY, ("Range", f"clock={clock(T0)}-{clock(end)}"), NO_RC]
        )
        assert response.status == 200
        assert response.headers["Range"] == f"clock={clock(T0)}-{clock(end)}"
        units = read_until_terminal(c)
        assert [u.time_us for u in units] == [t for t in footage.video_times if t < end]
        assert {u.cseq for u in units} == {c.cseq & 0xFF}
        flags = {u.time_us: u.flags for u in units if u.flags}
        assert flags == {T0: "C", T0 + S: "C", end - FRAME_US: "T"}
        seqs = [p.seq for p in rtp_packets(c, 0)]
        assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))
        assert c.request("TEARDOWN", url + "/").status == 200
        one_unit_per_message(c.messages)
    assert wait_until(lambda: not door.replay.server.sessions)


def test_requests_as_text_and_split_anywhere(door: Door, footage: Footage) -> None:
    with door.client(text=True) as c:
        url = c.url(f"/recordings/{footage.token}")
        assert c.request("OPTIONS", url).status == 200
        c.sock.text = False  # type: ignore[attr-defined]
        request = f"DESCRIBE {url} RTSP/1.0\r\nCSeq: 7\r\nAccept: application/sdp\r\n\r\n"
        for part in (request[:5], request[5:40], request[40:]):
            c.ws.send(part.encode())
        response = c.wait_response(7)
        assert response.status == 200 and response.headers["Content-Type"] == "application/sdp"


def test_pause_is_answered_while_rate_control_no_fills_the_socket(
    door: Door, footage: Footage
) -> None:
    with door.client() as c:
        url = c.url(f"/recordings/{footage.token}")
        setup(c, url)
        assert c.request("PLAY", url + "/", [REPLAY, ("Range", f"clock={clock(T0)}-"), NO_RC])
        time.sleep(0.5)  # not reading: the server queues, then waits for the WebSocket
        assert c.request("PAUSE", url + "/").status == 200
        assert c.request("GET_PARAMETER", url + "/").status == 200


def test_handshake_rules(door: Door, footage: Footage) -> None:
    with pytest.raises(InvalidStatus) as refused:
        door.client(subprotocols=("chat",))
    assert refused.value.response.status_code == 400
    with door.client(subprotocols=()) as c:  # no subprotocol offered: served without one
        assert c.ws.subprotocol is None
        assert c.request("OPTIONS", c.url("/recordings/" + footage.token)).status == 200
    door.rtsp = None
    with pytest.raises(InvalidStatus) as unavailable:
        door.client()
    assert unavailable.value.response.status_code == 503


def test_no_http_tunnel_inside(door: Door) -> None:
    with door.client() as c:
        tunnel = b"x-sessioncookie: abc\r\nAccept: application/x-rtsp-tunnelled\r\n"
        c.send_raw(b"GET /x HTTP/1.0\r\n" + tunnel + b"\r\n")
        assert not c.read_for(5)  # refused and closed
        assert c.messages and c.messages[0].startswith(b"HTTP/1.0 400")


def test_sessions_end_with_the_websocket_and_the_server_closes_it(
    door: Door, footage: Footage, loop: LoopThread
) -> None:
    rtsp = door.replay.server
    c = door.client()
    url = c.url(f"/recordings/{footage.token}")
    setup(c, url)
    assert c.request("PLAY", url + "/", [REPLAY, ("Range", f"clock={clock(T0)}-")]).status == 200
    assert len(rtsp.sessions) == 1 and rtsp.connection_count == 1
    c.close()
    assert wait_until(lambda: not rtsp.sessions and rtsp.connection_count == 0)

    with door.client() as c:
        assert c.request("OPTIONS", c.url("/x")).status == 200
        loop.call(rtsp.stop())
        assert not c.read_for(5)
    assert rtsp.connection_count == 0


def test_outgoing_bytes_become_one_message_per_unit() -> None:
    frame = b"$\x00\x00\x03abc"
    response = b"RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\n"
    assert list(messages(frame + frame)) == [frame, frame]
    assert list(messages(response)) == [response]
    assert list(messages(b"$\x01\x00\x00" + frame)) == [b"$\x01\x00\x00", frame]


def test_transport_pauses_the_protocol_until_the_websocket_drains() -> None:
    """The RTSP server's flow control (pause_writing/resume_writing) works over a WebSocket."""

    class SlowSocket:
        def __init__(self) -> None:
            self.gate = asyncio.Event()
            self.sent: list[object] = []

        async def send_bytes(self, data: bytes) -> None:
            await self.gate.wait()
            self.sent.append(data)

        async def close(self, code: int = 1000) -> None:
            self.sent.append(("close", code))

    class Recorder(asyncio.Protocol):
        def __init__(self) -> None:
            self.calls: list[str] = []

        def pause_writing(self) -> None:
            self.calls.append("pause")

        def resume_writing(self) -> None:
            self.calls.append("resume")

    async def scenario() -> None:
        socket, protocol = SlowSocket(), Recorder()
        transport = WebSocketTransport(socket, protocol, {})  # type: ignore[arg-type]
        transport.set_write_buffer_limits(1000, 200)
        frame = b"$\x00" + (600).to_bytes(2, "big") + bytes(600)
        transport.write(frame)
        assert protocol.calls == []
        transport.writelines([frame[:4], frame[4:]])
        assert protocol.calls == ["pause"] and transport.get_write_buffer_size() == 1208
        transport.close()
        transport.write(b"RTSP/1.0 200 OK\r\n\r\n")  # after close(): dropped
        socket.gate.set()
        await asyncio.wait_for(transport.finished.wait(), 5)
        assert protocol.calls == ["pause", "resume"]
        assert socket.sent == [frame, frame, ("close", 1000)]

    asyncio.run(scenario())
