"""RTSP over WebSocket for tests: a blocking client (:class:`RtspTestClient` over
``websockets``) and uvicorn on a test loop.

Everything RTSP is the TCP client's; only the carrier differs. Every WebSocket message received
is also kept (``messages``), so tests can check how the server frames the byte stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from typing import Any

import uvicorn
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from nvr.playback.websocket import SUBPROTOCOL
from tests.daemon import free_port
from tests.playback.helpers import LoopThread, RtspTestClient


class _Carrier:
    """What RtspTestClient calls ``sock``: requests go out as binary (or text) messages."""

    def __init__(self, ws: ClientConnection, text: bool) -> None:
        self.ws = ws
        self.text = text

    def sendall(self, data: bytes) -> None:
        self.ws.send(data.decode() if self.text else data)

    def close(self) -> None:
        self.ws.close()


class WsRtspClient(RtspTestClient):
    """Connects to ``url`` (``ws://host:port/path``); ``base`` is the RTSP URL prefix used in
    requests (an RTSP-over-WebSocket client names the RTSP resource, not the socket)."""

    def __init__(
        self,
        url: str,
        base: str,
        *,
        subprotocols: tuple[str, ...] = (SUBPROTOCOL,),
        text: bool = False,
    ) -> None:
        # __enter__ gives the connection on every websockets version (17.1 made connect() a
        # context manager that warns when used directly); it is closed by close().
        self.ws: ClientConnection = connect(
            url, subprotocols=list(subprotocols) or None, open_timeout=10, max_size=None
        ).__enter__()
        self.sock = _Carrier(self.ws, text)  # type: ignore[assignment]
        self.messages: list[bytes] = []
        self._start(base)

    def _receive(self, timeout: float) -> bytes | None:
        try:
            message = self.ws.recv(timeout=max(timeout, 0))
        except TimeoutError:
            return b""
        except ConnectionClosed:
            return None
        data = message.encode() if isinstance(message, str) else bytes(message)
        self.messages.append(data)
        return data


@contextlib.contextmanager
def http_server(loop: LoopThread, app: Any) -> Iterator[int]:
    """uvicorn serving ``app`` on loopback, on ``loop`` (the RTSP server's loop, as in
    ``nvr serve``: a WebSocket connection drives RTSP sessions living on that loop)."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    running = asyncio.run_coroutine_threadsafe(server.serve(), loop.loop)
    deadline = time.monotonic() + 10
    while not server.started:
        if running.done():
            running.result()
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.005)
    try:
        yield port
    finally:
        server.should_exit = True
        running.result(15)
