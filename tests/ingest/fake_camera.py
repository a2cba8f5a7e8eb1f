"""A scriptable in-process RTSP camera for the client tests, built on ``nvr.protocol``.

GStreamer is the real peer; this one misbehaves on purpose (never sends RTP, changes the
session id, sends garbage, redirects, streams before answering PLAY...) so every error path of
the client can be driven deterministically and fast. TCP interleaved transport only.

``hooks[method]`` may replace the default answer: a hook gets ``(camera, connection,
request)`` and returns a :class:`Response` to send, raw ``bytes`` to write instead, or None
for the default answer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

from nvr.protocol.rtcp import SenderReport
from nvr.protocol.rtp import build_rtp
from nvr.protocol.rtsp import (
    Headers,
    InterleavedFrame,
    Request,
    Response,
    RtspParser,
    encode_interleaved,
)
from nvr.protocol.rtsp_auth import AuthStatus, ServerAuthenticator
from nvr.protocol.rtsp_headers import (
    RtpInfo,
    TransportSpec,
    format_rtp_info,
    format_transport,
    parse_transport,
)

PUBLIC = "OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER"
SSRC_BASE = 0x5A1F0000


@dataclass
class Connection:
    """One client connection as the fake camera sees it."""

    writer: asyncio.StreamWriter
    frames: list[InterleavedFrame] = field(default_factory=list)  # RTCP etc. from the client
    channels: list[tuple[int, int]] = field(default_factory=list)  # per set-up track
    sender: asyncio.Task[None] | None = None
    seq: list[int] = field(default_factory=list)

    def write(self, data: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(data)

    def send_rtp(self, track: int, marker: bool = True) -> None:
        """One small RTP packet on the track's RTP channel."""
        seq = self.seq[track]
        self.seq[track] = (seq + 1) & 0xFFFF
        packet = build_rtp(
            96, seq, seq * 3600, SSRC_BASE + track, b"\x65" + bytes(40), marker=marker
        )
        self.write(encode_interleaved(self.channels[track][0], packet))

    def send_sender_report(self, track: int, ntp: int = 0xE9123456_789ABCDE) -> None:
        seq = self.seq[track]
        report = SenderReport(SSRC_BASE + track, ntp, seq * 3600, seq, seq * 41)
        self.write(encode_interleaved(self.channels[track][1], report.to_bytes()))


Hook = Callable[["FakeCamera", Connection, Request], "Response | bytes | None"]


class FakeCamera:
    """See the module docstring. ``rtp_rate`` packets per second per track after PLAY."""

    def __init__(
        self,
        *,
        tracks: int = 1,
        public: str | None = PUBLIC,
        session_id: str = "F4KE5E55",
        session_timeout: int | None = None,
        rtp_rate: float = 0.0,
        first_seq: int = 1000,
        authenticator: ServerAuthenticator | None = None,
        passwords: dict[str, str] | None = None,
    ) -> None:
        self.tracks = tracks
        self.public = public
        self.session_id = session_id
        self.session_timeout = session_timeout
        self.rtp_rate = rtp_rate
        self.first_seq = first_seq
        self.authenticator = authenticator
        self.passwords = passwords or {}
        self.hooks: dict[str, Hook] = {}
        self.requests: list[Request] = []
        self.connections: list[Connection] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/cam"

    def methods(self) -> list[str]:
        return [r.method for r in self.requests]

    async def __aenter__(self) -> FakeCamera:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        for conn in self.connections:
            if conn.sender is not None:
                conn.sender.cancel()
            conn.writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = Connection(writer)
        self.connections.append(conn)
        parser = RtspParser()
        try:
            while data := await reader.read(65536):
                parser.feed(data)
                for event in parser:
                    if isinstance(event, Request):
                        self._handle(conn, event)
                    elif isinstance(event, InterleavedFrame):
                        conn.frames.append(event)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            if conn.sender is not None:
                conn.sender.cancel()
            writer.close()

    def _handle(self, conn: Connection, request: Request) -> None:
        self.requests.append(request)
        cseq = request.headers.get("CSeq", "0")
        if self.authenticator is not None:
            result = self.authenticator.verify(
                request.headers.get("Authorization"),
                method=request.method,
                uri=request.uri,
                password_for=self.passwords.get,
            )
            if result.status is not AuthStatus.OK:
                headers = Headers([("CSeq", cseq)])
                for value in self.authenticator.challenges(
                    stale=result.status is AuthStatus.STALE_NONCE
                ):
                    headers.add("WWW-Authenticate", value)
                conn.write(Response(401, headers=headers).serialize())
                return
        hook = self.hooks.get(request.method)
        answer = hook(self, conn, request) if hook is not None else None
        if isinstance(answer, bytes):
            conn.write(answer)
            return
        if answer is None:
            answer = self.default_answer(conn, request)
        if "CSeq" not in answer.headers:
            answer.headers.add("CSeq", cseq)
        conn.write(answer.serialize())

    def session_value(self) -> str:
        if self.session_timeout is None:
            return self.session_id
        return f"{self.session_id};timeout={self.session_timeout}"

    def sdp(self) -> bytes:
        lines = ["v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=Fake", "t=0 0", "a=control:*"]
        for n in range(self.tracks):
            lines += ["m=video 0 RTP/AVP 96", "a=rtpmap:96 H264/90000", f"a=control:track{n}"]
        return ("\r\n".join(lines) + "\r\n").encode()

    def default_answer(self, conn: Connection, request: Request) -> Response:
        method = request.method
        headers = Headers()
        if method == "OPTIONS":
            if self.public is not None:
                headers.add("Public", self.public)
        elif method == "DESCRIBE":
            headers.add("Content-Base", self.url + "/")
            headers.add("Content-Type", "application/sdp")
            return Response(200, headers=headers, body=self.sdp())
        elif method == "SETUP":
            offer = parse_transport(request.headers.get("Transport", ""))[0]
            if not offer.is_tcp or offer.interleaved is None:
                return Response(461, headers=headers)
            low = offer.interleaved[0]
            conn.channels.append((low, low + 1))
            conn.seq.append(self.first_seq)
            answer = TransportSpec(
                lower_transport="TCP",
                delivery="unicast",
                interleaved=(low, low + 1),
                ssrc=SSRC_BASE + len(conn.channels) - 1,
            )
            headers.add("Transport", format_transport(answer))
            headers.add("Session", self.session_value())
        elif method == "PLAY":
            headers.add("Session", self.session_value())
            infos = [
                RtpInfo(f"{self.url}/track{n}", conn.seq[n], conn.seq[n] * 3600)
                for n in range(len(conn.channels))
            ]
            if infos:
                headers.add("RTP-Info", format_rtp_info(infos))
            headers.add("Range", "npt=now-")
            if self.rtp_rate and conn.sender is None:
                conn.sender = asyncio.get_running_loop().create_task(self._stream(conn))
        elif method in ("GET_PARAMETER", "TEARDOWN"):
            headers.add("Session", self.session_id)
            if method == "TEARDOWN" and conn.sender is not None:
                conn.sender.cancel()
        else:
            return Response(501, headers=headers)
        return Response(200, headers=headers)

    async def _stream(self, conn: Connection) -> None:
        with contextlib.suppress(ConnectionError):
            while not conn.writer.is_closing():
                for track in range(len(conn.channels)):
                    conn.send_rtp(track)
                await asyncio.sleep(1 / self.rtp_rate)
