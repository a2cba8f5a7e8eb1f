"""The receiver engine against the scripted fake camera: ONVIF semantics, persistence, modes,
events, consumers, back-off; plus session fan-out and SourceTag matching.

The GStreamer cameras (real peers, real store) are in ``test_ingest_gstreamer.py``.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from sqlalchemy.orm import Session, sessionmaker

from nvr.events import Event, EventBus
from nvr.ingest.backoff import BackoffPolicy
from nvr.ingest.receivers import (
    BadReceiverConfiguration,
    MaxReceiversReached,
    ReceiverConfig,
    ReceiverInUse,
    ReceiverManager,
    ReceiverSession,
    UnknownReceiver,
)
from nvr.ingest.rtsp_client import Timeouts
from nvr.ingest.sinks import SessionSink
from nvr.ingest.source_tags import match_source_tag, source_tag_for
from nvr.protocol.rtcp import SenderReport
from nvr.protocol.rtp import RtpPacket
from nvr.protocol.rtsp_auth import ServerAuthenticator
from nvr.protocol.sdp import MediaStream, media_streams, parse_sdp
from tests.ingest.fake_camera import FakeCamera

T = TypeVar("T")

FAST = Timeouts(connect=1, response=1, stall=1, teardown=0.5)
QUICK = BackoffPolicy(initial=0.2, maximum=0.4, factor=2, jitter=0, minimum=0.2)
CHANGE, FAILED = "tns1:Receiver/ChangeState", "tns1:Receiver/ConnectionFailed"


def run(coro: Awaitable[T], timeout: float = 20) -> T:
    async def limited() -> T:
        async with asyncio.timeout(timeout):
            return await coro

    return asyncio.run(limited())


class Recorded:
    """Events of a bus, with the time they arrived."""

    def __init__(self, bus: EventBus) -> None:
        self.events: list[tuple[float, Event]] = []
        bus.subscribe(lambda e: self.events.append((time.monotonic(), e)))

    def states(self, token: str) -> list[str]:
        return [
            e.data_dict()["NewState"]
            for _, e in self.events
            if e.topic == CHANGE and e.source_dict()["ReceiverToken"] == token
        ]

    def times(self, topic: str, **data: str) -> list[float]:
        return [
            t
            for t, e in self.events
            if e.topic == topic and all(e.data_dict().get(k) == v for k, v in data.items())
        ]


def manager(sessions: sessionmaker[Session], bus: EventBus, **kw: Any) -> ReceiverManager:
    kw.setdefault("timeouts", FAST)
    kw.setdefault("backoff", QUICK)
    kw.setdefault("auth_backoff", BackoffPolicy(initial=1.0, maximum=1.0, jitter=0, minimum=1))
    return ReceiverManager(sessions, bus, **kw)


async def until(predicate: Callable[[], bool], limit: float = 5.0) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


class Probe:
    """A per-media sink that counts what it gets."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.packets = 0
        self.reports = 0
        self.closed: list[BaseException | None] = []
        self.fail_after = fail_after

    def on_rtp(self, packet: RtpPacket, wall_us: int, mono_ns: int) -> None:
        self.packets += 1
        if self.fail_after is not None and self.packets > self.fail_after:
            raise RuntimeError("consumer bug")

    def on_sender_report(self, report: SenderReport, wall_us: int, mono_ns: int) -> None:
        self.reports += 1

    def on_close(self, error: BaseException | None) -> None:
        self.closed.append(error)


def probe_factory(probes: list[Probe], **kw: Any) -> Callable[[ReceiverSession], Any]:
    async def factory(session: ReceiverSession) -> dict[int, Probe]:
        probe = Probe(**kw)
        probes.append(probe)
        return {0: probe}

    return factory


# --- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (ReceiverConfig("Unknown", "rtsp://cam/x"), "Mode"),
        (ReceiverConfig("AlwaysConnect", "rtsp://cam/x", stream="RTP-Multicast"), "Stream"),
        (ReceiverConfig("AlwaysConnect", "rtsp://cam/x", protocol="SCTP"), "Protocol"),
        (ReceiverConfig("AlwaysConnect", ""), "empty"),
        (ReceiverConfig("AlwaysConnect", "ftp://cam/x"), "scheme"),
        (ReceiverConfig("AlwaysConnect", "http://cam/x"), "HTTP"),
        (ReceiverConfig("AlwaysConnect", "rtsp:///x"), "host"),
        (ReceiverConfig("AlwaysConnect", "rtsp://cam:99999/x"), "valid"),
        (ReceiverConfig("AlwaysConnect", "rtsp://cam/a b"), "white space"),
        (ReceiverConfig("AlwaysConnect", "rtsp://cam/" + "x" * 300), "limit is 256"),
    ],
)
def test_bad_configurations(
    sessions: sessionmaker[Session], config: ReceiverConfig, message: str
) -> None:
    async def scenario() -> None:
        m = manager(sessions, EventBus(), max_uri_length=256)
        await m.start()
        with pytest.raises(BadReceiverConfiguration, match=message):
            await m.create(config)
        assert m.list() == []
        await m.stop()

    run(scenario())


def test_create_get_configure_delete_and_restore_after_restart(
    sessions: sessionmaker[Session],
) -> None:
    long_uri = "rtsp://operator:pa%3Ass@192.0.2.10:8554/onvif/" + "p" * 200  # > 128 octets

    async def scenario() -> None:
        m = manager(sessions, EventBus(), max_receivers=2)
        await m.start()
        a = await m.create(ReceiverConfig("NeverConnect", long_uri, protocol="UDP"))
        b = await m.create(
            ReceiverConfig(),
            auto_created=True,
            options={"quirks": {"append_control": True}},
        )
        with pytest.raises(MaxReceiversReached):
            await m.create(ReceiverConfig("NeverConnect", "rtsp://cam/x"))
        assert m.get(a.token).config.media_uri == long_uri  # kept exactly, credentials too
        assert m.state(b.token) == ("NotConnected", True)
        await m.configure(b.token, ReceiverConfig("NeverConnect", "rtsp://cam/b", protocol="HTTP"))
        await m.set_mode(a.token, "AutoConnect")
        with pytest.raises(UnknownReceiver):
            m.get("nope")
        with pytest.raises(UnknownReceiver):
            await m.set_mode("nope", "AlwaysConnect")
        with pytest.raises(BadReceiverConfiguration):
            await m.set_mode(a.token, "Unknown")
        await m.stop()

        again = manager(sessions, EventBus(), max_receivers=2)
        await again.start()
        got = {r.token: r for r in again.list()}
        assert got[a.token].config == ReceiverConfig("AutoConnect", long_uri, protocol="UDP")
        assert got[b.token].config == ReceiverConfig(
            "NeverConnect", "rtsp://cam/b", protocol="HTTP"
        )
        assert got[b.token].auto_created and not got[a.token].auto_created
        assert got[b.token].options == {"quirks": {"append_control": True}}
        again.acquire(a.token, "job")
        with pytest.raises(ReceiverInUse):
            await again.delete(a.token)
        again.release(a.token, "job")
        await again.delete(a.token)
        await again.delete(b.token)
        with pytest.raises(UnknownReceiver):
            await again.delete(a.token)
        await again.stop()

        third = manager(sessions, EventBus())
        await third.start()
        assert third.list() == []
        await third.stop()

    run(scenario())


def test_capabilities(sessions: sessionmaker[Session]) -> None:
    m = manager(sessions, EventBus(), max_receivers=7, max_uri_length=512)
    assert m.capabilities() == {
        "RTP_Multicast": False,
        "RTP_TCP": True,
        "RTP_RTSP_TCP": True,
        "SupportedReceivers": 7,
        "MaximumRTSPURILength": 512,
    }
    with pytest.raises(ValueError):
        manager(sessions, EventBus(), max_uri_length=100)


# --- modes, states, events --------------------------------------------------------------------


def test_modes_and_state_events(sessions: sessionmaker[Session]) -> None:
    async def scenario() -> None:
        bus = EventBus()
        seen = Recorded(bus)
        async with FakeCamera(rtp_rate=50) as fake:
            m = manager(sessions, bus)
            await m.start()
            uri = fake.url.replace("rtsp://", "rtsp://user:secret@")
            never = await m.create(ReceiverConfig("NeverConnect", uri))
            auto = await m.create(ReceiverConfig("AutoConnect", uri))
            await asyncio.sleep(0.3)
            assert fake.requests == [] and m.state(auto.token)[0] == "NotConnected"

            m.acquire(auto.token, "job-1")
            m.acquire(auto.token, "job-2")
            await until(lambda: m.state(auto.token)[0] == "Connected")
            m.release(auto.token, "job-1")
            await asyncio.sleep(0.2)
            assert m.state(auto.token)[0] == "Connected"  # job-2 still holds it
            m.release(auto.token, "job-2")
            await until(lambda: m.state(auto.token)[0] == "NotConnected")
            assert "TEARDOWN" in fake.methods()

            await m.set_mode(never.token, "AlwaysConnect")
            await until(lambda: m.state(never.token)[0] == "Connected")
            assert m.session(never.token) is not None
            await m.set_mode(never.token, "NeverConnect")
            await until(lambda: m.state(never.token)[0] == "NotConnected")
            await m.stop()
        for token in (auto.token, never.token):
            assert seen.states(token) == ["Connecting", "Connected", "NotConnected"]
        assert not seen.times(FAILED)
        uris = {e.data_dict()["MediaUri"] for _, e in seen.events}
        assert uris == {fake.url}, "credentials must not leak into events"

    run(scenario())


def test_connection_refused_retries_with_back_off(sessions: sessionmaker[Session]) -> None:
    async def scenario() -> None:
        bus = EventBus()
        seen = Recorded(bus)
        async with FakeCamera() as fake:
            port = fake.port
        m = manager(sessions, bus)  # nothing listens on ``port`` now
        await m.start()
        r = await m.create(ReceiverConfig("AlwaysConnect", f"rtsp://127.0.0.1:{port}/cam"))
        await asyncio.sleep(1.5)
        await m.stop()
        attempts = seen.times(CHANGE, NewState="Connecting")
        failures = seen.times(FAILED)
        # 0.2 s, then 0.4 s (capped) between attempts: 4 or 5 in 1.5 s, never a tight loop.
        assert 4 <= len(attempts) <= 5, attempts
        assert len(failures) == len(attempts) == m.status(r.token).failures
        gaps = [b - a for a, b in itertools.pairwise(attempts)]
        assert all(g >= 0.18 for g in gaps) and all(g >= 0.38 for g in gaps[1:]), gaps
        assert "refused" in (m.status(r.token).last_error or "")
        assert set(seen.states(r.token)) == {"Connecting", "NotConnected"}

    run(scenario())


def test_wrong_password_uses_the_slower_auth_back_off(sessions: sessionmaker[Session]) -> None:
    async def scenario() -> None:
        bus = EventBus()
        seen = Recorded(bus)
        auth = ServerAuthenticator("fake", algorithms=("MD5",))
        async with FakeCamera(authenticator=auth, passwords={"op": "right"}) as fake:
            m = manager(sessions, bus)
            await m.start()
            uri = fake.url.replace("rtsp://", "rtsp://op:wrong@")
            r = await m.create(ReceiverConfig("AlwaysConnect", uri))
            await asyncio.sleep(2.5)
            status = m.status(r.token)
            await m.stop()
        assert status.auth_failures == status.failures == status.attempts
        assert 2 <= status.attempts <= 3  # 1 s apart (the normal policy would allow ~8)
        assert fake.methods().count("OPTIONS") == 2 * status.attempts  # one retry each
        assert "credentials rejected" in (status.last_error or "")
        assert "Connected" not in seen.states(r.token)

    run(scenario())


def test_garbage_and_stalls_reconnect(sessions: sessionmaker[Session]) -> None:
    """A camera answering DESCRIBE with garbage fails each attempt; a camera that stops
    sending is caught by the stall watchdog and reconnected."""

    def garbage(camera: FakeCamera, conn: Any, request: Any) -> bytes:
        return b"RTSP/1.0 200 OK\r\nCSeq: x\r\nContent-Length: -5\r\n\r\n\x00\xff"

    async def scenario() -> None:
        bus = EventBus()
        seen = Recorded(bus)
        async with (
            FakeCamera() as bad,
            FakeCamera(rtp_rate=0) as silent,
            FakeCamera(rtp_rate=50) as noisy,
        ):
            bad.hooks["DESCRIBE"] = garbage
            m = manager(sessions, bus)
            await m.start()
            g = await m.create(ReceiverConfig("AlwaysConnect", bad.url))
            s = await m.create(ReceiverConfig("AlwaysConnect", silent.url))
            n = await m.create(ReceiverConfig("AlwaysConnect", noisy.url))
            await until(lambda: m.state(n.token)[0] == "Connected")
            await asyncio.sleep(0.2)
            noisy.connections[-1].write(b"$\x00\x00")  # a truncated frame, then nonsense
            noisy.connections[-1].write(b"\xff\xfe garbage while streaming")
            await until(lambda: m.status(n.token).sessions == 2)
            await asyncio.sleep(2.6)
            await m.stop()
        assert "malformed" in (m.status(n.token).last_error or "")
        assert "malformed" in (m.status(g.token).last_error or "")
        assert m.status(g.token).failures >= 3
        assert m.status(s.token).sessions >= 2, "stalled session not re-established"
        assert "no RTP" in (m.status(s.token).last_error or "")
        assert seen.states(s.token)[:4] == ["Connecting", "Connected", "NotConnected", "Connecting"]

    run(scenario())


def test_reconfigure_moves_the_session_and_resets_back_off(
    sessions: sessionmaker[Session],
) -> None:
    async def scenario() -> None:
        bus = EventBus()
        async with FakeCamera(rtp_rate=50) as first, FakeCamera(rtp_rate=50) as second:
            m = manager(sessions, bus, backoff=BackoffPolicy(initial=30, minimum=30, jitter=0))
            await m.start()
            r = await m.create(ReceiverConfig("AlwaysConnect", "rtsp://127.0.0.1:1/none"))
            await until(lambda: m.status(r.token).failures == 1)
            await m.configure(r.token, ReceiverConfig("AlwaysConnect", first.url))
            await until(lambda: m.state(r.token)[0] == "Connected", 3)  # no 30 s wait
            await m.configure(r.token, ReceiverConfig("AlwaysConnect", second.url))
            await until(lambda: "PLAY" in second.methods(), 3)
            await until(lambda: m.state(r.token)[0] == "Connected", 3)
            assert "TEARDOWN" in first.methods()
            await m.stop()

    run(scenario())


# --- consumers --------------------------------------------------------------------------------


def test_consumers_get_sinks_per_session(sessions: sessionmaker[Session]) -> None:
    async def scenario() -> None:
        async with FakeCamera(rtp_rate=100, tracks=2) as fake:
            m = manager(sessions, EventBus())
            await m.start()
            r = await m.create(ReceiverConfig("AutoConnect", fake.url))
            first: list[Probe] = []
            seen_sessions: list[ReceiverSession] = []

            async def two_tracks(session: ReceiverSession) -> dict[int, Probe]:
                seen_sessions.append(session)
                probes = {0: Probe(), 1: Probe()}
                first.extend(probes.values())
                return probes

            await m.attach(r.token, "job", two_tracks)
            await asyncio.sleep(0.2)
            assert seen_sessions == []  # attached but not acquired: AutoConnect stays idle
            m.acquire(r.token, "job")
            await until(lambda: len(first) == 2 and all(p.packets >= 5 for p in first))
            session = seen_sessions[0]
            assert session.generation == 1 and len(session.streams) == 2
            assert session.uri == fake.url

            late: list[Probe] = []
            await m.attach(r.token, "viewer", probe_factory(late))  # joins the live session
            assert len(late) == 1
            broken: list[Probe] = []
            await m.attach(r.token, "buggy", probe_factory(broken, fail_after=3))
            await until(lambda: late[0].packets >= 10 and broken[0].closed)
            assert isinstance(broken[0].closed[0], RuntimeError)  # detached with its error
            assert m.state(r.token)[0] == "Connected"  # the others go on
            before = first[0].packets
            await asyncio.sleep(0.1)
            assert first[0].packets > before

            await m.detach(r.token, "viewer")
            assert late[0].closed == [None]
            fake.connections[-1].writer.close()  # the camera drops the session
            await until(lambda: len(seen_sessions) == 2)
            assert seen_sessions[1].generation == 2
            assert all(p.closed for p in first[:2]) and len(first) == 4  # first session closed
            with pytest.raises(ReceiverInUse):
                await m.delete(r.token)
            await m.stop()
            assert all(len(p.closed) == 1 for p in first + late)

    run(scenario())


def test_factory_failures_do_not_stop_the_session(sessions: sessionmaker[Session]) -> None:
    async def scenario() -> None:
        async with FakeCamera(rtp_rate=50) as fake:
            m = manager(sessions, EventBus())
            await m.start()
            r = await m.create(ReceiverConfig("AlwaysConnect", fake.url))

            def raising(session: ReceiverSession) -> dict[int, Probe]:
                raise ValueError("no such track")

            stray = Probe()
            good: list[Probe] = []
            await m.attach(r.token, "raising", raising)
            await m.attach(r.token, "stray", lambda s: {5: stray})
            await m.attach(r.token, "good", probe_factory(good))
            await until(lambda: bool(good) and good[0].packets > 3)
            assert stray.closed == [None]
            await m.stop()

    run(scenario())


# --- fan-out ----------------------------------------------------------------------------------


def test_session_sink_routes_and_closes_once() -> None:
    sink = SessionSink(3)
    a, b, c = Probe(), Probe(), Probe()
    sink.add("x", 0, a)
    sink.add("y", 0, b)
    sink.add("y", 2, c)
    packet = RtpPacket(96, 1, 2, 3)
    for track in (0, 1, 2, 2):
        sink.on_rtp(track, packet, 0, 0)
    sink.on_sender_report(2, SenderReport(3, 0, 0, 0, 0), 0, 0)
    assert (a.packets, b.packets, c.packets, c.reports) == (1, 1, 2, 1)
    assert sink.remove("y") == [b, c] and b.closed == [None]
    sink.on_rtp(0, packet, 0, 0)
    assert (a.packets, b.packets) == (2, 1)
    error = ConnectionError("gone")
    sink.on_close(error)
    sink.on_close(None)
    assert a.closed == [error] and c.closed == [None]
    late = Probe()
    sink.add("z", 1, late)
    assert late.closed == [error]


# --- SourceTag --------------------------------------------------------------------------------

SDP = """v=0
o=- 1 1 IN IP4 192.0.2.1
s=cam
t=0 0
a=control:*
m=video 0 RTP/AVP 96
a=rtpmap:96 H264/90000
a=control:trackID=0
a=x-onvif-track:VIDEO001
m=audio 0 RTP/AVP 0
a=control:trackID=1
m=application 0 RTP/AVP 98
a=rtpmap:98 vnd.example/90000
a=control:trackID=2
m=application 0 RTP/AVP 107
a=rtpmap:107 vnd.onvif.metadata/90000
a=control:trackID=3
m=video 0 RTP/AVP 97
a=rtpmap:97 H265/90000
a=control:rtsp://192.0.2.1/media/second
"""


def sdp_streams() -> list[MediaStream]:
    return media_streams(parse_sdp(SDP.replace("\n", "\r\n").encode()), "rtsp://192.0.2.1/media/")


@pytest.mark.parametrize(
    ("tag", "kind", "position"),
    [
        ("VIDEO001", None, 0),  # x-onvif-track wins over the generic reading
        ("trackID=1", None, 1),
        ("rtsp://192.0.2.1/media/trackID=3", None, 3),
        ("second", None, 4),
        ("media/second", None, 4),
        ("video", None, 0),
        ("VIDEO2", None, 4),
        ("VIDEO3", None, None),
        ("Audio", None, 1),
        ("AUDIO001", None, 1),
        ("METADATA", None, 3),  # ONVIF metadata before other application media
        ("METADATA2", None, 2),
        ("", "Audio", 1),
        ("", None, None),
        ("trackID=9", "Video", None),
        ("rackID=1", None, None),
    ],
)
def test_source_tags(tag: str, kind: str | None, position: int | None) -> None:
    assert match_source_tag(tag, sdp_streams(), kind) == position


def test_source_tag_names_round_trip() -> None:
    streams = sdp_streams()
    names = [source_tag_for(streams, i) for i in range(len(streams))]
    assert names == ["VIDEO001", "AUDIO", "METADATA2", "METADATA", "VIDEO2"]
    assert [match_source_tag(n, streams) for n in names] == list(range(5))
