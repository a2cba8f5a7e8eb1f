"""The built-in demo camera: a live :class:`~nvr.playback.resource.MediaResource` at ``/demo``.

Three tracks: H.264 (``ClockVideo``, the capture time burned into the picture), G.711 μ-law
(a quiet tone with a beep on every UTC second) and ONVIF metadata (an object track, a PTZ
position and a MotionAlarm event every 10 s). All three derive from one wall-clock timeline, so
they are lip-synced and the RTCP sender reports map them to the same NTP time.

Design choice: **one shared encoder**, like a real camera. Frames are encoded and packetized
once (in a worker thread: libx264 and the packetizer take a few ms per frame and must not hold
the event loop) and the same ``bytes`` objects are pushed to every playing session, so an extra
viewer costs only socket writes, never another encoder. The camera keeps the packets sent since
the last key frame (at most one 2 s GOP plus its audio and metadata); a new session first
receives that backlog, so it starts at a key frame at once instead of waiting up to a GOP. All
sessions share SSRC and sequence numbers (RTP-Info tells each where its stream starts). The
camera runs only while someone uses it and stops ``idle_stop`` seconds after the last session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from nvr.demo.audio import SAMPLE_RATE, ToneSource
from nvr.demo.metadata import metadata_document
from nvr.demo.video import ClockVideo
from nvr.playback.resource import (
    Description,
    PacketSink,
    PlayResult,
    RequestContext,
    ResourceError,
    RtpStart,
    TrackInfo,
)
from nvr.playback.sequencer import RtpSequencer
from nvr.protocol.payload.h264 import H264Packetizer
from nvr.protocol.payload.nal import nals_to_length_prefixed
from nvr.protocol.payload.onvif_metadata import OnvifMetadataPacketizer
from nvr.protocol.rtsp_headers import ClockRange, format_range
from nvr.protocol.sdp import Attribute, Connection, Origin, SessionDescription, make_media

__all__ = ["AUDIO", "METADATA", "VIDEO", "DemoCamera"]

log = logging.getLogger(__name__)

VIDEO, AUDIO, METADATA = 0, 1, 2
_PT_VIDEO, _PT_AUDIO, _PT_METADATA = 96, 0, 107
_AUDIO_PACKET_US = 20_000
_AUDIO_SAMPLES = SAMPLE_RATE * _AUDIO_PACKET_US // 1_000_000
_SR_INTERVAL_US = 5_000_000

# One cached batch: (track, packets, capture time in Unix µs, key frame).
_Batch = tuple[int, list[bytes], int, bool]
_KEYFRAME_TIMEOUT = 10.0


def _first_seq(packet: bytes) -> int:
    return (packet[2] << 8) | packet[3]


class _WallClock:
    """Wall-clock microseconds that advance with the monotonic clock (immune to clock steps)."""

    def __init__(self) -> None:
        self._wall0 = time.time_ns() // 1000
        self._mono0 = time.monotonic()

    def now_us(self) -> int:
        return self._wall0 + round((time.monotonic() - self._mono0) * 1_000_000)

    def monotonic_at(self, wall_us: int) -> float:
        """The ``time.monotonic()`` (= loop time) value of a wall-clock instant."""
        return self._mono0 + (wall_us - self._wall0) / 1_000_000


class DemoCamera:
    """The simulated camera; one instance serves any number of sessions.

    ``fps`` and ``gop_seconds`` set the video cadence (10 fps, a key frame every 2 s by
    default). Call :meth:`close` at shutdown.
    """

    supported_requires: frozenset[str] = frozenset()

    def __init__(
        self,
        *,
        width: int = 640,
        height: int = 360,
        fps: int = 10,
        gop_seconds: int = 2,
        idle_stop: float = 10.0,
        mtu: int = 1400,
        cname: str = "nvr-demo",
    ) -> None:
        self.width, self.height, self.fps = width, height, fps
        self.gop = fps * gop_seconds
        self.idle_stop = idle_stop
        self.cname = cname
        self._clock = _WallClock()
        self._seq = [
            RtpSequencer(_PT_VIDEO, 90000),
            RtpSequencer(_PT_AUDIO, SAMPLE_RATE),
            RtpSequencer(_PT_METADATA, 90000),
        ]
        self._packetizer = H264Packetizer(mtu)
        self._metadata_packetizer = OnvifMetadataPacketizer(mtu)
        self._tone = ToneSource()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="demo-encoder")
        self._video: ClockVideo | None = None
        self._fmtp: dict[str, str] | None = None
        self._gop_cache: list[_Batch] = []
        self._subscribers: set[CameraSession] = set()
        self._sessions: set[CameraSession] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._keyframe: asyncio.Event | None = None
        self._idle_handle: asyncio.TimerHandle | None = None
        self.frames_encoded = 0

    # -- MediaResource -----------------------------------------------------------------------

    async def describe(self, ctx: RequestContext | None = None) -> Description:
        """SDP with the encoder's real SPS/PPS (starts the camera if it is idle)."""
        await self._wait_running()
        if not self._sessions:
            self._schedule_idle_stop()
        assert self._fmtp is not None
        video = make_media(
            "video", _PT_VIDEO, "H264", 90000,
            fmtp=self._fmtp, control="video", framerate=str(self.fps),
        )  # fmt: skip
        audio = make_media("audio", _PT_AUDIO, "PCMU", SAMPLE_RATE, channels=1, control="audio")
        meta = make_media(
            "application", _PT_METADATA, "vnd.onvif.metadata", 90000,
            control="metadata", direction="recvonly",
        )  # fmt: skip
        sd = SessionDescription(
            origin=Origin(session_id=str(self._clock.now_us() // 1_000_000)),
            name="nvr demo camera",
            connection=Connection(),
            attributes=[Attribute("control", "*"), Attribute("range", "npt=now-")],
            media=[video, audio, meta],
        )
        tracks = (
            TrackInfo("video", "video"),
            TrackInfo("audio", "audio"),
            TrackInfo("metadata", "application"),
        )
        return Description(sd.to_bytes(), tracks)

    async def open_session(
        self, tracks: Sequence[int], sink: PacketSink, ctx: RequestContext | None = None
    ) -> CameraSession:
        session = CameraSession(self, tuple(tracks), sink)
        self._sessions.add(session)
        if self._idle_handle is not None:
            self._idle_handle.cancel()
            self._idle_handle = None
        try:
            await self._wait_running()
        except BaseException:
            self._session_closed(session)
            raise
        return session

    async def close(self) -> None:
        """Stop the camera and its encoder thread (daemon shutdown)."""
        self._stop()
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- running -----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return bool(self._tasks)

    async def _wait_running(self) -> None:
        if not self._tasks:
            loop = asyncio.get_running_loop()
            self._keyframe = asyncio.Event()
            self._tasks = [
                loop.create_task(self._video_loop(), name="demo-video"),
                loop.create_task(self._tick_loop(), name="demo-audio-metadata"),
            ]
            for task in self._tasks:
                task.add_done_callback(self._task_done)
            log.info("demo camera started")
        assert self._keyframe is not None
        try:
            await asyncio.wait_for(self._keyframe.wait(), _KEYFRAME_TIMEOUT)
        except TimeoutError:
            raise ResourceError(503, "demo camera produced no key frame") from None

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task not in self._tasks:
            return
        log.error("demo camera failed; stopping it", exc_info=task.exception())
        self._stop()

    def _stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            log.info("demo camera stopped")
        self._tasks = []
        self._gop_cache = []
        if self._idle_handle is not None:
            self._idle_handle.cancel()
            self._idle_handle = None

    def _schedule_idle_stop(self) -> None:
        if self._idle_handle is not None:
            self._idle_handle.cancel()
        loop = asyncio.get_running_loop()
        self._idle_handle = loop.call_later(self.idle_stop, self._stop_if_idle)

    def _stop_if_idle(self) -> None:
        self._idle_handle = None
        if not self._sessions:
            self._stop()

    def _session_closed(self, session: CameraSession) -> None:
        self._sessions.discard(session)
        self._subscribers.discard(session)
        if not self._sessions and self._tasks:
            self._schedule_idle_stop()

    # -- producers ---------------------------------------------------------------------------

    def _encode(
        self, capture_us: int, fresh: bool
    ) -> tuple[list[bytes], bool, dict[str, str] | None]:
        """Worker thread: render, encode, packetize and number one video frame.

        ``fresh`` starts a new encoder (the camera (re)started), whose first frame is a key frame.
        """
        if fresh or self._video is None:
            self._video = ClockVideo(self.width, self.height, self.fps, self.gop)
        frame = self._video.frame(capture_us)
        if not frame.nal_units:  # the encoder held the frame back: nothing to send
            return [], False, None
        payloads = self._packetizer.packetize(nals_to_length_prefixed(frame.nal_units))
        seq = self._seq[VIDEO]
        packets = seq.packets(payloads, seq.timestamp(capture_us))
        return packets, frame.key, self._packetizer.fmtp() if frame.key else None

    async def _video_loop(self) -> None:
        loop = asyncio.get_running_loop()
        period = 1_000_000 // self.fps
        clock = self._clock
        capture = (clock.now_us() // period + 1) * period  # on the wall-clock frame grid
        fresh = True
        while True:
            delay = clock.monotonic_at(capture) - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            packets, key, fmtp = await loop.run_in_executor(
                self._executor, self._encode, capture, fresh
            )
            fresh = False
            self.frames_encoded += 1
            if fmtp is not None:
                self._fmtp = fmtp
            if packets:
                self._publish(VIDEO, packets, capture, key)
            if key and self._keyframe is not None:
                self._keyframe.set()
            capture += period
            late = clock.now_us() - capture
            if late > period:  # overloaded: skip frames rather than fall further behind
                capture += (late // period) * period

    async def _tick_loop(self) -> None:
        """Audio every 20 ms, a metadata document each second, sender reports every 5 s."""
        loop = asyncio.get_running_loop()
        clock = self._clock
        audio_seq, meta_seq = self._seq[AUDIO], self._seq[METADATA]
        start = clock.now_us()
        audio_at = (start // _AUDIO_PACKET_US + 1) * _AUDIO_PACKET_US  # next packet's start
        meta_at = (start // 1_000_000 + 1) * 1_000_000
        sr_at = start
        while True:
            wake = clock.monotonic_at(audio_at + _AUDIO_PACKET_US)
            delay = wake - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            now = clock.now_us()
            if now - audio_at > 1_000_000:  # the loop stalled for a second: skip the gap
                audio_at = (now // _AUDIO_PACKET_US - 1) * _AUDIO_PACKET_US
            while audio_at + _AUDIO_PACKET_US <= now:
                payload = self._tone.chunk(audio_at, _AUDIO_SAMPLES)
                packet = audio_seq.packet(payload, audio_seq.timestamp(audio_at))
                self._publish(AUDIO, [packet], audio_at)
                audio_at += _AUDIO_PACKET_US
            if now >= meta_at:
                meta_at = now // 1_000_000 * 1_000_000  # whole second, even after a stall
                document = metadata_document(meta_at)
                payloads = self._metadata_packetizer.packetize(document)
                packets = meta_seq.packets(payloads, meta_seq.timestamp(meta_at))
                self._publish(METADATA, packets, meta_at)
                meta_at += 1_000_000
            if now >= sr_at:
                reports = self._sender_reports(now)
                for subscriber in list(self._subscribers):
                    for track, report in reports:
                        subscriber.sink.send_rtcp(track, report)
                sr_at = now + _SR_INTERVAL_US

    def _sender_reports(self, now_us: int) -> list[tuple[int, bytes]]:
        """One SR per track mapping its RTP clock to wall time (shared by all sessions)."""
        return [
            (track, seq.sender_report(now_us, seq.timestamp(now_us), self.cname))
            for track, seq in enumerate(self._seq)
        ]

    def _publish(
        self, track: int, packets: list[bytes], capture_us: int, key: bool = False
    ) -> None:
        if key:
            self._gop_cache = []  # a new list: snapshots taken by PLAY stay intact
        self._gop_cache.append((track, packets, capture_us, key))
        for subscriber in list(self._subscribers):
            subscriber.deliver(track, packets, key)


class CameraSession:
    """One RTSP session watching the demo camera."""

    def __init__(self, camera: DemoCamera, tracks: tuple[int, ...], sink: PacketSink) -> None:
        self.camera = camera
        self.tracks = tracks
        self.sink = sink
        self._resync = False
        self._has_video = VIDEO in tracks

    def deliver(self, track: int, packets: list[bytes], key: bool) -> None:
        """Push one batch; after a drop, skip everything until the next key frame."""
        if self._resync:
            if self._has_video and not key:
                return
            self._resync = False
        if not self.sink.send(track, packets):
            self._resync = True

    async def play(self, ctx: RequestContext) -> PlayResult:
        camera = self.camera
        if self in camera._subscribers:  # PLAY while playing: live goes on unchanged
            return PlayResult([("Range", "npt=now-")])
        gop = camera._gop_cache
        if not gop:
            raise ResourceError(503, "demo camera is not running")
        start_us = gop[0][2]
        first: dict[int, int] = {}
        for track, packets, _, _ in gop:
            first.setdefault(track, _first_seq(packets[0]))
        rtp_info = {
            track: RtpStart(
                first.get(track, camera._seq[track].next_seq),
                camera._seq[track].timestamp(start_us),
            )
            for track in self.tracks
        }
        headers = [("Range", format_range(ClockRange(start_us * 1000, None)))]

        def start() -> None:
            batches = list(gop)
            if camera._gop_cache is not gop:  # a key frame arrived in between: keep going
                batches += camera._gop_cache
            self.sink.discard()
            self._resync = False
            for track, report in camera._sender_reports(camera._clock.now_us()):
                self.sink.send_rtcp(track, report)
            for track, packets, _, key in batches:
                self.deliver(track, packets, key)
            camera._subscribers.add(self)

        return PlayResult(headers, rtp_info, start)

    async def pause(self, ctx: RequestContext) -> Sequence[tuple[str, str]]:
        self.camera._subscribers.discard(self)
        return ()

    async def close(self) -> None:
        self.camera._session_closed(self)
        with contextlib.suppress(Exception):
            self.sink.discard()
