"""What the RTSP server shell serves: the contract between the shell and a media resource.

The shell (``server.py``) owns sockets, RTSP state and transports; a resource owns the media:
the SDP, the RTP numbering (SSRC, sequence numbers, timestamps: it knows the clock), pacing and
the replay semantics (Range, Scale, Rate-Control, Frames, Immediate). The demo camera and the
replay service implement the same interface, so every transport works for both.

Packets are *pushed*: at its first PLAY a session is opened with a :class:`PacketSink` and the
resource sends whole access units into it (``send(track, packets)``). A live source pushes in
real time and fans the same ``bytes`` out to many sinks; a replay source with ``Rate-Control:
no`` sends and then awaits :meth:`PacketSink.drain`, which is exactly "as fast as the transport
drains". A push interface has no per-packet iterator step or task switch, and lets one
producer feed many sessions.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from nvr.protocol.rtsp import Request

__all__ = [
    "Description",
    "MediaResource",
    "MediaSession",
    "PacketSink",
    "PlayResult",
    "RequestContext",
    "ResourceError",
    "ResourceResolver",
    "RtpStart",
    "SinkClosedError",
    "StaticResolver",
    "TrackInfo",
]


class ResourceError(Exception):
    """Raised by a resource to answer a request with a specific RTSP status (457, 503…).

    The message is logged, never sent; ``headers`` are added to the response.
    """

    def __init__(
        self, status: int, message: str = "", headers: Sequence[tuple[str, str]] = ()
    ) -> None:
        super().__init__(message or f"RTSP status {status}")
        self.status = status
        self.headers = tuple(headers)


class SinkClosedError(Exception):
    """The session behind a sink was torn down (client gone, TEARDOWN, timeout)."""


@dataclass(frozen=True, slots=True)
class TrackInfo:
    """One media section of the SDP: its ``a=control`` name (relative, one path segment)."""

    control: str
    media: str = "video"


@dataclass(frozen=True, slots=True)
class Description:
    """DESCRIBE's answer: the SDP body and the tracks in SDP order (track index = position)."""

    sdp: bytes
    tracks: tuple[TrackInfo, ...]


@dataclass(frozen=True, slots=True)
class RequestContext:
    """A request as a resource sees it.

    ``base_url`` is the aggregate URL (no trailing slash); ``track_urls`` maps the set-up track
    indices to the URLs the client used for them (RTP-Info needs them); ``user`` is the
    authenticated user name, None without authentication.
    """

    request: Request
    url: str
    base_url: str
    peer: str
    user: str | None = None
    track_urls: Mapping[int, str] = field(default_factory=dict)

    @property
    def cseq(self) -> int:
        """The request's CSeq (its low byte goes into the replay extension)."""
        value = self.request.cseq
        return 0 if value is None else value


@dataclass(frozen=True, slots=True)
class RtpStart:
    """RTP-Info for one track: the first sequence number sent and the RTP time of Range start."""

    seq: int
    rtptime: int


@dataclass(slots=True)
class PlayResult:
    """The outcome of a PLAY.

    ``headers`` go into the 200 response (Range, Rate-Control, Scale…); the shell formats
    ``RTP-Info`` from ``rtp_info`` with the set-up tracks' URLs. ``start`` is called right after
    the response is written, in the same event-loop step (so nothing the resource computed for
    RTP-Info can go stale in between); it may return a coroutine, which the shell runs as the
    session's producer task and cancels on PAUSE, TEARDOWN, a later PLAY with its own
    ``start``, or session end. ``start=None`` leaves a running producer as it is. After a seek
    (``Immediate: yes``) the resource calls ``sink.discard()`` to drop what the old PLAY left
    queued.
    """

    headers: Sequence[tuple[str, str]] = ()
    rtp_info: Mapping[int, RtpStart] = field(default_factory=dict)
    start: Callable[[], Coroutine[Any, Any, None] | None] | None = None


@runtime_checkable
class PacketSink(Protocol):
    """Where a session's RTP goes; one per RTSP session, provided by the shell.

    Every call is made from the event loop. ``send`` never blocks: it writes at once when the
    transport can take it, queues (bounded) when the transport is congested, and returns False
    when the session's queue is full and the batch was dropped; a live source then resumes at
    its next key frame. Packets are only ever written whole.
    """

    @property
    def closed(self) -> bool:
        """True once the session is gone; further sends are dropped."""
        ...

    @property
    def backlog(self) -> int:
        """Bytes queued in the session, not yet handed to a socket."""
        ...

    def send(self, track: int, packets: Sequence[bytes]) -> bool:
        """Send one batch (normally one access unit) of RTP packets on a track."""
        ...

    def framed_channel(self, track: int) -> int | None:
        """The interleaved channel a track's RTP goes out on, None if it is not interleaved."""
        ...

    def send_framed(self, track: int, data: bytearray, packets: int) -> bool:
        """``send`` for a batch already framed as ``$`` frames on :meth:`framed_channel`
        (the cheap way to send many packets); the sink owns ``data`` afterwards."""
        ...

    def send_rtcp(self, track: int, packet: bytes) -> None:
        """Send an RTCP packet (sender report) on a track's RTCP channel; dropped if congested."""
        ...

    async def drain(self) -> None:
        """Wait until the transport can take more; raises SinkClosedError once closed.

        Returns at once (yielding to the loop now and then) while nothing is queued.
        """
        ...

    def discard(self) -> int:
        """Drop the queued, unsent batches (after a seek); returns how many bytes."""
        ...


class MediaSession(Protocol):
    """One RTSP session's view of a resource; created at the session's first PLAY."""

    async def play(self, ctx: RequestContext) -> PlayResult:
        """Start or restart delivery (raise ResourceError for 457 and the like)."""
        ...

    async def pause(self, ctx: RequestContext) -> Sequence[tuple[str, str]]:
        """Stop delivery, keep the position; returns extra response headers.

        The shell has already cancelled the producer task when this is called; batches still
        queued in the sink stay queued unless the resource calls ``sink.discard()``.
        """
        ...

    async def close(self) -> None:
        """The session ended (TEARDOWN, timeout, dead client); release everything."""
        ...


class MediaResource(Protocol):
    """Something served at one URL path (a camera, a recording)."""

    #: ``Require`` option tags this resource understands (e.g. ``{"onvif-replay"}``).
    supported_requires: AbstractSet[str]

    async def describe(self, ctx: RequestContext) -> Description:
        """The SDP and its tracks; ``a=control`` values must be the tracks' control names."""
        ...

    async def open_session(
        self, tracks: Sequence[int], sink: PacketSink, ctx: RequestContext
    ) -> MediaSession:
        """Open a session for the set-up ``tracks`` (indices into the description)."""
        ...


class ResourceResolver(Protocol):
    """Maps a request URL path to a resource."""

    async def resolve(self, path: str) -> MediaResource | None:
        """``path`` as in the URL (percent-encoded, no trailing slash), e.g. ``/demo``."""
        ...


class StaticResolver:
    """A fixed path → resource table (the demo camera, tests)."""

    def __init__(self, resources: Mapping[str, MediaResource] | None = None) -> None:
        self._resources: dict[str, MediaResource] = {}
        for path, resource in (resources or {}).items():
            self.add(path, resource)

    def add(self, path: str, resource: MediaResource) -> None:
        """Serve ``resource`` at ``path`` (leading slash added, trailing slash dropped)."""
        self._resources["/" + path.strip("/")] = resource

    def remove(self, path: str) -> None:
        """Stop serving ``path``; running sessions are not affected."""
        self._resources.pop("/" + path.strip("/"), None)

    async def resolve(self, path: str) -> MediaResource | None:
        return self._resources.get(path)
