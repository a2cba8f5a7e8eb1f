"""Phase 3 of an uplink (uplink.md A.2): HTTP/2 with swapped roles, sans-IO.

After the 101 the device is the HTTP/2 *server* on a connection it opened itself: the cloud
sends the client preface, the device answers with its SETTINGS (announcing RFC 8441 extended
CONNECT, so the cloud may open WebSockets) and serves the cloud's requests. The ``h2``
library does the protocol; this wrapper adds what every caller needs on top: per-stream
outbound buffers drained as flow-control windows open, and bookkeeping of buffered bytes so
byte-stream producers (RTSP, ASGI bodies) can be paused like on a socket.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import Event
from h2.exceptions import ProtocolError, StreamClosedError
from h2.settings import SettingCodes, Settings

__all__ = ["Header", "ReversedConnection"]

Header = tuple[bytes, bytes]

INBOUND_WINDOW: Final = 1024 * 1024
"""Receive window per stream: tunnel POSTs and WebSocket messages arrive without stalls."""
_CONNECTION_WINDOW: Final = 16 * 1024 * 1024


class _Outbound:
    __slots__ = ("end", "ended", "pending")

    def __init__(self) -> None:
        self.pending = bytearray()
        self.end = False  # end the stream once pending is sent
        self.ended = False


class ReversedConnection:
    """The device's (server) side of the tunnel's HTTP/2 connection.

    Feed the cloud's bytes to :meth:`receive`, queue stream data with :meth:`send` and write
    :meth:`data_to_send` to the carrier after :meth:`pump` moved what the windows allow.
    """

    def __init__(self, max_concurrent_streams: int = 128) -> None:
        self.h2 = H2Connection(H2Configuration(client_side=False, header_encoding=None))
        self.h2.local_settings = Settings(
            client=False,
            initial_values={
                SettingCodes.MAX_CONCURRENT_STREAMS: max_concurrent_streams,
                SettingCodes.MAX_HEADER_LIST_SIZE: 64 * 1024,
                SettingCodes.INITIAL_WINDOW_SIZE: INBOUND_WINDOW,
                SettingCodes.ENABLE_CONNECT_PROTOCOL: 1,
            },
        )
        self.h2.initiate_connection()
        self.h2.increment_flow_control_window(_CONNECTION_WINDOW - 65535)
        self._out: dict[int, _Outbound] = {}
        self._blocked: dict[int, _Outbound] = {}
        """Streams with data (or an end) waiting for a window."""

    # -- input -------------------------------------------------------------------------------

    def receive(self, data: bytes) -> list[Event]:
        """The events in the cloud's bytes; raises :class:`h2.exceptions.ProtocolError`."""
        return self.h2.receive_data(data)

    def consumed(self, stream_id: int, length: int) -> None:
        """Give ``length`` flow-controlled bytes of window back (they have been dealt with)."""
        if length:
            try:
                self.h2.acknowledge_received_data(length, stream_id)
            except (StreamClosedError, ProtocolError):
                # The stream is gone: credit the connection window only.
                self.h2.increment_flow_control_window(length)

    # -- output ------------------------------------------------------------------------------

    def respond(
        self,
        stream_id: int,
        status: int,
        headers: Iterable[Header] = (),
        *,
        end_stream: bool = False,
    ) -> None:
        """Send the response head of ``stream_id``."""
        fields: list[Header] = [(b":status", str(status).encode())]
        fields.extend(headers)
        self.h2.send_headers(stream_id, fields, end_stream=end_stream)
        if end_stream:
            self.forget(stream_id)

    def send(
        self,
        stream_id: int,
        data: bytes | bytearray | memoryview = b"",
        *,
        end_stream: bool = False,
    ) -> None:
        """Queue body bytes (and/or the end of the stream); :meth:`pump` sends them."""
        out = self._out.get(stream_id)
        if out is None:
            out = self._out[stream_id] = _Outbound()
        if out.end:
            return
        if data:
            out.pending += data
        out.end = end_stream
        self._blocked[stream_id] = out

    def buffered(self, stream_id: int) -> int:
        out = self._out.get(stream_id)
        return len(out.pending) if out is not None else 0

    def pump(self, budget: int) -> list[int]:
        """Move up to ``budget`` queued bytes into frames, round-robin over the streams the
        windows allow; returns the streams that sent something (their buffers shrank)."""
        progressed: list[int] = []
        h2 = self.h2
        for stream_id, out in list(self._blocked.items()):
            if budget <= 0:
                break
            sent = 0
            pending = out.pending
            try:
                while pending and budget > 0:
                    window = min(h2.local_flow_control_window(stream_id), budget)
                    if window <= 0:
                        break
                    size = min(window, h2.max_outbound_frame_size, len(pending))
                    h2.send_data(stream_id, _take(pending, size))
                    sent += size
                    budget -= size
                if not pending and out.end:
                    h2.end_stream(stream_id)
                    out.ended = True
            except (StreamClosedError, ProtocolError):
                self.forget(stream_id)
                continue
            if sent or out.ended:
                progressed.append(stream_id)
            if not pending and (out.ended or not out.end):
                del self._blocked[stream_id]
                if out.ended:
                    del self._out[stream_id]
        return progressed

    def reset(self, stream_id: int, code: ErrorCodes = ErrorCodes.CANCEL) -> None:
        """Abandon ``stream_id`` (RST_STREAM), dropping what was queued for it."""
        self.forget(stream_id)
        try:
            self.h2.reset_stream(stream_id, code)
        except (StreamClosedError, ProtocolError):
            pass

    def forget(self, stream_id: int) -> None:
        """Drop the outbound state of a stream that ended or was reset by the cloud."""
        self._out.pop(stream_id, None)
        self._blocked.pop(stream_id, None)

    def ping(self, opaque: bytes = b"nvr-idle") -> None:
        self.h2.ping(opaque.ljust(8, b"\0")[:8])

    def close(self, code: ErrorCodes = ErrorCodes.NO_ERROR) -> None:
        """GOAWAY: the device is leaving."""
        try:
            self.h2.close_connection(code)
        except ProtocolError:
            pass

    @property
    def waiting(self) -> bool:
        """True while some stream has bytes (or an end) the windows hold back."""
        return bool(self._blocked)

    def data_to_send(self) -> bytes:
        return self.h2.data_to_send()


def _take(pending: bytearray, size: int) -> bytes:
    """The first ``size`` bytes of ``pending``, removed from it, copied once."""
    if size == len(pending):
        chunk = bytes(pending)
        pending.clear()
        return chunk
    with memoryview(pending) as view:
        chunk = bytes(view[:size])
    del pending[:size]
    return chunk


def header_map(headers: Sequence[Header]) -> dict[bytes, bytes]:
    """Pseudo and regular header fields by (lower-case) name, repeats joined by ``, ``."""
    out: dict[bytes, bytes] = {}
    for name, value in headers:
        out[name] = out[name] + b", " + value if name in out else value
    return out
