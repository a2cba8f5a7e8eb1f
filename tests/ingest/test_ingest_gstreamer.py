"""End to end with real peers: GStreamer RTSP cameras recorded through ReceiverManager and
TrackRecorder into a real store (SQLite or PostgreSQL), read back and decoded by FFmpeg.

Every stored frame must decode (``ffmpeg -v error`` prints nothing and emits one frame per
stored frame) and stored times must step by the camera's frame duration. The failure tests kill
and restart the camera, freeze it (SIGSTOP: the connection stays open, nothing is sent) and
give a wrong password. ONVIF metadata has no GStreamer payloader, so its path is driven with
hand-built RTP packets.
"""

from __future__ import annotations

import asyncio
import datetime
import gzip
import itertools
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import Engine

from nvr.events import EventBus
from nvr.ingest.backoff import BackoffPolicy
from nvr.ingest.receivers import ReceiverConfig, ReceiverManager, ReceiverSession
from nvr.ingest.recorder import TrackRecorder, open_recorder
from nvr.ingest.rtsp_client import Timeouts
from nvr.ingest.source_tags import match_source_tag
from nvr.protocol.payload.nal import length_prefixed_to_nals, nals_to_annexb
from nvr.protocol.rtp import build_rtp, parse_rtp
from nvr.store import Frame, Store
from nvr.store.types import RunInfo
from tests.conftest import require_binary
from tests.ingest.test_recorder import make_stream, metadata_document, metadata_packets
from tests.ingest.test_rtsp_client import cameras  # noqa: F401  (module-wide GStreamer cameras)
from tests.peers.camera import GstCamera, gst_camera
from tests.store.helpers import make_store

T = TypeVar("T")

pytestmark = [pytest.mark.gstreamer, pytest.mark.ffmpeg]

TIMEOUTS = Timeouts(connect=2, response=2, stall=2, teardown=1)
QUICK = BackoffPolicy(initial=0.3, maximum=0.6, jitter=0, minimum=0.3)
REC = "REC"
TRACKS = {"VIDEO": "VIDEO001", "AUDIO": "AUDIO001"}


def run(coro: Awaitable[T], timeout: float = 40) -> T:
    async def limited() -> T:
        async with asyncio.timeout(timeout):
            return await coro

    return asyncio.run(limited())


@pytest.fixture
def store(engine: Engine, tmp_path: Path) -> Iterator[Store]:
    s = make_store(engine, tmp_path)
    s.create_recording(REC)
    yield s
    s.close()


class Job:
    """What the recording-job engine does for one source: SourceTag -> store track, one
    TrackRecorder per mapped media and session. Keeps every recorder for the checks."""

    def __init__(self, store: Store, tracks: dict[str, str] = TRACKS) -> None:
        self.store = store
        self.tracks = tracks
        self.recorders: list[TrackRecorder] = []
        self.sessions: list[ReceiverSession] = []

    async def __call__(self, session: ReceiverSession) -> dict[int, TrackRecorder]:
        self.sessions.append(session)
        out = {}
        for tag, track in self.tracks.items():
            position = match_source_tag(tag, session.streams)
            if position is None:
                continue
            out[position] = recorder = await open_recorder(
                self.store,
                REC,
                track,
                session.streams[position],
                request_key_frame=session.key_frame_requester(position),
            )
            self.recorders.append(recorder)
        return out

    def stored(self, track: str) -> int:
        """Frames the recorders of ``track`` handed to the store, over all sessions."""
        return sum(r.stats.frames for r in self.recorders if r.name.endswith("/" + track))


async def start_job(
    store: Store,
    uri: str,
    *,
    protocol: str = "RTSP",
    bus: EventBus | None = None,
    **kw: Any,
) -> tuple[ReceiverManager, str, Job]:
    """A manager with one AutoConnect receiver held by a Job."""
    kw.setdefault("timeouts", TIMEOUTS)
    kw.setdefault("backoff", QUICK)
    manager = ReceiverManager(store.sessions, bus or EventBus(), **kw)
    await manager.start()
    receiver = await manager.create(ReceiverConfig("AutoConnect", uri, protocol=protocol))
    job = Job(store)
    await manager.attach(receiver.token, "job", job)
    manager.acquire(receiver.token, "job")
    return manager, receiver.token, job


async def wait_for(predicate: Callable[[], bool], limit: float) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


def read_back(store: Store, track: str) -> tuple[list[Frame], list[RunInfo]]:
    assert store.writer_service.flush()
    reader = store.reader(REC, track)
    return list(reader.frames(0)), reader.runs()


# --- decoding what was stored -------------------------------------------------------------------


def adts(frame: bytes, config: bytes) -> bytes:
    """An ADTS header for a raw AAC frame (object type, rate index and channels from the
    2-byte AudioSpecificConfig GStreamer's voaacenc produces)."""
    aot, rate_index, channels = (
        config[0] >> 3,
        ((config[0] & 7) << 1) | (config[1] >> 7),
        (config[1] >> 3) & 0xF,
    )
    length = len(frame) + 7
    header = (
        (0xFFF << 44)
        | (1 << 40)  # MPEG-4, layer 0, no CRC
        | ((aot - 1) << 38)
        | (rate_index << 34)
        | (channels << 30)
        | (length << 13)
        | (0x7FF << 2)
    )
    return header.to_bytes(7, "big") + frame


def elementary_stream(codec: str, frames: list[Frame], parameters: bytes) -> tuple[bytes, str]:
    """The frames as a file FFmpeg reads, and its demuxer name."""
    if codec in ("H264", "H265"):
        data = b"".join(nals_to_annexb(length_prefixed_to_nals(f.data)) for f in frames)
        return data, "h264" if codec == "H264" else "hevc"
    if codec == "JPEG":
        return b"".join(f.data for f in frames), "mjpeg"
    if codec == "AAC":
        return b"".join(adts(f.data, parameters) for f in frames), "aac"
    assert codec == "PCMU"
    return b"".join(f.data for f in frames), "mulaw"


def decode(codec: str, frames: list[Frame], parameters: bytes, work: Path) -> int:
    """Decode every stored frame with FFmpeg; returns the decoded frame count (for G.711,
    the sample count). Any complaint from the decoder fails the test."""
    ffmpeg = require_binary("ffmpeg")
    data, fmt = elementary_stream(codec, frames, parameters)
    path = work / f"stream.{fmt}"
    path.write_bytes(data)
    extra = ["-ar", "8000", "-ac", "1"] if fmt == "mulaw" else []
    out = ["-f", "s16le", "-"] if fmt == "mulaw" else ["-f", "framemd5", "-"]
    command = [ffmpeg, "-v", "error", "-nostdin", "-f", fmt, *extra, "-i", str(path)]
    result = subprocess.run(
        [*command, "-fps_mode", "passthrough", *out],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0 and result.stderr == b"", result.stderr.decode()[-2000:]
    if fmt == "mulaw":
        return len(result.stdout) // 2
    return sum(1 for line in result.stdout.splitlines() if line and not line.startswith(b"#"))


def check_track(
    store: Store, job: Job, track: str, codec: str, step_us: int | None, work: Path
) -> list[Frame]:
    """Stored = handed over = decoded; times follow the frame durations exactly."""
    frames, runs = read_back(store, track)
    assert frames, f"nothing stored in {track}"
    assert len(frames) == job.stored(track), "a frame was lost or written twice"
    entry = store.sample_entry(frames[0].sample_entry_id).spec
    assert entry.codec == codec
    assert frames[0].key
    for run in runs:
        in_run = [f for f in frames if f.run_id == run.id]
        assert in_run[0].key, "a run must start at a key frame"
        for a, b in itertools.pairwise(in_run):
            assert b.time_us - a.time_us == a.duration_us
            if step_us is not None:
                assert a.duration_us == step_us
    decoded = decode(codec, frames, entry.parameters, work)
    expected = sum(len(f.data) for f in frames) if codec == "PCMU" else len(frames)
    assert decoded == expected
    return frames


# --- recording each kind of camera ---------------------------------------------------------------

VIDEO_STEP = 40_000  # 25 fps
CASES = [
    ("h264", "RTSP", "H264", None),
    ("h265", "UDP", "H265", None),
    ("mjpeg", "HTTP", "JPEG", None),
    ("h264+aac", "RTSP", "H264", ("AAC", 64_000)),  # 1024 samples at 16 kHz
    ("h264+pcmu", "UDP", "H264", ("PCMU", None)),
]


@pytest.mark.parametrize(("kind", "protocol", "video", "audio"), CASES)
def test_record_gstreamer_camera_and_decode_every_frame(
    cameras: Callable[..., GstCamera],  # noqa: F811
    store: Store,
    tmp_path: Path,
    kind: str,
    protocol: str,
    video: str,
    audio: tuple[str, int | None] | None,
) -> None:
    camera = cameras(kind)

    async def scenario() -> Job:
        manager, token, job = await start_job(store, camera.url(), protocol=protocol)
        await asyncio.sleep(3)
        assert manager.state(token)[0] == "Connected"
        await manager.stop()
        return job

    job = run(scenario())
    assert all(r.stats.dropped == 0 and r.stats.after_loss == 0 for r in job.recorders)
    frames = check_track(store, job, "VIDEO001", video, VIDEO_STEP, tmp_path)
    assert len(frames) >= 50  # ~3 s at 25 fps
    entry = store.sample_entry(frames[0].sample_entry_id).spec
    assert (entry.width, entry.height) == (320, 240)
    if audio is not None:
        codec, step = audio
        sound = check_track(store, job, "AUDIO001", codec, step, tmp_path)
        spec = store.sample_entry(sound[0].sample_entry_id).spec
        assert (spec.sample_rate, spec.channels) == ((16_000, 1) if codec == "AAC" else (8000, 1))
        assert abs(sound[0].time_us - frames[0].time_us) < 500_000  # one timeline


def test_wrong_password_backs_off_then_records_with_digest(
    cameras: Callable[..., GstCamera],  # noqa: F811
    store: Store,
    tmp_path: Path,
) -> None:
    camera = cameras("h264", user="admin", password="s3cret")
    bus = EventBus()
    failed: list[float] = []
    connecting: list[float] = []

    def watch(event: Any) -> None:
        if event.topic == "tns1:Receiver/ConnectionFailed":
            failed.append(time.monotonic())
        elif event.data_dict().get("NewState") == "Connecting":
            connecting.append(time.monotonic())

    bus.subscribe(watch)
    slow_auth = BackoffPolicy(initial=1.0, maximum=4.0, factor=2, jitter=0, minimum=1.0)

    async def scenario() -> Job:
        manager, token, job = await start_job(
            store, camera.url("admin:wrong"), bus=bus, auth_backoff=slow_auth
        )
        await asyncio.sleep(3.5)
        status = manager.status(token)
        assert manager.state(token)[0] == "NotConnected"
        # Attempts at 0, 1 and 3 s (1 s, then 2 s): never a tight loop against the camera.
        assert status.attempts == status.auth_failures == len(failed) == 3
        gaps = [b - a for a, b in itertools.pairwise(connecting)]
        assert gaps[0] >= 0.95 and gaps[1] >= 1.9, gaps
        assert job.sessions == []
        await manager.configure(
            token, ReceiverConfig("AutoConnect", camera.url("admin:s3cret"), protocol="HTTP")
        )
        await wait_for(lambda: manager.state(token)[0] == "Connected", 5)
        await asyncio.sleep(2)
        await manager.stop()
        return job

    job = run(scenario())
    assert len(check_track(store, job, "VIDEO001", "H264", VIDEO_STEP, tmp_path)) >= 30


# --- failures -----------------------------------------------------------------------------------


def two_runs(store: Store, job: Job, tmp_path: Path) -> tuple[list[Frame], list[RunInfo]]:
    """The checks after an interrupted session: two runs with a gap, nothing twice."""
    frames = check_track(store, job, "VIDEO001", "H264", VIDEO_STEP, tmp_path)
    _, runs = read_back(store, "VIDEO001")
    assert len(runs) == 2, runs
    assert runs[0].end_us < runs[1].start_us, "no gap between the sessions"
    times = [f.time_us for f in frames]
    assert times == sorted(set(times)), "frame times repeat or go back"
    first = [f for f in frames if f.run_id == runs[0].id]
    second = [f for f in frames if f.run_id == runs[1].id]
    assert first[-1].time_us + first[-1].duration_us == runs[0].end_us
    assert second[0].time_us == runs[1].start_us
    per_session = [r.stats.frames for r in job.recorders]
    assert per_session == [len(first), len(second)]
    return frames, runs


def test_camera_killed_and_restarted(store: Store, tmp_path: Path) -> None:
    with gst_camera("h264") as camera:

        async def scenario() -> tuple[Job, int]:
            manager, token, job = await start_job(store, camera.url())
            await wait_for(lambda: manager.state(token)[0] == "Connected", 5)
            await asyncio.sleep(2)
            camera.kill()
            await wait_for(lambda: manager.state(token)[0] != "Connected", 3)
            await asyncio.sleep(1.0)  # refused attempts meanwhile
            camera.start()  # same port: the camera rebooted
            await wait_for(lambda: manager.status(token).sessions == 2, 5)
            await asyncio.sleep(2)
            failures = manager.status(token).failures
            await manager.stop()
            return job, failures

        job, failures = run(scenario())
    assert failures >= 2  # the lost session, then at least one refused attempt
    assert [s.generation for s in job.sessions][-1] > 2
    two_runs(store, job, tmp_path)


def test_camera_freezes_without_closing(store: Store, tmp_path: Path) -> None:
    """SIGSTOP: the TCP connection stays open and silent. The stall watchdog ends the session,
    attempts time out while the camera is frozen, and recording resumes after SIGCONT."""
    with gst_camera("h264") as camera:
        assert camera.process is not None

        async def scenario() -> tuple[Job, str]:
            manager, token, job = await start_job(
                store, camera.url(), timeouts=Timeouts(connect=1, response=1, stall=1)
            )
            await wait_for(lambda: manager.state(token)[0] == "Connected", 5)
            await asyncio.sleep(1.5)
            camera.process.send_signal(signal.SIGSTOP)  # type: ignore[union-attr]
            try:
                await wait_for(lambda: manager.status(token).failures >= 1, 3)
                first_error = manager.status(token).last_error or ""
                await asyncio.sleep(1.5)
            finally:
                camera.process.send_signal(signal.SIGCONT)  # type: ignore[union-attr]
            await wait_for(lambda: manager.status(token).sessions == 2, 6)
            await asyncio.sleep(1.5)
            await manager.stop()
            return job, first_error

        job, first_error = run(scenario())
    assert "no RTP" in first_error
    two_runs(store, job, tmp_path)


# --- ONVIF metadata -----------------------------------------------------------------------------


def test_record_demo_camera_video_audio_and_metadata(store: Store, tmp_path: Path) -> None:
    """Our own demo camera (nvr.demo) behind our RTSP server: H.264, G.711 and ONVIF metadata
    recorded by SourceTag; metadata documents are stored whole, at their UtcTime."""
    from nvr.demo.camera import DemoCamera
    from nvr.playback import RtspServer, StaticResolver

    async def scenario() -> Job:
        camera = DemoCamera(idle_stop=60)
        server = RtspServer("127.0.0.1", 0, StaticResolver({"/demo": camera}))
        await server.start()
        try:
            job = Job(store, {**TRACKS, "METADATA": "META001"})
            manager = ReceiverManager(store.sessions, EventBus(), timeouts=TIMEOUTS)
            await manager.start()
            uri = f"rtsp://127.0.0.1:{server.port}/demo"
            receiver = await manager.create(ReceiverConfig("AlwaysConnect", uri))
            await manager.attach(receiver.token, "job", job)
            await wait_for(lambda: len(job.recorders) == 3, 5)
            await wait_for(lambda: job.stored("META001") >= 3, 8)
            await manager.stop()
        finally:
            await server.stop()
            await camera.close()
        return job

    job = run(scenario())
    check_track(store, job, "VIDEO001", "H264", None, tmp_path)
    check_track(store, job, "AUDIO001", "PCMU", None, tmp_path)
    docs, _ = read_back(store, "META001")
    assert len(docs) == job.stored("META001") >= 3
    for doc in docs:
        assert doc.data.startswith(b"<?xml") and doc.data.rstrip().endswith(b"</tt:MetadataStream>")
        stamp = doc.data.split(b'UtcTime="', 1)[1].split(b'"', 1)[0].decode()
        utc = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        assert abs(utc.timestamp() * 1e6 - doc.time_us) < 500_000, (stamp, doc.time_us)


@pytest.mark.parametrize("encoding", ["vnd.onvif.metadata", "vnd.onvif.metadata+gzip"])
def test_metadata_documents_from_hand_built_rtp(store: Store, encoding: str) -> None:
    """Documents of 0.2 to 5 KB split over 1000-byte packets, through TrackRecorder into the
    store and back: byte-identical, one stored frame per document (gzip is unpacked)."""
    docs = [metadata_document(n, size=(n * 1700) % 5000) for n in range(12)]
    squeezed = [gzip.compress(d, mtime=0) for d in docs] if encoding.endswith("gzip") else docs

    async def scenario() -> TrackRecorder:
        stream = make_stream(encoding, media="application", pt=107)
        recorder = await open_recorder(store, REC, "META001", stream)
        arrival = time.time_ns() // 1000
        for n, packet in enumerate(metadata_packets(squeezed, 1000)):
            recorder.on_rtp(packet, arrival + n * 10_000, 0)
        recorder.on_close(None)
        await recorder.wait_closed()
        return recorder

    recorder = run(scenario())
    frames, runs = read_back(store, "META001")
    assert [f.data for f in frames] == docs
    assert recorder.stats.frames == len(docs) and len(runs) == 1
    assert store.sample_entry(frames[0].sample_entry_id).spec.codec == "ONVIF-METADATA"


def test_metadata_loss_drops_only_the_damaged_document(store: Store) -> None:
    docs = [metadata_document(n, size=2500) for n in range(5)]
    packets = list(metadata_packets(docs, 1000))
    lost = packets.pop(4)  # the middle of document 1

    async def scenario() -> None:
        recorder = await open_recorder(
            store, REC, "META001", make_stream("vnd.onvif.metadata", media="application", pt=107)
        )
        arrival = time.time_ns() // 1000
        for n, packet in enumerate(packets):
            recorder.on_rtp(packet, arrival + n * 10_000, 0)
        recorder.on_close(None)
        await recorder.wait_closed()

    assert not lost.marker
    run(scenario())
    frames, _ = read_back(store, "META001")
    assert [f.data for f in frames] == [docs[0], *docs[2:]]


def test_hand_built_packets_parse_like_the_wire() -> None:
    """Sanity for the helpers: what ``metadata_packets`` yields survives a wire round trip."""
    for packet in metadata_packets([metadata_document(1, 3000)], 1000):
        raw = build_rtp(107, packet.sequence, packet.timestamp, packet.ssrc, packet.payload)
        assert bytes(parse_rtp(raw).payload) == bytes(packet.payload)
