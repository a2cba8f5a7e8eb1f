"""Replay of recordings over RTSP (replay.md Part B): ``rtsp://host:port/recordings/<token>``.

:class:`RecordingResolver` maps ``/recordings/<RecordingToken>`` to a :class:`RecordingResource`
(404 for unknown tokens) and hands every other path to an optional fallback resolver, so the
daemon serves replay and the demo camera from one RTSP server::

    resolver = RecordingResolver(store, fallback=static_resolver)
    server = RtspServer(host, port, resolver, auth=...)
    ...
    await server.stop(); resolver.close()

Each RTSP session gets a :class:`~nvr.playback.replay_session.ReplaySession`. A PLAY becomes a
plan (``replay_plan``: pure), the plan a frame sequence with C/E/D/T flags (``replay_frames``:
pure, over the store reader), read in worker threads (``replay_source``), and the session's
producer pushes the access units into the shell's sink with the replay extension
(``replay_rtp``), paced on a presentation clock for Rate-Control yes (``replay_pacing``) or
as fast as the transport drains for Rate-Control no; RTCP sender reports carry NTP = RTP = 0
with Rate-Control no (B.9). The SDP comes from ``replay_sdp``.

Every store access runs in the resolver's own thread pool, never on the event loop, so hundreds
of replay sessions cannot starve ingest or each other.

Choices where the spec leaves room:

- audio goes along only forward at Scale 1 with all frames; in reverse only the first video
  track is sent (GOP by GOP, D on every GOP, the first included); metadata and audio are left
  out of reverse replay; ``Frames: predicted`` is ``all`` (recordings hold no B-frames);
- a PLAY with a Range while playing jumps at once (RFC 2326 queueing is not offered);
  ``Immediate: yes`` also drops what the previous PLAY left queued;
- ranges are half-open forward (frames before the end); going backward the GOP holding the end
  is the last one sent; a PLAY without Range continues exactly after the last access unit sent;
- T is set on the first packet of the last access unit, like every flag; an RTCP BYE follows,
  which is how RTP-only clients (FFmpeg) see the end. An open range keeps following the
  recording after T: new data (a new run) comes with D;
- with Rate-Control yes, recording gaps are cut out of the presentation clock;
- at the live edge a frame goes out as soon as it is readable, so when a followed recording
  stops, its last frame has already gone out without E/T.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from nvr.playback.replay_rtp import TrackSender
from nvr.playback.replay_sdp import (
    SdpTrack,
    build_description,
    position_of_control,
    rtp_format,
)
from nvr.playback.replay_session import ReplaySession, SessionTrack, track_extent
from nvr.playback.replay_wire import NATIVE
from nvr.playback.resource import (
    Description,
    MediaResource,
    PacketSink,
    RequestContext,
    ResourceError,
    ResourceResolver,
)
from nvr.protocol.payload import PayloadError
from nvr.store import Store
from nvr.store.reader import TrackReader
from nvr.store.types import NoRecording

__all__ = ["REPLAY_TAG", "RecordingResolver", "RecordingResource", "ReplaySession"]

log = logging.getLogger(__name__)

REPLAY_TAG = "onvif-replay"


class RecordingResolver:
    """Serves ``<prefix>/<RecordingToken>``; anything else goes to ``fallback``.

    ``read_threads`` bounds the threads reading the store for all replay sessions together
    (and so the database connections replay can hold: the rest of the pool stays for ingest);
    ``mtu`` is the RTP packet size (UDP-safe by default); ``read_bytes`` the chunk a session
    reads at once with ``Rate-Control: no``.
    """

    def __init__(
        self,
        store: Store,
        *,
        prefix: str = "/recordings",
        fallback: ResourceResolver | None = None,
        read_threads: int = 4,
        mtu: int = 1400,
        read_bytes: int = 4 * 1024 * 1024,
        cname: str = "nvr",
    ) -> None:
        if not NATIVE:
            log.warning(
                "the native RTP layout (nvr/playback/_wire.c) is not built: replay over TCP "
                "packetizes in Python, which takes about twice the CPU"
            )
        self.store = store
        self.prefix = "/" + prefix.strip("/") + "/"
        self.fallback = fallback
        self.mtu = mtu
        self.read_bytes = read_bytes
        self.cname = cname
        self.executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=read_threads, thread_name_prefix="replay-read"
        )

    async def resolve(self, path: str) -> MediaResource | None:
        if path.startswith(self.prefix):
            token = unquote(path[len(self.prefix) :])
            if not token or "/" in token:
                return None
            if not await self.run(self._exists, token):
                return None
            return RecordingResource(self, token)
        if self.fallback is not None:
            return await self.fallback.resolve(path)
        return None

    def _exists(self, token: str) -> bool:
        try:
            self.store.get_recording(token)
        except NoRecording:
            return False
        return True

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run blocking store work in the replay thread pool."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    def close(self) -> None:
        """Stop the reader threads (after the RTSP server stopped its sessions)."""
        self.executor.shutdown(wait=False, cancel_futures=True)


@dataclass(frozen=True, slots=True)
class _StoredTrack:
    """A recording track with data, read in a worker thread."""

    sdp: SdpTrack
    reader: TrackReader


class RecordingResource:
    """One recording as an RTSP resource; accepts (never demands) ``Require: onvif-replay``."""

    supported_requires = frozenset({REPLAY_TAG})

    def __init__(self, resolver: RecordingResolver, token: str) -> None:
        self.resolver = resolver
        self.token = token

    def _tracks(self) -> list[_StoredTrack]:
        """Tracks with data, in the recording's order (blocking)."""
        store = self.resolver.store
        try:
            recording = store.get_recording(self.token)
        except NoRecording:
            raise ResourceError(404, f"recording {self.token} is gone") from None
        found = []
        for position, track in enumerate(recording.tracks, 1):
            reader = store.reader_for(track)
            extent = track_extent(reader)
            entry = reader.sample_entry_at() if extent is not None else None
            if extent is None or entry is None:
                continue
            sdp = SdpTrack(
                position, track.token, entry.spec, extent.start_us, extent.end_us, extent.live
            )
            found.append(_StoredTrack(sdp, reader))
        return found

    async def describe(self, ctx: RequestContext) -> Description:
        tracks = await self.resolver.run(self._tracks)
        return build_description(
            [t.sdp for t in tracks], session_id=time.time_ns() // 1000, mtu=self.resolver.mtu
        )

    async def open_session(
        self, tracks: Sequence[int], sink: PacketSink, ctx: RequestContext
    ) -> ReplaySession:
        stored = {t.sdp.position: t for t in await self.resolver.run(self._tracks)}
        chosen: list[SessionTrack] = []
        for index in tracks:
            position = position_of_control(ctx.track_urls.get(index, ""))
            track = stored.get(position) if position is not None else None
            fmt = rtp_format(track.sdp.entry, track.sdp.position) if track is not None else None
            if track is None or fmt is None:
                raise ResourceError(404, f"track {index} of {self.token} has no data")
            try:
                packetizer = fmt.packetizer(track.sdp.entry, self.resolver.mtu)
            except (PayloadError, ValueError) as exc:
                raise ResourceError(415, f"track {track.sdp.token}: {exc}") from None
            sender = TrackSender(
                index,
                fmt.media,
                fmt.payload_type,
                fmt.clock_rate,
                packetizer,
                cname=self.resolver.cname,
            )
            chosen.append(SessionTrack(track.reader, sender))
        return ReplaySession(
            chosen, sink, self.resolver.executor, read_bytes=self.resolver.read_bytes
        )
