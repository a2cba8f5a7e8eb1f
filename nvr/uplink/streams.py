"""HTTP/2 streams from the cloud served by the daemon's own ASGI app (uplink.md A.5).

A request stream becomes an ASGI ``http`` scope, an RFC 8441 extended CONNECT with
``:protocol websocket`` an ASGI ``websocket`` scope whose RFC 6455 frames travel in the
stream's DATA (framing by the ``websockets`` sans-IO protocol). Both scopes carry the
uplink's granted principal (``extensions[GRANTED_PRINCIPAL]``), which the SOAP gate honours
instead of asking for credentials. ``:authority`` becomes the ``host`` header, so XAddrs in
answers name the address the cloud used.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final
from urllib.parse import unquote

from h2.errors import ErrorCodes
from h2.exceptions import ProtocolError
from websockets.exceptions import ProtocolError as WsProtocolError
from websockets.frames import Frame, Opcode
from websockets.protocol import SERVER, Protocol, State

from nvr.onvif.asgi import GRANTED_PRINCIPAL
from nvr.onvif.request import Principal
from nvr.uplink.h2conn import Header, header_map
from nvr.uplink.session import HIGH_WATER, TunnelSession

__all__ = ["AsgiApp", "HttpStream", "WebSocketStream", "asgi_scope"]

log = logging.getLogger(__name__)

Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]
AsgiApp = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]

_HOP_BY_HOP: Final = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"}
)
_ASGI: Final = {"version": "3.0", "spec_version": "2.3"}


def asgi_scope(
    kind: str, headers: Sequence[Header], principal: Principal, session: TunnelSession
) -> dict[str, Any]:
    """The ASGI scope of a request stream (``kind`` is ``http`` or ``websocket``)."""
    fields = header_map(headers)
    target = fields.get(b":path", b"/")
    raw_path, _, query = target.partition(b"?")
    scheme = fields.get(b":scheme", b"https").decode("ascii", "replace")
    regular = [(name, value) for name, value in headers if not name.startswith(b":")]
    authority = fields.get(b":authority")
    if authority is not None and b"host" not in fields:
        regular.insert(0, (b"host", authority))
    scope: dict[str, Any] = {
        "type": kind,
        "asgi": _ASGI,
        "http_version": "2",
        "scheme": scheme if kind == "http" else ("wss" if scheme == "https" else "ws"),
        "path": unquote(raw_path.decode("latin-1")),
        "raw_path": raw_path,
        "query_string": query,
        "root_path": "",
        "headers": regular,
        "client": _address(session.peername),
        "server": _address(session.sockname),
        "extensions": {GRANTED_PRINCIPAL: principal},
    }
    if kind == "http":
        scope["method"] = fields.get(b":method", b"GET").decode("ascii", "replace")
    else:
        offered = fields.get(b"sec-websocket-protocol", b"").decode("latin-1")
        scope["subprotocols"] = [p.strip() for p in offered.split(",") if p.strip()]
    return scope


def _address(address: Any) -> tuple[str, int] | None:
    if isinstance(address, tuple) and len(address) >= 2:
        return str(address[0]), int(address[1])
    return None


def _response_headers(headers: Sequence[tuple[bytes, bytes]]) -> list[Header]:
    """ASGI response headers minus what HTTP/2 forbids (connection-specific fields)."""
    return [
        (bytes(name).lower(), bytes(value))
        for name, value in headers
        if bytes(name).lower() not in _HOP_BY_HOP
    ]


class _AppStream:
    """What both scope kinds share: the app task, the stream's back-pressure and its end."""

    def __init__(self, session: TunnelSession, stream_id: int) -> None:
        self.session = session
        self.stream_id = stream_id
        self.incoming: deque[dict[str, Any]] = deque()
        self._arrived = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()
        self.gone = False
        self.task: asyncio.Task[None] | None = None

    def start(self, app: AsgiApp, scope: dict[str, Any]) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run(app, scope))

    async def _run(self, app: AsgiApp, scope: dict[str, Any]) -> None:
        try:
            await app(scope, self.receive, self.send)
        except Exception:
            log.exception("uplink: %s %s failed", scope["type"], scope["path"])
            self.failed()
        finally:
            self.finished()

    def failed(self) -> None:
        """The app raised: reset the stream (unless it is gone anyway)."""
        if not self.gone:
            self.session.conn.reset(self.stream_id, ErrorCodes.INTERNAL_ERROR)
            self.session.kick()

    def finished(self) -> None:
        self.session.finish(self.stream_id)

    def push(self, message: dict[str, Any]) -> None:
        self.incoming.append(message)
        self._arrived.set()

    async def next_message(self) -> dict[str, Any] | None:
        while not self.incoming:
            if self.gone:
                return None
            self._arrived.clear()
            await self._arrived.wait()
        return self.incoming.popleft()

    async def write(self, data: bytes, end_stream: bool = False) -> None:
        """Queue body bytes, then wait while the stream holds more than its high-water mark."""
        if self.gone:
            return
        conn = self.session.conn
        try:
            conn.send(self.stream_id, data, end_stream=end_stream)
        except ProtocolError:
            return
        self.session.kick()
        if conn.buffered(self.stream_id) > HIGH_WATER:
            self._writable.clear()
            await self._writable.wait()

    # -- StreamHandler -----------------------------------------------------------------------

    def drained(self) -> None:
        self._writable.set()

    def reset(self) -> None:
        self.gone = True
        self._writable.set()
        self._arrived.set()


class HttpStream(_AppStream):
    """One ordinary request (SOAP POST, GET …) served by the ASGI app."""

    brief = True
    """A shutting-down tunnel waits for it to be answered (see TunnelSession.shutdown)."""

    def __init__(self, session: TunnelSession, stream_id: int) -> None:
        super().__init__(session, stream_id)
        self._started = False
        self._ended = False

    def data(self, data: bytes) -> None:
        self.push({"type": "http.request", "body": data, "more_body": True})

    def end(self) -> None:
        self.push({"type": "http.request", "body": b"", "more_body": False})

    async def receive(self) -> dict[str, Any]:
        message = await self.next_message()
        if message is None:
            return {"type": "http.disconnect"}
        return message

    async def send(self, message: dict[str, Any]) -> None:
        if self.gone or self._ended:
            return
        kind = message["type"]
        if kind == "http.response.start":
            headers = _response_headers(message.get("headers") or ())
            try:
                self.session.conn.respond(self.stream_id, int(message["status"]), headers)
            except ProtocolError:  # the stream went away meanwhile
                self.gone = True
                return
            self._started = True
            self.session.kick()
        elif kind == "http.response.body":
            more = bool(message.get("more_body", False))
            self._ended = not more
            await self.write(bytes(message.get("body") or b""), end_stream=not more)

    def failed(self) -> None:
        if not self._started and not self.gone:
            with contextlib.suppress(ProtocolError):
                self.session.conn.respond(self.stream_id, 500, end_stream=True)
                self.session.kick()
                return
        super().failed()

    def finished(self) -> None:
        if not self.gone and not self._ended and self._started:
            with contextlib.suppress(ProtocolError):
                self.session.conn.send(self.stream_id, end_stream=True)
                self.session.kick()
        super().finished()  # DATA the cloud may still send is credited and dropped


class WebSocketStream(_AppStream):
    """An RFC 8441 WebSocket (extended CONNECT) served by the app's WebSocket routes."""

    def __init__(self, session: TunnelSession, stream_id: int) -> None:
        super().__init__(session, stream_id)
        self.framing = Protocol(SERVER, state=State.OPEN, max_size=None)
        self.accepted = False
        self.closed = False
        self._fragments: list[bytes] = []
        self._fragment_text = False
        self.push({"type": "websocket.connect"})

    def data(self, data: bytes) -> None:
        framing = self.framing
        try:
            framing.receive_data(data)
        except WsProtocolError:
            framing.fail(1002)
        for frame in framing.events_received():
            self._frame(frame)
        self._flush()

    def _frame(self, frame: Frame) -> None:
        if frame.opcode in (Opcode.TEXT, Opcode.BINARY):
            self._fragment_text = frame.opcode is Opcode.TEXT
            self._fragments = [bytes(frame.data)]
        elif frame.opcode is Opcode.CONT:
            self._fragments.append(bytes(frame.data))
        elif frame.opcode is Opcode.CLOSE:
            code = self.framing.close_rcvd.code if self.framing.close_rcvd else 1005
            self.push({"type": "websocket.disconnect", "code": code})
            return
        else:
            return  # ping/pong: the framing answered pings already
        if frame.fin:
            payload = b"".join(self._fragments)
            self._fragments = []
            if self._fragment_text:
                text = payload.decode("utf-8", "replace")
                self.push({"type": "websocket.receive", "text": text})
            else:
                self.push({"type": "websocket.receive", "bytes": payload})

    def end(self) -> None:
        self.push({"type": "websocket.disconnect", "code": 1006})

    def _flush(self) -> None:
        chunks = [c for c in self.framing.data_to_send() if c]
        if chunks and self.accepted and not self.gone:
            with contextlib.suppress(ProtocolError):
                self.session.conn.send(self.stream_id, b"".join(chunks))
                self.session.kick()

    async def receive(self) -> dict[str, Any]:
        message = await self.next_message()
        if message is None:
            return {"type": "websocket.disconnect", "code": 1006}
        return message

    async def send(self, message: dict[str, Any]) -> None:
        if self.gone or self.closed:
            return
        kind = message["type"]
        conn = self.session.conn
        if kind == "websocket.accept":
            headers = _response_headers(message.get("headers") or ())
            subprotocol = message.get("subprotocol")
            if subprotocol:
                headers.append((b"sec-websocket-protocol", subprotocol.encode()))
            try:
                conn.respond(self.stream_id, 200, headers)
            except ProtocolError:
                self.gone = True
                return
            self.accepted = True
            self.session.kick()
        elif kind == "websocket.send":
            if not self.accepted:
                return
            if self.framing.state is not State.OPEN:  # the cloud closed it: as a socket would
                raise ConnectionResetError("the WebSocket is closing")
            if message.get("bytes") is not None:
                self.framing.send_binary(message["bytes"])
            else:
                self.framing.send_text(str(message.get("text") or "").encode())
            chunks = self.framing.data_to_send()
            await self.write(chunks[0] if len(chunks) == 1 else b"".join(chunks))
        elif kind == "websocket.close":
            self.closed = True
            if self.accepted:
                if self.framing.state is State.OPEN:
                    self.framing.send_close(int(message.get("code", 1000)))
                data = b"".join(c for c in self.framing.data_to_send() if c)
                await self.write(data, end_stream=True)
            else:
                with contextlib.suppress(ProtocolError):
                    conn.respond(self.stream_id, 403, end_stream=True)
                    self.session.kick()

    def finished(self) -> None:
        if not self.gone and not self.closed:
            self.closed = True
            with contextlib.suppress(ProtocolError):
                if self.accepted:
                    self.session.conn.send(self.stream_id, end_stream=True)
                else:
                    self.session.conn.respond(self.stream_id, 403, end_stream=True)
                self.session.kick()
        super().finished()
