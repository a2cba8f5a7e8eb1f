"""Camera ingest: the RTSP client shell, reconnect back-off, and (later) receivers and jobs."""

from __future__ import annotations

from nvr.ingest.backoff import Backoff, BackoffPolicy
from nvr.ingest.rtsp_client import (
    ClientStats,
    PacketQueue,
    PlayInfo,
    Presentation,
    Quirks,
    RtpEvent,
    RtpSink,
    RtspAuthFailed,
    RtspClient,
    RtspClientError,
    RtspConnectionError,
    RtspProtocolError,
    RtspStalled,
    RtspStatusError,
    RtspTimeout,
    SenderReportEvent,
    Timeouts,
    Track,
)

__all__ = [
    "Backoff",
    "BackoffPolicy",
    "ClientStats",
    "PacketQueue",
    "PlayInfo",
    "Presentation",
    "Quirks",
    "RtpEvent",
    "RtpSink",
    "RtspAuthFailed",
    "RtspClient",
    "RtspClientError",
    "RtspConnectionError",
    "RtspProtocolError",
    "RtspStalled",
    "RtspStatusError",
    "RtspTimeout",
    "SenderReportEvent",
    "Timeouts",
    "Track",
]
