"""A test "cloud" for the uplink: the remote side of IEC 62676-2-33 clause 8, built from real
libraries (``ssl`` TLS server, ``h2`` as the HTTP/2 *client*, ``websockets`` sans-IO for the
``wss://`` variant) and a PKI made with ``cryptography``.

The cloud accepts the device's TLS connection (verifying its client certificate in mTLS mode),
answers the ``h2c-reverse`` upgrade (HTTP/1.1 101, or a WebSocket handshake with that
subprotocol), sends the HTTP/2 client preface and then issues requests through the tunnel.
It also serves an OAuth2 token endpoint (``POST /token``) for the AccessToken mode. It runs on
its own event loop thread; tests drive it with blocking calls.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import ipaddress
import json
import queue
import secrets
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from h2 import events as h2e
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.settings import SettingCodes, Settings
from websockets.frames import Opcode
from websockets.protocol import CLIENT, Protocol, State
from websockets.server import ServerProtocol
from websockets.typing import Subprotocol

from nvr.playback.tunnel import TUNNEL_CONTENT_TYPE
from nvr.playback.websocket import SUBPROTOCOL, WEBSOCKET_PATH
from nvr.protocol.rtsp import Request, RtspParser
from tests.playback.helpers import LoopThread, RtspTestClient
from tests.uplink.keystore_material import Issued, cert_pem, client, issue

UPLINK_PATH = "/uplink"
CLIENT_ID, CLIENT_SECRET = "nvr-device", "s3cret"


# -- PKI ----------------------------------------------------------------------------------------


def server_certificate(issuer: Issued, cn: str = "cloud.test") -> Issued:
    """A TLS server certificate for loopback (SAN 127.0.0.1, localhost) issued by ``issuer``."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(issuer.key, hashes.SHA256())
    )
    return Issued(key, cert)


@dataclass(frozen=True)
class Pki:
    """Files: the cloud CA, the cloud's server cert, the device's client cert (same CA), and
    a server cert from a CA nobody trusts (yet: the wrong-certificate test)."""

    ca_file: Path
    server: tuple[Path, Path]
    device: tuple[Path, Path]
    rogue: tuple[Path, Path]
    rogue_ca_file: Path


def make_pki(root: Path) -> Pki:
    root.mkdir(parents=True, exist_ok=True)

    def save(name: str, issued: Issued) -> tuple[Path, Path]:
        cert, key = root / f"{name}.crt", root / f"{name}.key"
        cert.write_bytes(issued.cert_pem)
        key.write_bytes(issued.key_pem)
        return cert, key

    ca = issue("cloud test CA", ca=True)
    (root / "ca.pem").write_bytes(cert_pem(ca.cert))
    rogue_ca = issue("rogue CA", ca=True)
    (root / "rogue-ca.pem").write_bytes(cert_pem(rogue_ca.cert))
    return Pki(
        root / "ca.pem",
        save("server", server_certificate(ca)),
        save("device", client("nvr-device-0001", ca)),
        save("rogue", server_certificate(rogue_ca)),
        root / "rogue-ca.pem",
    )


# -- HTTP/2 client side of the tunnel ---------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class CloudStream:
    """A stream the cloud opened: response head, then DATA in ``chunks`` (None = ended)."""

    stream_id: int
    head: asyncio.Future[dict[str, str]]
    chunks: queue.Queue[bytes | None] = field(default_factory=queue.Queue)
    reset: bool = False
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    on_data: Callable[[bytes], None] | None = None
    """Set to take DATA as it arrives (on the cloud loop) instead of through ``chunks``."""

    def body(self) -> bytes:
        parts = []
        while True:
            part = self.chunks.get_nowait()
            if part is None:
                return b"".join(parts)
            parts.append(part)


class CloudConnection:
    """One device connected to the cloud: the HTTP/2 client side (runs on the cloud loop)."""

    def __init__(
        self,
        writer: asyncio.StreamWriter,
        upgrade: Request,
        websocket: Protocol | None,
        *,
        window: int,
        frame_size: int,
    ) -> None:
        self.writer = writer
        self.upgrade = upgrade
        self.websocket = websocket
        self.peer_cert = writer.get_extra_info("peercert")
        self.pings = 0
        self.silent = False
        """Stop sending anything at all (the device's silence rule must fire)."""
        self.closed = asyncio.Event()
        self.h2 = H2Connection(H2Configuration(client_side=True, header_encoding=None))
        # Initial values (not later updates): they go out with the preface's SETTINGS.
        self.h2.local_settings = Settings(
            client=True,
            initial_values={
                SettingCodes.INITIAL_WINDOW_SIZE: window,
                SettingCodes.MAX_FRAME_SIZE: frame_size,
                SettingCodes.ENABLE_PUSH: 0,
            },
        )
        self.h2.max_inbound_frame_size = frame_size  # h2 reads it from the settings once
        self.h2.initiate_connection()
        self.h2.increment_flow_control_window(window)
        self.remote_settings = asyncio.Event()
        self.streams: dict[int, CloudStream] = {}
        self._window_open = asyncio.Event()
        self.flush()

    def flush(self) -> None:
        data = self.h2.data_to_send()
        if not data or self.silent or self.writer.is_closing():
            return
        if self.websocket is not None:
            self.websocket.send_binary(data)
            data = b"".join(self.websocket.data_to_send())
        self.writer.write(data)

    def receive(self, data: bytes) -> None:
        if self.websocket is not None:
            self.websocket.receive_data(data)
            frames = self.websocket.events_received()
            data = b"".join(f.data for f in frames if f.opcode in (Opcode.BINARY, Opcode.CONT))
            if self.websocket.state is not State.OPEN:
                self.writer.close()
        for event in self.h2.receive_data(data):
            self._event(event)
        self.flush()

    def _event(self, event: h2e.Event) -> None:
        if isinstance(event, h2e.ResponseReceived):
            stream = self.streams.get(event.stream_id)
            if stream is not None and not stream.head.done():
                headers = {k.decode(): v.decode() for k, v in event.headers}
                stream.head.set_result(headers)
        elif isinstance(event, h2e.DataReceived):
            self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            stream = self.streams.get(event.stream_id)
            if stream is not None and stream.on_data is not None:
                stream.on_data(event.data)
            elif stream is not None:
                stream.chunks.put(event.data)
        elif isinstance(event, (h2e.StreamEnded, h2e.StreamReset)):
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                stream.reset = isinstance(event, h2e.StreamReset)
                if not stream.head.done():
                    stream.head.set_exception(ConnectionResetError("stream reset"))
                    stream.head.exception()  # mark retrieved: nobody may be waiting
                stream.chunks.put(None)
                stream.ended.set()
        elif isinstance(event, h2e.PingReceived):
            self.pings += 1  # h2 has queued the PING ACK
        elif isinstance(event, h2e.RemoteSettingsChanged):
            self.remote_settings.set()
            self._window_open.set()
        elif isinstance(event, h2e.WindowUpdated):
            self._window_open.set()

    def lost(self) -> None:
        self.closed.set()
        for stream in self.streams.values():
            if not stream.head.done():
                stream.head.set_exception(ConnectionResetError("connection lost"))
                stream.head.exception()
            if not stream.ended.is_set():
                stream.chunks.put(None)
                stream.ended.set()

    # -- requests ------------------------------------------------------------------------------

    async def open(
        self,
        method: str,
        path: str,
        headers: Iterable[tuple[str, str]] = (),
        *,
        end_stream: bool = False,
        authority: str = "cloud-side.example:443",
    ) -> CloudStream:
        stream_id = self.h2.get_next_available_stream_id()
        fields = [
            (":method", method),
            (":scheme", "https"),
            (":authority", authority),
            (":path", path),
            *headers,
        ]
        encoded = [(k.encode(), v.encode()) for k, v in fields]
        stream = CloudStream(stream_id, asyncio.get_running_loop().create_future())
        self.streams[stream_id] = stream
        self.h2.send_headers(stream_id, encoded, end_stream=end_stream)
        self.flush()
        return stream

    async def send(self, stream: CloudStream, data: bytes, end_stream: bool = False) -> None:
        while data:
            window = min(
                self.h2.local_flow_control_window(stream.stream_id),
                self.h2.max_outbound_frame_size,
            )
            if window <= 0:
                self._window_open.clear()
                await self._window_open.wait()
                continue
            self.h2.send_data(stream.stream_id, data[:window])
            data = data[window:]
            self.flush()
        if end_stream:
            self.h2.end_stream(stream.stream_id)
            self.flush()

    async def reset(self, stream: CloudStream) -> None:
        """Abandon a stream (how an HTTP/2 client gives up a request body it announced)."""
        self.h2.reset_stream(stream.stream_id)
        self.flush()

    async def request(
        self, method: str, path: str, headers: Iterable[tuple[str, str]] = (), body: bytes = b""
    ) -> Reply:
        stream = await self.open(method, path, headers, end_stream=not body)
        if body:
            await self.send(stream, body, end_stream=True)
        head = await stream.head
        await stream.ended.wait()
        status = int(head.pop(":status"))
        return Reply(status, head, stream.body())


# -- the server ---------------------------------------------------------------------------------


class Cloud:
    """The cloud's TLS listener on loopback. ``mode`` is ``mTLS`` (client certificate
    required) or ``AccessToken`` (bearer token from its own ``/token`` endpoint required);
    ``rogue`` presents a certificate from an untrusted CA."""

    def __init__(
        self,
        pki: Pki,
        *,
        mode: str = "mTLS",
        rogue: bool = False,
        window: int = 4 * 1024 * 1024,
        frame_size: int = 256 * 1024,
    ) -> None:
        self.pki = pki
        self.mode = mode
        self.window = window
        self.frame_size = frame_size
        self.thread = LoopThread()
        self.loop = self.thread.loop
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        cert, key = pki.rogue if rogue else pki.server
        context.load_cert_chain(cert, key)
        if mode == "mTLS":
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(pki.ca_file)
        self.context = context
        self.tokens: set[str] = set()
        self.refused: list[str] = []
        """Why connections were turned away (tests check the reasons)."""
        self.connections: asyncio.Queue[CloudConnection] | None = None
        self.accepted: list[CloudConnection] = []
        self.handlers: set[asyncio.Task[Any]] = set()
        self.server: asyncio.Server = self.thread.call(self._start())

    async def _start(self) -> asyncio.Server:
        self.connections = asyncio.Queue()
        return await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.context)

    @property
    def port(self) -> int:
        return int(self.server.sockets[0].getsockname()[1])

    def url(self, scheme: str = "https", path: str = UPLINK_PATH) -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    @property
    def token_url(self) -> str:
        return f"https://127.0.0.1:{self.port}/token"

    def close(self) -> None:
        async def stop() -> None:
            self.server.close()
            for conn in self.accepted:
                conn.writer.transport.abort()
            if self.handlers:
                await asyncio.wait(self.handlers, timeout=5)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 5)

        self.thread.call(stop())
        self.thread.close()

    def call(self, awaitable: Any, timeout: float = 30) -> Any:
        """Await a coroutine or future of the cloud loop from the test thread."""

        async def wait() -> Any:
            return await awaitable

        return self.thread.call(wait(), timeout)

    def next_connection(self, timeout: float = 30) -> CloudConnection:
        """The next device that completed the upgrade and the HTTP/2 preface exchange."""

        async def get() -> CloudConnection:
            assert self.connections is not None
            conn = await self.connections.get()
            await conn.remote_settings.wait()
            return conn

        result: CloudConnection = self.call(asyncio.wait_for(get(), timeout), timeout + 5)
        return result

    def drop(self, conn: CloudConnection) -> None:
        self.loop.call_soon_threadsafe(conn.writer.transport.abort)

    # -- one TCP connection ---------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        task.add_done_callback(self.handlers.discard)
        conn: CloudConnection | None = None
        try:
            raw = b""
            parser = RtspParser()
            request = None
            while request is None:
                data = await reader.read(65536)
                if not data:
                    return
                raw += data
                parser.feed(data)
                event = parser.next_event()
                if event is not None:
                    assert isinstance(event, Request)
                    request = event
            rest = parser.take_trailing_data()
            if request.method == "POST" and request.uri == "/token":
                await self._token(request, rest, reader, writer)
                return
            conn = self._upgrade(request, raw, rest, writer)
            if conn is None:
                return
            self.accepted.append(conn)
            assert self.connections is not None
            self.connections.put_nowait(conn)
            if rest and conn.websocket is None:
                conn.receive(rest)
            while data := await reader.read(262144):
                conn.receive(data)
        except (OSError, ssl.SSLError, asyncio.IncompleteReadError):
            pass
        finally:
            if conn is not None:
                conn.lost()
            writer.close()

    def _upgrade(
        self, request: Request, raw: bytes, rest: bytes, writer: asyncio.StreamWriter
    ) -> CloudConnection | None:
        if self.mode == "AccessToken":
            auth = request.headers.get("Authorization") or ""
            scheme, _, token = auth.partition(" ")
            if scheme.lower() != "bearer" or token not in self.tokens:
                self.refused.append("no valid bearer token")
                writer.write(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")
                return None
        upgrade = (request.headers.get("Upgrade") or "").lower()
        options = {"window": self.window, "frame_size": self.frame_size}
        if upgrade == "h2c-reverse":
            writer.write(
                b"HTTP/1.1 101 Switching Protocols\r\n"
                b"Connection: Upgrade\r\nUpgrade: h2c-reverse\r\n\r\n"
            )
            return CloudConnection(writer, request, None, **options)
        if upgrade == "websocket":
            ws = ServerProtocol(subprotocols=[Subprotocol("h2c-reverse")], max_size=None)
            ws.receive_data(raw)
            handshake = ws.events_received()[0]
            response = ws.accept(handshake)  # type: ignore[arg-type]
            ws.send_response(response)
            for chunk in ws.data_to_send():
                writer.write(chunk)
            if ws.state is not State.OPEN:
                self.refused.append("websocket handshake failed")
                return None
            return CloudConnection(writer, request, ws, **options)
        self.refused.append(f"unexpected upgrade {upgrade!r}")
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        return None

    async def _token(
        self,
        request: Request,
        body: bytes,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        """OAuth2 client credentials (RFC 6749 §4.4) with HTTP Basic client authentication."""
        length = int(request.headers.get("Content-Length") or 0)
        while len(body) < length:
            body += await reader.read(length - len(body))
        expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        form = dict(p.split("=", 1) for p in body.decode().split("&") if "=" in p)
        if (
            request.headers.get("Authorization") != f"Basic {expected}"
            or form.get("grant_type") != "client_credentials"
        ):
            self.refused.append("bad token request")
            writer.write(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")
            return
        token = secrets.token_urlsafe(24)
        self.tokens.add(token)
        payload = json.dumps({"access_token": token, "token_type": "Bearer", "expires_in": 300})
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
            + f"Content-Length: {len(payload)}\r\n\r\n{payload}".encode()
        )
        await writer.drain()


# -- RTSP clients through the tunnel ---------------------------------------------------------------


class _PostChannel:
    """What RtspTestClient calls ``sock``: requests go out base64-encoded on the tunnel POST."""

    def __init__(self, cloud: Cloud, conn: CloudConnection, stream: CloudStream) -> None:
        self.cloud, self.conn, self.stream = cloud, conn, stream

    def sendall(self, data: bytes) -> None:
        self.cloud.call(self.conn.send(self.stream, base64.b64encode(data)))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.cloud.call(self.conn.reset(self.stream), 5)


class TunnelRtspClient(RtspTestClient):
    """RTSP over HTTP (two HTTP/2 streams: GET for output, POST for input) through the tunnel,
    as a cloud would use it."""

    def __init__(self, cloud: Cloud, conn: CloudConnection, path: str, base: str) -> None:
        cookie = secrets.token_hex(8)
        self.cloud, self.conn, self.path, self.cookie = cloud, conn, path, cookie
        self.get = cloud.call(
            conn.open(
                "GET",
                path,
                [("accept", TUNNEL_CONTENT_TYPE), ("x-sessioncookie", cookie)],
                end_stream=True,
            )
        )
        self.get_head: dict[str, str] = cloud.call(self.get.head)
        self.sock = self.open_post()  # type: ignore[assignment]
        self._start(base)

    def open_post(self) -> _PostChannel:
        """A (new) input channel with the tunnel's cookie."""
        headers = [
            ("content-type", TUNNEL_CONTENT_TYPE),
            ("x-sessioncookie", self.cookie),
            ("content-length", str(2**31 - 1)),  # uplink.md A.5: large enough for a session
        ]
        post = self.cloud.call(self.conn.open("POST", self.path, headers))
        return _PostChannel(self.cloud, self.conn, post)

    def _receive(self, timeout: float) -> bytes | None:
        try:
            return self.get.chunks.get(timeout=max(timeout, 0.001))
        except queue.Empty:
            return b""


class _WsChannel:
    def __init__(self, cloud: Cloud, conn: CloudConnection, stream: CloudStream) -> None:
        self.cloud, self.conn, self.stream = cloud, conn, stream
        self.framing = Protocol(CLIENT, state=State.OPEN, max_size=None)

    def sendall(self, data: bytes) -> None:
        self.framing.send_binary(data)
        frames = b"".join(self.framing.data_to_send())
        self.cloud.call(self.conn.send(self.stream, frames))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.framing.send_close(1000)
            frames = b"".join(self.framing.data_to_send())
            self.cloud.call(self.conn.send(self.stream, frames, end_stream=True), 5)


class TunnelWsRtspClient(RtspTestClient):
    """RTSP over WebSocket bootstrapped by RFC 8441 extended CONNECT through the tunnel."""

    def __init__(self, cloud: Cloud, conn: CloudConnection, base: str) -> None:
        self.stream = cloud.call(
            conn.open(
                "CONNECT",
                WEBSOCKET_PATH,
                [
                    (":protocol", "websocket"),
                    ("sec-websocket-protocol", SUBPROTOCOL),
                    ("sec-websocket-version", "13"),
                ],
            )
        )
        self.head: dict[str, str] = cloud.call(self.stream.head)
        self.sock = self._channel = _WsChannel(cloud, conn, self.stream)  # type: ignore[assignment]
        self.messages: list[bytes] = []
        self._start(base)

    def _receive(self, timeout: float) -> bytes | None:
        try:
            raw = self.stream.chunks.get(timeout=max(timeout, 0.001))
        except queue.Empty:
            return b""
        if raw is None:
            return None
        framing = self._channel.framing
        framing.receive_data(raw)
        out = []
        for frame in framing.events_received():
            if frame.opcode in (Opcode.BINARY, Opcode.TEXT, Opcode.CONT):
                self.messages.append(bytes(frame.data))
                out.append(bytes(frame.data))
            elif frame.opcode is Opcode.CLOSE:
                return None
        return b"".join(out)
