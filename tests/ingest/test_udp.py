"""RTP/RTCP UDP port pairs: even/odd parity, operator port ranges, datagram delivery."""

from __future__ import annotations

import asyncio
import errno
import socket

import pytest

from nvr.ingest.udp import bind_port_pair, open_port_pair


def test_pairs_are_even_and_consecutive() -> None:
    pairs = [bind_port_pair() for _ in range(10)]
    try:
        for rtp, rtcp in pairs:
            port = rtp.getsockname()[1]
            assert port % 2 == 0
            assert rtcp.getsockname()[1] == port + 1
    finally:
        for rtp, rtcp in pairs:
            rtp.close()
            rtcp.close()


def test_port_range_is_honoured_and_exhaustion_is_an_oserror() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("", 0))
        low = probe.getsockname()[1] & ~1
    rtp, rtcp = bind_port_pair(port_range=(low, low + 1))
    try:
        assert (rtp.getsockname()[1], rtcp.getsockname()[1]) == (low, low + 1)
        with pytest.raises(OSError) as caught:
            bind_port_pair(port_range=(low, low + 1))
        assert caught.value.errno == errno.EADDRINUSE
    finally:
        rtp.close()
        rtcp.close()
    with pytest.raises(ValueError):
        bind_port_pair(port_range=(5001, 5001))


def test_datagrams_reach_the_handlers() -> None:
    async def scenario() -> None:
        got: list[tuple[str, bytes]] = []
        pair = await open_port_pair(
            lambda data, addr: got.append(("rtp", data)),
            lambda data, addr: got.append(("rtcp", data)),
            on_error=lambda exc: None,
        )
        try:
            rtp_port, rtcp_port = pair.ports
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
                sender.sendto(b"a", ("127.0.0.1", rtp_port))
                sender.sendto(b"b", ("127.0.0.1", rtcp_port))
                for _ in range(100):
                    if len(got) == 2:
                        break
                    await asyncio.sleep(0.01)
            pair.set_handlers(lambda d, a: got.append(("new", d)), lambda d, a: None)
            pair.rtcp.sendto(b"c", ("127.0.0.1", rtp_port))
            await asyncio.sleep(0.05)
        finally:
            pair.close()
        assert sorted(got) == [("new", b"c"), ("rtcp", b"b"), ("rtp", b"a")]

    asyncio.run(scenario())
