"""One established uplink: the HTTP/2 connection served over its carrier until it ends.

The session owns the only reader and the only writer of the carrier. Stream handlers
(:mod:`nvr.uplink.streams`, :mod:`nvr.uplink.rtsp_stream`) queue their output on the
:class:`~nvr.uplink.h2conn.ReversedConnection` and :meth:`TunnelSession.kick` the writer, which
coalesces everything written during one loop step into as few socket writes as the windows
allow. Liveness (uplink.md A.3): a PING after ``ping_idle`` seconds without a frame from the
cloud, and the connection is given up after ``silence`` seconds without one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

from h2 import events as ev
from h2.errors import ErrorCodes
from h2.exceptions import ProtocolError

from nvr.uplink.h2conn import ReversedConnection

if TYPE_CHECKING:
    from nvr.uplink.carrier import Carrier

__all__ = ["HIGH_WATER", "LOW_WATER", "SessionEnded", "StreamHandler", "Timers", "TunnelSession"]

log = logging.getLogger(__name__)

HIGH_WATER: Final = 256 * 1024
"""Bytes queued on one stream that pause its producer (as a socket transport would)."""
LOW_WATER: Final = 64 * 1024
_PUMP_BUDGET: Final = 256 * 1024
"""Bytes framed per writer step before the carrier is drained."""


@dataclass(frozen=True, slots=True)
class Timers:
    """Liveness and reconnection timing (uplink.md A.3); tests shorten them."""

    silence: float = 30.0
    """No frame from the cloud for this long: close and reconnect."""
    ping_idle: float = 10.0
    """No frame from the cloud for this long: send a PING to provoke one."""
    backoff_first: float = 2.0
    backoff_cap: float = 30.0
    connect_timeout: float = 20.0
    """TCP + TLS + upgrade (+ token request) must be done within this."""


class SessionEnded(Exception):
    """Why a tunnel ended (the text becomes the uplink's Error)."""


class StreamHandler(Protocol):
    """What serves one HTTP/2 stream the cloud opened."""

    def data(self, data: bytes) -> None: ...

    def end(self) -> None:
        """The cloud ended its side (END_STREAM)."""

    def reset(self) -> None:
        """The stream is gone: reset by the cloud, or the whole connection ended."""

    def drained(self) -> None:
        """What was queued on the stream fell below :data:`LOW_WATER`."""


Dispatch = Callable[["TunnelSession", int, list[tuple[bytes, bytes]]], StreamHandler | None]


class TunnelSession:
    """Serve one connected tunnel: ``await run()`` returns never, it raises :class:`SessionEnded`
    (or is cancelled). ``dispatch`` picks the handler of each new request stream."""

    def __init__(
        self,
        carrier: Carrier,
        dispatch: Dispatch,
        timers: Timers,
        *,
        initial: bytes = b"",
        on_ready: Callable[[], None] | None = None,
    ) -> None:
        self.carrier = carrier
        self.conn = ReversedConnection()
        self.timers = timers
        self.peername: Any = carrier.peername
        self.sockname: Any = carrier.sockname
        self._dispatch = dispatch
        self._initial = initial
        self._on_ready = on_ready
        self._handlers: dict[int, StreamHandler] = {}
        self._wakeup = asyncio.Event()
        self._last_frame = time.monotonic()
        self._pinged = False
        self._ended: SessionEnded | None = None
        self._done = asyncio.get_running_loop().create_future()

    # -- for stream handlers -----------------------------------------------------------------

    def kick(self) -> None:
        """Have the writer send what is queued (once per loop step, however often called)."""
        self._wakeup.set()

    def finish(self, stream_id: int) -> None:
        """The handler of ``stream_id`` is done with it (both sides closed or reset)."""
        self._handlers.pop(stream_id, None)

    @property
    def ended(self) -> bool:
        return self._ended is not None

    # -- life --------------------------------------------------------------------------------

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        tasks = [
            loop.create_task(self._read_loop()),
            loop.create_task(self._write_loop()),
            loop.create_task(self._watchdog()),
        ]
        self.kick()  # our SETTINGS
        try:
            await self._done
        finally:
            for task in tasks:
                task.cancel()
            # gather, not suppress(): a cancellation of run() itself must still propagate.
            await asyncio.gather(*tasks, return_exceptions=True)
            self._close_streams()
            with contextlib.suppress(Exception):
                self.conn.close()
                self.carrier.write(self.conn.data_to_send())
            self.carrier.close()

    async def shutdown(self, grace: float, reason: str = "the uplink was stopped") -> None:
        """Leave politely: let requests in progress be answered (at most ``grace`` seconds;
        long-lived streams such as RTSP are not waited for), then GOAWAY and end. (``h2``
        sends nothing after a GOAWAY, so it cannot come first.)"""
        if self.ended:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and not self.ended:
            brief = any(getattr(h, "brief", False) for h in self._handlers.values())
            if not brief and not self.conn.waiting and not self._wakeup.is_set():
                break
            await asyncio.sleep(0.01)
        with contextlib.suppress(OSError):
            await self.carrier.drain()
        self._end(reason)

    def _end(self, reason: str) -> None:
        if self._ended is None:
            self._ended = SessionEnded(reason)
            if not self._done.done():
                self._done.set_exception(self._ended)

    def _close_streams(self) -> None:
        handlers, self._handlers = self._handlers, {}
        for handler in handlers.values():
            try:
                handler.reset()
            except Exception:
                log.exception("closing an uplink stream failed")

    async def _read_loop(self) -> None:
        try:
            data = self._initial
            while True:
                if data:
                    self._last_frame = time.monotonic()
                    self._pinged = False
                    self._receive(data)
                    if self.ended:
                        return
                data = await self.carrier.read()
                if not data:
                    self._end("the cloud closed the connection")
                    return
        except ProtocolError as exc:
            self.conn.close(ErrorCodes.PROTOCOL_ERROR)
            self.kick()
            self._end(f"HTTP/2 protocol error: {exc}")
        except (OSError, EOFError) as exc:
            self._end(f"connection lost: {exc or type(exc).__name__}")

    def _receive(self, data: bytes) -> None:
        conn = self.conn
        for event in conn.receive(data):
            if isinstance(event, ev.DataReceived):
                conn.consumed(event.stream_id, event.flow_controlled_length)
                handler = self._handlers.get(event.stream_id)
                if handler is not None and event.data:
                    handler.data(event.data)
            elif isinstance(event, ev.RequestReceived):
                self._open(event)
            elif isinstance(event, ev.StreamEnded):
                handler = self._handlers.get(event.stream_id)
                if handler is not None:
                    handler.end()
            elif isinstance(event, ev.StreamReset):
                conn.forget(event.stream_id)
                handler = self._handlers.pop(event.stream_id, None)
                if handler is not None:
                    handler.reset()
            elif isinstance(event, ev.RemoteSettingsChanged):
                if self._on_ready is not None:
                    self._on_ready()
                    self._on_ready = None
            elif isinstance(event, ev.ConnectionTerminated):
                self._end(f"the cloud ended the connection (GOAWAY {event.error_code!s})")
                return
            # WINDOW_UPDATE, PING, SETTINGS ACK: h2 did the bookkeeping; the writer sends.
        self.kick()

    def _open(self, event: ev.RequestReceived) -> None:
        stream_id = event.stream_id
        headers = list(event.headers or ())
        try:
            handler = self._dispatch(self, stream_id, headers)  # type: ignore[arg-type]
        except Exception:
            log.exception("uplink: serving stream %d failed", stream_id)
            handler = None
        if handler is None:
            return
        self._handlers[stream_id] = handler  # END_STREAM follows as its own event

    async def _write_loop(self) -> None:
        conn, carrier, wakeup = self.conn, self.carrier, self._wakeup
        try:
            while True:
                await wakeup.wait()
                wakeup.clear()
                while True:
                    progressed = conn.pump(_PUMP_BUDGET)
                    data = conn.data_to_send()
                    if data:
                        carrier.write(data)
                    for stream_id in progressed:
                        handler = self._handlers.get(stream_id)
                        if handler is not None and conn.buffered(stream_id) <= LOW_WATER:
                            handler.drained()
                    await carrier.drain()
                    if not progressed:
                        break
        except (OSError, EOFError) as exc:
            self._end(f"connection lost: {exc or type(exc).__name__}")

    async def _watchdog(self) -> None:
        timers = self.timers
        step = max(min(timers.ping_idle, timers.silence) / 4, 0.01)
        while True:
            await asyncio.sleep(step)
            quiet = time.monotonic() - self._last_frame
            if quiet > timers.silence:
                self._end(f"no frame from the cloud for {timers.silence:g} s")
                return
            if quiet > timers.ping_idle and not self._pinged:
                self._pinged = True
                self.conn.ping()
                self.kick()
