"""RTP/RTCP over UDP for the camera client: an even/odd port pair and its datagram endpoints.

RFC 3550 §11 wants RTP on an even port and RTCP on the next odd one, and many cameras assume
it when they read ``client_port=a-b``. The kernel hands out ephemeral ports without regard to
parity, so :func:`bind_port_pair` retries until it holds both halves of a pair (optionally
inside an operator-configured range, for firewalls).

The endpoints call a plain function per datagram: no queue, no task, no per-packet allocation
besides what asyncio itself does, because this runs for hundreds of streams.
"""

from __future__ import annotations

import asyncio
import errno
import random
import socket
from collections.abc import Callable
from typing import Any, cast

__all__ = [
    "DatagramHandler",
    "UdpPortPair",
    "bind_port_pair",
    "open_port_pair",
]

DatagramHandler = Callable[[bytes, Any], None]
"""Called with ``(data, source address)`` for every datagram received."""

#: Receive buffer asked for each RTP socket: a key frame of a 4K camera arrives as a burst of a
#: few hundred packets, which the default (≈200 kB) may not hold while the loop is busy.
RTP_RCVBUF = 2 * 1024 * 1024
_ATTEMPTS = 64


def _bind(family: int, host: str, port: int) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def bind_port_pair(
    family: int = socket.AF_INET,
    host: str = "",
    port_range: tuple[int, int] | None = None,
) -> tuple[socket.socket, socket.socket]:
    """Two bound, non-blocking UDP sockets on ports ``p`` (even) and ``p + 1``.

    ``port_range`` (inclusive) restricts the choice, e.g. ``(50000, 50999)``; without it the
    kernel's ephemeral ports are used. Raises :class:`OSError` (EADDRINUSE) if no pair is free.
    """
    if port_range is not None:
        low, high = port_range
        low += low & 1
        if not 0 < low < high <= 65535:
            raise ValueError(f"UDP port range {port_range} holds no even/odd pair")
        candidates = list(range(low, high, 2))
        random.shuffle(candidates)
        candidates = candidates[:_ATTEMPTS]
    else:
        candidates = [0] * _ATTEMPTS
    for candidate in candidates:
        try:
            rtp = _bind(family, host, candidate)
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                continue
            raise
        port = rtp.getsockname()[1]
        if port & 1 or port == 65535:
            rtp.close()
            continue
        try:
            rtcp = _bind(family, host, port + 1)
        except OSError as exc:
            rtp.close()
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                continue
            raise
        try:
            rtp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RTP_RCVBUF)
        except OSError:
            pass  # the kernel caps it at net.core.rmem_max anyway
        return rtp, rtcp
    raise OSError(errno.EADDRINUSE, "no free even/odd UDP port pair for RTP/RTCP")


class _Endpoint(asyncio.DatagramProtocol):
    """Forwards datagrams to a handler; errors (ICMP unreachable…) go to ``on_error``."""

    __slots__ = ("datagram_received", "on_error", "transport")

    def __init__(self, handler: DatagramHandler, on_error: Callable[[Exception], None]) -> None:
        # Binding the handler as the method itself saves a Python call per datagram.
        self.datagram_received = handler  # type: ignore[method-assign]
        self.on_error = on_error
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # CPython's selector datagram transport does not subclass DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def error_received(self, exc: Exception) -> None:
        self.on_error(exc)


class UdpPortPair:
    """The open RTP and RTCP endpoints of one track."""

    __slots__ = ("_rtcp_proto", "_rtp_proto", "rtcp", "rtp")

    def __init__(
        self,
        rtp: asyncio.DatagramTransport,
        rtcp: asyncio.DatagramTransport,
        rtp_proto: _Endpoint,
        rtcp_proto: _Endpoint,
    ) -> None:
        self.rtp = rtp
        self.rtcp = rtcp
        self._rtp_proto = rtp_proto
        self._rtcp_proto = rtcp_proto

    @property
    def ports(self) -> tuple[int, int]:
        """Local (RTP, RTCP) port numbers, for ``client_port=``."""
        return self.rtp.get_extra_info("sockname")[1], self.rtcp.get_extra_info("sockname")[1]

    def set_handlers(self, on_rtp: DatagramHandler, on_rtcp: DatagramHandler) -> None:
        """Swap the per-datagram handlers (e.g. once the track is known)."""
        self._rtp_proto.datagram_received = on_rtp  # type: ignore[method-assign]
        self._rtcp_proto.datagram_received = on_rtcp  # type: ignore[method-assign]

    def send_rtcp(self, data: bytes, address: Any) -> None:
        """Send an RTCP packet (receiver report, PLI) from the RTCP port."""
        self.rtcp.sendto(data, address)

    def send_rtp(self, data: bytes, address: Any) -> None:
        """Send a datagram from the RTP port (NAT pinholes, rarely needed)."""
        self.rtp.sendto(data, address)

    def close(self) -> None:
        """Close both sockets."""
        self.rtp.close()
        self.rtcp.close()


async def open_port_pair(
    on_rtp: DatagramHandler,
    on_rtcp: DatagramHandler,
    *,
    on_error: Callable[[Exception], None],
    family: int = socket.AF_INET,
    host: str = "",
    port_range: tuple[int, int] | None = None,
) -> UdpPortPair:
    """Bind a pair (see :func:`bind_port_pair`) and attach datagram endpoints to the loop."""
    loop = asyncio.get_running_loop()
    rtp_sock, rtcp_sock = bind_port_pair(family, host, port_range)
    try:
        rtp_t, rtp_p = await loop.create_datagram_endpoint(
            lambda: _Endpoint(on_rtp, on_error), sock=rtp_sock
        )
    except BaseException:
        rtp_sock.close()
        rtcp_sock.close()
        raise
    try:
        rtcp_t, rtcp_p = await loop.create_datagram_endpoint(
            lambda: _Endpoint(on_rtcp, on_error), sock=rtcp_sock
        )
    except BaseException:
        rtp_t.close()
        rtcp_sock.close()
        raise
    return UdpPortPair(rtp_t, rtcp_t, rtp_p, rtcp_p)
