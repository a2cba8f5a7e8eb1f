"""The asyncio RTSP server shell: connections, sessions, transports, auth; media is pluggable.

A thin layer over the sans-IO ``nvr.protocol`` parsers. Per connection, ``data_received`` keeps
feeding the incremental :class:`~nvr.protocol.rtsp.RtspParser` whatever the send side is doing,
and one request task per connection answers requests in order, so a client saturated with
``Rate-Control: no`` media still gets its PAUSE and keep-alives answered (replay.md B.8).
Media never goes through that task: resources push into a per-session
:class:`~nvr.playback.transport.SessionSink`.

Transports: RTP/AVP/TCP interleaved, RTP/AVP UDP unicast, and the Apple HTTP tunnel (GET/POST
paired by ``x-sessioncookie``) on the same port; other byte-stream carriers (RTSP over WebSocket,
:mod:`nvr.playback.websocket`) plug in through :meth:`RtspServer.connection_protocol`. Sessions
time out unless refreshed by a request (any but TEARDOWN) or RTCP from the client; a connection
that stays write-congested and silent longer than ``send_timeout`` is aborted and its sessions
torn down, so a dead client never pins memory; so is one whose closing waits that long for the
client to read. A request left half sent for ``request_timeout`` gets 408 and the connection
closes (half-open and slowloris clients).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from nvr.playback.resource import (
    Description,
    MediaResource,
    PlayResult,
    RequestContext,
    ResourceError,
    ResourceResolver,
    SinkClosedError,
)
from nvr.playback.session import RtspSession, SessionState, TrackSetup
from nvr.playback.transport import (
    DEFAULT_SESSION_QUEUE,
    InterleavedRoute,
    SessionSink,
    TcpChannel,
    UdpRoute,
    open_udp_pair,
)
from nvr.playback.tunnel import (
    Base64Stream,
    TunnelError,
    get_response,
    http_error,
    tunnel_cookie,
)
from nvr.protocol.rtsp import (
    InterleavedFrame,
    Request,
    Response,
    RtspParseError,
    RtspParser,
)
from nvr.protocol.rtsp_auth import (
    GUESSES,
    AuthError,
    AuthStatus,
    ServerAuthenticator,
    parse_authorization,
)
from nvr.protocol.rtsp_headers import (
    HeaderError,
    RtpInfo,
    SessionHeader,
    TransportSpec,
    format_method_list,
    format_option_tags,
    format_rtp_info,
    format_session,
    format_transport,
    parse_cseq,
    parse_option_tags,
    parse_session,
    parse_transport,
)

__all__ = ["METHODS", "RtspAuth", "RtspServer"]

log = logging.getLogger(__name__)

METHODS = (
    "OPTIONS",
    "DESCRIBE",
    "SETUP",
    "PLAY",
    "PAUSE",
    "TEARDOWN",
    "GET_PARAMETER",
    "SET_PARAMETER",
)
_NOT_ALLOWED = frozenset({"ANNOUNCE", "RECORD", "REDIRECT"})
_MAX_PIPELINED = 32  # unanswered requests a client may queue before we hang up
_PUBLIC = format_method_list(METHODS)

PasswordLookup = Callable[[str], "str | Awaitable[str | None] | None"]
Authorizer = Callable[[str, str, str], bool]


class Throttle(Protocol):
    """Failed-login throttling per client address (``nvr.onvif.throttle.LoginThrottle``)."""

    def locked_for(self, address: str) -> float: ...

    def failure(self, address: str) -> float: ...


@dataclass(frozen=True, slots=True)
class RtspAuth:
    """RTSP Digest authentication (SHA-256 and MD5 challenges, RFC 7616/2617).

    ``password_for(user)`` returns the plaintext password or None (it may be a coroutine
    function; a plain function must not block). ``authorize(user, method, path)`` decides per
    request (e.g. the ONVIF READ_MEDIA access class); False answers 403. ``authenticator``
    lets the SOAP layer and the RTSP server share one nonce secret; ``throttle`` lets them
    share one guessing budget per client address (a locked-out address gets 503 with
    Retry-After before any password is looked at).
    """

    realm: str
    password_for: PasswordLookup
    authorize: Authorizer | None = None
    authenticator: ServerAuthenticator | None = None
    throttle: Throttle | None = None


class _Reply(Exception):
    """Abort request handling with this status."""

    def __init__(self, status: int, headers: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__(status)
        self.status = status
        self.headers = list(headers)


_CLOSE = object()  # queue marker: answer 400 and close (after the requests before it)


class _Endpoint:
    """Where RTSP requests of one client come in and its responses and frames go out.

    For a plain connection both are the same socket; for an HTTP tunnel the requests come
    base64-encoded on POST connections and everything goes out on the GET connection.
    """

    def __init__(self, server: RtspServer, conn: _Connection) -> None:
        self.server = server
        self.conn = conn  # the connection whose socket carries the output
        self.channel = conn.channel
        self.peer = conn.peer
        self.local = conn.local
        self.local_ip = conn.local_ip
        self.parser = RtspParser()
        self.queue: deque[Request | object] = deque()
        self.task: asyncio.Task[None] | None = None
        self.sessions: set[RtspSession] = set()
        self.channel_owner: dict[int, RtspSession] = {}
        self.inputs: set[_Connection] = set()  # tunnel POST connections
        self.fresh = True
        self.tunnel_cookie: str | None = None
        self.last_activity = time.monotonic()
        self.partial_since: float | None = None
        """Since when the parser has held part of a message (a half-sent request)."""
        self.closed = False

    def feed(self, data: bytes) -> None:
        """Parse received bytes; requests are queued, RTCP counts as keep-alive."""
        now = self.last_activity = time.monotonic()
        parser = self.parser
        parser.feed(data)
        try:
            self._events(parser)
        finally:
            if not self.parser.buffered:  # (an HTTP tunnel GET replaced the parser)
                self.partial_since = None
            elif self.partial_since is None:
                self.partial_since = now

    def _events(self, parser: RtspParser) -> None:
        try:
            while (event := parser.next_event()) is not None:
                if isinstance(event, InterleavedFrame):
                    session = self.channel_owner.get(event.channel)
                    if session is not None:
                        session.touch()
                elif isinstance(event, Request):
                    if event.version.startswith("HTTP/"):
                        if self.fresh and self.tunnel_cookie is None:
                            self.fresh = False
                            self.conn.on_http(event)
                        else:
                            self._enqueue(_CLOSE)
                        return
                    self.fresh = False
                    self._enqueue(event)
                # Responses (to requests we never send) are ignored.
        except RtspParseError as exc:
            log.debug("RTSP parse error from %s: %s", self.peer, exc)
            self._enqueue(_CLOSE)

    def _enqueue(self, item: Request | object) -> None:
        if self.closed:
            return
        if len(self.queue) >= _MAX_PIPELINED:
            log.info("closing %s: %d unanswered requests", self.peer, len(self.queue))
            self.close()
            return
        self.queue.append(item)
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._process())

    async def _process(self) -> None:
        try:
            while self.queue and not self.closed:
                item = self.queue.popleft()
                if item is _CLOSE:
                    self.channel.write(Response(400, headers=[("Connection", "close")]).serialize())
                    self.close(graceful=True)
                    return
                assert isinstance(item, Request)
                try:
                    await self.server._answer(self, item)
                except Exception:  # a bug: never let it stop this client's request loop
                    log.exception("answering %s %s failed", item.method, item.uri)
                    self.channel.write(_plain_response(500, item))
                self.last_activity = time.monotonic()
        finally:
            self.task = None

    def close(self, graceful: bool = False) -> None:
        """Close the output connection and every tunnel input; sessions die with it."""
        if self.closed:
            return
        self.closed = True
        self.queue.clear()
        for conn in list(self.inputs):
            conn.close(graceful=False)
        self.conn.close(graceful=graceful)
        self.server._endpoint_closed(self)


class _Connection(asyncio.Protocol):
    """One client byte stream: plain RTSP, a tunnel GET (output) or a tunnel POST (input).

    Usually an accepted TCP connection; another carrier (RTSP over WebSocket) drives the same
    protocol through its own transport, with ``http_tunnel=False``.
    """

    def __init__(
        self, server: RtspServer, *, http_tunnel: bool = True, granted_user: str | None = None
    ) -> None:
        self.server = server
        self.http_tunnel = http_tunnel
        self.granted_user = granted_user
        """Set by a carrier that authenticated the stream itself (the uplink): no Digest."""
        self.transport: asyncio.Transport | None = None
        self.channel: TcpChannel
        self.peer = ""
        self.local = ""
        self.local_ip = "0.0.0.0"
        self.endpoint: _Endpoint | None = None
        self.tunnel: _Endpoint | None = None  # set on a POST connection
        self.base64: Base64Stream | None = None
        self.closed = False
        self.closing_since: float | None = None
        """When a graceful close began: it waits for the peer to read what is still queued."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        local = transport.get_extra_info("sockname")
        self.peer = str(peer[0]) if peer else ""
        self.local = _host_port(local) if local else ""
        self.local_ip = str(local[0]) if local else "0.0.0.0"
        self.channel = TcpChannel(transport)
        self.endpoint = _Endpoint(self.server, self)
        if len(self.server._connections) >= self.server.max_connections:
            log.warning(
                "refusing %s: %d connections open", self.peer, len(self.server._connections)
            )
            self.close(graceful=False)
            return
        self.server._connections.add(self)

    def data_received(self, data: bytes) -> None:
        if self.tunnel is not None:
            assert self.base64 is not None
            try:
                decoded = self.base64.feed(data)
            except TunnelError as exc:
                log.debug("tunnel POST from %s: %s", self.peer, exc)
                self.close(graceful=False)
                return
            if decoded:
                self.tunnel.feed(decoded)
        elif self.endpoint is not None and self.endpoint.tunnel_cookie is None:
            self.endpoint.feed(data)
        # A tunnel GET connection carries nothing more from the client: ignore it.

    def on_http(self, request: Request) -> None:
        """The first message was HTTP: pair it as a tunnel GET or POST, or refuse it."""
        endpoint = self.endpoint
        assert endpoint is not None
        cookie = tunnel_cookie(request)
        trailing = endpoint.parser.take_trailing_data()
        if not self.http_tunnel or cookie is None or request.method not in ("GET", "POST"):
            self._refuse(request, 400)
            return
        if request.method == "GET":
            if not self.server._register_tunnel(cookie, endpoint):
                self._refuse(request, 409)
                return
            endpoint.tunnel_cookie = cookie
            endpoint.parser = RtspParser()  # for the decoded POST bodies
            self.channel.write(get_response(request))
            return
        tunnel = self.server._tunnels.get(cookie)
        if tunnel is None or tunnel.closed:
            self._refuse(request, 404)
            return
        # This connection now only feeds the tunnel; its own endpoint never served anything.
        self.endpoint = None
        endpoint.closed = True
        self.tunnel = tunnel
        self.base64 = Base64Stream()
        tunnel.inputs.add(self)
        if trailing:
            self.data_received(trailing)

    def _refuse(self, request: Request, status: int) -> None:
        log.debug("refusing HTTP %s %s from %s: %d", request.method, request.uri, self.peer, status)
        self.channel.write(http_error(status, request.version))
        self.close(graceful=True)

    # -- flow control ------------------------------------------------------------------------

    def pause_writing(self) -> None:
        self.channel.pause()

    def resume_writing(self) -> None:
        self.channel.resume()

    def close(self, graceful: bool = True) -> None:
        if self.transport is None:
            return
        if self.closed:
            if not graceful and self.closing_since is not None:
                self.transport.abort()  # a graceful close the peer never let finish
            return
        self.closed = True
        self.channel.close()  # no more writes from sinks: they would only pile up or warn
        if graceful:
            self.closing_since = time.monotonic()
            self.transport.close()
        else:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.channel.close()
        self.server._connections.discard(self)
        if self.tunnel is not None:
            self.tunnel.inputs.discard(self)  # the client may open another POST
        elif self.endpoint is not None:
            self.endpoint.close()


def _plain_response(status: int, request: Request) -> bytes:
    headers = []
    cseq = _valid_cseq(request)
    if cseq is not None:
        headers.append(("CSeq", cseq))
    return Response(status, headers=headers).serialize()


def _valid_cseq(request: Request) -> str | None:
    """The request's CSeq to echo, None if it has none or one that is not a number (echoing
    that would make the response malformed too)."""
    value = request.headers.get("CSeq")
    if value is None:
        return None
    try:
        parse_cseq(value)
    except HeaderError:
        return None
    return value


def _host_port(sockname: tuple[object, ...]) -> str:
    host, port = str(sockname[0]), int(str(sockname[1]))
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _headers_of(session: RtspSession) -> tuple[str, str]:
    return ("Session", format_session(SessionHeader(session.id, session.timeout)))


class RtspServer:
    """RTSP 1.0 server for media resources (``nvr.playback.resource``).

    ``request_timeout``: a connection that has left a request (or an interleaved frame) half
    sent for this many seconds gets 408 and is closed (a half-open or slowloris client holds
    nothing).
    ``send_timeout``: a connection that has been write-congested *and* silent (no request, no
    RTCP) for this many seconds is taken for dead and aborted. A client that keeps sending
    keep-alives while its window is closed is only flow-controlled (``Rate-Control: no`` replay
    into a full player buffer) and is left alone; its memory use is bounded by the sinks.
    ``session_queue``: bytes a session may queue while congested before batches are dropped.
    ``udp_ports``: the range server UDP port pairs are taken from. ``max_sessions`` and
    ``max_connections`` bound what one server holds (453 / immediate close beyond them).
    """

    def __init__(
        self,
        host: str,
        port: int,
        resources: ResourceResolver,
        *,
        auth: RtspAuth | None = None,
        session_timeout: int = 60,
        send_timeout: float = 20.0,
        request_timeout: float = 10.0,
        session_queue: int = DEFAULT_SESSION_QUEUE,
        udp_ports: tuple[int, int] = (20000, 29999),
        max_sessions: int = 1024,
        max_connections: int = 2048,
        server_name: str = "nvr",
    ) -> None:
        self.host = host
        self._port = port
        self.resources = resources
        self.auth = auth
        self._authenticator: ServerAuthenticator | None = None
        if auth is not None:
            self._authenticator = auth.authenticator or ServerAuthenticator(auth.realm)
        self.session_timeout = session_timeout
        self.send_timeout = send_timeout
        self.request_timeout = request_timeout
        self.session_queue = session_queue
        self.udp_ports = udp_ports
        self.max_sessions = max_sessions
        self.max_connections = max_connections
        self.server_name = server_name
        self._server: asyncio.Server | None = None
        self._reaper: asyncio.Task[None] | None = None
        self._connections: set[_Connection] = set()
        self._sessions: dict[str, RtspSession] = {}
        self._tunnels: dict[str, _Endpoint] = {}
        self._background: set[asyncio.Task[None]] = set()

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen; returns once the socket is bound (see :attr:`port` for port 0)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self), self.host or None, self._port, reuse_address=True
        )
        self._reaper = loop.create_task(self._reap())
        log.info("RTSP server listening on %s", ", ".join(self.addresses))

    async def stop(self) -> None:
        """Stop listening, tear every session down and close every connection."""
        if self._server is not None:
            self._server.close()
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None
        for session in list(self._sessions.values()):
            self._close_session(session, "server stopping")
        for conn in list(self._connections):
            conn.close(graceful=False)
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    @property
    def port(self) -> int:
        """The bound port (useful when constructed with port 0)."""
        if self._server is None or not self._server.sockets:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def addresses(self) -> list[str]:
        if self._server is None:
            return []
        return [_host_port(s.getsockname()) for s in self._server.sockets]

    @property
    def sessions(self) -> Mapping[str, RtspSession]:
        """The live sessions by id (read-only use: metrics, tests)."""
        return self._sessions

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    def connection_protocol(
        self, *, http_tunnel: bool = True, granted_user: str | None = None
    ) -> asyncio.Protocol:
        """The protocol of one client byte stream that does not come from our listening socket.

        The carrier calls ``connection_made`` with an :class:`asyncio.Transport` of its own
        (``peername``/``sockname`` extra info, write buffer limits, pause/resume_writing on
        the protocol), ``data_received`` with the client's bytes and ``connection_lost`` once at
        the end; everything else (parsing, auth, sessions, reaping) is what TCP clients get.
        ``http_tunnel=False`` refuses the Apple HTTP tunnel on that stream. ``granted_user``
        is for a carrier that has authenticated and authorized the stream itself (an uplink
        whose user level allows READ_MEDIA): requests on it are neither asked for Digest nor
        checked by ``authorize``, and act as that user.
        """
        return _Connection(self, http_tunnel=http_tunnel, granted_user=granted_user)

    # -- request dispatch --------------------------------------------------------------------

    async def _answer(self, ep: _Endpoint, request: Request) -> None:
        """Handle one request and write its response; PLAY's start hook runs right after."""
        after: Callable[[], None] | None = None
        session: RtspSession | None = None
        cseq = _valid_cseq(request)
        try:
            if cseq is None:
                raise _Reply(400)
            response, session, after = await self._dispatch(ep, request)
        except _Reply as reply:
            response = Response(reply.status, headers=reply.headers)
        except ResourceError as exc:
            log.info("%s %s: %d %s", request.method, request.uri, exc.status, exc)
            response = Response(exc.status, headers=list(exc.headers))
        except (HeaderError, AuthError) as exc:
            log.debug("%s %s: bad header: %s", request.method, request.uri, exc)
            response = Response(400)
        except Exception:
            log.exception("RTSP %s %s from %s failed", request.method, request.uri, ep.peer)
            response = Response(500)
        headers = response.headers
        if cseq is not None:
            headers.set("CSeq", cseq)
        headers.add("Server", self.server_name)
        if session is not None and "Session" not in headers:
            headers.add(*_headers_of(session))
        ep.channel.write(response.serialize())
        if after is not None:
            try:
                after()
            except Exception:
                log.exception("starting media for %s failed", request.uri)
                if session is not None:
                    self._close_session(session, "media start failed")

    async def _dispatch(
        self, ep: _Endpoint, request: Request
    ) -> tuple[Response, RtspSession | None, Callable[[], None] | None]:
        if request.version != "RTSP/1.0":
            raise _Reply(505)
        method = request.method
        if method not in METHODS:
            if method in _NOT_ALLOWED:
                raise _Reply(405, [("Allow", _PUBLIC)])
            raise _Reply(501)
        granted = ep.conn.granted_user
        user = granted if granted is not None else await self._authenticate(request, ep.peer)
        path = _url_path(request.uri)
        if granted is None and self.auth is not None and self.auth.authorize is not None:
            assert user is not None
            if not self.auth.authorize(user, method, path or "*"):
                raise _Reply(403)
        session = self._find_session(request, user)
        if session is not None and method != "TEARDOWN":
            session.touch()
        if method == "OPTIONS":
            if session is not None:
                self._check_require(request, session.resource)
            elif request.headers.get("Require") is not None:
                resource = await self.resources.resolve(path) if path else None
                self._check_require(request, resource)
            return Response(200, headers=[("Public", _PUBLIC)]), session, None
        if method in ("GET_PARAMETER", "SET_PARAMETER"):
            if session is not None:
                self._check_require(request, session.resource)
            if request.body.strip():
                raise _Reply(451)
            return Response(200), session, None
        if path is None:
            raise _Reply(400)
        if method == "DESCRIBE":
            return await self._describe(ep, request, path, user), None, None
        if method == "SETUP":
            if session is None:
                return await self._setup(ep, request, path, user, None)
            async with session.lock:
                if session.closed:
                    raise _Reply(454)
                return await self._setup(ep, request, path, user, session)
        if session is None:
            raise _Reply(454)
        self._check_require(request, session.resource)
        control = self._session_control(session, path)
        if method == "TEARDOWN":
            self._close_session(session, "TEARDOWN")
            return Response(200), None, None
        if control is not None and len(session.tracks) > 1:
            raise _Reply(460)
        ctx = self._context(ep, request, session.base_url, user, session)
        async with session.lock:  # one PLAY/PAUSE at a time, even from two connections
            if session.closed:
                raise _Reply(454)
            if method == "PLAY":
                return await self._play(ep, session, ctx)
            return await self._pause(session, ctx), session, None

    # -- authentication ------------------------------------------------------------------------

    async def _authenticate(self, request: Request, peer: str) -> str | None:
        auth, authenticator = self.auth, self._authenticator
        if auth is None or authenticator is None:
            return None
        throttle = auth.throttle
        wait = throttle.locked_for(peer) if throttle is not None else 0.0
        if wait > 0:
            raise _Reply(503, [("Retry-After", str(int(wait) + 1))])
        value = request.headers.get("Authorization")
        username: str | None = None
        password: str | None = None
        if value is not None:
            try:
                username = parse_authorization(value).username  # type: ignore[union-attr]
            except (AuthError, AttributeError):
                username = None
            if username is not None:
                found = auth.password_for(username)
                password = await found if inspect.isawaitable(found) else found
        result = authenticator.verify(
            value,
            method=request.method,
            uri=request.uri,
            password_for=lambda name: password if name == username else None,
            body=request.body,
        )
        if result.ok:
            return result.username
        if result.status in (AuthStatus.MALFORMED, AuthStatus.URI_MISMATCH):
            raise _Reply(400)
        if result.status is not AuthStatus.MISSING:
            log.info("RTSP auth failed for %r: %s", result.username, result.status.value)
        if throttle is not None and result.status in GUESSES:
            throttle.failure(peer)
        challenges = authenticator.challenges(stale=result.stale)
        raise _Reply(401, [("WWW-Authenticate", c) for c in challenges])

    # -- helpers -----------------------------------------------------------------------------

    def _find_session(self, request: Request, user: str | None) -> RtspSession | None:
        value = request.headers.get("Session")
        if value is None:
            return None
        session = self._sessions.get(parse_session(value).id)
        if session is None or session.closed or session.user != user:
            raise _Reply(454)
        return session

    @staticmethod
    def _check_require(request: Request, resource: MediaResource | None) -> None:
        values = request.headers.get_all("Require")
        if not values:
            return
        supported = resource.supported_requires if resource is not None else frozenset()
        tags = [tag for value in values for tag in parse_option_tags(value)]
        unsupported = [tag for tag in tags if tag not in supported]
        if unsupported:
            raise _Reply(551, [("Unsupported", format_option_tags(unsupported))])

    @staticmethod
    def _session_control(session: RtspSession, path: str) -> str | None:
        """None for the aggregate URL, else the set-up track's control; 404 otherwise."""
        if path == session.base_path:
            return None
        prefix = session.base_path.rstrip("/") + "/"
        if path.startswith(prefix):
            control = path[len(prefix) :]
            for index in session.tracks:
                if session.description.tracks[index].control == control:
                    return control
        raise _Reply(404)

    def _context(
        self,
        ep: _Endpoint,
        request: Request,
        base_url: str,
        user: str | None,
        session: RtspSession | None = None,
    ) -> RequestContext:
        return RequestContext(
            request=request,
            url=request.uri,
            base_url=base_url,
            peer=ep.peer,
            user=user,
            track_urls=session.track_urls() if session is not None else {},
        )

    def _base_url(self, ep: _Endpoint, uri: str, path: str) -> str:
        parts = urlsplit(uri)
        if parts.scheme and parts.netloc:
            netloc = parts.netloc.rpartition("@")[2]  # never echo credentials
            return f"{parts.scheme}://{netloc}{path}"
        return f"rtsp://{ep.local}{path}"

    # -- methods -----------------------------------------------------------------------------

    async def _describe(
        self, ep: _Endpoint, request: Request, path: str, user: str | None
    ) -> Response:
        resource = await self.resources.resolve(path)
        if resource is None:
            raise _Reply(404)
        self._check_require(request, resource)
        base_url = self._base_url(ep, request.uri, path)
        description = await resource.describe(self._context(ep, request, base_url, user))
        return Response(
            200,
            headers=[("Content-Base", base_url + "/"), ("Content-Type", "application/sdp")],
            body=description.sdp,
        )

    async def _locate_track(
        self, ep: _Endpoint, request: Request, path: str, user: str | None
    ) -> tuple[MediaResource, Description, str, int]:
        """SETUP without a session: find the resource and the track a URL names."""
        parent, _, control = path.rpartition("/")
        candidates: list[tuple[str, str | None]] = []
        if parent:
            candidates.append((parent, control))
        candidates.append((path, None))
        for base_path, name in candidates:
            resource = await self.resources.resolve(base_path)
            if resource is None:
                continue
            self._check_require(request, resource)
            base_url = self._base_url(ep, request.uri, base_path)
            ctx = self._context(ep, request, base_url, user)
            description = await resource.describe(ctx)
            tracks = description.tracks
            if name is None:
                if len(tracks) != 1:
                    raise _Reply(459)
                return resource, description, base_path, 0
            for index, track in enumerate(tracks):
                if track.control == name:
                    return resource, description, base_path, index
        raise _Reply(404)

    async def _setup(
        self,
        ep: _Endpoint,
        request: Request,
        path: str,
        user: str | None,
        session: RtspSession | None,
    ) -> tuple[Response, RtspSession | None, None]:
        if session is not None:
            self._check_require(request, session.resource)
            if session.state is SessionState.PLAYING:
                raise _Reply(455, [("Allow", "PLAY, PAUSE, TEARDOWN, GET_PARAMETER")])
            if path == session.base_path:
                if len(session.description.tracks) != 1:
                    raise _Reply(459)
                index = 0
            else:
                prefix = session.base_path.rstrip("/") + "/"
                control = path[len(prefix) :] if path.startswith(prefix) else None
                names = [t.control for t in session.description.tracks]
                if control not in names:
                    raise _Reply(404)
                index = names.index(control)
            resource, description, base_path = (
                session.resource,
                session.description,
                session.base_path,
            )
        else:
            resource, description, base_path, index = await self._locate_track(
                ep, request, path, user
            )
        value = request.headers.get("Transport")
        if value is None:
            raise _Reply(400)
        spec = self._choose_transport(parse_transport(value))
        if spec is None:
            raise _Reply(461)
        created = session is None
        if session is None:
            if len(self._sessions) >= self.max_sessions:
                raise _Reply(453)
            session = RtspSession(
                resource,
                description,
                base_path,
                self._base_url(ep, request.uri, base_path),
                user,
                self.session_timeout,
                SessionSink(self.session_queue),
            )
        try:
            answer = await self._bind_transport(ep, session, index, request.uri, spec)
        except OSError as exc:
            log.warning("SETUP %s: no UDP ports: %s", request.uri, exc)
            if created:
                session.release_transports()
            raise _Reply(503) from None
        if created:
            self._sessions[session.id] = session
            log.debug("session %s created for %s by %s", session.id, base_path, ep.peer)
        headers = [("Transport", format_transport(answer)), _headers_of(session)]
        return Response(200, headers=headers), session, None

    @staticmethod
    def _choose_transport(specs: Iterable[TransportSpec]) -> TransportSpec | None:
        for spec in specs:
            if spec.protocol != "RTP" or spec.profile != "AVP" or spec.is_multicast:
                continue
            if spec.mode not in (None, "PLAY"):
                continue
            if spec.lower_transport == "TCP":
                return spec
            if spec.lower_transport in (None, "UDP") and spec.client_port is not None:
                return spec
        return None

    async def _bind_transport(
        self, ep: _Endpoint, session: RtspSession, index: int, url: str, spec: TransportSpec
    ) -> TransportSpec:
        old = session.tracks.get(index)
        if old is not None and isinstance(old.route, InterleavedRoute):
            for channel in (old.route.rtp, old.route.rtcp):
                ep.channel_owner.pop(channel, None)
        if spec.lower_transport == "TCP":
            rtp, rtcp = self._interleaved_pair(ep, spec.interleaved)
            route: InterleavedRoute | UdpRoute = InterleavedRoute(ep.channel, rtp, rtcp)
            ep.channel_owner[rtp] = ep.channel_owner[rtcp] = session
            session.endpoint = ep
            ep.sessions.add(session)
            answer = TransportSpec("RTP", "AVP", "TCP", delivery="unicast", interleaved=(rtp, rtcp))
        else:
            assert spec.client_port is not None
            client_rtp = spec.client_port[0]
            client_rtcp = spec.client_port[1] or client_rtp + 1
            pair = await open_udp_pair(ep.local_ip, self.udp_ports)
            peer = ep.peer

            def keepalive(_data: bytes, addr: tuple[str, int]) -> None:
                if addr[0] == peer:
                    session.touch()

            pair.on_datagram(keepalive)
            route = UdpRoute(pair, (peer, client_rtp), (peer, client_rtcp))
            answer = TransportSpec(
                "RTP",
                "AVP",
                spec.lower_transport,
                delivery="unicast",
                client_port=(client_rtp, client_rtcp),
                server_port=(pair.port, pair.port + 1),
            )
            if session.endpoint is None:
                session.endpoint = ep
                ep.sessions.add(session)
        session.set_track(index, TrackSetup(url, answer, route))
        return answer

    @staticmethod
    def _interleaved_pair(ep: _Endpoint, wanted: tuple[int, int | None] | None) -> tuple[int, int]:
        used = ep.channel_owner
        if wanted is not None:
            rtp = wanted[0]
            rtcp = wanted[1] if wanted[1] is not None else rtp + 1
            if rtp not in used and rtcp not in used and rtcp <= 255 and rtp != rtcp:
                return rtp, rtcp
        for rtp in range(0, 255, 2):
            if rtp not in used and rtp + 1 not in used:
                return rtp, rtp + 1
        raise _Reply(453)

    async def _play(
        self, ep: _Endpoint, session: RtspSession, ctx: RequestContext
    ) -> tuple[Response, RtspSession, Callable[[], None] | None]:
        if session.media is None:
            session.media = await session.resource.open_session(
                sorted(session.tracks), session.sink, ctx
            )
            if session.closed:  # torn down while the resource was opening
                await session.media.close()
                raise _Reply(454)
        result: PlayResult = await session.media.play(ctx)
        if session.closed:
            raise _Reply(454)
        headers = list(result.headers)
        infos = [
            RtpInfo(session.tracks[i].url, start.seq, start.rtptime)
            for i, start in sorted(result.rtp_info.items())
            if i in session.tracks
        ]
        if infos:
            headers.append(("RTP-Info", format_rtp_info(infos)))
        headers.append(_headers_of(session))
        session.state = SessionState.PLAYING
        start = result.start
        if start is None:
            return Response(200, headers=headers), session, None

        def begin() -> None:
            if session.closed:
                return
            session.stop_producer()
            coroutine = start()
            if coroutine is not None:
                task = asyncio.get_running_loop().create_task(coroutine)
                session.producer = task
                task.add_done_callback(lambda t: _producer_done(session, t))

        return Response(200, headers=headers), session, begin

    async def _pause(self, session: RtspSession, ctx: RequestContext) -> Response:
        if session.state is not SessionState.PLAYING or session.media is None:
            raise _Reply(455, [("Allow", "PLAY, SETUP, TEARDOWN, GET_PARAMETER")])
        session.stop_producer()
        headers = list(await session.media.pause(ctx))
        session.state = SessionState.READY
        return Response(200, headers=headers)

    # -- teardown and reaping ----------------------------------------------------------------

    def _close_session(self, session: RtspSession, reason: str) -> None:
        if session.closed:
            return
        session.closed = True
        self._sessions.pop(session.id, None)
        session.stop_producer()
        session.release_transports()
        ep = session.endpoint
        if isinstance(ep, _Endpoint):
            ep.sessions.discard(session)
            for channel in session.interleaved_channels():
                if ep.channel_owner.get(channel) is session:
                    del ep.channel_owner[channel]
        log.debug("session %s closed: %s", session.id, reason)
        if session.media is not None:
            task = asyncio.get_running_loop().create_task(_close_media(session))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    def _endpoint_closed(self, ep: _Endpoint) -> None:
        """The client's output connection is gone: its interleaved sessions die with it."""
        if ep.tunnel_cookie is not None and self._tunnels.get(ep.tunnel_cookie) is ep:
            del self._tunnels[ep.tunnel_cookie]
        for session in list(ep.sessions):
            if session.interleaved_channels():
                self._close_session(session, "connection closed")
            else:
                session.endpoint = None  # UDP: lives on until its timeout
        ep.sessions.clear()

    def _register_tunnel(self, cookie: str, ep: _Endpoint) -> bool:
        existing = self._tunnels.get(cookie)
        if existing is not None and not existing.closed:
            return False
        self._tunnels[cookie] = ep
        return True

    async def _reap(self) -> None:
        """Once per interval: expire sessions, abort stalled or idle connections.

        ``session_timeout`` may change while serving (ONVIF SetReplayConfiguration): new
        sessions get the new value, and the reaper's pace follows it.
        """
        while True:
            await asyncio.sleep(
                max(0.05, min(1.0, self.session_timeout / 4, self.request_timeout / 4))
            )
            try:
                self._reap_once(max(2 * self.session_timeout, 10))
            except Exception:
                log.exception("RTSP reaper failed")

    def _reap_once(self, idle_limit: float) -> None:
        """Expire sessions; abort stalled connections, close idle ones."""
        now = time.monotonic()
        for session in list(self._sessions.values()):
            if session.expired(now):
                self._close_session(session, "timeout")
        for conn in list(self._connections):
            if conn.closing_since is not None:
                if now - conn.closing_since > self.send_timeout:
                    log.info("aborting %s: closed, and what was queued is still unread", conn.peer)
                    conn.close(graceful=False)
                continue
            ep = conn.endpoint
            if (
                ep is not None
                and ep.partial_since is not None
                and now - ep.partial_since > self.request_timeout
            ):
                log.info(
                    "closing %s: a request half sent %.0f s ago", conn.peer, now - ep.partial_since
                )
                ep.channel.write(Response(408, headers=[("Connection", "close")]).serialize())
                ep.close(graceful=True)  # aborted like any close if the 408 stays unread
                continue
            if conn.channel.stalled_for(now) > self.send_timeout and (
                ep is None or now - ep.last_activity > self.send_timeout
            ):
                log.info(
                    "aborting %s: silent and not reading for %.0f s",
                    conn.peer,
                    now - (ep.last_activity if ep is not None else now),
                )
                conn.close(graceful=False)
                continue
            if (
                ep is not None
                and not ep.sessions
                and ep.task is None
                and now - ep.last_activity > idle_limit
            ):
                ep.close(graceful=True)


def _url_path(uri: str) -> str | None:
    """The path a request URL names, without trailing slash; None for ``*``."""
    if uri == "*":
        return None
    try:
        path = urlsplit(uri).path
    except ValueError:
        raise _Reply(400) from None
    stripped = path.strip("/")
    return "/" + stripped if stripped else "/"


def _producer_done(session: RtspSession, task: asyncio.Task[None]) -> None:
    if session.producer is task:
        session.producer = None
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None and not isinstance(exc, SinkClosedError):
        log.error("media producer of session %s failed", session.id, exc_info=exc)


async def _close_media(session: RtspSession) -> None:
    assert session.media is not None
    try:
        await session.media.close()
    except Exception:
        log.exception("closing media of session %s failed", session.id)
