"""RTSP over WebSocket on the HTTP port (streaming.md §4.2, replay.md B.10).

A WebSocket with subprotocol ``rtsp.onvif.org`` carries exactly the byte stream of an RTSP/TCP
connection: RTSP messages and ``$``-interleaved RTP/RTCP. So rather than a second RTSP
implementation, the socket is dressed as an asyncio transport (:class:`WebSocketTransport`) and
handed to the RTSP server's own connection protocol: parsing, Digest auth, sessions, flow control
and the reaper of stalled clients work as on TCP. Only the HTTP tunnel is refused inside.

Interop choices: every RTSP response and every interleaved frame goes out as one binary message
(browser clients tend to parse message by message); the client may split its requests anywhere
and send them as binary or text messages. A client offering no subprotocol at all is accepted
without one; one offering only others is refused, as RFC 6455 leaves no other answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Final

from starlette.responses import PlainTextResponse
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from nvr.playback.transport import DEFAULT_HIGH_WATER, DEFAULT_LOW_WATER

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from nvr.playback.server import RtspServer

__all__ = ["SUBPROTOCOL", "WEBSOCKET_PATH", "WebSocketTransport", "mount_websocket", "serve"]

log = logging.getLogger(__name__)

SUBPROTOCOL: Final = "rtsp.onvif.org"
WEBSOCKET_PATH: Final = "/rtsp-over-websocket"
"""Where the route is mounted; advertised as ``trp:Capabilities@RTSPWebSocketUri``."""

ServerLookup = Callable[[], "RtspServer | None"]
Grant = Callable[[dict[str, Any]], "str | None"]


def messages(data: bytes) -> Iterator[bytes]:
    """Split what the server wrote at once into WebSocket messages: one per interleaved frame.

    The server writes each RTSP response in a write of its own and interleaved frames in
    batches of whole frames, so anything not starting with ``$`` is a whole response.
    """
    pos, size = 0, len(data)
    while pos < size:
        if data[pos] != 0x24 or pos + 4 > size:
            yield data[pos:] if pos else data
            return
        end = pos + 4 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        yield data[pos:end]
        pos = end


class WebSocketTransport(asyncio.Transport):
    """An :class:`asyncio.Transport` whose writes leave as WebSocket binary messages.

    Writes are queued and sent by one task, which awaits the ASGI server's own back-pressure;
    the protocol is paused above the high-water mark of queued bytes and resumed below the low
    one, exactly as a socket transport would. :meth:`close` sends what is queued, then a close
    frame; :meth:`abort` drops it. :attr:`finished` is set once nothing more will be sent.
    """

    def __init__(
        self, websocket: WebSocket, protocol: asyncio.Protocol, extra: dict[str, Any]
    ) -> None:
        super().__init__(extra)
        self._websocket = websocket
        self._protocol = protocol
        self._queue: deque[bytes] = deque()
        self._buffered = 0
        self._high, self._low = DEFAULT_HIGH_WATER, DEFAULT_LOW_WATER
        self._paused = False
        self._closing = False
        self._wakeup = asyncio.Event()
        self.finished = asyncio.Event()
        self._sender = asyncio.get_running_loop().create_task(self._send_loop())

    # -- asyncio.Transport ---------------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing or not data:
            return
        chunk = bytes(data)
        self._queue.extend(messages(chunk))
        self._buffered += len(chunk)
        self._wakeup.set()
        if not self._paused and self._buffered > self._high:
            self._paused = True
            self._protocol.pause_writing()

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._high = DEFAULT_HIGH_WATER if high is None else high
        self._low = self._high // 4 if low is None else low

    def get_write_buffer_size(self) -> int:
        return self._buffered

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._low, self._high

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        self._closing = True
        self._wakeup.set()

    def abort(self) -> None:
        self._closing = True
        self._queue.clear()
        self._buffered = 0
        self._sender.cancel()
        self.finished.set()

    def can_write_eof(self) -> bool:
        return False

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        assert isinstance(protocol, asyncio.Protocol)
        self._protocol = protocol

    def is_reading(self) -> bool:
        return not self.finished.is_set()

    def pause_reading(self) -> None:
        """Not needed: the RTSP server bounds what a client may queue by itself."""

    def resume_reading(self) -> None:
        """See :meth:`pause_reading`."""

    # -- sending -------------------------------------------------------------------------------

    async def _send_loop(self) -> None:
        websocket = self._websocket
        try:
            while True:
                if not self._queue:
                    if self._closing:
                        break
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                message = self._queue.popleft()
                await websocket.send_bytes(message)
                self._buffered -= len(message)
                if self._paused and self._buffered <= self._low:
                    self._paused = False
                    self._protocol.resume_writing()
            await websocket.close(1000)
        except (WebSocketDisconnect, OSError, RuntimeError) as exc:
            log.debug("RTSP over WebSocket: sending stopped: %r", exc)
            self._closing = True
            self._queue.clear()
        finally:
            self.finished.set()


async def _receive(websocket: WebSocket, protocol: asyncio.Protocol) -> None:
    """Feed the client's messages to the protocol until it disconnects."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        data = message.get("bytes")
        if data is None:
            data = (message.get("text") or "").encode()
        if data:
            protocol.data_received(data)


async def serve(
    websocket: WebSocket, server: RtspServer, *, granted_user: str | None = None
) -> None:
    """Serve one accepted WebSocket as an RTSP connection of ``server`` until either side ends.

    ``granted_user``: the carrier has already authorized the socket (see
    :meth:`RtspServer.connection_protocol`).
    """
    protocol = server.connection_protocol(http_tunnel=False, granted_user=granted_user)
    client = websocket.client
    extra = {
        "peername": (client.host, client.port) if client is not None else ("", 0),
        "sockname": tuple(websocket.scope.get("server") or ("0.0.0.0", 0)),
    }
    transport = WebSocketTransport(websocket, protocol, extra)
    protocol.connection_made(transport)  # may refuse: then the transport is already finished
    loop = asyncio.get_running_loop()
    receiver = loop.create_task(_receive(websocket, protocol))
    finished = loop.create_task(transport.finished.wait())
    try:
        await asyncio.wait((receiver, finished), return_when=asyncio.FIRST_COMPLETED)
    finally:
        transport.abort()  # the client left (or we did): nothing more goes out
        for task in (receiver, finished):
            task.cancel()  # a cancelled receiver feeds nothing more
        protocol.connection_lost(None)
        with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
            await receiver


async def _deny(websocket: WebSocket, status: int, reason: str) -> None:
    """Refuse the handshake with an HTTP status where the server can, else with a 403."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(PlainTextResponse(reason + "\n", status_code=status))
    else:
        await websocket.close(1008, reason)


def websocket_endpoint(
    lookup: ServerLookup, grant: Grant | None = None
) -> Callable[[WebSocket], Any]:
    """The route's handler: subprotocol negotiation, then :func:`serve` on the running server.

    ``grant(scope)`` names the user a carrier has already authorized the socket for (the
    uplink), None for an ordinary client (Digest inside RTSP, as on TCP), or raises
    PermissionError to refuse the handshake with 403.
    """

    async def endpoint(websocket: WebSocket) -> None:
        offered = list(websocket.scope.get("subprotocols") or ())
        server = lookup()
        if server is None:
            await _deny(websocket, 503, "RTSP replay is not running")
            return
        if offered and SUBPROTOCOL not in offered:
            await _deny(websocket, 400, f"subprotocol {SUBPROTOCOL} required")
            return
        try:
            granted = grant(websocket.scope) if grant is not None else None
        except PermissionError as exc:
            await _deny(websocket, 403, str(exc))
            return
        await websocket.accept(subprotocol=SUBPROTOCOL if offered else None)
        await serve(websocket, server, granted_user=granted)

    return endpoint


def mount_websocket(
    app: Starlette, lookup: ServerLookup, path: str = WEBSOCKET_PATH, grant: Grant | None = None
) -> None:
    """Serve RTSP over WebSocket at ``path`` for whatever RTSP server ``lookup`` returns."""
    app.router.routes.append(WebSocketRoute(path, websocket_endpoint(lookup, grant)))
