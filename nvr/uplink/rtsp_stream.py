"""RTSP over HTTP (the Apple tunnel, streaming.md §4.1) through the uplink (uplink.md A.5).

The tunnel's GET and POST arrive as two HTTP/2 streams. Each is handed to the RTSP server's own
connection protocol, exactly like a TCP connection on the RTSP port: the stream is dressed as an
:class:`asyncio.Transport` (:class:`StreamTransport`) and the protocol is fed the HTTP/1.1
request head rebuilt from the HTTP/2 header fields, then the POST's body. The first thing the
server writes on a tunnel connection is an HTTP/1.x response head (the GET's 200, or a refusal);
it becomes the stream's HEADERS, everything after it DATA. Flow control is the stream's:
bytes the windows hold back count as the transport's write buffer, and the protocol is paused
above the high-water mark, resumed below the low one, as on a socket.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any, Final

from h2.errors import ErrorCodes
from h2.exceptions import ProtocolError

from nvr.playback.transport import DEFAULT_HIGH_WATER, DEFAULT_LOW_WATER
from nvr.playback.tunnel import TUNNEL_CONTENT_TYPE
from nvr.protocol.rtsp import Headers, Request, Response, RtspParseError, RtspParser
from nvr.uplink.h2conn import Header, header_map
from nvr.uplink.session import TunnelSession

__all__ = ["RtspTunnelStream", "StreamTransport", "is_tunnel_request", "tunnel_head"]

log = logging.getLogger(__name__)

_TUNNEL: Final = TUNNEL_CONTENT_TYPE.encode()
_NOT_FORWARDED: Final = frozenset({b"content-length", b"host"})
_HOP_BY_HOP: Final = frozenset({"connection", "keep-alive", "transfer-encoding", "upgrade"})


def is_tunnel_request(fields: dict[bytes, bytes]) -> bool:
    """A tunnel GET (``Accept``) or POST (``Content-Type``) of streaming.md §4.1."""
    method = fields.get(b":method")
    if method == b"GET":
        return _TUNNEL in fields.get(b"accept", b"").lower()
    if method == b"POST":
        return fields.get(b"content-type", b"").split(b";")[0].strip().lower() == _TUNNEL
    return False


def tunnel_head(headers: Sequence[Header]) -> bytes:
    """The HTTP/1.1 request head the RTSP server would have read on its own port.

    The POST's Content-Length is left out: on HTTP/2 it bounds the stream (the cloud sets it
    large), while the RTSP server treats it as nominal anyway.
    """
    fields = header_map(headers)
    out = Headers()
    authority = fields.get(b":authority")
    if authority:
        out.add("Host", authority.decode("latin-1"))
    for name, value in headers:
        if not name.startswith(b":") and name not in _NOT_FORWARDED:
            out.add(name.decode("latin-1"), value.decode("latin-1"))
    method = fields.get(b":method", b"GET").decode("ascii", "replace")
    target = fields.get(b":path", b"/").decode("latin-1")
    return Request(method, target, out, version="HTTP/1.1").serialize()


class StreamTransport(asyncio.Transport):
    """An :class:`asyncio.Transport` whose writes leave as one HTTP/2 stream's response.

    It implements what the RTSP server's connection protocol uses (extra info, writes, write
    buffer size and limits, close/abort); reading is driven by the stream's handler.
    """

    def __init__(
        self,
        session: TunnelSession,
        stream_id: int,
        protocol: asyncio.Protocol,
        extra: dict[str, Any],
        on_close: Callable[[], None],
    ) -> None:
        super().__init__(extra)
        self._on_close = on_close
        self._session = session
        self._conn = session.conn
        self._id = stream_id
        self._protocol = protocol
        self._head: RtspParser | None = RtspParser()  # until the response head is written
        self._high, self._low = DEFAULT_HIGH_WATER, DEFAULT_LOW_WATER
        self._paused = False
        self._closing = False
        self.gone = False

    # -- writing -------------------------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing or self.gone or not data:
            return
        if self._head is not None:
            data = self._write_head(data)
            if not data:
                return
        try:
            self._conn.send(self._id, data)
        except ProtocolError:
            self.gone = True
            return
        self._session.kick()
        if not self._paused and self._conn.buffered(self._id) > self._high:
            self._paused = True
            self._protocol.pause_writing()

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def _write_head(self, data: bytes | bytearray | memoryview) -> bytes:
        """Turn the server's HTTP/1.x response head into HEADERS; return what follows it."""
        parser = self._head
        assert parser is not None
        parser.feed(data)
        try:
            event = parser.next_event()
        except RtspParseError:
            event = None
        if event is None:
            if parser.buffered > 64 * 1024:
                self.abort()
            return b""
        self._head = None
        rest = parser.take_trailing_data()
        if not isinstance(event, Response):
            self.abort()
            return b""
        headers = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in event.headers
            if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length"
        ]
        end = event.status >= 300  # a refusal: the server closes right after it
        try:
            self._conn.respond(self._id, event.status, headers, end_stream=end)
        except ProtocolError:
            self.gone = True
            return b""
        self._session.kick()
        return b"" if end else rest

    def drained(self) -> None:
        """The session sent enough of the stream's backlog: resume the protocol."""
        if self._paused and self._conn.buffered(self._id) <= self._low:
            self._paused = False
            self._protocol.resume_writing()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._high = DEFAULT_HIGH_WATER if high is None else high
        self._low = self._high // 4 if low is None else low

    def get_write_buffer_size(self) -> int:
        return self._conn.buffered(self._id)

    # -- closing -------------------------------------------------------------------------------

    def is_closing(self) -> bool:
        return self._closing or self.gone

    def close(self) -> None:
        """End the stream once what is queued is sent (a POST never answered: reset it)."""
        if self._closing or self.gone:
            return
        self._closing = True
        try:
            if self._head is None:
                self._conn.send(self._id, end_stream=True)
            else:
                self._conn.reset(self._id, ErrorCodes.NO_ERROR)
        except ProtocolError:
            pass
        self._session.kick()
        asyncio.get_running_loop().call_soon(self._on_close)

    def abort(self) -> None:
        if self.gone:
            return
        self._closing = True
        self.gone = True
        self._conn.reset(self._id, ErrorCodes.CANCEL)
        self._session.kick()
        asyncio.get_running_loop().call_soon(self._on_close)


class RtspTunnelStream:
    """The handler of one tunnel GET or POST stream: the RTSP server's protocol on a
    :class:`StreamTransport`."""

    def __init__(
        self,
        session: TunnelSession,
        stream_id: int,
        protocol: asyncio.Protocol,
        headers: Sequence[Header],
    ) -> None:
        self.session = session
        self.stream_id = stream_id
        self.protocol = protocol
        self.is_post = header_map(headers).get(b":method") == b"POST"
        extra = {"peername": session.peername, "sockname": session.sockname}
        self.transport = StreamTransport(session, stream_id, protocol, extra, self._closed)
        self._lost = False
        protocol.connection_made(self.transport)
        if not self.transport.is_closing():
            protocol.data_received(tunnel_head(headers))

    def data(self, data: bytes) -> None:
        if not self._lost:
            self.protocol.data_received(data)

    def end(self) -> None:
        """The cloud closed its side: for a POST, the client closed the input channel
        (a GET has no body: its end means nothing)."""
        transport = self.transport
        if not self.is_post or transport.gone or transport.is_closing():
            return
        # The POST was taken and, as in HTTP/1.1, never answered: close our half with a 200.
        try:
            self.session.conn.respond(self.stream_id, 200, end_stream=True)
        except ProtocolError:
            pass
        transport.gone = True
        self.session.kick()
        self._closed()

    def _closed(self) -> None:
        """The stream is done for the RTSP server (it closed it, or the POST ended)."""
        self._connection_lost()
        self.session.finish(self.stream_id)

    def reset(self) -> None:
        self.transport.gone = True
        self._connection_lost()

    def drained(self) -> None:
        self.transport.drained()

    def _connection_lost(self) -> None:
        if not self._lost:
            self._lost = True
            try:
                self.protocol.connection_lost(None)
            except Exception:
                log.exception("uplink: RTSP connection_lost failed")
