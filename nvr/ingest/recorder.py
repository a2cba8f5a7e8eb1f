"""Record one received RTP stream into one store track, for one RTSP session.

``TrackRecorder`` is the per-media sink of a receiver session (see :mod:`nvr.ingest.sinks`):
RTP packets -> depacketizer -> shaper (storage bytes + one shared SampleEntrySpec) ->
:class:`~nvr.ingest.timing.TrackTiming` (exact durations, wall-clock capture times) ->
``TrackHandle.submit``. It lives for one session: when the session ends, :meth:`on_close`
writes the held-back last frame and closes the track handle, which ends the store run, so a
reconnect starts a new run after a gap and no frame is ever written twice.

Why frames are dropped rather than stored: H.264/H.265 frames after a loss cannot be decoded
until the next key frame, so they are dropped (and a key frame is requested with PLI, rate
limited) — but they are never pushed into the timing either, so the last stored frame lasts
until the next stored one and the track's timeline stays exact. A hole longer than
``max_hold_us`` instead ends the frame early, so the store sees a time step and records a gap.

Per packet this costs one depacketizer call; per frame a handful of attribute look-ups, one
timing step and one queue put: one daemon process runs hundreds of these.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from nvr.ingest.sample_entries import (
    Shaper,
    codec_kind,
    incompatibility,
    make_shaper,
    store_codec,
)
from nvr.ingest.timing import TimedFrame, TrackTiming
from nvr.protocol.errors import ProtocolError
from nvr.protocol.ntp import ntp_to_unix_us
from nvr.protocol.payload import AccessUnit, Depacketizer, PayloadError, make_depacketizer
from nvr.protocol.payload.aac import parse_config_hex
from nvr.protocol.rtcp import SenderReport
from nvr.protocol.rtp import RtpPacket
from nvr.protocol.sdp import MediaStream
from nvr.store.types import SampleEntrySpec

if TYPE_CHECKING:
    from nvr.store import Store

__all__ = ["FrameWriter", "RecorderStats", "TrackRecorder", "open_recorder"]

log = logging.getLogger("nvr.ingest.recorder")

INCOMPATIBLE_STREAM = "Incompatible Stream"
"""The predefined tt:RecordingJobStateTrack Error text."""


class FrameWriter(Protocol):
    """What the recorder writes to: :class:`nvr.store.TrackHandle` (tests pass fakes)."""

    def submit(
        self, data: bytes, capture_us: int, duration: int, key: bool, entry: SampleEntrySpec
    ) -> bool: ...

    def close(self) -> Future[None]: ...


@dataclass(slots=True)
class RecorderStats:
    """Counters of one recorder (one session of one track)."""

    frames: int = 0
    """Frames handed to the store."""
    bytes: int = 0
    dropped: int = 0
    """Frames not stored: before the first key frame, after a loss until the next key frame,
    refused by the store's queue, or unusable (no parameter sets yet, broken JPEG header)."""
    after_loss: int = 0
    """Frames the depacketizer flagged as following a loss (stored or not)."""
    incompatible: int = 0
    """Frames refused because the stream cannot go into the track (packets, for an encoding
    we cannot depacketize)."""
    skipped: int = 0
    """Access units that are not pictures (parameter sets, SEI or AUD alone)."""
    key_frame_requests: int = 0
    sender_reports: int = 0
    holes: int = 0
    """Pauses longer than ``max_hold_us``: the store records a gap there."""


def _no_units(*args: Any) -> tuple[()]:
    return ()


class TrackRecorder:
    """One source track of one session into one store track (see the module docstring).

    ``track_kind`` (tt:TrackType) and ``track_codec`` (the codec already stored in the track,
    if any) decide compatibility: an incompatible stream is depacketized only to count what
    it refuses; :attr:`incompatible` says why, and ``on_incompatible(reason)`` is called once
    when the first frame is refused. ``request_key_frame()`` should send a PLI for this
    track; it is called at most every ``key_request_interval`` seconds. Frames arriving up to
    ``max_lateness_us`` later than their RTP time says keep their timeline (our own stalls);
    a bigger mismatch restarts it; capture times come from the least-delayed arrival over
    ``timing_window_us`` (see :class:`~nvr.ingest.timing.TrackTiming`).
    """

    def __init__(
        self,
        stream: MediaStream,
        writer: FrameWriter,
        *,
        track_kind: str | None = None,
        track_codec: str | None = None,
        request_key_frame: Callable[[], object] | None = None,
        on_incompatible: Callable[[str], object] | None = None,
        key_request_interval: float = 1.0,
        max_hold_us: int = 2_000_000,
        max_lateness_us: int = 10_000_000,
        timing_window_us: int = 60_000_000,
        name: str = "",
    ) -> None:
        self.stream = stream
        self.name = name or stream.control_url
        self.stats = RecorderStats()
        self.codec = store_codec(stream)
        self.incompatible = incompatibility(self.codec, track_kind, track_codec)
        self.error: str | None = None
        self._writer = writer
        self._request = request_key_frame
        self._on_incompatible = on_incompatible
        self._key_interval_ns = int(key_request_interval * 1e9)
        self._last_request_ns: int | None = None
        self._closing: Future[None] | None = None
        self._closed = False
        self._timer: asyncio.TimerHandle | None = None
        clock_rate = stream.clock_rate or 90_000
        self._push: Callable[..., Any] = _no_units
        self._shaper: Shaper | None = None
        self.depacketizer: Depacketizer | None = None
        if self.codec is not None:
            try:
                depacketizer = make_depacketizer(
                    stream.encoding_name or self.codec, clock_rate, stream.fmtp
                )
                self._shaper = make_shaper(self.codec, stream, depacketizer)
            except PayloadError as exc:  # e.g. H.264 packetization-mode 2, bad AAC config
                self.incompatible = f"unusable {stream.encoding_name}: {exc}"
            else:
                self.depacketizer = depacketizer
                self._push = depacketizer.push
        self._keyed = self._shaper is not None and self._shaper.keyed
        self._need_key = self._keyed
        self._sparse = codec_kind(self.codec or "") == "Metadata"
        self._hold_ticks = max_hold_us * clock_rate // 1_000_000
        self._hold_s = max_hold_us / 1e6
        self._last_ts: int | None = None
        # Late arrival is not a camera clock step: a busy loop or a network hiccup delays a
        # burst of frames, and the min-delay estimate already ignores delay. Restarting the
        # timeline there would cut the run and drop frames until the next key frame. The long
        # window keeps that estimate through a sustained backlog (an overloaded host); clock
        # drift over it is a few milliseconds, which the store's slewing absorbs.
        self._timing = TrackTiming(
            clock_rate,
            window_us=timing_window_us,
            default_duration=_default_duration(stream),
            max_step_us=max_lateness_us,
        )
        if self.incompatible is not None:
            self._refuse: Callable[[], None] | None = self._refused
            if self._push is _no_units:  # nothing to depacketize with: count packets
                self._push = self._refuse_packet
        else:
            self._refuse = None

    # --- the per-packet path ------------------------------------------------------------

    def on_rtp(self, packet: RtpPacket, wall_us: int, mono_ns: int) -> None:
        """One RTP packet of this track (in arrival order); never raises."""
        try:
            for unit in self._push(
                packet.payload, packet.marker, packet.timestamp, packet.sequence, packet.extension
            ):
                self._unit(unit, wall_us, mono_ns)
        except Exception as exc:  # a bug here must not end the session for other tracks
            self._fail(exc)

    def _unit(self, unit: AccessUnit, wall_us: int, mono_ns: int) -> None:
        stats = self.stats
        if self._refuse is not None:
            self._refuse()
            return
        if unit.after_loss:
            stats.after_loss += 1
            self._need_key = self._keyed
        if self._need_key and not unit.key:
            stats.dropped += 1
            self._ask_key_frame(mono_ns)
            return
        shaper = self._shaper
        assert shaper is not None
        shaped = shaper.shape(unit)
        if shaped is None:
            if unit.key or not self._keyed or shaper.entry is None:
                stats.dropped += 1
            else:
                stats.skipped += 1
            return
        self._need_key = False
        ts = unit.rtp_timestamp
        last = self._last_ts
        if last is not None and self._hold_ticks < (ts - last) & 0xFFFFFFFF < 0x80000000:
            stats.holes += 1
            self._flush()
        self._last_ts = ts
        timed = self._timing.push((shaped, unit.key), ts, wall_us)
        if timed is not None:
            self._submit(timed)
        if self._sparse:
            self._arm_timer()

    def _submit(self, timed: TimedFrame) -> None:
        (data, entry), key = timed.payload  # type: ignore[misc]
        stats = self.stats
        if self._writer.submit(data, timed.capture_us, timed.duration, key, entry):
            stats.frames += 1
            stats.bytes += len(data)
        else:  # queue full: the store drops the rest of the GOP; shorten that
            stats.dropped += 1
            if self._keyed:
                self._ask_key_frame(time.monotonic_ns())

    def _flush(self) -> None:
        timed = self._timing.flush()
        if timed is not None:
            self._submit(timed)

    def _ask_key_frame(self, mono_ns: int) -> None:
        request = self._request
        if request is None:
            return
        last = self._last_request_ns
        if last is not None and mono_ns - last < self._key_interval_ns:
            return
        self._last_request_ns = mono_ns
        self.stats.key_frame_requests += 1
        request()

    def _refused(self) -> None:
        self.stats.incompatible += 1
        if self.stats.incompatible == 1:
            log.warning("%s: not recorded: %s", self.name, self.incompatible)
            if self._on_incompatible is not None:
                self._on_incompatible(self.incompatible or INCOMPATIBLE_STREAM)

    def _refuse_packet(self, *packet: Any) -> tuple[()]:
        self._refused()
        return ()

    def _arm_timer(self) -> None:
        """Sparse tracks (metadata) may pause for long: do not hold a document forever."""
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(self._hold_s, self._flush)

    def _fail(self, exc: Exception) -> None:
        self.error = f"{type(exc).__name__}: {exc}"
        log.exception("%s: recorder failed; this track stops recording", self.name)
        self._push = _no_units

    # --- session events -----------------------------------------------------------------

    def on_sender_report(self, report: SenderReport, wall_us: int, mono_ns: int) -> None:
        """A camera RTCP SR: may anchor capture times to the camera's NTP clock."""
        self.stats.sender_reports += 1
        try:
            ntp_us = ntp_to_unix_us(report.ntp_timestamp)
            self._timing.on_sender_report(ntp_us, report.rtp_timestamp)
        except ProtocolError:
            pass

    def on_close(self, error: BaseException | None = None) -> None:
        """The session ended: store what is complete and close the track handle (run ends)."""
        if self._closed:
            return
        self._closed = True
        push, self._push = self._push, _no_units
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        try:
            if push is not _no_units and self._refuse is None and self.depacketizer:
                now = time.time_ns() // 1000
                for unit in self.depacketizer.flush():
                    self._unit(unit, now, time.monotonic_ns())
            self._flush()
        except Exception as exc:
            self._fail(exc)
        self._closing = self._writer.close()

    close = on_close

    @property
    def closed(self) -> bool:
        return self._closed

    async def wait_closed(self) -> None:
        """Until the store has ended the run (so the track may be opened again)."""
        if self._closing is not None:
            await asyncio.wrap_future(self._closing)


def _default_duration(stream: MediaStream) -> int | None:
    """A frame duration to assume for the last frame of a session (RTP clock units)."""
    rate = stream.clock_rate or 90_000
    if stream.framerate:
        return max(1, int(rate / stream.framerate))
    if (stream.encoding_name or "").upper() == "MPEG4-GENERIC" and stream.fmtp.get("config"):
        try:
            return parse_config_hex(stream.fmtp["config"]).frame_duration(rate)
        except PayloadError:
            return None
    return None


async def open_recorder(
    store: Store,
    recording_token: str,
    track_token: str,
    stream: MediaStream,
    **options: Any,
) -> TrackRecorder:
    """A recorder into a store track: looks up the track's kind and the codec it already
    holds and opens its writer (database work, in a thread). ``options`` go to
    :class:`TrackRecorder`. Raises the store's NoRecording / NoTrack / TrackBusy."""

    def prepare() -> tuple[str, str | None, FrameWriter]:
        track = store.get_track(recording_token, track_token)
        current = store.reader_for(track).sample_entry_at()
        handle = store.open_writer(recording_token, track_token)
        return track.kind, (current.spec.codec if current else None), handle

    kind, codec, handle = await asyncio.to_thread(prepare)
    step = store.settings.max_clock_step_us
    options.setdefault("max_hold_us", 2 * step)
    options.setdefault("name", f"{recording_token}/{track_token}")
    return TrackRecorder(stream, handle, track_kind=kind, track_codec=codec, **options)
