"""Fuzz entry point for the RTSP server's request path (``nvr.playback.server``): framing,
CSeq, auth, session look-up, method dispatch, transports, and the replay PLAY headers (Range,
Scale, Speed, Frames, Rate-Control, Immediate) through a store-less replay resource.

The input is what one client sends on one connection. The server gets it through
:meth:`~nvr.playback.RtspServer.connection_protocol` on an in-memory transport and runs until it
has answered everything; then the checks: the output parses as RTSP responses and ``$`` frames
only; every status is one RFC 2326 defines; the responses answer the input's requests in order
(one each, by CSeq), unless the input broke the framing (then one 400 closes the connection) or
turned into an HTTP tunnel; nothing was logged at ERROR (a handler that raised).
Run with atheris: ``python tests/fuzz/fuzz_rtsp_server.py [corpus_dir]``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from nvr.playback import (
    Description,
    PacketSink,
    PlayResult,
    RequestContext,
    ResourceError,
    RtpSequencer,
    RtpStart,
    RtspServer,
    StaticResolver,
    TrackInfo,
    replay_plan,
)
from nvr.protocol.rtsp import InterleavedFrame, Request, Response, RtspParseError, RtspParser
from nvr.protocol.rtsp_headers import parse_cseq

try:
    from tests.fuzz.harness import guard, main
except ImportError:  # run as a script
    from harness import guard, main  # type: ignore[no-redef]

RTSP_STATUSES = frozenset(
    {100, 200, 201, 250, 300, 301, 302, 303, 304, 305}
    | {400, 401, 402, 403, 404, 405, 406, 407, 408, 410, 411, 412, 413, 414, 415}
    | {451, 452, 453, 454, 455, 456, 457, 458, 459, 460, 461, 462}
    | {500, 501, 502, 503, 504, 505, 551}
)
"""The status codes of RFC 2326 §7.1.1."""
HTTP_REFUSALS = frozenset({400, 404, 409})
"""What the Apple HTTP tunnel hand-over answers to HTTP requests it does not take."""

PATH = "/recordings/FUZZ"
SESSION = b"$SESSION"
"""In the input: stands for the id of the session the server created last."""
EXTENT = replay_plan.Extent(1_700_000_000_000_000, 1_700_000_011_000_000)
_SDP = (
    "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=fuzz\r\nt=0 0\r\na=control:*\r\n"
    "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:track1\r\n"
    "m=application 0 RTP/AVP 107\r\na=rtpmap:107 vnd.onvif.metadata/90000\r\na=control:track2\r\n"
)


class PlanResource:
    """A recording without a store: PLAY headers become a real replay plan (or its 4xx), and a
    playing session sends a few packets, framed and unframed."""

    supported_requires = frozenset({"onvif-replay"})

    async def describe(self, ctx: RequestContext) -> Description:
        tracks = (TrackInfo("track1", "video"), TrackInfo("track2", "application"))
        return Description(_SDP.encode(), tracks)

    async def open_session(
        self, tracks: Sequence[int], sink: PacketSink, ctx: RequestContext
    ) -> PlanSession:
        return PlanSession(sink, tracks)


class PlanSession:
    def __init__(self, sink: PacketSink, tracks: Sequence[int]) -> None:
        self.sink, self.tracks = sink, list(tracks)
        self.seq = RtpSequencer(96, 90_000)
        self.plan: replay_plan.Plan | None = None

    async def play(self, ctx: RequestContext) -> PlayResult:
        request = replay_plan.parse_play_request(ctx.request.headers)
        try:
            plan = replay_plan.make_plan(request, EXTENT, previous=self.plan)
        except replay_plan.PlanError as exc:
            raise ResourceError(exc.status, str(exc)) from None
        self.plan = plan
        start = {
            i: RtpStart(self.seq.next_seq, self.seq.timestamp(plan.start_us)) for i in self.tracks
        }
        return PlayResult(replay_plan.response_headers(plan, plan.start_us), start, self._send)

    async def _send(self) -> None:
        for track in self.tracks:
            packet = self.seq.packet(b"\x41" * 20, 0, marker=True)
            channel = self.sink.framed_channel(track)
            if channel is None:
                self.sink.send(track, [packet])
            else:
                wire = bytearray(b"$" + bytes((channel,)) + len(packet).to_bytes(2, "big") + packet)
                self.sink.send_framed(track, wire, 1)
        await self.sink.drain()

    async def pause(self, ctx: RequestContext) -> Sequence[tuple[str, str]]:
        return ()

    async def close(self) -> None:
        pass


class MemoryTransport(asyncio.Transport):
    """What the server writes, kept; closing reports the connection lost on the next step."""

    def __init__(self, protocol: asyncio.Protocol) -> None:
        super().__init__({"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 554)})
        self.protocol = protocol
        self.written = bytearray()
        self.closed = False

    def write(self, data: Any) -> None:
        if self.closed:
            raise AssertionError("write after close")
        self.written += data

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            asyncio.get_running_loop().call_soon(self.protocol.connection_lost, None)

    def abort(self) -> None:
        self.close()


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


_LOOP: asyncio.AbstractEventLoop | None = None
_RESOLVER = StaticResolver({PATH: PlanResource()})


async def _settle() -> None:
    """Run the loop until every request is answered and every producer is done."""
    for _ in range(10_000):
        await asyncio.sleep(0)
        if not [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]:
            return


async def _serve(pieces: list[bytes]) -> tuple[bytes, bytes]:
    """Feed the pieces to a fresh server, letting it answer after each; ``SESSION`` in a piece
    becomes the id of the newest session. Returns what was fed and what the server wrote."""
    server = RtspServer("127.0.0.1", 0, _RESOLVER, udp_ports=(40000, 40999))
    protocol = server.connection_protocol()
    transport = MemoryTransport(protocol)
    protocol.connection_made(transport)
    fed = bytearray()
    for piece in pieces:
        if transport.closed:
            break
        if SESSION in piece and server.sessions:
            piece = piece.replace(SESSION, list(server.sessions)[-1].encode())
        fed += piece
        protocol.data_received(piece)
        await _settle()
    await server.stop()
    return bytes(fed), bytes(transport.written)


def _requests(data: bytes) -> tuple[list[Request], bool]:
    """The requests the server's parser finds in ``data``, and whether the stream stays plain
    RTSP (no framing error, no HTTP hand-over, no more than the pipelining limit)."""
    parser = RtspParser()
    parser.feed(data)
    requests: list[Request] = []
    try:
        for event in parser:
            if isinstance(event, Request):
                if event.version.startswith("HTTP/"):
                    return requests, False
                requests.append(event)
    except RtspParseError:
        return requests, False
    return requests, len(requests) <= 32


def check(data: bytes, output: bytes) -> None:
    """The invariants on what the server answered to ``data``."""
    parser = RtspParser(max_body_size=1 << 20)
    parser.feed(output)
    responses: list[Response] = []
    for event in parser:
        if isinstance(event, Response):
            responses.append(event)
            allowed = HTTP_REFUSALS | {200} if event.version.startswith("HTTP/") else RTSP_STATUSES
            assert event.status in allowed, event
            assert event.headers.get("CSeq") is None or event.cseq is not None  # it parses
        else:
            assert isinstance(event, InterleavedFrame)
    assert parser.buffered == 0, "a response or frame was cut short"
    requests, plain = _requests(data)
    if plain:
        assert len(responses) == len(requests), (requests, responses)
        for request, response in zip(requests, responses, strict=True):
            cseq = request.headers.get("CSeq")
            if cseq is not None and guard(parse_cseq, cseq) is not None:
                assert response.headers.get("CSeq") == cseq, (request, response)
            else:  # none, or one that is not a number: 400, and it is not echoed
                assert response.status == 400 and "CSeq" not in response.headers, response
    else:
        assert len(responses) <= len(requests) + 1


def fuzz_one_input(data: bytes) -> None:
    """Serve ``data`` (whole, message by message, and in pieces whose size its first byte
    gives); check the answers."""
    global _LOOP
    if _LOOP is None:
        _LOOP = asyncio.new_event_loop()
    errors = _Errors()
    logger = logging.getLogger("nvr")
    logger.addHandler(errors)
    try:
        step = 1 + (data[0] % 13 if data else 0)
        by_size = [data[i : i + step] for i in range(0, len(data), step)]
        by_message = [m + b"\r\n\r\n" for m in data.split(b"\r\n\r\n")]
        by_message[-1] = by_message[-1][:-4]
        for pieces in ([data], by_message, by_size):
            check(*_LOOP.run_until_complete(_serve(pieces)))
    finally:
        logger.removeHandler(errors)
    assert not errors.records, [r.getMessage() for r in errors.records]


if __name__ == "__main__":
    main(fuzz_one_input)
