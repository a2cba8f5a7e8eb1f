"""Test scaffolding for the RTSP server: an event-loop thread and a blocking RTSP client.

The server runs in its own thread so that real peers (ffmpeg, GStreamer subprocesses) and
plain blocking sockets in the test body can talk to it. The client is built on the sans-IO
parser, so any byte the server emits that is not valid RTSP/interleaved framing (say, a
response written inside an RTP frame) makes the test fail.
"""

from __future__ import annotations

import asyncio
import select
import socket
import struct
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any, TypeVar

from nvr.playback import (
    Description,
    PacketSink,
    PlayResult,
    RequestContext,
    RtpSequencer,
    RtpStart,
    TrackInfo,
)
from nvr.protocol.rtsp import Headers, InterleavedFrame, Request, Response, RtspParser
from nvr.protocol.rtsp_headers import HeaderError

T = TypeVar("T")


def wait_until(predicate: Callable[[], object], timeout: float = 5.0) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` passes; its last answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


def wait_for(
    check: Callable[[], T],
    timeout: float = 20.0,
    what: str = "the condition",
    evidence: Callable[[], object] = str,
) -> T:
    """Poll ``check`` until it gives a true value, and return that value; after ``timeout``
    seconds an AssertionError naming ``what`` and showing ``evidence()``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in {timeout} s: {what} {evidence()}")
        time.sleep(0.1)


class LoopThread:
    """An asyncio loop in a daemon thread; ``call`` runs a coroutine there and waits."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


class RtspTestClient:
    """A blocking RTSP client over one TCP connection (tests only)."""

    def __init__(self, port: int, host: str = "127.0.0.1", rcvbuf: int | None = None) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.connect((host, port))
        self._start(f"rtsp://{host}:{port}")

    def _start(self, base: str) -> None:
        """Client state, whatever carries the bytes (a subclass may carry them otherwise)."""
        self.base = base
        self.parser = RtspParser()
        self.cseq = 0
        self.frames: list[tuple[float, InterleavedFrame]] = []
        self.responses: dict[int, Response] = {}
        self.session: str | None = None

    def url(self, path: str) -> str:
        return self.base + path

    def send(
        self,
        method: str,
        url: str,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        session: bool = True,
    ) -> int:
        self.cseq += 1
        fields = Headers([("CSeq", str(self.cseq)), *headers])
        if session and self.session is not None and "Session" not in fields:
            fields.add("Session", self.session)
        self.sock.sendall(Request(method, url, fields, body).serialize())
        return self.cseq

    def request(
        self,
        method: str,
        url: str,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        session: bool = True,
        timeout: float = 10,
    ) -> Response:
        cseq = self.send(method, url, headers, body, session)
        response = self.wait_response(cseq, timeout)
        value = response.headers.get("Session")
        if method == "TEARDOWN" and response.status == 200:
            self.session = None
        elif value is not None and response.status == 200:
            self.session = value.split(";")[0].strip()
        return response

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def pump(self, timeout: float) -> bool:
        """Read what arrives within ``timeout``; False on EOF."""
        data = self._receive(timeout)
        if data is None:
            return False
        if data:
            self._consume(data)
        return True

    def _receive(self, timeout: float) -> bytes | None:
        """What arrived within ``timeout`` (``b""`` if nothing did); None on EOF."""
        ready, _, _ = select.select([self.sock], [], [], max(timeout, 0))
        if not ready:
            return b""
        return self.sock.recv(262144) or None

    def _consume(self, data: bytes) -> None:
        now = time.monotonic()
        self.parser.feed(data)
        for event in self.parser:
            if isinstance(event, InterleavedFrame):
                self.frames.append((now, event))
            elif isinstance(event, Response):
                try:
                    cseq = event.cseq
                except HeaderError:  # for the tests that check it is never sent
                    cseq = -2
                self.responses[cseq if cseq is not None else -1] = event

    def wait_response(self, cseq: int, timeout: float = 10) -> Response:
        deadline = time.monotonic() + timeout
        while cseq not in self.responses:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no response to CSeq {cseq}")
            if not self.pump(left):
                if cseq in self.responses or -1 in self.responses:
                    break
                raise ConnectionError("server closed the connection")
        return self.responses.pop(cseq) if cseq in self.responses else self.responses.pop(-1)

    def read_for(self, seconds: float) -> bool:
        """Collect frames for ``seconds``; False if the server closed the connection."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if not self.pump(left):
                return False
        return True

    def setup_all(self, path: str, controls: Iterable[str]) -> None:
        """SETUP every control interleaved (channels 0-1, 2-3, …)."""
        for i, control in enumerate(controls):
            transport = f"RTP/AVP/TCP;unicast;interleaved={2 * i}-{2 * i + 1}"
            response = self.request(
                "SETUP", self.url(f"{path}/{control}"), [("Transport", transport)]
            )
            assert response.status == 200, response

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RtspTestClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- a live test source -------------------------------------------------------------------------


def one_track_sdp() -> Description:
    """The SDP of a resource with one ``x-test`` track, control ``data``."""
    sdp = (
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=test\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n"
        "a=control:*\r\nm=application 0 RTP/AVP 98\r\na=rtpmap:98 x-test/90000\r\n"
        "a=control:data\r\n"
    )
    return Description(sdp.encode(), (TrackInfo("data", "application"),))


class Firehose:
    """A live source pushing stamped 1200-byte packets to every playing session."""

    supported_requires = frozenset({"x-test"})

    def __init__(self, per_tick: int = 40, tick: float = 0.01) -> None:
        self.per_tick, self.tick = per_tick, tick
        self.seq = RtpSequencer(98, 90000)
        self.subscribers: set[FireSession] = set()
        self.task: asyncio.Task[None] | None = None
        self.refused = 0

    async def describe(self, ctx: RequestContext) -> Description:
        return one_track_sdp()

    async def open_session(
        self, tracks: Sequence[int], sink: PacketSink, ctx: RequestContext
    ) -> FireSession:
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._run())
        return FireSession(self, sink)

    async def _run(self) -> None:
        pad = bytes(1180)
        while True:
            await asyncio.sleep(self.tick)
            stamp = struct.pack("!Q", time.monotonic_ns())
            packets = [self.seq.packet(stamp + pad, 0) for _ in range(self.per_tick)]
            for session in list(self.subscribers):
                if not session.sink.send(0, packets):
                    self.refused += 1


class FireSession:
    def __init__(self, source: Firehose, sink: PacketSink) -> None:
        self.source, self.sink = source, sink

    async def play(self, ctx: RequestContext) -> PlayResult:
        return PlayResult(
            [],
            {0: RtpStart(self.source.seq.next_seq, 0)},
            lambda: self.source.subscribers.add(self),
        )

    async def pause(self, ctx: RequestContext) -> Sequence[tuple[str, str]]:
        self.source.subscribers.discard(self)
        return ()

    async def close(self) -> None:
        self.source.subscribers.discard(self)
