"""RTSP serving: the asyncio server shell and the media-resource interface it serves.

Replay sessions (``spec/replay.md``) and the built-in demo camera plug into the same shell
through :class:`~nvr.playback.resource.MediaResource`.
"""

from __future__ import annotations

from nvr.playback.resource import (
    Description,
    MediaResource,
    MediaSession,
    PacketSink,
    PlayResult,
    RequestContext,
    ResourceError,
    ResourceResolver,
    RtpStart,
    SinkClosedError,
    StaticResolver,
    TrackInfo,
)
from nvr.playback.sequencer import RtpSequencer
from nvr.playback.server import RtspAuth, RtspServer

__all__ = [
    "Description",
    "MediaResource",
    "MediaSession",
    "PacketSink",
    "PlayResult",
    "RequestContext",
    "ResourceError",
    "ResourceResolver",
    "RtpSequencer",
    "RtpStart",
    "RtspAuth",
    "RtspServer",
    "SinkClosedError",
    "StaticResolver",
    "TrackInfo",
]
