"""One replay RTSP session: PLAY → plan → frame source → paced or unpaced RTP (replay.md B).

The session owns the replay state the RTSP shell knows nothing about: the current plan and
its frame source, the position a PLAY without Range resumes from, which tracks have sent
anything (for D), the presentation clock of Rate-Control yes, and each track's RTP numbering.
Its producer task (one per PLAY, cancelled by the shell on PAUSE, TEARDOWN or the next PLAY)
pushes access units into the shell's sink:

- ``Rate-Control: no``: back to back, consecutive access units of a track in one sink call;
  the producer awaits ``sink.drain()`` only when the session queue holds a megabyte;
- ``Rate-Control: yes``: each access unit (reverse: each GOP) when it is due on the
  presentation clock (``replay_pacing``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from nvr.playback.replay_frames import Item, ReverseGops, Status
from nvr.playback.replay_pacing import Pacer
from nvr.playback.replay_plan import (
    INVALID_RANGE,
    Extent,
    Plan,
    PlanError,
    make_plan,
    parse_play_request,
    response_headers,
)
from nvr.playback.replay_rtp import TrackSender
from nvr.playback.replay_source import FrameSource, StoreForward, run_ended
from nvr.playback.resource import (
    PacketSink,
    PlayResult,
    RequestContext,
    ResourceError,
    RtpStart,
)
from nvr.protocol.ntp import unix_us_to_ntp
from nvr.protocol.onvif_replay import FLAG_D, FLAG_T
from nvr.protocol.payload import PayloadError
from nvr.store.reader import TrackReader

__all__ = ["ReplaySession", "SessionTrack", "track_extent"]

log = logging.getLogger(__name__)

SR_INTERVAL = 5.0
"""Seconds between RTCP sender reports."""
LIVE_POLL = 1.0
"""Longest wait at the live edge before the store is asked again."""
_QUEUE_BUDGET = 1024 * 1024
"""Bytes the producer lets queue in the session before it awaits the transport."""
_BATCH_BYTES = 256 * 1024
"""Rate-Control no: access units of one track handed to the sink in one go, up to this."""
PACED_READ_BYTES = 256 * 1024
"""Chunk read at once with Rate-Control yes: seconds of video, little memory per session."""
FAST_READ_AHEAD = 3
"""Rate-Control no: batches (of ``read_bytes``) read ahead of the one being sent."""
PACE_LEAD = 0.04
"""Rate-Control yes sends what is due within this many seconds at once: one wake-up per
video frame interval for all tracks instead of one per packet (clients buffer far more)."""


async def _until(due: float, loop: asyncio.AbstractEventLoop) -> None:
    """Sleep until ``due`` unless it is less than :data:`PACE_LEAD` away."""
    delay = due - loop.time()
    if delay > PACE_LEAD:
        await asyncio.sleep(delay)


def track_extent(reader: TrackReader) -> Extent | None:
    """The track's data and whether it is still being recorded (blocking)."""
    data = reader.data_range()
    if data is None:
        return None
    live = any(run.open for run in reader.runs(start_us=data.end_us))
    return Extent(data.start_us, data.end_us, live)


@dataclass(frozen=True, slots=True)
class SessionTrack:
    """A set-up track: where its frames come from and how they go out."""

    reader: TrackReader
    sender: TrackSender


class ReplaySession:
    """The replay state of one RTSP session: plan, frame source, position, RTP numbering."""

    def __init__(
        self,
        tracks: list[SessionTrack],
        sink: PacketSink,
        executor: concurrent.futures.Executor,
        *,
        read_bytes: int = 4 * 1024 * 1024,
    ) -> None:
        self.tracks = tracks
        self.executor = executor
        self.read_bytes = read_bytes
        self.sink = sink
        videos = [i for i, t in enumerate(tracks) if t.sender.media == "video"]
        self.primary = videos[0] if videos else 0
        self.plan: Plan | None = None
        self.source: FrameSource | None = None
        self.started: set[int] = set()
        """Tracks (indices into ``tracks``) that have sent anything."""
        self.position_us: int | None = None
        """Where a PLAY without Range resumes: after the last access unit sent."""
        self.presentation_us = 0
        """The session's presentation clock (Rate-Control yes): end of what was sent."""
        self._pacer: Pacer | None = None
        self._after_gap = False  # reverse pacing: the previous GOP began a block
        self._playing = False

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    # -- MediaSession --------------------------------------------------------------------------

    async def play(self, ctx: RequestContext) -> PlayResult:
        req = parse_play_request(ctx.request.headers)
        log.debug("PLAY %s: %s", ctx.url, req)
        extent = await self._run(self._extent)
        previous = self.plan
        try:
            plan = make_plan(req, extent, position_us=self.position_us, previous=previous)
        except PlanError as exc:
            raise ResourceError(exc.status, str(exc)) from None
        source = self.source
        reuse = (
            req.range is None
            and source is not None
            and previous is not None
            and plan.same_selection(previous)
        )
        if reuse and self._playing and plan == previous:
            return PlayResult(response_headers(plan, self.position_us or plan.start_us))
        if reuse:
            actual = self.position_us if self.position_us is not None else plan.start_us
        else:
            try:
                started = frozenset(self.started)  # the producer may add to it meanwhile
                worker, actual = await self._run(self._open, plan, extent, started)
            except PlanError as exc:
                raise ResourceError(exc.status, str(exc)) from None
            source = FrameSource(worker, self.executor, 0)
        # No await below: RTP-Info must match the first packets the producer sends.
        assert source is not None
        if plan.rate_control:
            source.read_bytes, source.read_ahead = PACED_READ_BYTES, 1
        else:  # as fast as the client takes it: a slow read must not leave the socket idle
            source.read_bytes, source.read_ahead = self.read_bytes, FAST_READ_AHEAD
        if self.source is not None and self.source is not source:
            self.source.close()
        self.source, self.plan = source, plan
        rtp_info = {}
        for track in self.tracks:
            seq = track.sender.seq
            at = self.presentation_us if plan.rate_control else actual
            rtp_info[track.sender.index] = RtpStart(seq.next_seq, seq.timestamp(at))
        cseq = ctx.cseq

        def start() -> Coroutine[Any, Any, None]:
            if plan.immediate:
                self.sink.discard()
            self._playing = True
            return self._produce(plan, source, cseq)

        return PlayResult(response_headers(plan, actual), rtp_info, start)

    async def pause(self, ctx: RequestContext) -> Sequence[tuple[str, str]]:
        self._playing = False
        return ()

    async def close(self) -> None:
        self._playing = False
        if self.source is not None:
            self.source.close()
            self.source = None

    # -- planning (worker threads) ---------------------------------------------------------------

    def _extent(self) -> Extent:
        extents = [e for e in (track_extent(t.reader) for t in self.tracks) if e is not None]
        if not extents:
            raise ResourceError(INVALID_RANGE, "the recording holds no data any more")
        return Extent(
            min(e.start_us for e in extents),
            max(e.end_us for e in extents),
            any(e.live for e in extents),
        )

    def _open(self, plan: Plan, extent: Extent, started: frozenset[int]) -> tuple[Any, int]:
        """(worker, actual start) for a plan, from the primary track's clean point (B.6);
        PlanError 457 when the range holds no data of it. ``started``: tracks that sent."""
        primary = self.tracks[self.primary]
        reader = primary.reader
        point = reader.clean_point(plan.start_us, reverse=plan.reverse)
        if plan.reverse:
            if primary.sender.media == "audio":
                raise PlanError(456, "audio is not replayed in reverse")
            lowest = plan.end_us if plan.end_us is not None else extent.start_us
            if point is None or not reader.data_intervals(lowest, plan.start_us):
                raise PlanError(INVALID_RANGE, "no data in the range")
            gops = reader.gops_backward(
                plan.start_us,
                plan.end_us,
                key_only=plan.key_only,
                min_spacing_us=plan.min_spacing_us,
            )
            return ReverseGops(gops, self.primary), point.time_us
        if point is None and not extent.live:
            raise PlanError(INVALID_RANGE, "no data at or after the start")
        actual = point.time_us if point is not None else plan.start_us
        if plan.end_us is not None and actual >= plan.end_us:
            raise PlanError(INVALID_RANGE, "no data in the range")
        played = [
            i
            for i, t in enumerate(self.tracks)
            if i == self.primary or t.sender.media != "audio" or plan.with_audio
        ]
        cursors = []
        for i in played:
            scan = i == self.primary and plan.key_only
            cursors.append(
                self.tracks[i].reader.cursor(
                    plan.start_us if i == self.primary else actual,
                    plan.end_us,
                    key_only=scan,
                    min_spacing_us=plan.min_spacing_us if scan else 0,
                    # Rate-Control no: the packetizing copies each frame once, from its span.
                    views=not plan.rate_control,
                )
            )
        readers = [self.tracks[i].reader for i in played]
        worker = StoreForward(
            cursors,
            start_us=actual,
            primary=played.index(self.primary),
            started=[n for n, i in enumerate(played) if i in started],
            jump=True,
            closed=plan.closed,
            run_ended=lambda n, frame: run_ended(readers[n], frame),
            ids=played,
        )
        return worker, actual

    # -- sending ---------------------------------------------------------------------------------

    async def _produce(self, plan: Plan, source: FrameSource, cseq: int) -> None:
        """The producer task of one PLAY (cancelled by the shell on PAUSE, TEARDOWN, PLAY)."""
        loop = asyncio.get_running_loop()
        pacer = None
        if plan.rate_control:
            pacer = Pacer(
                self.presentation_us,
                loop.time(),
                scale=plan.scale,
                speed=plan.speed,
                reverse=plan.reverse,
            )
        self._pacer = pacer
        self._after_gap = False
        self._send_reports()
        next_report = loop.time() + SR_INTERVAL
        pending = source.pending
        status = Status.MORE if not pending and source.status is Status.EDGE else source.status
        while True:
            if pending:
                if pacer is None:
                    await self._send_fast(pending, cseq)
                elif plan.reverse:
                    await self._send_reverse_paced(pending, pacer, cseq)
                else:
                    await self._send_paced(pending, pacer, cseq)
            elif status is Status.DONE:
                break
            else:
                if status is Status.EDGE:
                    await source.wait_live(LIVE_POLL)
                status = await source.take()
            if loop.time() >= next_report:
                self._send_reports()
                next_report = loop.time() + SR_INTERVAL
        if self.source is source:
            source.close()
            self.source = None
        log.debug("replay plan from %s complete", plan.start_us)

    def _send(self, item: Item, timestamp: int, cseq: int) -> None:
        """Packetize and push one access unit: framed at once (``replay_wire``) when its track
        goes out interleaved, which costs far less per packet than building each one."""
        index = self.tracks[item.track].sender.index
        channel = self.sink.framed_channel(index)
        if channel is None:
            self.sink.send(index, self._packets(item, timestamp, cseq))
            return
        wire = bytearray()
        self.sink.send_framed(index, wire, self._frame_into(wire, channel, item, timestamp, cseq))

    def _packets(self, item: Item, timestamp: int, cseq: int) -> list[bytes]:
        """The packets of one access unit; remembers the position as sent."""
        frame = item.frame
        try:
            packets = self.tracks[item.track].sender.packets(
                frame.data, timestamp, unix_us_to_ntp(frame.time_us), item.flags, cseq
            )
        except PayloadError as exc:
            log.warning("stored frame at %d skipped: %s", frame.time_us, exc)
            packets = []
        self._sent(item)
        return packets

    def _frame_into(
        self, out: bytearray, channel: int, item: Item, timestamp: int, cseq: int
    ) -> int:
        """:meth:`_packets` framed for the interleaved ``channel``, appended to ``out``."""
        frame = item.frame
        try:
            count = self.tracks[item.track].sender.frame_into(
                out, channel, frame.data, timestamp, unix_us_to_ntp(frame.time_us), item.flags, cseq
            )
        except PayloadError as exc:
            log.warning("stored frame at %d skipped: %s", frame.time_us, exc)
            count = 0
        self._sent(item)
        return count

    def _sent(self, item: Item) -> None:
        self.started.add(item.track)
        if item.track == self.primary:
            if not (self.plan is not None and self.plan.reverse):
                self.position_us = item.frame.time_us
            elif item.flags & FLAG_D:
                self.position_us = item.frame.time_us - 1  # resume before this GOP

    async def _after(self, item: Item, size: int) -> None:
        """Back-pressure, and the BYE after a track's terminal access unit."""
        sink = self.sink
        if sink.backlog + size > _QUEUE_BUDGET:
            await sink.drain()
        if item.flags & FLAG_T:
            await sink.drain()  # queued media first: RTCP is dropped while congested
            track = self.tracks[item.track]
            sink.send_rtcp(track.sender.index, self._report(track, bye=True))

    async def _send_fast(self, pending: deque[Item], cseq: int) -> None:
        """Rate-Control no: back to back, RTP time from capture time (B.7). Consecutive
        access units of a track go to the sink together, over TCP as one buffer of ``$``
        frames (``replay_wire``: one socket write for many frames); nothing is awaited
        between taking an item and handing it over."""
        tracks, sink = self.tracks, self.sink
        batch: list[bytes] = []  # packets, when the track does not go out interleaved
        wire = bytearray()  # ``$`` frames, when it does
        framed = 0
        batch_track = -1
        size = 0
        channel: int | None = None

        def flush() -> None:
            nonlocal batch, wire, framed, size
            if framed:
                sink.send_framed(batch_track, wire, framed)
                wire, framed = bytearray(), 0
            elif batch:
                sink.send(batch_track, batch)
                batch = []
            size = 0

        while pending:
            item = pending[0]
            frame = item.frame
            sender = tracks[item.track].sender
            if sender.index != batch_track or size >= _BATCH_BYTES:
                flush()
                batch_track = sender.index
                channel = sink.framed_channel(batch_track)
            timestamp = sender.seq.timestamp(frame.time_us)
            if channel is not None:
                framed += self._frame_into(wire, channel, item, timestamp, cseq)
            else:
                batch += self._packets(item, timestamp, cseq)
            size += len(frame.data)
            pending.popleft()
            if item.flags & FLAG_T or sink.backlog > _QUEUE_BUDGET:
                flush()
                await self._after(item, len(frame.data))
        flush()
        await sink.drain()

    async def _send_paced(self, pending: deque[Item], pacer: Pacer, cseq: int) -> None:
        """Rate-Control yes, forward: each access unit at its presentation time."""
        loop = asyncio.get_running_loop()
        while pending:
            item = pending[0]
            frame = item.frame
            duration = frame.duration_us
            p = pacer.forward(frame.time_us, duration, frame.first_in_run)
            await _until(pacer.due(p), loop)
            self._send(item, self.tracks[item.track].sender.seq.timestamp(p), cseq)
            pending.popleft()
            self._advance_clock(p, duration, pacer)
            await self._after(item, len(frame.data))

    async def _send_reverse_paced(self, pending: deque[Item], pacer: Pacer, cseq: int) -> None:
        """Rate-Control yes, reverse: GOP by GOP, each when its newest frame is due."""
        loop = asyncio.get_running_loop()
        while pending:
            gop = [pending[0]]
            for item in itertools.islice(pending, 1, None):
                if item.flags & FLAG_D:
                    break
                gop.append(item)
            first, last = gop[0].frame, gop[-1].frame
            pacer.reverse_gop(first.time_us, last.time_us + last.duration_us, self._after_gap)
            self._after_gap = first.first_in_run
            stamps = [pacer.backward(i.frame.time_us, i.frame.duration_us) for i in gop]
            await _until(pacer.due(min(stamps)), loop)
            for item, p in zip(gop, stamps, strict=True):
                self._send(item, self.tracks[item.track].sender.seq.timestamp(p), cseq)
                pending.popleft()
                self._advance_clock(p, item.frame.duration_us, pacer)
                await self._after(item, len(item.frame.data))

    def _advance_clock(self, p: int, duration_us: int, pacer: Pacer) -> None:
        end = p + pacer.span(duration_us)
        if end > self.presentation_us:
            self.presentation_us = end

    # -- RTCP ------------------------------------------------------------------------------------

    def _report(self, track: SessionTrack, *, bye: bool = False) -> bytes:
        """SR per B.9: wall clock and the presentation clock with Rate-Control yes, zeros with
        Rate-Control no."""
        pacer = self._pacer
        if pacer is None:
            return track.sender.report(0, 0, bye=bye)
        loop = asyncio.get_running_loop()
        rtp = track.sender.seq.timestamp(pacer.presentation_at(loop.time()))
        return track.sender.report(unix_us_to_ntp(time.time_ns() // 1000), rtp, bye=bye)

    def _send_reports(self) -> None:
        for track in self.tracks:
            self.sink.send_rtcp(track.sender.index, self._report(track))
