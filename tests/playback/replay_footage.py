"""Recorded footage, a replay server and what a client received, for the replay tests.

The footage is real H.264 (libx264 through PyAV: the demo camera's encoder, baseline, no
B-frames, a key frame every second at 25 fps, each picture showing its capture time), G.711
audio and ONVIF metadata, written through the store's writer service with known capture times:
two runs per track with a gap between them. Encoding is done once per process. The fixtures
(``loop``, ``footage``, ``server``) are imported by the test modules.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest
from sqlalchemy import Engine

from nvr.demo.audio import SAMPLE_RATE, ToneSource
from nvr.demo.metadata import metadata_document
from nvr.demo.video import ClockVideo
from nvr.playback import RtspServer
from nvr.playback.replay import RecordingResolver
from nvr.protocol.codecs.annexb import nals_to_length_prefixed
from nvr.protocol.codecs.h264 import NAL_PPS, NAL_SPS, nal_type
from nvr.protocol.ntp import ntp_to_unix_us
from nvr.protocol.onvif_replay import FLAG_C, FLAG_D, FLAG_E, FLAG_T, ReplayExtension
from nvr.protocol.rtcp import RtcpPacket, parse_rtcp
from nvr.protocol.rtp import parse_rtp
from nvr.protocol.rtsp_headers import format_utc_time
from nvr.store import Store
from nvr.store.types import SampleEntrySpec
from tests.playback.helpers import LoopThread, RtspTestClient
from tests.store.helpers import T0, make_store, video_frames

S = 1_000_000
FPS = 25
GOP = 25
FRAME_US = S // FPS
WIDTH, HEIGHT = 160, 96
AUDIO_US = 20_000
TOKEN = "REC_CAM1"

# Two runs per track: [0 s, 4 s) and [7 s, 11 s) after T0 (a 3 s gap).
RUNS = ((T0, 100), (T0 + 7 * S, 100))


@dataclass
class Footage:
    """What was recorded: per track the capture times (and key flags for video)."""

    store: Store
    token: str = TOKEN
    video: list[tuple[int, bool]] = field(default_factory=list)
    audio: list[int] = field(default_factory=list)
    metadata: list[int] = field(default_factory=list)

    @property
    def video_times(self) -> list[int]:
        return [t for t, _ in self.video]

    @property
    def key_times(self) -> list[int]:
        return [t for t, key in self.video if key]


@cache
def encoded_video(runs: tuple[tuple[int, int], ...] = RUNS) -> tuple[tuple[bytes, bool, int], ...]:
    """(length-prefixed access unit, key, capture time) for the frames of ``runs``."""
    out = []
    for start, count in runs:
        encoder = ClockVideo(WIDTH, HEIGHT, FPS, GOP)  # a run starts with a key frame
        for n in range(count):
            t = start + n * FRAME_US
            frame = encoder.frame(t)
            out.append((nals_to_length_prefixed(frame.nal_units), frame.key, t))
    return tuple(out)


def h264_entry(data: bytes) -> SampleEntrySpec:
    """The sample entry of a key frame: its SPS and PPS, length-prefixed."""
    nals = []
    pos = 0
    while pos < len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        nal = data[pos + 4 : pos + 4 + size]
        if nal_type(nal) in (NAL_SPS, NAL_PPS):
            nals.append(nal)
        pos += 4 + size
    return SampleEntrySpec(
        "H264", 90_000, nals_to_length_prefixed(nals), width=WIDTH, height=HEIGHT
    )


PCMU = SampleEntrySpec("PCMU", SAMPLE_RATE, sample_rate=SAMPLE_RATE, channels=1)
METADATA = SampleEntrySpec("ONVIF-METADATA", 90_000)


def record(store: Store, token: str = TOKEN, runs: tuple[tuple[int, int], ...] = RUNS) -> Footage:
    """Create the recording and write the footage of ``runs`` into all three tracks."""
    store.create_recording(token)
    footage = Footage(store, token)
    video = store.open_writer(token, "VIDEO001")
    audio = store.open_writer(token, "AUDIO001")
    meta = store.open_writer(token, "META001", idle_close_us=None)
    frames = encoded_video(runs)
    entry = h264_entry(frames[0][0])
    tone = ToneSource()
    samples = SAMPLE_RATE * AUDIO_US // S
    for data, key, t in frames:
        assert video.submit(data, t, 90_000 // FPS, key, entry)
        footage.video.append((t, key))
    for start, count in runs:
        for t in range(start, start + count * FRAME_US, AUDIO_US):
            assert audio.submit(tone.chunk(t, samples), t, samples, True, PCMU)
            footage.audio.append(t)
        for t in range(start, start + count * FRAME_US, S):
            assert meta.submit(metadata_document(t), t, 90_000, True, METADATA)
            footage.metadata.append(t)
    for handle in (video, audio, meta):
        handle.close().result(10)
    assert store.writer_service.flush(10)
    return footage


class ReplayServer:
    """An RTSP server with a :class:`RecordingResolver`, on a loop thread."""

    def __init__(self, loop: LoopThread, store: Store, mtu: int = 1400, **options: object) -> None:
        self.loop = loop
        self.resolver = RecordingResolver(store, mtu=mtu)

        async def start() -> RtspServer:
            server = RtspServer("127.0.0.1", 0, self.resolver, **options)  # type: ignore[arg-type]
            await server.start()
            return server

        self.server = loop.call(start())

    @property
    def port(self) -> int:
        return self.server.port

    def url(self, token: str = TOKEN) -> str:
        return f"rtsp://127.0.0.1:{self.port}/recordings/{token}"

    def close(self) -> None:
        self.loop.call(self.server.stop())
        self.resolver.close()


@contextlib.contextmanager
def replay_server(
    loop: LoopThread, store: Store, mtu: int = 1400, **options: object
) -> Iterator[ReplayServer]:
    server = ReplayServer(loop, store, mtu, **options)
    try:
        yield server
    finally:
        server.close()


def big_recording(store: Store, frames: int = 1500) -> int:
    """Synthetic H.264-like frames (about 20 kB each): transport load, not decodable."""
    store.create_recording("BIG")
    writer = store.open_writer("BIG", "VIDEO001")
    size = 0
    for f in video_frames(frames, mean_size=20_000):
        assert writer.submit(*f.args)
        size += len(f.data)
    writer.close().result(30)
    assert store.writer_service.flush(30)
    return size


@contextlib.contextmanager
def footage_store(engine: Engine, root: Path) -> Iterator[Store]:
    """A store with 2 s segments and a 50 ms checkpoint interval (the live edge is close)."""
    store = make_store(engine, root, segment_seconds=2)
    try:
        yield store
    finally:
        store.close()


@pytest.fixture(scope="module")
def loop() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.close()


@pytest.fixture
def footage(engine: Engine, tmp_path: Path) -> Iterator[Footage]:
    with footage_store(engine, tmp_path) as store:
        yield record(store)


@pytest.fixture
def server(loop: LoopThread, footage: Footage) -> Iterator[ReplayServer]:
    with replay_server(loop, footage.store) as srv:
        yield srv


# -- what a client received ---------------------------------------------------------------------

_FLAG_NAMES = ((FLAG_C, "C"), (FLAG_E, "E"), (FLAG_D, "D"), (FLAG_T, "T"))


@dataclass(frozen=True, slots=True)
class Packet:
    """One received RTP packet; ``time_us``/``flags``/``cseq`` come from its replay extension."""

    channel: int
    seq: int
    timestamp: int
    marker: bool
    payload_type: int
    ssrc: int
    size: int
    arrival: float
    ext: ReplayExtension | None

    @property
    def time_us(self) -> int | None:
        return None if self.ext is None else ntp_to_unix_us(self.ext.ntp_timestamp)

    @property
    def flags(self) -> str:
        if self.ext is None:
            return ""
        return "".join(name for bit, name in _FLAG_NAMES if self.ext.flags & bit)

    @property
    def cseq(self) -> int | None:
        return None if self.ext is None else self.ext.cseq


def rtp_packets(client: RtspTestClient, channel: int | None = None) -> list[Packet]:
    """The RTP packets received so far (even channels), in arrival order."""
    out = []
    for arrival, frame in client.frames:
        if frame.channel % 2 or (channel is not None and frame.channel != channel):
            continue
        rtp = parse_rtp(frame.payload)
        out.append(
            Packet(
                frame.channel,
                rtp.sequence,
                rtp.timestamp,
                rtp.marker,
                rtp.payload_type,
                rtp.ssrc,
                len(frame.payload),
                arrival,
                ReplayExtension.from_packet(rtp),
            )
        )
    return out


def access_units(client: RtspTestClient, channel: int = 0) -> list[Packet]:
    """The first packets of the access units (those with the replay extension)."""
    return [p for p in rtp_packets(client, channel) if p.ext is not None]


def rtcp_packets(client: RtspTestClient, channel: int = 1) -> list[list[RtcpPacket]]:
    return [parse_rtcp(f.payload) for _, f in client.frames if f.channel == channel]


def read_until_terminal(
    client: RtspTestClient, channel: int = 0, timeout: float = 20, after: int = 0
) -> list[Packet]:
    """Read until an access unit with T arrives on ``channel`` (beyond the first ``after``
    access units); returns the access units of the channel."""
    deadline = time.monotonic() + timeout
    checked = units = 0
    while time.monotonic() < deadline:
        frames = client.frames
        for _, frame in frames[checked:]:
            if frame.channel != channel:
                continue
            ext = ReplayExtension.from_packet(parse_rtp(frame.payload))
            if ext is None:
                continue
            units += 1
            if units > after and ext.terminal:
                client.read_for(0.2)  # the BYE and other tracks' last packets
                return access_units(client, channel)
        checked = len(frames)
        client.pump(0.2)
    raise TimeoutError(f"no T on channel {channel} within {timeout} s")


def setup(
    client: RtspTestClient, url: str, controls: tuple[str, ...] = ("track1", "track2", "track3")
) -> None:
    """DESCRIBE with ``Require: onvif-replay``, then SETUP each control interleaved."""
    response = client.request("DESCRIBE", url, [("Require", "onvif-replay")])
    assert response.status == 200, response
    for i, control in enumerate(controls):
        transport = f"RTP/AVP/TCP;unicast;interleaved={2 * i}-{2 * i + 1}"
        response = client.request(
            "SETUP", f"{url}/{control}", [("Transport", transport), ("Require", "onvif-replay")]
        )
        assert response.status == 200, response


def clock(t_us: int) -> str:
    """A Range clock time (basic form) for Unix µs."""
    return format_utc_time(t_us * 1000)
