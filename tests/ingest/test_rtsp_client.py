"""The camera RTSP client against GStreamer's RTSP server (the real peer) and a scripted fake.

GStreamer covers the transports (TCP interleaved, UDP, HTTP tunnel), Digest MD5, RTCP sender
reports, keep-alive, PLI and a camera that dies; the in-process fake camera drives the error
paths and quirk policies deterministically (stall, garbage, session-id change, unassigned
channels, RTP before the PLAY answer, redirects, SHA-256 digest).
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest

from nvr.ingest.backoff import Backoff, BackoffPolicy
from nvr.ingest.rtsp_client import (
    PacketQueue,
    Quirks,
    RtpEvent,
    RtspAuthFailed,
    RtspClient,
    RtspConnectionError,
    RtspProtocolError,
    RtspStalled,
    RtspStatusError,
    SenderReportEvent,
    Timeouts,
)
from nvr.protocol.errors import ProtocolError
from nvr.protocol.rtcp import PT_PSFB, Feedback, ReceiverReport, parse_rtcp
from nvr.protocol.rtp import build_rtp
from nvr.protocol.rtsp import Headers, Response, encode_interleaved
from nvr.protocol.rtsp_auth import ServerAuthenticator
from nvr.protocol.rtsp_headers import RtpInfo, format_rtp_info
from tests.ingest.fake_camera import SSRC_BASE, Connection, FakeCamera
from tests.peers.camera import GstCamera, gst_camera, require_gstreamer_camera

T = TypeVar("T")

FAST = Timeouts(connect=3, response=3, stall=3, teardown=1)


def run(coro: Awaitable[T], timeout: float = 20) -> T:
    """Run one test coroutine with a hard limit, so a hang fails instead of blocking CI."""

    async def limited() -> T:
        async with asyncio.timeout(timeout):
            return await coro

    return asyncio.run(limited())


async def collect(
    client: RtspClient,
    *,
    until: Callable[[dict[int, list[RtpEvent]], list[SenderReportEvent]], bool],
    limit: float,
) -> tuple[dict[int, list[RtpEvent]], list[SenderReportEvent]]:
    """Read the client's packet queue until ``until`` holds (or ``limit`` seconds pass)."""
    packets: dict[int, list[RtpEvent]] = {t.index: [] for t in client.tracks}
    reports: list[SenderReportEvent] = []
    deadline = time.monotonic() + limit
    queue = client.packets()
    while not until(packets, reports):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            async with asyncio.timeout(remaining):
                event = await anext(queue)
        except TimeoutError:
            break
        if isinstance(event, RtpEvent):
            packets[event.track].append(event)
        else:
            reports.append(event)
    return packets, reports


def is_idr(payload: bytes | memoryview) -> bool:
    """H.264 RTP payload starting an IDR slice (single NAL unit or first FU-A fragment)."""
    kind = payload[0] & 0x1F
    if kind == 28:
        return bool(payload[1] & 0x80) and payload[1] & 0x1F == 5
    return kind == 5


# --- GStreamer cameras ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def cameras() -> Iterator[Callable[..., GstCamera]]:
    """Module-wide cameras by configuration, started on first use (start-up costs ~0.5 s)."""
    running: dict[tuple[Any, ...], GstCamera] = {}

    def get(kind: str, **options: Any) -> GstCamera:
        require_gstreamer_camera()
        key = (kind, *sorted(options.items()))
        if key not in running:
            running[key] = GstCamera(kind, **options).start()
        return running[key]

    yield get
    for camera in running.values():
        camera.close()


EXPECTED_MEDIA = {
    "h264+aac": [("video", "H264", 90000), ("audio", "MPEG4-GENERIC", 16000)],
    "h264+pcmu": [("video", "H264", 90000), ("audio", "PCMU", 8000)],
    "mjpeg": [("video", "JPEG", 90000)],
}


@pytest.mark.gstreamer
@pytest.mark.parametrize(
    ("kind", "transport"), [("h264+aac", "tcp"), ("h264+pcmu", "udp"), ("mjpeg", "http")]
)
def test_gstreamer_describe_play_rtp_and_sender_reports(
    cameras: Callable[..., GstCamera], kind: str, transport: str
) -> None:
    camera = cameras(kind, gop=250)

    async def scenario() -> None:
        async with RtspClient(camera.url(), transport=transport, timeouts=FAST) as client:
            presentation = await client.connect()
            media = [(s.media, s.encoding_name, s.clock_rate) for s in presentation.streams]
            assert media == EXPECTED_MEDIA[kind]
            assert "GET_PARAMETER" in presentation.public
            assert len({s.control_url for s in presentation.streams}) == len(media)

            tracks = await client.setup()
            for track in tracks:
                assert track.transport is not None
                if transport == "udp":
                    rtp_port, rtcp_port = track.transport.client_port or (0, None)
                    assert rtp_port % 2 == 0 and rtcp_port == rtp_port + 1
                    assert track.transport.server_port is not None
                else:
                    assert track.transport.interleaved == (2 * track.index, 2 * track.index + 1)

            info = await client.play()
            assert client.playing
            assert all(entry is not None and entry.seq is not None for entry in info.rtp_info)

            def enough(packets: dict[int, list[RtpEvent]], srs: list[SenderReportEvent]) -> bool:
                return all(len(p) >= 5 for p in packets.values()) and bool(srs)

            packets, reports = await collect(client, until=enough, limit=8)

        for track in client.tracks:
            events = packets[track.index]
            assert len(events) >= 5, f"track {track.index} got {len(events)} packets"
            seqs = [e.packet.sequence for e in events]
            assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs)), seqs
            assert seqs[0] == info.rtp_info[track.index].seq  # type: ignore[union-attr]
            assert {e.packet.ssrc for e in events} == {track.announced_ssrc}
            monos = [e.mono_ns for e in events]
            assert monos == sorted(monos)
            assert abs(events[-1].wall_us / 1e6 - time.time()) < 10
        assert reports, "no RTCP sender report within 8 s"
        for report in reports:
            assert report.report.ssrc == client.tracks[report.track].ssrc
        assert client.stats.receiver_reports >= 1

    run(scenario())


@pytest.mark.gstreamer
@pytest.mark.parametrize("any_source", [False, True])
def test_gstreamer_udp_drops_datagrams_from_other_hosts(
    cameras: Callable[..., GstCamera], any_source: bool
) -> None:
    camera = cameras("h264+pcmu", gop=250)
    quirks = Quirks(udp_any_source=any_source)

    async def scenario() -> None:
        async with RtspClient(camera.url(), transport="udp", timeouts=FAST, quirks=quirks) as c:
            await c.start()
            await collect(c, until=lambda p, _: len(p[0]) >= 2, limit=5)
            rtp_port = c.tracks[1].transport.client_port[0]  # type: ignore[union-attr]
            intruder = build_rtp(0, 1, 1, 0xBAD, b"\xff" * 160)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.bind(("127.0.0.2", 0))  # another host as far as the client can tell
                sock.sendto(intruder, ("127.0.0.1", rtp_port))
            packets, _ = await collect(
                c, until=lambda p, _: any(e.packet.ssrc == 0xBAD for e in p[1]), limit=1
            )
            injected = any(e.packet.ssrc == 0xBAD for e in packets[1])
            assert injected == any_source
            assert c.stats.foreign_datagrams == (0 if any_source else 1)

    run(scenario())


@pytest.mark.gstreamer
def test_gstreamer_digest_auth(cameras: Callable[..., GstCamera]) -> None:
    camera = cameras("h265", user="admin", password="s3cret:pw")

    async def ok() -> None:
        async with RtspClient(camera.url("admin:s3cret%3Apw"), timeouts=FAST) as client:
            await client.start()
            packets, _ = await collect(client, until=lambda p, _: len(p[0]) >= 3, limit=5)
            assert len(packets[0]) >= 3
            assert client.presentation is not None
            assert client.presentation.streams[0].encoding_name == "H265"
            assert client.stats.auth_retries == 1  # one 401, then every request authorised

    async def wrong() -> None:
        client = RtspClient(camera.url("admin:wrong"), timeouts=FAST)
        try:
            with pytest.raises(RtspAuthFailed) as caught:
                await client.connect()
        finally:
            await client.close()
        assert caught.value.status == 401
        assert caught.value.method == "DESCRIBE"
        assert "rejected" in str(caught.value)
        # GStreamer does not protect OPTIONS: OPTIONS, DESCRIBE (401), one retry (401).
        assert client.stats.requests == 3
        assert client.stats.auth_retries == 1

    async def anonymous() -> None:
        async with RtspClient(camera.url(), timeouts=FAST) as client:
            with pytest.raises(RtspAuthFailed, match="none were given"):
                await client.connect()
            assert client.stats.requests == 2

    run(ok())
    run(wrong())
    run(anonymous())


@pytest.mark.gstreamer
def test_gstreamer_keepalive_with_short_session_timeout(
    cameras: Callable[..., GstCamera],
) -> None:
    camera = cameras("h264", session_timeout=2)
    quirks = Quirks(send_receiver_reports=False)  # keep-alive requests only

    async def scenario() -> None:
        async with RtspClient(camera.url(), timeouts=FAST, quirks=quirks) as client:
            await client.start()
            assert client.session_timeout == 2
            packets, _ = await collect(client, until=lambda p, _: False, limit=3.3)
            assert client.stats.keepalives >= 2  # every timeout/2 = 1 s, answered 200
            assert client.stats.receiver_reports == 0
            late = [e for e in packets[0] if e.mono_ns > time.monotonic_ns() - 500_000_000]
            assert late, "the stream stopped"

    run(scenario())


@pytest.mark.gstreamer
def test_gstreamer_pli_gets_a_key_frame(cameras: Callable[..., GstCamera]) -> None:
    camera = cameras("h264+aac", gop=250)  # next natural key frame after 10 s

    async def scenario() -> None:
        async with RtspClient(camera.url(), timeouts=FAST) as client:
            await client.start()
            await collect(client, until=lambda p, _: len(p[0]) >= 40, limit=5)
            assert client.request_key_frame() == 1  # the video track only
            asked = time.monotonic()
            packets, _ = await collect(
                client, until=lambda p, _: any(is_idr(e.packet.payload) for e in p[0]), limit=3
            )
            assert any(is_idr(e.packet.payload) for e in packets[0]), "no IDR after PLI"
            assert time.monotonic() - asked < 3
            assert client.stats.key_frame_requests == 1

    run(scenario())


@pytest.mark.gstreamer
@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_gstreamer_camera_killed_then_reconnect(transport: str) -> None:
    with gst_camera("h264") as camera:

        async def scenario() -> None:
            client = RtspClient(camera.url(), transport=transport, timeouts=FAST)
            try:
                await client.start()
                await collect(client, until=lambda p, _: len(p[0]) >= 5, limit=5)
                camera.kill()
                killed = time.monotonic()
                with pytest.raises(RtspConnectionError, match=r"closed|lost"):
                    await client.wait()
                assert time.monotonic() - killed < 2
            finally:
                await client.close()  # UDP: TEARDOWN attempt on a new connection is refused

            camera.start()  # same port: the camera rebooted
            backoff = Backoff(BackoffPolicy(initial=0.1, maximum=0.4, minimum=0.05))
            for _ in range(10):
                try:
                    async with RtspClient(camera.url(), transport=transport, timeouts=FAST) as c:
                        await c.start()
                        packets, _ = await collect(c, until=lambda p, _: bool(p[0]), limit=3)
                        assert packets[0]
                        return
                except RtspConnectionError:
                    backoff.failed()
                    await backoff.sleep()
            pytest.fail("no reconnect")

        run(scenario())


# --- the fake camera: error paths and quirks -------------------------------------------------


async def play_fake(
    fake: FakeCamera,
    *,
    timeouts: Timeouts = FAST,
    quirks: Quirks | None = None,
    sink: Any = None,
    uri: str | None = None,
) -> RtspClient:
    client = RtspClient(uri or fake.url, timeouts=timeouts, quirks=quirks)
    try:
        await client.start(sink)
    except BaseException:
        await client.close()
        raise
    return client


def test_stall_watchdog_raises_and_tears_down() -> None:
    async def scenario() -> None:
        async with FakeCamera(rtp_rate=0) as fake:
            client = await play_fake(fake, timeouts=Timeouts(stall=0.4, response=2))
            started = time.monotonic()
            with pytest.raises(RtspStalled, match="no RTP"):
                await client.wait()
            assert 0.3 < time.monotonic() - started < 2
            await client.close()
            assert fake.methods() == ["OPTIONS", "DESCRIBE", "SETUP", "PLAY", "TEARDOWN"]
            assert fake.requests[-1].headers.get("Session") == fake.session_id

    run(scenario())


@pytest.mark.parametrize(
    ("public", "refuse_get_parameter", "expected"),
    [
        ("OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER", False, ["GET_PARAMETER"] * 2),
        ("OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN", False, ["OPTIONS"] * 2),
        (None, False, ["OPTIONS"] * 2),
        (
            "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER",
            True,
            ["GET_PARAMETER", "OPTIONS"],
        ),
    ],
)
def test_keepalive_method_and_interval(
    public: str | None, refuse_get_parameter: bool, expected: list[str]
) -> None:
    async def scenario() -> None:
        async with FakeCamera(rtp_rate=50, session_timeout=1, public=public) as fake:
            if refuse_get_parameter:
                fake.hooks["GET_PARAMETER"] = lambda *_: Response(501)
            client = await play_fake(fake, quirks=Quirks(send_receiver_reports=False))
            try:
                assert client.session_timeout == 1
                await asyncio.sleep(1.25)  # keep-alives at 0.5 s and 1.0 s
            finally:
                await client.close()
            keepalives = fake.requests[4:-1]
            assert [r.method for r in keepalives[:2]] == expected
            assert all(r.headers.get("Session") == fake.session_id for r in keepalives)
            assert client.stats.keepalives >= (1 if refuse_get_parameter else 2)

    run(scenario())


def _garbage_describe(_: FakeCamera, __: Connection, ___: Any) -> bytes:
    return b"\x00\x01\x02 this is not RTSP\r\n\r\n"


def _bad_status_line(_: FakeCamera, __: Connection, ___: Any) -> bytes:
    return b"RTSP/1.0 2x0 OK\r\nCSeq: 2\r\n\r\n"


def _bad_sdp(_: FakeCamera, __: Connection, ___: Any) -> Response:
    headers = Headers([("Content-Type", "application/sdp")])
    return Response(200, headers=headers, body=b"v=0\r\nm=video port RTP/AVP 96\r\n")


def _bad_transport(_: FakeCamera, __: Connection, ___: Any) -> Response:
    return Response(200, headers=Headers([("Transport", "RTP/AVP/TCP;interleaved=x-y")]))


@pytest.mark.parametrize(
    ("method", "hook"),
    [
        ("DESCRIBE", _garbage_describe),
        ("DESCRIBE", _bad_status_line),
        ("DESCRIBE", _bad_sdp),
        ("SETUP", _bad_transport),
    ],
)
def test_garbage_from_server_is_a_protocol_error(method: str, hook: Any) -> None:
    async def scenario() -> None:
        async with FakeCamera() as fake:
            fake.hooks[method] = hook
            with pytest.raises(RtspProtocolError) as caught:
                await play_fake(fake)
            assert isinstance(caught.value.__cause__, ProtocolError)
            assert fake.url in str(caught.value)

    run(scenario())


def test_garbage_while_streaming_ends_the_session() -> None:
    async def scenario() -> None:
        async with FakeCamera(rtp_rate=100) as fake:
            client = await play_fake(fake)
            try:
                await collect(client, until=lambda p, _: len(p[0]) >= 3, limit=3)
                fake.connections[0].write(b"\xff\xfe garbage")
                with pytest.raises(RtspProtocolError, match="malformed"):
                    await client.wait()
            finally:
                await client.close()

    run(scenario())


@pytest.mark.parametrize("lenient", [True, False])
def test_session_id_change(lenient: bool) -> None:
    def play(camera: FakeCamera, conn: Connection, request: Any) -> Response:
        answer = camera.default_answer(conn, request)
        answer.headers.set("Session", "CHANGED1")
        return answer

    async def scenario() -> None:
        async with FakeCamera(rtp_rate=50, session_timeout=1) as fake:
            fake.hooks["PLAY"] = play
            quirks = Quirks(ignore_session_id_change=lenient, send_receiver_reports=False)
            if not lenient:
                with pytest.raises(RtspProtocolError, match="changed the session id"):
                    await play_fake(fake, quirks=quirks)
                return
            client = await play_fake(fake, quirks=quirks)
            try:
                assert client.session_id == fake.session_id
                await asyncio.sleep(0.7)
            finally:
                await client.close()
            assert fake.requests[4].method == "GET_PARAMETER"
            assert fake.requests[4].headers.get("Session") == fake.session_id

    run(scenario())


@pytest.mark.parametrize("lenient", [True, False])
def test_data_on_unassigned_channel(lenient: bool) -> None:
    async def scenario() -> None:
        async with FakeCamera(rtp_rate=100) as fake:
            quirks = Quirks(drop_unassigned_channels=lenient)
            client = await play_fake(fake, quirks=quirks)
            try:
                await collect(client, until=lambda p, _: len(p[0]) >= 2, limit=3)
                fake.connections[0].write(encode_interleaved(9, b"\x80" * 20))
                if lenient:
                    packets, _ = await collect(client, until=lambda p, _: len(p[0]) >= 5, limit=3)
                    assert len(packets[0]) >= 5
                    assert client.stats.unassigned_frames == 1
                else:
                    with pytest.raises(RtspProtocolError, match="unassigned interleaved channel 9"):
                        await client.wait()
            finally:
                await client.close()

    run(scenario())


def _early_play(sequences: list[int], rtp_info_seq: int) -> Any:
    """A PLAY hook that streams ``sequences`` before answering with RTP-Info seq."""

    def hook(camera: FakeCamera, conn: Connection, request: Any) -> bytes:
        data = b"".join(
            encode_interleaved(0, build_rtp(96, s, s * 3600, SSRC_BASE, b"\x65\x00"))
            for s in sequences
        )
        conn.seq[0] = max(sequences) + 1  # the stream goes on after them
        answer = camera.default_answer(conn, request)
        answer.headers.set("CSeq", request.headers["CSeq"])
        answer.headers.set(
            "RTP-Info", format_rtp_info(RtpInfo(f"{camera.url}/track0", rtp_info_seq, 0))
        )
        return data + answer.serialize()

    return hook


@pytest.mark.parametrize(
    ("quirks", "first_seqs", "counters"),
    [
        (Quirks(), [998, 999, 1000, 1001], {"early_packets": 5, "early_dropped": 0}),
        (
            Quirks(buffer_early_rtp=False),
            [1003, 1004, 1005, 1006],
            {"early_packets": 0, "early_dropped": 5},
        ),
        (
            Quirks(drop_packets_before_rtp_info=True),
            [1000, 1001, 1002, 1003],
            {"early_packets": 5, "early_dropped": 0},
        ),
    ],
)
def test_rtp_before_play_answer(
    quirks: Quirks, first_seqs: list[int], counters: dict[str, int]
) -> None:
    async def scenario() -> None:
        async with FakeCamera(rtp_rate=100) as fake:
            fake.hooks["PLAY"] = _early_play([998, 999, 1000, 1001, 1002], rtp_info_seq=1000)
            client = await play_fake(fake, quirks=quirks)
            try:
                packets, _ = await collect(client, until=lambda p, _: len(p[0]) >= 4, limit=3)
            finally:
                await client.close()
            assert [e.packet.sequence for e in packets[0][:4]] == first_seqs
            for name, value in counters.items():
                assert getattr(client.stats, name) == value
            assert client.tracks[0].stale == (2 if quirks.drop_packets_before_rtp_info else 0)

    run(scenario())


def test_status_error_names_method_and_status() -> None:
    async def scenario() -> None:
        async with FakeCamera() as fake:
            fake.hooks["DESCRIBE"] = lambda *_: Response(404)
            with pytest.raises(RtspStatusError) as caught:
                await play_fake(fake)
            assert (caught.value.status, caught.value.method) == (404, "DESCRIBE")
            assert caught.value.uri == fake.url
            assert "404 Not Found" in str(caught.value)

    run(scenario())


def test_redirect_followed_once() -> None:
    async def scenario() -> None:
        async with FakeCamera(rtp_rate=50) as target, FakeCamera() as first:

            def moved(camera: FakeCamera, conn: Connection, request: Any) -> bytes:
                headers = Headers([("CSeq", request.headers["CSeq"]), ("Location", target.url)])
                conn.write(Response(302, headers=headers).serialize())
                conn.writer.close()  # many servers hang up after a redirect
                return b""

            first.hooks["DESCRIBE"] = moved
            client = await play_fake(first)
            try:
                assert client.uri == target.url
                assert client.presentation is not None
                assert client.presentation.uri == target.url
                packets, _ = await collect(client, until=lambda p, _: bool(p[0]), limit=3)
                assert packets[0]
            finally:
                await client.close()
            assert first.methods() == ["OPTIONS", "DESCRIBE"]

            target.hooks["DESCRIBE"] = moved  # now it loops
            with pytest.raises(RtspStatusError) as caught:
                await play_fake(first)
            assert caught.value.status == 302

    run(scenario())


def test_connection_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: refused

        async def scenario() -> None:
            async with RtspClient(f"rtsp://127.0.0.1:{port}/x", timeouts=FAST) as client:
                with pytest.raises(RtspConnectionError, match="refused"):
                    await client.connect()

        run(scenario())


def test_server_closes_connection() -> None:
    async def scenario() -> None:
        async with FakeCamera(rtp_rate=100) as fake:
            client = await play_fake(fake)
            try:
                await collect(client, until=lambda p, _: bool(p[0]), limit=3)
                fake.connections[0].writer.close()
                with pytest.raises(RtspConnectionError, match="closed"):
                    await client.wait()
            finally:
                await client.close()

    run(scenario())


@pytest.mark.parametrize("password", ["right", "wrong"])
def test_digest_sha256_retries_exactly_once(password: str) -> None:
    async def scenario() -> None:
        auth = ServerAuthenticator("fake", algorithms=("SHA-256", "MD5"))
        async with FakeCamera(authenticator=auth, passwords={"op": "right"}) as fake:
            uri = fake.url.replace("rtsp://", f"rtsp://op:{password}@")
            if password == "wrong":
                with pytest.raises(RtspAuthFailed) as caught:
                    await play_fake(fake, uri=uri)
                assert caught.value.method == "OPTIONS"
                assert fake.methods() == ["OPTIONS", "OPTIONS"]
                return
            client = await play_fake(fake, uri=uri)
            await client.close()
            assert fake.methods() == ["OPTIONS"] * 2 + ["DESCRIBE", "SETUP", "PLAY", "TEARDOWN"]
            assert client.stats.auth_retries == 1
            for request in fake.requests[1:]:
                assert "op:" not in request.uri
                assert 'algorithm="SHA-256"' in request.headers["Authorization"] or (
                    "algorithm=SHA-256" in request.headers["Authorization"]
                )

    run(scenario())


def test_receiver_reports_and_pli_on_the_wire() -> None:
    async def scenario() -> None:
        async with FakeCamera(rtp_rate=100, first_seq=65530) as fake:
            timeouts = Timeouts(rtcp_interval=0.2, stall=3)
            client = await play_fake(fake, timeouts=timeouts)
            try:
                await collect(client, until=lambda p, _: len(p[0]) >= 20, limit=3)
                fake.connections[0].send_sender_report(0)
                _, reports = await collect(client, until=lambda _, s: bool(s), limit=3)
                assert reports and reports[0].report.ssrc == SSRC_BASE
                assert client.request_key_frame(0) == 1
                await asyncio.sleep(1.3)  # first report after ≤ 1 s, then every ~0.2 s
            finally:
                await client.close()
            rtcp = [parse_rtcp(f.payload) for f in fake.connections[0].frames]
            assert all(f.channel == 1 for f in fake.connections[0].frames)
            reports_sent = [p for pkts in rtcp for p in pkts if isinstance(p, ReceiverReport)]
            blocks = [r.reports[0] for r in reports_sent if r.reports]
            assert blocks, "no receiver report with a report block"
            last = blocks[-1]
            assert last.ssrc == SSRC_BASE
            assert last.highest_seq > 0xFFFF  # wrapped past 65535: extended sequence number
            assert last.lsr != 0  # the SR was taken into account
            plis = [p for pkts in rtcp for p in pkts if isinstance(p, Feedback)]
            assert [(p.packet_type, p.fmt, p.media_ssrc) for p in plis] == [(PT_PSFB, 1, SSRC_BASE)]

    run(scenario())


def test_sink_exception_ends_the_session() -> None:
    class Boom(Exception):
        pass

    class Sink(PacketQueue):
        def on_rtp(self, *args: Any) -> None:
            raise Boom("consumer failed")

    async def scenario() -> None:
        async with FakeCamera(rtp_rate=100) as fake:
            client = await play_fake(fake, sink=Sink())
            try:
                with pytest.raises(Boom):
                    await client.wait()
            finally:
                await client.close()

    run(scenario())


def test_close_ends_packet_iteration_cleanly() -> None:
    async def scenario() -> None:
        async with FakeCamera(rtp_rate=100) as fake:
            client = await play_fake(fake)
            await collect(client, until=lambda p, _: bool(p[0]), limit=3)
            await client.close()
            await client.wait()  # no error: closed on purpose
            remaining = [event async for event in client.packets()]
            assert all(isinstance(e, RtpEvent) for e in remaining)

    run(scenario())
