"""The RTSP server shell against real peers (ffmpeg, ffprobe, GStreamer) and hand-written
requests: transports, auth, status codes, flow control (replay.md B.8) and session reaping."""

from __future__ import annotations

import base64
import itertools
import re
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Iterator, Sequence

import pytest

from nvr.demo.camera import DemoCamera
from nvr.playback import (
    Description,
    PacketSink,
    PlayResult,
    RequestContext,
    RtpSequencer,
    RtpStart,
    RtspAuth,
    RtspServer,
    StaticResolver,
)
from nvr.playback.tunnel import Base64Stream, TunnelError
from nvr.protocol.rtcp import ReceiverReport
from nvr.protocol.rtp import parse_rtp
from nvr.protocol.rtsp import RtspParser
from nvr.protocol.rtsp_auth import ClientAuthenticator
from nvr.protocol.rtsp_headers import parse_rtp_info, parse_transport
from tests.playback.helpers import (
    Firehose,
    LoopThread,
    RtspTestClient,
    one_track_sdp,
    wait_until,
)
from tests.playback.replay_footage import loop

__all__ = ["loop"]  # fixture

pytestmark = pytest.mark.timeout(120)

FFMPEG = shutil.which("ffmpeg")
FFPROBE = shutil.which("ffprobe")
GST = shutil.which("gst-launch-1.0")
needs_ffmpeg = pytest.mark.skipif(not (FFMPEG and FFPROBE), reason="ffmpeg not installed")
USER, PASSWORD = "operator", "s3cret pass"


# -- test resources ---------------------------------------------------------------------------


class Paced:
    """A ``Rate-Control: no`` style source: sends as fast as the sink drains."""

    supported_requires: frozenset[str] = frozenset()

    def __init__(self) -> None:
        self.sessions: list[PacedSession] = []

    async def describe(self, ctx: RequestContext) -> Description:
        return one_track_sdp()

    async def open_session(
        self, tracks: Sequence[int], sink: PacketSink, ctx: RequestContext
    ) -> PacedSession:
        session = PacedSession(sink)
        self.sessions.append(session)
        return session


class PacedSession:
    def __init__(self, sink: PacketSink) -> None:
        self.sink = sink
        self.seq = RtpSequencer(98, 90000)
        self.sent = 0
        self.max_backlog = 0

    async def play(self, ctx: RequestContext) -> PlayResult:
        return PlayResult([("Rate-Control", "no")], {0: RtpStart(self.seq.next_seq, 0)}, self._pump)

    async def _pump(self) -> None:
        payload = bytes(1400)
        while True:
            self.sink.send(0, [self.seq.packet(payload, 0) for _ in range(8)])
            self.sent += 8
            self.max_backlog = max(self.max_backlog, self.sink.backlog)
            await self.sink.drain()

    async def pause(self, ctx: RequestContext) -> Sequence[tuple[str, str]]:
        self.sink.discard()
        return ()

    async def close(self) -> None:
        pass


class Broken:
    supported_requires: frozenset[str] = frozenset()

    async def describe(self, ctx: RequestContext) -> Description:
        raise RuntimeError("secret internal detail")

    async def open_session(self, tracks: Sequence[int], sink: PacketSink, ctx: RequestContext):
        raise AssertionError


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def camera(loop: LoopThread) -> Iterator[DemoCamera]:
    cam = DemoCamera(idle_stop=60)
    yield cam
    loop.call(cam.close())


def start_server(loop: LoopThread, resources: dict[str, object], **options: object) -> RtspServer:
    async def go() -> RtspServer:
        server = RtspServer("127.0.0.1", 0, StaticResolver(resources), **options)  # type: ignore[arg-type]
        await server.start()
        return server

    return loop.call(go())


@pytest.fixture(scope="module")
def server(loop: LoopThread, camera: DemoCamera) -> Iterator[RtspServer]:
    resources = {"/demo": camera, "/paced": Paced(), "/broken": Broken()}
    srv = start_server(loop, resources, udp_ports=(31000, 31999))
    yield srv
    loop.call(srv.stop())


@pytest.fixture(scope="module")
def auth_server(loop: LoopThread, camera: DemoCamera) -> Iterator[RtspServer]:
    auth = RtspAuth(
        "nvr",
        lambda user: PASSWORD if user == USER else None,
        authorize=lambda user, method, path: path != "/forbidden",
    )
    srv = start_server(loop, {"/demo": camera, "/forbidden": camera}, auth=auth)
    yield srv
    loop.call(srv.stop())


def run(args: list[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)


# -- real peers -------------------------------------------------------------------------------


@needs_ffmpeg
def test_ffprobe_lists_the_demo_streams(server: RtspServer) -> None:
    url = f"rtsp://127.0.0.1:{server.port}/demo"
    result = run([FFPROBE, "-v", "error", "-rtsp_transport", "tcp", "-show_streams", url])
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    types = re.findall(r"^codec_type=(\w+)", result.stdout, re.M)
    names = re.findall(r"^codec_name=(\w+)", result.stdout, re.M)
    assert types == ["video", "audio", "data"]
    assert names[:2] == ["h264", "pcm_mulaw"]
    assert "width=640" in result.stdout and "sample_rate=8000" in result.stdout


def _ffmpeg_frames(url: str, transport: str, seconds: int = 4) -> int:
    result = run(
        [FFMPEG, "-nostdin", "-v", "error", "-rtsp_transport", transport, "-i", url,
         "-t", str(seconds), "-map", "0:v", "-map", "0:a", "-f", "null", "-",
         "-progress", "pipe:1", "-nostats"],
        timeout=40,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr
    frames = [int(n) for n in re.findall(r"^frame=(\d+)", result.stdout, re.M)]
    return frames[-1] if frames else 0


@needs_ffmpeg
@pytest.mark.parametrize("transport", ["tcp", "udp", "http"])
def test_ffmpeg_decodes_video_and_audio(server: RtspServer, transport: str) -> None:
    frames = _ffmpeg_frames(f"rtsp://127.0.0.1:{server.port}/demo", transport)
    assert frames >= 36  # 4 s at 10 fps
    assert wait_until(lambda: not server.sessions)  # TEARDOWN (or the closed tunnel) ended it


@pytest.mark.skipif(GST is None, reason="GStreamer not installed")
def test_gstreamer_rtspsrc_decodes(server: RtspServer) -> None:
    url = f"rtsp://127.0.0.1:{server.port}/demo"
    result = run(
        [GST, "-q", "rtspsrc", f"location={url}", "protocols=tcp", "!", "rtph264depay", "!",
         "avdec_h264", "!", "fakesink", "num-buffers=20"],
        timeout=40,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ERROR" not in result.stdout + result.stderr


# -- authentication ---------------------------------------------------------------------------


@needs_ffmpeg
def test_digest_auth_with_ffmpeg(auth_server: RtspServer) -> None:
    port = auth_server.port
    ok = run([FFPROBE, "-v", "error", "-rtsp_transport", "tcp", "-show_streams",
              f"rtsp://{USER}:s3cret%20pass@127.0.0.1:{port}/demo"])  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert "codec_name=h264" in ok.stdout
    bad = run([FFPROBE, "-v", "error", "-rtsp_transport", "tcp", "-show_streams",
               f"rtsp://{USER}:wrong@127.0.0.1:{port}/demo"])  # fmt: skip
    assert bad.returncode != 0
    assert "401" in bad.stderr


def test_digest_challenges_and_authorization(auth_server: RtspServer) -> None:
    with RtspTestClient(auth_server.port) as client:
        url = client.url("/demo")
        response = client.request("DESCRIBE", url)
        assert response.status == 401
        challenges = response.headers.get_all("WWW-Authenticate")
        assert [re.search(r"algorithm=([\w-]+)", c).group(1) for c in challenges] == [
            "SHA-256",
            "MD5",
        ]
        auth = ClientAuthenticator(USER, PASSWORD)
        assert auth.handle_challenges(challenges)
        value = auth.authorization("DESCRIBE", url)
        assert value is not None and "SHA-256" in value
        response = client.request("DESCRIBE", url, [("Authorization", value)])
        assert response.status == 200
        assert response.body.startswith(b"v=0")
        forbidden = client.url("/forbidden")
        value = auth.authorization("DESCRIBE", forbidden)
        assert client.request("DESCRIBE", forbidden, [("Authorization", value)]).status == 403


# -- status codes -----------------------------------------------------------------------------


def test_error_statuses(server: RtspServer) -> None:
    with RtspTestClient(server.port) as c:
        demo = c.url("/demo")
        options = c.request("OPTIONS", "*")
        assert options.status == 200
        assert options.headers["Public"].split(", ") == [
            "OPTIONS", "DESCRIBE", "SETUP", "PLAY", "PAUSE", "TEARDOWN",
            "GET_PARAMETER", "SET_PARAMETER",
        ]  # fmt: skip
        assert c.request("DESCRIBE", c.url("/nope")).status == 404
        unsupported = c.request("DESCRIBE", demo, [("Require", "onvif-replay")])
        assert unsupported.status == 551
        assert unsupported.headers["Unsupported"] == "onvif-replay"
        assert c.request("PLAY", demo, [("Session", "DEADBEEF")]).status == 454
        assert c.request("PLAY", demo).status == 454
        tcp = [("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1")]
        assert c.request("SETUP", demo, tcp).status == 459  # three tracks: name one
        assert c.request("SETUP", c.url("/demo/nope"), tcp).status == 404
        for transport in ("RTP/AVP;multicast", "RTP/SAVP;unicast;client_port=5000-5001",
                          "RTP/AVP;unicast"):  # fmt: skip
            response = c.request("SETUP", c.url("/demo/video"), [("Transport", transport)])
            assert response.status == 461, transport
        assert c.request("FOO", demo).status == 501
        assert c.request("RECORD", demo).status == 405
        setup = c.request("SETUP", c.url("/demo/video"), tcp)
        assert setup.status == 200
        assert "timeout=60" in setup.headers["Session"]
        assert parse_transport(setup.headers["Transport"])[0].interleaved == (0, 1)
        assert c.request("PAUSE", demo).status == 455  # not playing yet
        assert c.request("GET_PARAMETER", demo).status == 200
        assert c.request("GET_PARAMETER", demo, body=b"position\r\n").status == 451
        assert c.request("SETUP", c.url("/demo/audio"), tcp).status == 200  # next free pair
        assert c.request("PLAY", c.url("/demo/video")).status == 460  # aggregate only
        play = c.request("PLAY", demo)
        assert play.status == 200
        assert play.headers["Range"].startswith("clock=")
        assert len(parse_rtp_info(play.headers["RTP-Info"])) == 2
        again = c.request("SETUP", c.url("/demo/metadata"), [("Transport", "RTP/AVP/TCP")])
        assert again.status == 455
        assert c.request("PAUSE", demo).status == 200
        session_id = c.session
        assert c.request("TEARDOWN", demo).status == 200
        assert c.request("GET_PARAMETER", demo, [("Session", session_id)]).status == 454
        broken = c.request("DESCRIBE", c.url("/broken"))
        assert broken.status == 500
        assert broken.body == b"" and b"secret" not in broken.serialize()
        c.send_raw(f"DESCRIBE {demo} RTSP/1.0\r\nCSeq: 98\r\nSession: a b\r\n\r\n".encode())
        assert c.wait_response(98).status == 400  # malformed header value
        c.send_raw(b"DESCRIBE rtsp://h/demo RTSP/2.0\r\nCSeq: 99\r\n\r\n")
        assert c.wait_response(99).status == 505
        c.send_raw(b"\x01\x02garbage\r\n\r\n")
        assert c.wait_response(-1).status == 400
        assert not c.read_for(2)  # the server hangs up on a broken stream
    assert wait_until(lambda: not server.sessions)


def test_interleaved_session_dies_with_its_connection(server: RtspServer) -> None:
    client = RtspTestClient(server.port)
    client.setup_all("/demo", ["video"])
    assert client.request("PLAY", client.url("/demo")).status == 200
    assert len(server.sessions) == 1
    client.close()
    assert wait_until(lambda: not server.sessions)


def test_base64_stream_tolerates_split_and_padded_chunks() -> None:
    messages = [b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n", b"x", b"GET_PARAMETER * RTSP/1.0\r\n\r\n"]
    wire = b"".join(base64.b64encode(m) + b"\r\n" for m in messages)  # padding mid-stream
    for step in (1, 3, 7, len(wire)):
        stream = Base64Stream()
        out = b"".join(stream.feed(wire[i : i + step]) for i in range(0, len(wire), step))
        assert out == b"".join(messages)
    with pytest.raises(TunnelError):
        Base64Stream().feed(b"!!!!")


# -- flow control -----------------------------------------------------------------------------


def test_slow_client_does_not_delay_another(loop: LoopThread) -> None:
    firehose = Firehose()  # ~4.8 MB/s to each session
    srv = start_server(loop, {"/fire": firehose}, send_timeout=1.5, session_queue=256 * 1024)
    clients = []
    try:
        dead = RtspTestClient(srv.port, rcvbuf=4096)
        alive = RtspTestClient(srv.port, rcvbuf=4096)
        fast = RtspTestClient(srv.port)
        clients = [dead, alive, fast]
        for client in clients:
            client.setup_all("/fire", ["data"])
        assert dead.request("PLAY", dead.url("/fire")).status == 200
        assert alive.request("PLAY", alive.url("/fire")).status == 200
        play = fast.request("PLAY", fast.url("/fire"), [("Require", "x-test")])
        assert play.status == 200
        first_seq = parse_rtp_info(play.headers["RTP-Info"])[0].seq
        for _ in range(7):  # `dead` and `alive` read nothing; `alive` still sends keep-alives
            assert fast.read_for(0.5)
            alive.send("GET_PARAMETER", alive.url("/fire"))
        delays, seqs = [], []
        for arrived, frame in fast.frames:
            packet = parse_rtp(frame.payload)
            seqs.append(packet.sequence)
            (stamp,) = struct.unpack_from("!Q", packet.payload)
            delays.append(arrived - stamp / 1e9)
        assert len(seqs) > 3.0 / firehose.tick * firehose.per_tick * 0.8
        assert seqs[0] == first_seq  # RTP-Info says where the stream starts
        assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))  # nothing lost
        assert max(delays) < 0.5, max(delays)
        # The silent stalled client was cut off; the flow-controlled one only lost packets.
        assert firehose.refused > 0
        assert wait_until(lambda: dead.session not in srv.sessions, 5)
        assert set(srv.sessions) == {alive.session, fast.session}
        assert fast.request("GET_PARAMETER", fast.url("/fire")).status == 200
    finally:
        for client in clients:
            client.close()
        loop.call(srv.stop())


def test_requests_answered_while_media_saturates_the_socket(server: RtspServer) -> None:
    paced = server.resources._resources["/paced"]  # type: ignore[attr-defined]
    with RtspTestClient(server.port, rcvbuf=65536) as client:
        client.setup_all("/paced", ["data"])
        play = client.request("PLAY", client.url("/paced"))
        assert play.headers["Rate-Control"] == "no"
        time.sleep(1.0)  # not reading: the socket fills, the producer blocks in drain()
        session = paced.sessions[-1]
        blocked_at = session.sent
        time.sleep(0.3)
        assert session.sent - blocked_at <= 64  # really blocked, not dropping
        keepalive = client.send("GET_PARAMETER", client.url("/paced"))
        pause = client.send("PAUSE", client.url("/paced"))
        assert client.wait_response(keepalive, 10).status == 200
        assert client.wait_response(pause, 10).status == 200
        after_pause = len(client.frames)
        assert client.read_for(0.5)
        assert len(client.frames) == after_pause  # nothing after the PAUSE response
        assert session.max_backlog < 64 * 1024  # drain kept the session queue short
        assert after_pause > 100  # the frames before it all parsed as whole frames


def test_session_timeout_and_keepalives(loop: LoopThread, camera: DemoCamera) -> None:
    srv = start_server(loop, {"/demo": camera}, session_timeout=1, udp_ports=(32000, 32999))
    try:
        idle = RtspTestClient(srv.port)
        idle.setup_all("/demo", ["video"])
        kept = RtspTestClient(srv.port)
        kept.setup_all("/demo", ["audio"])
        rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rtp.bind(("127.0.0.1", 0))
        rtcp.bind(("127.0.0.1", 0))
        udp = RtspTestClient(srv.port)
        ports = f"{rtp.getsockname()[1]}-{rtcp.getsockname()[1]}"
        response = udp.request(
            "SETUP", udp.url("/demo/audio"), [("Transport", f"RTP/AVP;unicast;client_port={ports}")]
        )
        assert response.status == 200
        server_port = parse_transport(response.headers["Transport"])[0].server_port
        assert server_port is not None and server_port[0] % 2 == 0
        udp.close()  # a UDP session outlives its RTSP connection
        report = ReceiverReport(0x1234).to_bytes()
        assert len(srv.sessions) == 3
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            assert kept.request("GET_PARAMETER", kept.url("/demo")).status == 200
            rtcp.sendto(report, ("127.0.0.1", server_port[0] + 1))
            time.sleep(0.3)
        assert set(srv.sessions) == {kept.session, udp.session}
        assert idle.request("GET_PARAMETER", idle.url("/demo")).status == 454
        assert wait_until(lambda: not srv.sessions, 4)  # no more keep-alives: all reaped
        for closeable in (idle, kept, rtp, rtcp):
            closeable.close()
    finally:
        loop.call(srv.stop())


def test_http_tunnel_by_hand(server: RtspServer) -> None:
    def http(method: str, cookie: str, extra: str = "") -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", server.port))
        sock.sendall(
            f"{method} /demo HTTP/1.0\r\nx-sessioncookie: {cookie}\r\n"
            f"Accept: application/x-rtsp-tunnelled\r\n{extra}\r\n".encode()
        )
        return sock

    get = http("GET", "c00kie")
    head = b""
    while b"\r\n\r\n" not in head:
        head += get.recv(1)
    assert head.startswith(b"HTTP/1.0 200") and b"application/x-rtsp-tunnelled" in head
    reader = RtspTestClient.__new__(RtspTestClient)  # its parser and pump, on the GET socket
    reader.sock, reader.parser, reader.frames, reader.responses = get, RtspParser(), [], {}
    url = f"rtsp://127.0.0.1:{server.port}/demo"
    post = http("POST", "c00kie", "Content-Length: 32767\r\n")
    first = base64.b64encode(f"OPTIONS {url} RTSP/1.0\r\nCSeq: 1\r\n\r\n".encode())
    post.sendall(first[:5])
    time.sleep(0.05)
    post.sendall(first[5:])
    assert reader.wait_response(1).status == 200
    post.close()  # clients may reopen the POST side at will
    post = http("POST", "c00kie", "Content-Length: 32767\r\n")
    post.sendall(base64.b64encode(f"DESCRIBE {url} RTSP/1.0\r\nCSeq: 2\r\n\r\n".encode()))
    assert reader.wait_response(2).body.startswith(b"v=0")
    stray = http("POST", "unknown")
    assert stray.recv(100).startswith(b"HTTP/1.0 404")
    for sock in (get, post, stray):
        sock.close()
