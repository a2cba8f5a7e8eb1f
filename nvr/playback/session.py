"""RTSP session state (RFC 2326 Appendix A.2): tracks, transports, play state, keep-alive."""

from __future__ import annotations

import asyncio
import enum
import secrets
import time
from dataclasses import dataclass

from nvr.playback.resource import Description, MediaResource, MediaSession
from nvr.playback.transport import InterleavedRoute, Route, SessionSink, UdpRoute
from nvr.protocol.rtsp_headers import TransportSpec

__all__ = ["RtspSession", "SessionState", "TrackSetup", "new_session_id"]


def new_session_id() -> str:
    """64 random bits as 16 hex digits: unguessable, and valid in every client's parser."""
    return secrets.token_hex(8).upper()


class SessionState(enum.Enum):
    READY = "ready"
    PLAYING = "playing"


@dataclass(slots=True)
class TrackSetup:
    """One SETUP: the URL the client used, the transport we answered and where packets go."""

    url: str
    transport: TransportSpec
    route: Route


class RtspSession:
    """One RTSP session: owned by the server's session table, reaped when idle."""

    def __init__(
        self,
        resource: MediaResource,
        description: Description,
        base_path: str,
        base_url: str,
        user: str | None,
        timeout: int,
        sink: SessionSink,
    ) -> None:
        self.id = new_session_id()
        self.resource = resource
        self.description = description
        self.base_path = base_path
        self.base_url = base_url
        self.user = user
        self.timeout = timeout
        self.sink = sink
        self.tracks: dict[int, TrackSetup] = {}
        self.state = SessionState.READY
        self.media: MediaSession | None = None
        self.producer: asyncio.Task[None] | None = None
        self.endpoint: object | None = None  # the RTSP endpoint its interleaved tracks use
        self.closed = False
        self.lock = asyncio.Lock()
        self.last_seen = time.monotonic()

    def touch(self) -> None:
        """Keep-alive: any request but TEARDOWN, and any RTCP from the client."""
        self.last_seen = time.monotonic()

    def expired(self, now: float) -> bool:
        return now - self.last_seen > self.timeout

    def interleaved_channels(self) -> set[int]:
        """Channels this session's interleaved tracks use on their connection."""
        used: set[int] = set()
        for setup in self.tracks.values():
            if isinstance(setup.route, InterleavedRoute):
                used.update((setup.route.rtp, setup.route.rtcp))
        return used

    def set_track(self, index: int, setup: TrackSetup) -> None:
        old = self.tracks.get(index)
        if old is not None and isinstance(old.route, UdpRoute):
            old.route.pair.close()
        self.tracks[index] = setup
        self.sink.set_route(index, setup.route)

    def track_urls(self) -> dict[int, str]:
        return {index: setup.url for index, setup in sorted(self.tracks.items())}

    def stop_producer(self) -> None:
        if self.producer is not None:
            self.producer.cancel()
            self.producer = None

    def release_transports(self) -> None:
        """Close the sink and the UDP sockets (interleaved channels belong to the connection)."""
        self.sink.close()
        for setup in self.tracks.values():
            if isinstance(setup.route, UdpRoute):
                setup.route.pair.close()
