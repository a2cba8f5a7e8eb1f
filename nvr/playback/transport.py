"""The send side of the RTSP server: TCP channels, UDP port pairs and per-session sinks.

Isolation rules (replay.md B.8): nothing here ever blocks the event loop or waits on one client
on behalf of another. asyncio transports already write without blocking and report congestion
through ``pause_writing``/``resume_writing``; on top of that each session has a bounded queue
(:class:`SessionSink`) so a slow reader costs memory up to a limit, then drops, and the server's
reaper aborts a connection that stays congested too long. RTSP responses are written straight
to the transport, so they go out between whole interleaved frames even while the session's
media backlog waits; every frame is handed over in one ``writelines`` call (a batch framed
beforehand, ``send_framed``, in one ``write``), never split.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Callable, Sequence

from nvr.playback.resource import SinkClosedError
from nvr.protocol.rtsp import interleaved_header

__all__ = [
    "DEFAULT_HIGH_WATER",
    "DEFAULT_LOW_WATER",
    "DEFAULT_SESSION_QUEUE",
    "FlowGate",
    "InterleavedRoute",
    "SessionSink",
    "TcpChannel",
    "UdpPair",
    "UdpRoute",
    "open_udp_pair",
]

DEFAULT_HIGH_WATER = 256 * 1024
"""Transport buffer size that pauses writers: bounds how far an RTSP response can lag media."""
DEFAULT_LOW_WATER = 64 * 1024
DEFAULT_SESSION_QUEUE = 2 * 1024 * 1024
"""Bytes a session may queue while its transport is congested before batches are dropped."""
_YIELD_EVERY = 256 * 1024  # drain() yields to the loop after this many uncongested bytes


class FlowGate:
    """Congestion state of one transport, shared by the sinks that write to it."""

    __slots__ = ("_waiting", "closed", "paused", "paused_since")

    def __init__(self) -> None:
        self.paused = False
        self.paused_since = 0.0
        self.closed = False
        self._waiting: set[SessionSink] = set()

    def wait_resume(self, sink: SessionSink) -> None:
        """Have ``sink`` flushed when the transport drains."""
        self._waiting.add(sink)

    def forget(self, sink: SessionSink) -> None:
        self._waiting.discard(sink)

    def pause(self) -> None:
        if not self.paused:
            self.paused = True
            self.paused_since = time.monotonic()

    def resume(self) -> None:
        self.paused = False
        if self._waiting:
            # Not from inside the transport's write callback: flush on the next loop step.
            asyncio.get_running_loop().call_soon(self._wake)

    def _wake(self) -> None:
        waiting, self._waiting = self._waiting, set()
        for sink in waiting:
            sink.flush()

    def close(self) -> None:
        self.closed = True
        self.paused = False
        waiting, self._waiting = self._waiting, set()
        for sink in waiting:
            sink.flush()

    def stalled_for(self, now: float) -> float:
        """Seconds this transport has been congested without a break (0 if it is not)."""
        return now - self.paused_since if self.paused else 0.0


class TcpChannel(FlowGate):
    """An RTSP TCP connection's send side: responses and interleaved frames."""

    __slots__ = ("transport",)

    def __init__(
        self,
        transport: asyncio.Transport,
        high_water: int = DEFAULT_HIGH_WATER,
        low_water: int = DEFAULT_LOW_WATER,
    ) -> None:
        super().__init__()
        self.transport = transport
        transport.set_write_buffer_limits(high_water, low_water)

    def write(self, data: bytes) -> None:
        """Write a whole message (an RTSP response); dropped once the connection is closed."""
        if not self.closed:
            self.transport.write(data)


class _UdpProtocol(asyncio.DatagramProtocol):
    """One of the two sockets of a track: forwards incoming datagrams (RTCP RR) as keep-alive."""

    def __init__(self, gate: FlowGate | None) -> None:
        self.gate = gate
        self.on_datagram: Callable[[bytes, tuple[str, int]], None] | None = None

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.on_datagram is not None:
            self.on_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP port unreachable from a client that went away: the session timeout reaps it

    def pause_writing(self) -> None:
        if self.gate is not None:
            self.gate.pause()

    def resume_writing(self) -> None:
        if self.gate is not None:
            self.gate.resume()


class UdpPair(FlowGate):
    """The RTP and RTCP server sockets of one UDP track (``server_port=N-N+1``)."""

    __slots__ = ("_rtcp_protocol", "_rtp_protocol", "port", "rtcp", "rtp")

    def __init__(
        self,
        rtp: asyncio.DatagramTransport,
        rtcp: asyncio.DatagramTransport,
        rtp_protocol: _UdpProtocol,
        rtcp_protocol: _UdpProtocol,
        port: int,
    ) -> None:
        super().__init__()
        self.rtp, self.rtcp, self.port = rtp, rtcp, port
        self._rtp_protocol, self._rtcp_protocol = rtp_protocol, rtcp_protocol
        rtp_protocol.gate = self

    def on_datagram(self, callback: Callable[[bytes, tuple[str, int]], None]) -> None:
        """Call ``callback`` for every datagram received on either socket."""
        self._rtp_protocol.on_datagram = callback
        self._rtcp_protocol.on_datagram = callback

    def close(self) -> None:
        super().close()
        self.rtp.close()
        self.rtcp.close()


async def open_udp_pair(host: str, port_range: tuple[int, int], attempts: int = 64) -> UdpPair:
    """Bind an even/odd UDP port pair inside ``port_range`` (random start, retry on clash)."""
    loop = asyncio.get_running_loop()
    low, high = port_range
    first = low + (low & 1)
    count = max((high - first) // 2, 1)
    last_error: OSError | None = None
    for _ in range(attempts):
        port = first + 2 * random.randrange(count)
        rtp_protocol, rtcp_protocol = _UdpProtocol(None), _UdpProtocol(None)
        try:
            rtp, _ = await loop.create_datagram_endpoint(
                lambda p=rtp_protocol: p, local_addr=(host, port)
            )
        except OSError as exc:
            last_error = exc
            continue
        try:
            rtcp, _ = await loop.create_datagram_endpoint(
                lambda p=rtcp_protocol: p, local_addr=(host, port + 1)
            )
        except OSError as exc:
            rtp.close()
            last_error = exc
            continue
        return UdpPair(rtp, rtcp, rtp_protocol, rtcp_protocol, port)
    raise OSError(f"no free UDP port pair in {low}-{high}: {last_error}")


class InterleavedRoute:
    """A track sent as ``$``-frames on the RTSP connection (channels ``rtp``/``rtcp``)."""

    __slots__ = ("channel", "rtcp", "rtp")

    def __init__(self, channel: TcpChannel, rtp: int, rtcp: int) -> None:
        self.channel, self.rtp, self.rtcp = channel, rtp, rtcp

    @property
    def gate(self) -> FlowGate:
        """What tells whether this route is congested: the RTSP connection."""
        return self.channel


class UdpRoute:
    """A track sent over UDP from ``pair`` to the client's ports."""

    __slots__ = ("pair", "rtcp_addr", "rtp_addr")

    def __init__(
        self, pair: UdpPair, rtp_addr: tuple[str, int], rtcp_addr: tuple[str, int]
    ) -> None:
        self.pair, self.rtp_addr, self.rtcp_addr = pair, rtp_addr, rtcp_addr

    @property
    def gate(self) -> FlowGate:
        """What tells whether this route is congested: its socket pair."""
        return self.pair


Route = InterleavedRoute | UdpRoute


class SessionSink:
    """The :class:`~nvr.playback.resource.PacketSink` of one RTSP session.

    Interleaved batches are written at once while the connection keeps up and queued (FIFO,
    bounded by ``queue_limit`` bytes) while it is congested; UDP packets are sent at once and
    dropped while the socket buffer is full, as UDP would anyway.
    """

    def __init__(self, queue_limit: int = DEFAULT_SESSION_QUEUE) -> None:
        self._routes: list[Route | None] = []
        self._queue: deque[tuple[InterleavedRoute, Sequence[bytes] | bytearray, int]] = deque()
        self._queued = 0
        self._limit = queue_limit
        self._closed = False
        self._waiters: list[asyncio.Future[None]] = []
        self._since_yield = 0
        self.sent_packets = 0
        self.sent_bytes = 0
        self.dropped_batches = 0

    # -- set-up (shell side) ---------------------------------------------------------------

    def set_route(self, track: int, route: Route | None) -> None:
        """Attach (or detach) a track's transport."""
        while len(self._routes) <= track:
            self._routes.append(None)
        self._routes[track] = route

    def routes(self) -> list[tuple[int, Route]]:
        return [(i, r) for i, r in enumerate(self._routes) if r is not None]

    def close(self) -> None:
        """The session ended: drop the backlog and wake drain() waiters with an error."""
        if self._closed:
            return
        self._closed = True
        self._queue.clear()
        self._queued = 0
        for _, route in self.routes():
            route.gate.forget(self)
        self._wake_waiters()

    # -- PacketSink ------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def backlog(self) -> int:
        return self._queued

    def send(self, track: int, packets: Sequence[bytes]) -> bool:
        if self._closed:
            return False
        try:
            route = self._routes[track]
        except IndexError:
            return True  # track not set up by this client
        if route is None:
            return True
        if isinstance(route, UdpRoute):
            return self._send_udp(route, packets)
        return self._submit(route, packets)

    def framed_channel(self, track: int) -> int | None:
        """The interleaved RTP channel of a track, for :meth:`send_framed` (None: the track
        is not set up, or goes over UDP)."""
        route = self._routes[track] if track < len(self._routes) else None
        return route.rtp if isinstance(route, InterleavedRoute) else None

    def send_framed(self, track: int, data: bytearray, packets: int) -> bool:
        """Like :meth:`send`, with the packets already framed as ``$`` frames on the track's
        :meth:`framed_channel` (one transport write for all of them); ``data`` is the
        sink's from now on."""
        if self._closed:
            return False
        route = self._routes[track] if track < len(self._routes) else None
        if route is None or not packets:
            return True  # track not set up by this client
        if not isinstance(route, InterleavedRoute):
            raise ValueError(f"track {track} is not interleaved")
        return self._submit(route, data, packets)

    def _submit(
        self, route: InterleavedRoute, packets: Sequence[bytes] | bytearray, framed: int = 0
    ) -> bool:
        """Write a batch now, or queue it while the connection is congested (bounded)."""
        channel = route.channel
        if channel.closed:
            return False
        if self._queue or channel.paused:
            if self._queued >= self._limit:
                self.dropped_batches += 1
                return False
            size = len(packets) if framed else sum(map(len, packets)) + 4 * len(packets)
            self._queue.append((route, packets, framed))
            self._queued += size
            channel.wait_resume(self)
            return True
        self._write(route, packets, framed)
        return True

    def send_rtcp(self, track: int, packet: bytes) -> None:
        if self._closed or track >= len(self._routes):
            return
        route = self._routes[track]
        if isinstance(route, UdpRoute):
            if not route.pair.paused and not route.pair.closed:
                route.pair.rtcp.sendto(packet, route.rtcp_addr)
        elif route is not None and not (
            self._queue or route.channel.paused or route.channel.closed
        ):
            route.channel.transport.writelines(
                (interleaved_header(route.rtcp, len(packet)), packet)
            )

    async def drain(self) -> None:
        if self._closed:
            raise SinkClosedError("session closed")
        if not self._queue and not self._congested():
            if self._since_yield >= _YIELD_EVERY:
                self._since_yield = 0
                await asyncio.sleep(0)
                if self._closed:
                    raise SinkClosedError("session closed")
            return
        future = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        for _, route in self.routes():
            route.gate.wait_resume(self)
        await future
        if self._closed:
            raise SinkClosedError("session closed")

    def discard(self) -> int:
        dropped = self._queued
        self._queue.clear()
        self._queued = 0
        self._wake_waiters()
        return dropped

    # -- internals -------------------------------------------------------------------------

    def _congested(self) -> bool:
        return any(route is not None and route.gate.paused for route in self._routes)

    def _write(
        self, route: InterleavedRoute, packets: Sequence[bytes] | bytearray, framed: int = 0
    ) -> int:
        """Hand a batch to the transport; returns the bytes it takes on the wire."""
        if framed:
            assert isinstance(packets, bytearray)
            route.channel.transport.write(packets)
            size = len(packets) - 4 * framed
            self.sent_packets += framed
            self.sent_bytes += size
            self._since_yield += size
            return len(packets)
        channel = route.rtp
        parts: list[bytes] = []
        size = 0
        for packet in packets:
            parts.append(interleaved_header(channel, len(packet)))
            parts.append(packet)
            size += len(packet)
        route.channel.transport.writelines(parts)
        self.sent_packets += len(packets)
        self.sent_bytes += size
        self._since_yield += size
        return size + 4 * len(packets)

    def _send_udp(self, route: UdpRoute, packets: Sequence[bytes]) -> bool:
        pair = route.pair
        if pair.paused or pair.closed:
            self.dropped_batches += 1
            return False
        sendto = pair.rtp.sendto
        addr = route.rtp_addr
        size = 0
        for packet in packets:
            sendto(packet, addr)
            size += len(packet)
        self.sent_packets += len(packets)
        self.sent_bytes += size
        self._since_yield += size
        return True

    def flush(self) -> None:
        """Write queued batches while the transports keep up (called when one drains)."""
        queue = self._queue
        while queue:
            route, packets, framed = queue[0]
            channel = route.channel
            if channel.closed:
                queue.clear()
                self._queued = 0
                break
            if channel.paused:
                channel.wait_resume(self)
                return
            queue.popleft()
            self._queued -= self._write(route, packets, framed)
        if self._closed or not self._congested():
            self._wake_waiters()
        else:
            for _, route in self.routes():
                if route.gate.paused:
                    route.gate.wait_resume(self)

    def _wake_waiters(self) -> None:
        waiters, self._waiters = self._waiters, []
        for future in waiters:
            if not future.done():
                future.set_result(None)
