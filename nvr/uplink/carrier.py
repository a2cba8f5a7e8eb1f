"""Phases 1–2 of an uplink (uplink.md A.2) and the byte pipe the HTTP/2 session runs on.

:func:`dial` opens TCP + TLS to the RemoteAddress and switches protocols: ``https://`` by the
HTTP/1.1 ``h2c-reverse`` upgrade, ``wss://`` by an RFC 6455 handshake offering the
``h2c-reverse`` subprotocol, after which the HTTP/2 bytes travel in binary WebSocket frames
(framed and masked by the ``websockets`` sans-IO client). Either way the session sees a
:class:`Carrier`: read bytes, write bytes, drain.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from typing import Any, Final, Protocol
from urllib.parse import SplitResult, urlsplit

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

from nvr.uplink.handshake import PROTOCOL, HandshakeError, UpgradeAnswer, upgrade_request

__all__ = ["Carrier", "StreamCarrier", "WebSocketCarrier", "dial"]

_READ: Final = 256 * 1024
_LIMIT: Final = 1024 * 1024


class Carrier(Protocol):
    """A connected byte pipe to the cloud."""

    peername: Any
    sockname: Any

    async def read(self) -> bytes:
        """The next bytes from the cloud; ``b""`` at the end."""
        ...

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None:
        """Wait while the socket's send buffer is above its high-water mark."""
        ...

    def close(self) -> None: ...


class StreamCarrier:
    """The TLS connection itself (``https://``: HTTP/2 right after the 101)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer
        self.peername = writer.get_extra_info("peername")
        self.sockname = writer.get_extra_info("sockname")

    async def read(self) -> bytes:
        return await self._reader.read(_READ)

    def write(self, data: bytes) -> None:
        if data and not self._writer.is_closing():
            self._writer.write(data)

    async def drain(self) -> None:
        await self._writer.drain()

    def close(self) -> None:
        self._writer.close()


class WebSocketCarrier(StreamCarrier):
    """HTTP/2 bytes in WebSocket binary messages (``wss://``)."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        protocol: ClientProtocol,
    ) -> None:
        super().__init__(reader, writer)
        self._protocol = protocol

    async def read(self) -> bytes:
        protocol = self._protocol
        while protocol.state is State.OPEN:
            data = await self._reader.read(_READ)
            if not data:
                protocol.receive_eof()
                return b""
            protocol.receive_data(data)
            self._flush()  # pongs and the answer to a close
            payload = _payload(protocol.events_received())
            if payload:
                return payload
        return b""

    def write(self, data: bytes) -> None:
        if data and self._protocol.state is State.OPEN:
            self._protocol.send_binary(data)
            self._flush()

    def _flush(self) -> None:
        for chunk in self._protocol.data_to_send():
            if chunk:
                super().write(chunk)

    def close(self) -> None:
        if self._protocol.state is State.OPEN:
            with contextlib.suppress(Exception):
                self._protocol.send_close(1000)
                self._flush()
        super().close()


def _payload(events: list[Any]) -> bytes:
    """The HTTP/2 bytes in received frames; a text frame is a protocol violation."""
    parts = []
    for event in events:
        if isinstance(event, Frame):
            if event.opcode is Opcode.TEXT:
                raise EOFError("the cloud sent a text frame")
            if event.opcode in (Opcode.BINARY, Opcode.CONT):
                parts.append(bytes(event.data))
    return b"".join(parts)


async def dial(
    address: str, tls: ssl.SSLContext, token: str | None = None, agent: str = "nvr"
) -> tuple[Carrier, bytes]:
    """Connect and switch protocols; returns the carrier and the first HTTP/2 bytes (if the
    cloud sent some along with its 101). Raises OSError (TLS included) or HandshakeError."""
    url = urlsplit(address)
    scheme = url.scheme.lower()
    if scheme not in ("https", "wss") or not url.hostname:
        raise HandshakeError(f"RemoteAddress must be https:// or wss://, not {address!r}")
    reader, writer = await asyncio.open_connection(
        url.hostname, url.port or 443, ssl=tls, server_hostname=url.hostname, limit=_LIMIT
    )
    try:
        if scheme == "https":
            carrier, early = await _upgrade(reader, writer, url, token, agent)
        else:
            carrier, early = await _websocket(reader, writer, address, token, agent)
    except BaseException:
        writer.close()
        raise
    return carrier, early


async def _upgrade(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    url: SplitResult,
    token: str | None,
    agent: str,
) -> tuple[Carrier, bytes]:
    writer.write(upgrade_request(url, token, agent))
    answer = UpgradeAnswer()
    while True:
        data = await reader.read(_READ)
        if not data:
            raise HandshakeError("the cloud closed the connection during the upgrade")
        if answer.feed(data):
            return StreamCarrier(reader, writer), answer.leftover


async def _websocket(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    address: str,
    token: str | None,
    agent: str,
) -> tuple[Carrier, bytes]:
    protocol = ClientProtocol(
        parse_uri(address), subprotocols=[Subprotocol(PROTOCOL)], max_size=None
    )
    request = protocol.connect()
    request.headers["User-Agent"] = agent
    if token is not None:
        request.headers["Authorization"] = f"Bearer {token}"
    protocol.send_request(request)
    for chunk in protocol.data_to_send():
        writer.write(chunk)
    while True:
        data = await reader.read(_READ)
        if not data:
            raise HandshakeError("the cloud closed the connection during the WebSocket handshake")
        protocol.receive_data(data)
        events = protocol.events_received()
        if protocol.handshake_exc is not None:
            raise HandshakeError(f"WebSocket upgrade refused: {protocol.handshake_exc}")
        if events:
            break
    if not isinstance(events[0], Response) or protocol.subprotocol != PROTOCOL:
        raise HandshakeError(f"the cloud did not accept the {PROTOCOL} subprotocol")
    return WebSocketCarrier(reader, writer, protocol), _payload(events[1:])
