"""The asyncio RTSP client that pulls live media from one camera: one connection's life.

A thin shell around the sans-IO layer in :mod:`nvr.protocol`: it owns the sockets, the
timers and the request/response pairing, and leaves every byte of parsing to
:class:`~nvr.protocol.rtsp.RtspParser`, :mod:`~nvr.protocol.rtsp_headers`,
:mod:`~nvr.protocol.sdp`, :mod:`~nvr.protocol.rtp` and :mod:`~nvr.protocol.rtcp`.

Life of a session::

    async with RtspClient("rtsp://user:pw@cam/onvif/profile1", transport="udp") as client:
        await client.connect()       # TCP, OPTIONS, DESCRIBE (one redirect followed)
        await client.setup()         # SETUP every RTP stream of the SDP (or a selection)
        await client.play(sink)      # PLAY; packets now flow into sink
        await client.wait()          # until close() or an error (stall, reset, ...)
    # leaving the block sends TEARDOWN and closes the sockets

Delivery is synchronous and allocation-light, because one daemon runs this for hundreds of
cameras: the RTSP connection is an :class:`asyncio.Protocol` (no reader task), UDP sockets are
datagram endpoints, and each RTP packet is parsed once and handed to ``sink.on_rtp`` from the
loop's read callback with its arrival time (wall clock µs and monotonic ns, read once per
socket read). Keep-alive, RTCP receiver reports and the stall watchdog share one maintenance
task per session. Reconnecting is not this module's job (see :mod:`nvr.ingest.backoff`).

Cameras bend RFC 2326/3550 in known ways; each tolerated deviation is a named field of
:class:`Quirks`, lenient by default and logged once per session, never per packet.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import ipaddress
import logging
import random
import secrets
import socket
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, NamedTuple, Protocol
from urllib.parse import urlsplit

from nvr.ingest.udp import UdpPortPair, open_port_pair
from nvr.protocol.errors import ProtocolError
from nvr.protocol.rtcp import (
    Bye,
    ReceptionStatistics,
    SenderReport,
    build_pli,
    build_receiver_report,
    parse_rtcp,
)
from nvr.protocol.rtp import RtpPacket, SeqStatus, parse_rtp
from nvr.protocol.rtsp import (
    Headers,
    InterleavedFrame,
    Request,
    Response,
    RtspParser,
    encode_interleaved,
)
from nvr.protocol.rtsp_auth import ClientAuthenticator, split_uri_credentials
from nvr.protocol.rtsp_headers import (
    RangeValue,
    RtpInfo,
    TransportSpec,
    format_option_tags,
    format_range,
    format_transport,
    parse_content_base,
    parse_method_list,
    parse_range,
    parse_rtp_info,
    parse_session,
    parse_transport,
)
from nvr.protocol.sdp import (
    MediaStream,
    SessionDescription,
    choose_base_url,
    media_streams,
    parse_sdp,
    resolve_control,
    session_control_url,
)

__all__ = [
    "DEFAULT_USER_AGENT",
    "ClientStats",
    "PacketQueue",
    "PlayInfo",
    "Presentation",
    "Quirks",
    "RtpEvent",
    "RtpSink",
    "RtspAuthFailed",
    "RtspClient",
    "RtspClientError",
    "RtspConnectionError",
    "RtspProtocolError",
    "RtspStalled",
    "RtspStatusError",
    "RtspTimeout",
    "SenderReportEvent",
    "Timeouts",
    "Track",
]

log = logging.getLogger("nvr.ingest.rtsp")

DEFAULT_USER_AGENT: Final = "nvr/0.1"
DEFAULT_SESSION_TIMEOUT: Final = 60
_REDIRECTS: Final = frozenset((301, 302, 303, 305, 307, 308))
_TUNNEL_CONTENT_LENGTH: Final = 32767
_MAX_SDP: Final = 256 * 1024
_TRANSPORTS: Final = ("tcp", "udp", "http")
_IN_ORDER: Final = SeqStatus.IN_ORDER
_MAX_FRAME: Final = 4 + 0xFFFF  # an interleaved frame: "$", channel, length, payload
_RECEIVE_BUFFER: Final = 2 * _MAX_FRAME
_SHORT_REST: Final = 4096  # an incomplete frame this short moves to the front at once


# --- errors ----------------------------------------------------------------------------------


class RtspClientError(Exception):
    """Base of the client's errors; the message names the camera (URI without credentials)."""


class RtspConnectionError(RtspClientError):
    """TCP connection refused, reset or closed by the camera (or DNS/route failure)."""


class RtspTimeout(RtspClientError):
    """The camera did not accept the connection or answer a request in time."""


class RtspStalled(RtspTimeout):
    """The session is up but no RTP arrived for ``Timeouts.stall`` seconds."""


class RtspProtocolError(RtspClientError):
    """The camera sent something unparsable or contradictory; ``__cause__`` has the detail."""


class RtspStatusError(RtspClientError):
    """A request got a non-2xx answer."""

    def __init__(self, message: str, *, status: int, reason: str, method: str, uri: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.method = method
        self.uri = uri


class RtspAuthFailed(RtspStatusError):
    """The final answer was 401: no or wrong credentials, or no challenge we can answer."""


# --- configuration ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Time limits in seconds.

    ``stall`` also bounds the wait for the first RTP packet after PLAY. ``keepalive`` None
    means half the session timeout the camera announced (``session_default`` if none).
    """

    connect: float = 10.0
    response: float = 10.0
    stall: float = 10.0
    teardown: float = 2.0
    rtcp_interval: float = 5.0
    keepalive: float | None = None
    session_default: int = DEFAULT_SESSION_TIMEOUT


@dataclass(frozen=True, slots=True)
class Quirks:
    """Named policies for cameras that bend the RFCs. Each deviation is logged once.

    ``ignore_session_id_change``
        A response carries a Session id other than the one SETUP gave. True: keep using the
        first id (what FFmpeg and live555 do). False: fail with :class:`RtspProtocolError`.
    ``drop_unassigned_channels``
        ``$`` frames on an interleaved channel no SETUP assigned (some cameras send RTCP for
        tracks we did not set up, or keep a previous session's channels). True: count and drop.
        False: fail with :class:`RtspProtocolError`.
    ``buffer_early_rtp``
        RTP/RTCP that arrives after SETUP but before the PLAY answer (servers often start
        sending first). True: keep up to ``max_early_packets`` and deliver them right after
        the PLAY answer, since they usually carry the parameter sets and the key frame.
        False: drop them.
    ``drop_packets_before_rtp_info``
        Packets older than the ``seq`` the PLAY answer's RTP-Info announced (left over from
        before PLAY). True: drop them. False: deliver them.
    ``accept_ssrc_change``
        A track's SSRC changes mid-session (encoder restart). True: restart the sequence and
        receiver-report statistics for the new source. False: drop the foreign packets. The
        SSRC a SETUP answer announces is only a hint either way: the first packet's wins.
    ``udp_any_source``
        Accept UDP datagrams from any address. False (the default, deliberately not lenient:
        recordings may be evidence): only from the camera's address (or the Transport
        ``source``).
    ``teardown_stale_sessions``
        On close after the control connection died, UDP sessions keep streaming to our dead
        ports and count against the camera's session limit until they time out; True opens
        a short-lived connection just to send TEARDOWN (bounded by ``Timeouts.teardown``).
    ``append_control``
        Join relative ``a=control`` values to the base URL with one '/' (live555/FFmpeg
        behaviour, for cameras whose Content-Base lacks the trailing slash) instead of
        RFC 3986 resolution.
    ``allow_basic_auth``
        Answer Basic challenges (the password then travels base64-encoded in clear).
    ``keepalive_method``
        Force the keep-alive method; None picks GET_PARAMETER when OPTIONS listed it in
        Public, else OPTIONS (and falls back to OPTIONS if GET_PARAMETER is refused).
    ``send_receiver_reports``
        Send RTCP receiver reports every ``Timeouts.rtcp_interval`` (ONVIF servers count
        them as keep-alive).
    """

    ignore_session_id_change: bool = True
    drop_unassigned_channels: bool = True
    buffer_early_rtp: bool = True
    max_early_packets: int = 4096
    drop_packets_before_rtp_info: bool = False
    accept_ssrc_change: bool = True
    udp_any_source: bool = False
    teardown_stale_sessions: bool = True
    append_control: bool = False
    allow_basic_auth: bool = True
    keepalive_method: str | None = None
    send_receiver_reports: bool = True


# --- results and delivery --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Presentation:
    """What DESCRIBE told: the SDP, the URLs to control it, and the RTP streams in it."""

    uri: str  # the URI described (after a redirect), without credentials
    base_url: str
    control_url: str  # aggregate control URL for PLAY/TEARDOWN/keep-alive
    sdp: SessionDescription
    streams: tuple[MediaStream, ...]
    public: tuple[str, ...]  # methods the OPTIONS answer listed (empty if none)
    server: str | None


@dataclass(frozen=True, slots=True)
class PlayInfo:
    """The PLAY answer: Range (``clock=`` gives wall time of the start) and RTP-Info per track."""

    range: RangeValue | None
    rtp_info: tuple[RtpInfo | None, ...]
    headers: Headers


class RtpSink(Protocol):
    """Receives a session's media; called on the event loop, so it must not block.

    ``track`` is the index in :attr:`RtspClient.tracks`; ``wall_us`` is ``time.time_ns() //
    1000`` and ``mono_ns`` ``time.monotonic_ns()`` at arrival. An exception raised here ends
    the session and is re-raised by :meth:`RtspClient.wait`. A sink may also define
    ``on_close(error: BaseException | None)``, called once when delivery ends.
    """

    def on_rtp(self, track: int, packet: RtpPacket, wall_us: int, mono_ns: int) -> None: ...

    def on_sender_report(
        self, track: int, report: SenderReport, wall_us: int, mono_ns: int
    ) -> None: ...


class RtpEvent(NamedTuple):
    """One RTP packet as :class:`PacketQueue` yields it."""

    track: int
    packet: RtpPacket
    wall_us: int
    mono_ns: int


class SenderReportEvent(NamedTuple):
    """One RTCP sender report as :class:`PacketQueue` yields it."""

    track: int
    report: SenderReport
    wall_us: int
    mono_ns: int


class PacketQueue:
    """A sink to consume with ``async for`` (tests, probes, light consumers).

    Bounded: when the consumer falls behind, new events are dropped and counted in
    :attr:`dropped` rather than growing memory. Iteration ends when the session ends; if it
    ended with an error, the iterator raises it.
    """

    def __init__(self, maxsize: int = 8192) -> None:
        self.maxsize = maxsize
        self.dropped = 0
        self._items: collections.deque[RtpEvent | SenderReportEvent] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self._error: BaseException | None = None

    def _put(self, item: RtpEvent | SenderReportEvent) -> None:
        if self._closed:
            return
        if len(self._items) >= self.maxsize:
            self.dropped += 1
            return
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def on_rtp(self, track: int, packet: RtpPacket, wall_us: int, mono_ns: int) -> None:
        self._put(RtpEvent(track, packet, wall_us, mono_ns))

    def on_sender_report(
        self, track: int, report: SenderReport, wall_us: int, mono_ns: int
    ) -> None:
        self._put(SenderReportEvent(track, report, wall_us, mono_ns))

    def on_close(self, error: BaseException | None) -> None:
        """End iteration after the buffered events (raising ``error`` if given)."""
        if self._closed:
            return
        self._closed = True
        self._error = error
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def __len__(self) -> int:
        return len(self._items)

    def __aiter__(self) -> PacketQueue:
        return self

    async def __anext__(self) -> RtpEvent | SenderReportEvent:
        while not self._items:
            if self._closed:
                if self._error is not None:
                    raise self._error
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.popleft()


@dataclass(slots=True)
class ClientStats:
    """Counters of one client (per-track packet counts live on :class:`Track`)."""

    requests: int = 0
    auth_retries: int = 0
    keepalives: int = 0  # keep-alive requests the camera accepted
    receiver_reports: int = 0
    key_frame_requests: int = 0
    sender_reports: int = 0
    unassigned_frames: int = 0
    early_packets: int = 0
    early_dropped: int = 0
    foreign_datagrams: int = 0


class Track:
    """One set-up stream: its SDP view, the negotiated transport and receive state."""

    __slots__ = (
        "_client",
        "_pending_sr",
        "announced_ssrc",
        "duplicates",
        "foreign_ssrc",
        "index",
        "malformed_rtcp",
        "malformed_rtp",
        "octets",
        "packets",
        "rtcp_channel",
        "rtcp_peer",
        "rtp_channel",
        "rtp_info",
        "ssrc",
        "stale",
        "started",
        "stats",
        "stream",
        "transport",
        "udp",
        "udp_sources",
    )

    def __init__(self, client: RtspClient, index: int, stream: MediaStream) -> None:
        self._client = client
        self.index = index
        self.stream = stream
        self.transport: TransportSpec | None = None  # the server's answer
        self.rtp_channel: int | None = None
        self.rtcp_channel: int | None = None
        self.udp: UdpPortPair | None = None
        self.rtcp_peer: tuple[Any, ...] | None = None  # where to send RTCP over UDP
        self.udp_sources: frozenset[str] | None = None  # accepted UDP source addresses
        self.announced_ssrc: int | None = None
        self.ssrc: int | None = None
        self.stats: ReceptionStatistics | None = None
        self.rtp_info: RtpInfo | None = None
        self.started = False  # a packet at or after the RTP-Info seq was seen
        self._pending_sr: tuple[SenderReport, int] | None = None
        self.packets = 0
        self.octets = 0
        self.duplicates = 0
        self.stale = 0
        self.foreign_ssrc = 0
        self.malformed_rtp = 0
        self.malformed_rtcp = 0

    def __repr__(self) -> str:
        s = self.stream
        return f"<Track {self.index} {s.media} {s.encoding_name} {s.control_url}>"

    @property
    def clock_rate(self) -> int:
        """RTP clock rate from the SDP (90 kHz if the SDP left a dynamic type unmapped)."""
        return self.stream.clock_rate or 90000

    # The two receive paths below run per packet: keep them lean.

    def receive_rtp(self, data: bytes, wall_us: int, mono_ns: int) -> None:
        """One RTP packet from the wire."""
        client = self._client
        if not client._playing:
            client._early(self.receive_rtp, data, wall_us, mono_ns)
            return
        try:
            packet = parse_rtp(data)  # the plain header is its fast path
        except ProtocolError:
            self.malformed_rtp += 1
            client._note("malformed-rtp", "dropping malformed RTP packets on track %d", self.index)
            return
        sequence, timestamp, ssrc = packet.sequence, packet.timestamp, packet.ssrc
        if ssrc != self.ssrc and not self._new_ssrc(ssrc):
            return
        if not self.started and self.rtp_info is not None and self._stale(sequence):
            return
        stats = self.stats
        assert stats is not None
        status = stats.on_rtp_status(sequence, timestamp, mono_ns // 1000)
        if status is not _IN_ORDER:
            if status is SeqStatus.DUPLICATE:
                self.duplicates += 1
                return
            if status is SeqStatus.RESYNC:
                client._note(
                    f"resync-{self.index}",
                    "track %d: sequence numbers jumped; the camera restarted its numbering",
                    self.index,
                )
        self.packets += 1
        self.octets += len(data)
        client._last_rtp = mono_ns
        client._deliver_rtp(self.index, packet, wall_us, mono_ns)

    def receive_rtcp(self, data: bytes, wall_us: int, mono_ns: int) -> None:
        """One (compound) RTCP packet from the wire."""
        client = self._client
        if not client._playing:
            client._early(self.receive_rtcp, data, wall_us, mono_ns)
            return
        try:
            packets = parse_rtcp(data)
        except ProtocolError:
            self.malformed_rtcp += 1
            client._note("malformed-rtcp", "dropping malformed RTCP on track %d", self.index)
            return
        for item in packets:
            if type(item) is SenderReport:
                client.stats.sender_reports += 1
                if self.stats is not None:
                    self.stats.on_sender_report(item, mono_ns // 1000)
                else:
                    self._pending_sr = (item, mono_ns // 1000)
                client._deliver_sr(self.index, item, wall_us, mono_ns)
            elif type(item) is Bye:
                client._note(f"bye-{self.index}", "track %d: the camera sent RTCP BYE", self.index)

    def _new_ssrc(self, ssrc: int) -> bool:
        """A packet from a source other than the current one: adopt it or refuse it."""
        client = self._client
        if self.ssrc is None:
            if self.announced_ssrc is not None and ssrc != self.announced_ssrc:
                client._note(
                    f"ssrc-hint-{self.index}",
                    "track %d: SETUP announced SSRC %08X but packets come from %08X",
                    self.index,
                    self.announced_ssrc,
                    ssrc,
                )
        elif client._quirks.accept_ssrc_change:
            client._note(
                f"ssrc-change-{self.index}",
                "track %d: SSRC changed from %08X to %08X",
                self.index,
                self.ssrc,
                ssrc,
            )
        else:
            self.foreign_ssrc += 1
            client._note(
                f"ssrc-foreign-{self.index}",
                "track %d: dropping packets of foreign SSRC %08X",
                self.index,
                ssrc,
            )
            return False
        if self.ssrc is None:  # RTP-Info describes the first source only
            self.started = self.rtp_info is None or self.rtp_info.seq is None
        self.ssrc = ssrc
        self.stats = ReceptionStatistics(ssrc, self.clock_rate)
        if self._pending_sr is not None:
            sr, arrival_us = self._pending_sr
            if sr.ssrc == ssrc:
                self.stats.on_sender_report(sr, arrival_us)
            self._pending_sr = None
        return True

    def _stale(self, seq: int) -> bool:
        """Before the first packet at or after RTP-Info's seq: is this one older than it?"""
        info = self.rtp_info
        assert info is not None
        if info.seq is None:
            self.started = True
            return False
        behind = (info.seq - seq) & 0xFFFF
        if behind == 0 or behind >= 0x8000:
            self.started = True
            return False
        client = self._client
        drop = client._quirks.drop_packets_before_rtp_info
        client._note(
            f"stale-{self.index}",
            "track %d: packets before RTP-Info seq %d arrive (%s)",
            self.index,
            info.seq,
            "dropped" if drop else "delivered",
        )
        if drop:
            self.stale += 1
        return drop

    def _send_rtcp(self, data: bytes) -> bool:
        """Send an RTCP packet to the camera on this track's RTCP path."""
        client = self._client
        if self.udp is not None:
            if self.rtcp_peer is None:
                return False
            self.udp.send_rtcp(data, self.rtcp_peer)
            return True
        if self.rtcp_channel is None:
            return False
        return client._write(encode_interleaved(self.rtcp_channel, data))


def _drop_frame(data: bytes, wall_us: int, mono_ns: int) -> None:
    """Interleaved frame handler once a session has ended."""


def _drop_rtp(track: int, packet: RtpPacket, wall_us: int, mono_ns: int) -> None:
    """Delivery target once a session has ended."""


def _drop_sr(track: int, report: SenderReport, wall_us: int, mono_ns: int) -> None:
    """Delivery target once a session has ended."""


# --- connections -----------------------------------------------------------------------------


class _RtspConnection(asyncio.BufferedProtocol):
    """The RTSP TCP connection (or the tunnel's GET half): bytes in, parsed events out.

    The socket reads into one receive buffer that lives as long as the connection, so a read
    allocates nothing. ``buffer[start:end]`` holds what the client has not consumed yet: at
    most one incomplete interleaved frame, moved to the front before the next read when it is
    short (the usual case: a packet cut by the read) or the free tail is, so reads stay in the
    first pages of the buffer.
    """

    def __init__(self, client: RtspClient) -> None:
        self.client = client
        self.parser = RtspParser(max_body_size=_MAX_SDP)
        self.transport: asyncio.Transport | None = None
        self.broken = False  # the byte stream is out of sync: no more requests on it
        self.lost = False
        self.buffer = bytearray(_RECEIVE_BUFFER)
        self.view = memoryview(self.buffer)
        self.start = 0
        self.end = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def get_buffer(self, sizehint: int) -> memoryview:
        start, end = self.start, self.end
        if start == end:
            self.start = self.end = start = end = 0
        elif start and (end - start <= _SHORT_REST or len(self.buffer) - end < _MAX_FRAME):
            n = end - start  # an incomplete frame: less than _MAX_FRAME bytes
            if start >= n:  # source and destination do not overlap
                self.buffer[:n] = self.view[start:end]
            else:
                self.buffer[:n] = bytes(self.view[start:end])
            self.start, self.end = 0, n
            end = n
        return self.view[end:]

    def buffer_updated(self, nbytes: int) -> None:
        self.end += nbytes
        self.client._buffer_received(self)

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost reports it

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.client._connection_lost(self, exc)

    @property
    def usable(self) -> bool:
        t = self.transport
        return t is not None and not t.is_closing() and not self.broken and not self.lost


class _TunnelPost(asyncio.Protocol):
    """The tunnel's POST half: we only write (base64); the server never answers on it."""

    def __init__(self, client: RtspClient) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        pass

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.client._connection_lost(self, exc)


# --- the client ------------------------------------------------------------------------------


class RtspClient:
    """One RTSP session with one camera (see the module docstring for the life cycle).

    ``uri`` may carry ``user:password@`` (taken out of every request URI and used for Basic or
    Digest MD5/SHA-256 answers); ``username``/``password`` override it. ``transport`` is
    ``"tcp"`` (RTP interleaved on the RTSP connection, ONVIF ``RTSP``), ``"udp"`` (ONVIF
    ``UDP``) or ``"http"`` (the Apple RTSP-over-HTTP tunnel, ONVIF ``HTTP``; ``http://`` URIs
    imply it). Nothing here retries a failed session: the caller owns reconnecting.
    """

    def __init__(
        self,
        uri: str,
        *,
        transport: str = "tcp",
        user_agent: str = DEFAULT_USER_AGENT,
        timeouts: Timeouts | None = None,
        quirks: Quirks | None = None,
        username: str | None = None,
        password: str | None = None,
        udp_port_range: tuple[int, int] | None = None,
        cname: str | None = None,
    ) -> None:
        bare, credentials = split_uri_credentials(uri)
        parts = urlsplit(bare)
        scheme = parts.scheme.lower()
        transport = transport.lower()
        if scheme in ("http", "rtsph"):
            transport = "http"
        elif scheme != "rtsp":
            raise ValueError(f"unsupported URI scheme {parts.scheme!r} (rtsp, rtsph or http)")
        if transport not in _TRANSPORTS:
            raise ValueError(f"transport {transport!r} is not one of {', '.join(_TRANSPORTS)}")
        if not parts.hostname:
            raise ValueError(f"URI {bare!r} has no host")
        self._host = parts.hostname
        try:
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"URI {bare!r}: {exc}") from None
        self._port = port or (80 if scheme == "http" else 554)
        if scheme != "rtsp":  # requests inside a tunnel still name an rtsp:// resource
            bare = "rtsp" + bare[len(parts.scheme) :]
        self._uri = bare
        self._transport = transport
        self._user_agent = user_agent
        self._timeouts = timeouts or Timeouts()
        self._quirks = quirks or Quirks()
        self._udp_port_range = udp_port_range
        if username is None and credentials is not None:
            username, password = credentials.username, credentials.password
        self._credentials = None if username is None else (username, password or "")
        self._auth: ClientAuthenticator | None = None
        self._reset_auth()
        self._ssrc = secrets.randbits(32)
        self._cname = cname or f"nvr-{self._ssrc:08x}@{socket.gethostname()}"

        self._conn: _RtspConnection | None = None
        self._post: _TunnelPost | None = None
        self._tunnel_answer: asyncio.Future[Response] | None = None
        self._cseq = 0
        self._pending: dict[int, asyncio.Future[Response]] = {}
        self._lock = asyncio.Lock()
        self._session_id: str | None = None
        self._session_timeout = self._timeouts.session_default
        self._presentation: Presentation | None = None
        self._tracks: list[Track] = []
        self._channels: list[Callable[[bytes, int, int], None] | None] = [None] * 256
        self._playing = False
        self._play_cseq: int | None = None
        self._play_answered = False
        self._early_packets: collections.deque[
            tuple[Callable[[bytes, int, int], None], bytes, int, int]
        ] = collections.deque()
        self._sink: RtpSink | None = None
        self._queue: PacketQueue | None = None
        self._deliver_rtp: Callable[[int, RtpPacket, int, int], None] = _drop_rtp
        self._deliver_sr: Callable[[int, SenderReport, int, int], None] = _drop_sr
        self._last_rtp = 0
        self._keepalive_method: str | None = self._quirks.keepalive_method
        self._maintainer: asyncio.Task[None] | None = None
        self._keepalive_task: asyncio.Task[None] | None = None
        self._ended = asyncio.Event()
        self._error: BaseException | None = None
        self._lost: RtspConnectionError | None = None  # connection loss nobody has seen yet
        self._closed = False
        self._noted: set[str] = set()
        self.stats = ClientStats()

    # --- properties ---------------------------------------------------------------------

    @property
    def uri(self) -> str:
        """The camera URI without credentials (after a redirect: the new one)."""
        return self._uri

    @property
    def transport(self) -> str:
        """``tcp``, ``udp`` or ``http``."""
        return self._transport

    @property
    def presentation(self) -> Presentation | None:
        """The DESCRIBE result, once :meth:`connect` succeeded."""
        return self._presentation

    @property
    def tracks(self) -> Sequence[Track]:
        """The set-up tracks; a delivery's ``track`` argument indexes this list."""
        return self._tracks

    @property
    def session_id(self) -> str | None:
        """The RTSP session id from SETUP."""
        return self._session_id

    @property
    def session_timeout(self) -> int:
        """The server's session timeout in seconds (60 if it did not say)."""
        return self._session_timeout

    @property
    def playing(self) -> bool:
        """True between the PLAY answer and the end of the session."""
        return self._playing and self._error is None and not self._closed

    @property
    def error(self) -> BaseException | None:
        """What ended the session, if it failed."""
        return self._error

    # --- context manager ----------------------------------------------------------------

    async def __aenter__(self) -> RtspClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- public operations --------------------------------------------------------------

    async def start(
        self,
        sink: RtpSink | None = None,
        *,
        streams: Iterable[int] | None = None,
        range: RangeValue | str | None = None,
    ) -> PlayInfo:
        """:meth:`connect`, :meth:`setup` and :meth:`play` in one call."""
        await self.connect()
        await self.setup(streams)
        return await self.play(sink, range=range)

    async def connect(self) -> Presentation:
        """Open the connection, send OPTIONS and DESCRIBE; follow one redirect."""
        if self._presentation is not None:
            return self._presentation
        redirected = False
        while True:
            await self._open()
            method = "OPTIONS"
            response = await self._request(method, self._uri, check=False)
            public: tuple[str, ...] = ()
            if response.status not in _REDIRECTS:
                if 200 <= response.status < 300:
                    public = self._parse_public(response)
                else:
                    self._note(
                        "options-failed",
                        "OPTIONS answered %d %s; going on with DESCRIBE",
                        response.status,
                        response.reason,
                    )
                method = "DESCRIBE"
                response = await self._request(
                    method, self._uri, {"Accept": "application/sdp"}, check=False
                )
            if response.status in _REDIRECTS:
                if redirected:
                    raise self._status_error(response, method, self._uri, "(second redirect)")
                self._redirect(response, method)
                redirected = True
                continue
            self._raise_for_status(response, method, self._uri)
            self._presentation = self._read_description(response, public)
            return self._presentation

    async def setup(self, streams: Iterable[int] | None = None) -> Sequence[Track]:
        """SETUP the given streams (indices into ``presentation.streams``; default: all)."""
        presentation = await self.connect()
        if self._tracks:
            raise RuntimeError("setup() was already done for this session")
        indices = range(len(presentation.streams)) if streams is None else list(streams)
        for position, stream_index in enumerate(indices):
            stream = presentation.streams[stream_index]
            track = Track(self, position, stream)
            self._tracks.append(track)
            await self._setup_track(track)
        if not self._tracks:
            raise ValueError("no stream selected")
        return self._tracks

    async def play(
        self,
        sink: RtpSink | None = None,
        *,
        range: RangeValue | str | None = None,
        require: str | Sequence[str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> PlayInfo:
        """PLAY the session; media then flows to ``sink`` (or to :meth:`packets`).

        ``range``/``require``/``headers`` are sent as given (none by default, which is what
        live cameras expect). Starts keep-alive, receiver reports and the stall watchdog.
        """
        if not self._tracks:
            await self.setup()
        presentation = self._presentation
        assert presentation is not None
        if sink is None:
            self._queue = PacketQueue()
            sink = self._queue
        self._sink = sink
        extra: dict[str, str] = dict(headers or {})
        if range is not None:
            extra["Range"] = range if isinstance(range, str) else format_range(range)
        if require:
            extra["Require"] = require if isinstance(require, str) else format_option_tags(require)
        response = await self._request("PLAY", presentation.control_url, extra)
        info = self._read_play(response)
        self._deliver_rtp = sink.on_rtp
        self._deliver_sr = sink.on_sender_report
        self._playing = True
        self._last_rtp = time.monotonic_ns()
        log.info(
            "%s: playing %d track(s) over %s, session %s (timeout %d s)",
            self._uri,
            len(self._tracks),
            self._transport,
            self._session_id,
            self._session_timeout,
        )
        self._flush_early()
        if self._error is None:
            self._maintainer = asyncio.get_running_loop().create_task(
                self._maintain(), name=f"rtsp-maintain {self._uri}"
            )
        return info

    def packets(self) -> PacketQueue:
        """The events of a session played without a sink, for ``async for``."""
        if self._queue is None:
            raise RuntimeError("packets() needs play() without a sink")
        return self._queue

    async def wait(self) -> None:
        """Wait for the session's end: return after :meth:`close`, raise what failed it."""
        await self._ended.wait()
        if self._error is not None:
            raise self._error

    def request_key_frame(self, track: int | None = None) -> int:
        """Ask the camera for a key frame with RTCP PLI (RFC 4585); returns packets sent.

        Without ``track`` every video track is asked. A track whose SSRC is not known yet
        (no packet and none announced) cannot be addressed and is skipped.
        """
        if track is None:
            targets = [t for t in self._tracks if t.stream.media == "video"]
        else:
            targets = [self._tracks[track]]
        sent = 0
        now_us = time.monotonic_ns() // 1000
        for t in targets:
            media_ssrc = t.ssrc if t.ssrc is not None else t.announced_ssrc
            if media_ssrc is None:
                continue
            # A compound packet with the RR first, as RFC 3550 §6.1 asks: strict receivers
            # discard a bare feedback message.
            data = self._receiver_report(t, now_us) + build_pli(self._ssrc, media_ssrc)
            if t._send_rtcp(data):
                sent += 1
        self.stats.key_frame_requests += sent
        return sent

    async def close(self) -> None:
        """TEARDOWN (best effort, bounded by ``Timeouts.teardown``) and close every socket."""
        if self._closed:
            return
        self._closed = True
        current = asyncio.current_task()
        for task in (self._maintainer, self._keepalive_task):
            if task is not None and task is not current and not task.done():
                task.cancel()
        try:
            await self._teardown()
        finally:
            self._shutdown()
            self._end(None)

    # --- connection handling ------------------------------------------------------------

    async def _open(self) -> None:
        """Connect the RTSP connection (two connections for the HTTP tunnel)."""
        loop = asyncio.get_running_loop()
        self._drop_connection()
        self._lost = None
        self._conn = await self._connect_tcp(lambda: _RtspConnection(self))
        if self._transport != "http":
            return
        cookie = secrets.token_hex(16)
        path = self._tunnel_path()
        get = Request(
            "GET",
            path,
            Headers(
                [
                    ("User-Agent", self._user_agent),
                    ("x-sessioncookie", cookie),
                    ("Accept", "application/x-rtsp-tunnelled"),
                    ("Pragma", "no-cache"),
                    ("Cache-Control", "no-cache"),
                ]
            ),
            version="HTTP/1.0",
        )
        self._tunnel_answer = loop.create_future()
        self._write_raw(get.serialize())
        try:
            async with asyncio.timeout(self._timeouts.response):
                answer = await self._tunnel_answer
        except TimeoutError:
            raise RtspTimeout(f"{self._uri}: no answer to the HTTP tunnel GET") from None
        finally:
            self._tunnel_answer = None
        if answer.status != 200:
            raise self._status_error(answer, "GET", path, "for the HTTP tunnel")
        post = await self._connect_tcp(lambda: _TunnelPost(self))
        head = (
            f"POST {path} HTTP/1.0\r\n"
            f"User-Agent: {self._user_agent}\r\n"
            f"x-sessioncookie: {cookie}\r\n"
            "Content-Type: application/x-rtsp-tunnelled\r\n"
            "Pragma: no-cache\r\n"
            "Cache-Control: no-cache\r\n"
            f"Content-Length: {_TUNNEL_CONTENT_LENGTH}\r\n"
            "Expires: Sun, 9 Jan 1972 00:00:00 GMT\r\n\r\n"
        )
        assert post.transport is not None
        post.transport.write(head.encode("ascii", "replace"))
        self._post = post

    def _tunnel_path(self) -> str:
        parts = urlsplit(self._uri)
        return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    async def _connect_tcp(self, factory: Callable[[], Any]) -> Any:
        loop = asyncio.get_running_loop()
        where = f"{self._host}:{self._port}"
        try:
            async with asyncio.timeout(self._timeouts.connect):
                _, protocol = await loop.create_connection(factory, self._host, self._port)
        except TimeoutError:
            raise RtspTimeout(
                f"{self._uri}: connecting to {where} timed out after {self._timeouts.connect} s"
            ) from None
        except ConnectionRefusedError as exc:
            raise RtspConnectionError(f"{self._uri}: connection to {where} refused") from exc
        except OSError as exc:
            raise RtspConnectionError(
                f"{self._uri}: cannot connect to {where}: {exc.strerror or exc}"
            ) from exc
        return protocol

    def _write_raw(self, data: bytes) -> bool:
        conn = self._conn
        if conn is None or conn.transport is None or not conn.usable:
            return False
        conn.transport.write(data)
        return True

    def _write(self, data: bytes) -> bool:
        """Send bytes to the server (base64 over the POST half when tunnelling)."""
        if self._transport != "http":
            return self._write_raw(data)
        post = self._post
        if post is None or post.lost or post.transport is None or post.transport.is_closing():
            return False
        post.transport.write(base64.b64encode(data))
        return True

    def _buffer_received(self, conn: _RtspConnection) -> None:
        """Bytes landed in the connection's receive buffer: the per-packet path.

        While the parser is idle, whole ``$`` frames are sliced straight out of the buffer and
        dispatched in one tight loop (no parser events, no intermediate copies); from the first
        byte that is not a whole frame on (an RTSP message, a frame cut by the read is simply
        left for the next read), everything goes through the parser until it is idle again.
        """
        buf = conn.buffer
        pos = conn.start
        end = conn.end
        if conn.parser.idle:
            view = conn.view
            channels = self._channels
            wall_us = mono_ns = 0
            while end - pos >= 4:
                if buf[pos] != 0x24:
                    break
                stop = pos + 4 + ((buf[pos + 2] << 8) | buf[pos + 3])
                if stop > end:
                    conn.start = pos
                    return
                if not wall_us:
                    wall_us = time.time_ns() // 1000
                    mono_ns = time.monotonic_ns()
                handler = channels[buf[pos + 1]]
                try:
                    if handler is not None:
                        handler(bytes(view[pos + 4 : stop]), wall_us, mono_ns)
                    else:
                        self._unassigned(buf[pos + 1])
                except Exception as exc:  # the sink's own failure ends the session, unchanged
                    conn.start = stop
                    self._fail(exc)
                    return
                pos = stop
            if end - pos < 4 and (pos == end or buf[pos] == 0x24):
                conn.start = pos  # nothing, or the start of a frame header
                return
        conn.start = conn.end = 0
        self._data_received(conn, conn.view[pos:end])

    def _data_received(self, conn: _RtspConnection, data: bytes | memoryview) -> None:
        """Bytes for the parser: RTSP messages, and frames while a message is incomplete."""
        parser = conn.parser
        parser.feed(data)
        channels = self._channels
        wall_us = mono_ns = 0
        while True:
            try:
                event = parser.next_event()
            except ProtocolError as exc:
                conn.broken = True
                error = RtspProtocolError(f"{self._uri}: malformed data from the camera: {exc}")
                error.__cause__ = exc
                self._fail(error)
                if conn.transport is not None:
                    conn.transport.abort()
                return
            if event is None:
                rest = parser.take_partial_frame()  # back to the fast path of _buffer_received
                if rest:
                    n = len(rest)
                    conn.buffer[:n] = rest
                    conn.start, conn.end = 0, n
                return
            try:
                if type(event) is InterleavedFrame:
                    if not wall_us:
                        wall_us = time.time_ns() // 1000
                        mono_ns = time.monotonic_ns()
                    handler = channels[event.channel]
                    if handler is not None:
                        handler(event.payload, wall_us, mono_ns)
                    else:
                        self._unassigned(event.channel)
                else:
                    self._on_message(event)
            except Exception as exc:  # the sink's own failure ends the session, unchanged
                self._fail(exc)
                return

    def _connection_lost(self, conn: object, exc: Exception | None) -> None:
        if self._closed:
            return
        if conn is not self._conn and conn is not self._post:
            return  # a connection given up for a redirect
        if self._error is not None:
            return
        what = "tunnel POST connection" if conn is self._post else "connection"
        if exc is None:
            error = RtspConnectionError(f"{self._uri}: the camera closed the {what}")
        else:
            error = RtspConnectionError(f"{self._uri}: {what} lost: {exc}")
            error.__cause__ = exc
        if not self._playing and not self._pending:
            # Nobody is waiting: servers often hang up right after a redirect, which
            # connect() follows on a new connection. The next request reports it otherwise.
            self._lost = error
            return
        self._fail(error)

    def _on_message(self, message: Request | Response) -> None:
        if isinstance(message, Request):
            self._answer_server_request(message)
            return
        if message.version.startswith("HTTP/"):
            waiter = self._tunnel_answer
            if waiter is not None and not waiter.done():
                waiter.set_result(message)
            else:
                self._note("stray-http", "ignoring an unexpected HTTP response")
            return
        try:
            cseq = message.cseq
        except ProtocolError:
            cseq = None
        future = self._pending.pop(cseq, None) if cseq is not None else None
        if future is None and cseq is None and len(self._pending) == 1:
            self._note("no-cseq", "the camera answers without CSeq; matching by order")
            cseq, future = self._pending.popitem()
        if future is None:
            self._note("stray-response", "ignoring a response to no pending request")
            return
        if cseq == self._play_cseq and 200 <= message.status < 300:
            self._play_answered = True  # later packets are not "early", whatever the quirk
        if not future.done():
            future.set_result(message)

    def _answer_server_request(self, request: Request) -> None:
        """Servers may ping clients (GET_PARAMETER/OPTIONS); answer so they do not hang up."""
        headers = Headers()
        cseq = request.headers.get("CSeq")
        if cseq is not None:
            headers.add("CSeq", cseq)
        if self._session_id is not None:
            headers.add("Session", self._session_id)
        status = 200 if request.method in ("OPTIONS", "GET_PARAMETER", "SET_PARAMETER") else 501
        if status != 200:
            self._note(f"server-{request.method}", "refusing server request %s", request.method)
        self._write(Response(status, headers=headers).serialize())

    def _unassigned(self, channel: int) -> None:
        self.stats.unassigned_frames += 1
        if not self._quirks.drop_unassigned_channels:
            raise RtspProtocolError(
                f"{self._uri}: data on unassigned interleaved channel {channel}"
            )
        self._note(
            f"unassigned-{channel}", "dropping data on unassigned interleaved channel %d", channel
        )

    # --- requests -----------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        uri: str,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
        *,
        check: bool = True,
        timeout: float | None = None,
    ) -> Response:
        """Send a request and wait for its answer; a 401 is retried once with credentials.

        With ``check`` a non-2xx final answer raises :class:`RtspStatusError`.
        """
        async with self._lock:
            for attempt in (0, 1):
                response = await self._exchange(method, uri, headers, body, timeout)
                if response.status != 401:
                    break
                if attempt == 0 and self._answer_challenge(response):
                    self.stats.auth_retries += 1
                    continue
                raise self._auth_failed(response, method, uri)
        self._check_session(response, method)
        if check:
            self._raise_for_status(response, method, uri)
        return response

    async def _exchange(
        self,
        method: str,
        uri: str,
        extra: Mapping[str, str] | None,
        body: bytes,
        timeout: float | None,
    ) -> Response:
        conn = self._conn
        if conn is None or not conn.usable:
            raise self._error or self._lost or RtspConnectionError(f"{self._uri}: not connected")
        self._cseq += 1
        cseq = self._cseq
        try:
            headers = Headers([("CSeq", str(cseq)), ("User-Agent", self._user_agent)])
            if self._auth is not None:
                authorization = self._auth.authorization(method, uri, body)
                if authorization is not None:
                    headers.add("Authorization", authorization)
            if self._session_id is not None and method != "DESCRIBE":
                headers.add("Session", self._session_id)
            for name, value in (extra or {}).items():
                headers.set(name, value)
            data = Request(method, uri, headers, body).serialize()
        except ProtocolError as exc:  # e.g. a control URL from the SDP with spaces in it
            raise RtspProtocolError(f"{self._uri}: cannot send {method} {uri!r}: {exc}") from exc
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._pending[cseq] = future
        if method == "PLAY":
            self._play_cseq = cseq
        self.stats.requests += 1
        if not self._write(data):
            self._pending.pop(cseq, None)
            raise self._error or self._lost or RtspConnectionError(f"{self._uri}: not connected")
        limit = self._timeouts.response if timeout is None else timeout
        try:
            async with asyncio.timeout(limit):
                return await future
        except TimeoutError:
            raise RtspTimeout(f"{self._uri}: no answer to {method} within {limit} s") from None
        finally:
            self._pending.pop(cseq, None)

    def _answer_challenge(self, response: Response) -> bool:
        """Take a 401's challenges; True if a retry with credentials may succeed."""
        if self._auth is None:
            return False
        try:
            return self._auth.handle_challenges(response.headers.get_all("WWW-Authenticate"))
        except ProtocolError as exc:
            raise RtspProtocolError(f"{self._uri}: malformed WWW-Authenticate: {exc}") from exc

    def _auth_failed(self, response: Response, method: str, uri: str) -> RtspAuthFailed:
        if self._credentials is None:
            why = "the camera wants credentials and none were given"
        elif self._auth is not None and self._auth.challenge is None:
            offered = ", ".join(
                v.split(" ", 1)[0] for v in response.headers.get_all("WWW-Authenticate")
            )
            why = f"no supported authentication scheme offered ({offered or 'none'})"
        else:
            why = "credentials rejected"
        return RtspAuthFailed(
            f"{self._uri}: {method} unauthorized: {why}",
            status=response.status,
            reason=response.reason,
            method=method,
            uri=uri,
        )

    def _status_error(
        self, response: Response, method: str, uri: str, context: str = ""
    ) -> RtspStatusError:
        suffix = f" {context}" if context else ""
        return RtspStatusError(
            f"{self._uri}: {method} answered {response.status} {response.reason}{suffix}",
            status=response.status,
            reason=response.reason,
            method=method,
            uri=uri,
        )

    def _raise_for_status(self, response: Response, method: str, uri: str) -> None:
        if not 200 <= response.status < 300:
            raise self._status_error(response, method, uri)

    def _check_session(self, response: Response, method: str) -> None:
        value = response.headers.get("Session")
        if value is None:
            return
        try:
            session = parse_session(value)
        except ProtocolError as exc:
            if method == "SETUP" and self._session_id is None:
                raise RtspProtocolError(f"{self._uri}: bad Session header: {exc}") from exc
            self._note("bad-session", "ignoring malformed Session header %r", value)
            return
        if self._session_id is None:
            if method != "SETUP":
                return  # only SETUP creates a session
            self._session_id = session.id
        elif session.id != self._session_id:
            if not self._quirks.ignore_session_id_change:
                raise RtspProtocolError(
                    f"{self._uri}: {method} answer changed the session id "
                    f"from {self._session_id!r} to {session.id!r}"
                )
            self._note(
                "session-change",
                "%s answer changed the session id from %r to %r; keeping the first",
                method,
                self._session_id,
                session.id,
            )
            return
        if session.timeout:
            self._session_timeout = session.timeout

    def _reset_auth(self) -> None:
        if self._credentials is None:
            self._auth = None
        else:
            user, password = self._credentials
            self._auth = ClientAuthenticator(
                user, password, allow_basic=self._quirks.allow_basic_auth
            )

    def _redirect(self, response: Response, method: str) -> None:
        location = response.headers.get("Location")
        if not location:
            raise self._status_error(response, method, self._uri, "without Location")
        target, credentials = split_uri_credentials(resolve_control(location, self._uri))
        parts = urlsplit(target)
        if parts.scheme.lower() != "rtsp" or not parts.hostname:
            raise self._status_error(response, method, self._uri, f"to {target!r}")
        log.info("%s: redirected to %s", self._uri, target)
        if credentials is not None:
            self._credentials = (credentials.username, credentials.password or "")
        self._reset_auth()
        self._drop_connection()
        self._uri = target
        self._host = parts.hostname
        self._port = parts.port or 554

    def _drop_connection(self) -> None:
        for conn in (self._conn, self._post):
            if conn is not None and conn.transport is not None:
                conn.transport.abort()
        self._conn = None
        self._post = None

    # --- DESCRIBE / SETUP / PLAY answers ------------------------------------------------

    def _parse_public(self, response: Response) -> tuple[str, ...]:
        value = response.headers.get("Public")
        if value is None:
            return ()
        try:
            return tuple(m.upper() for m in parse_method_list(value))
        except ProtocolError:
            self._note("bad-public", "ignoring malformed Public header %r", value)
            return ()

    def _read_description(self, response: Response, public: tuple[str, ...]) -> Presentation:
        headers = response.headers
        try:
            content_base = headers.get("Content-Base")
            if content_base is not None:
                content_base = parse_content_base(content_base)
            location = headers.get("Content-Location")
            if location is not None:
                location = resolve_control(location, self._uri)
            base_url, _ = split_uri_credentials(choose_base_url(self._uri, content_base, location))
            if not response.body:
                raise RtspProtocolError(f"{self._uri}: DESCRIBE answer has no body")
            content_type = (headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
            if content_type != "application/sdp":
                self._note("content-type", "DESCRIBE body has Content-Type %r", content_type)
            sdp = parse_sdp(response.body)
            streams = tuple(
                media_streams(sdp, base_url, append_control=self._quirks.append_control)
            )
            control_url = session_control_url(sdp, base_url, append=self._quirks.append_control)
        except ProtocolError as exc:
            raise RtspProtocolError(f"{self._uri}: unusable DESCRIBE answer: {exc}") from exc
        if sdp.warnings:
            self._note("sdp-warnings", "SDP deviations tolerated: %s", "; ".join(sdp.warnings))
        if not streams:
            raise RtspProtocolError(f"{self._uri}: the SDP describes no RTP stream")
        return Presentation(
            uri=self._uri,
            base_url=base_url,
            control_url=control_url,
            sdp=sdp,
            streams=streams,
            public=public,
            server=headers.get("Server"),
        )

    async def _setup_track(self, track: Track) -> None:
        url = track.stream.control_url
        n = track.index
        peer_host = self._host
        if self._transport == "udp":
            assert self._conn is not None and self._conn.transport is not None
            peer = self._conn.transport.get_extra_info("peername")
            family = socket.AF_INET6 if peer and ":" in peer[0] else socket.AF_INET
            if peer:
                peer_host = peer[0]
            track.udp_sources = frozenset((peer_host,))
            try:
                track.udp = await open_port_pair(
                    self._udp_handler(track, rtcp=False),
                    self._udp_handler(track, rtcp=True),
                    on_error=self._udp_error,
                    family=family,
                    port_range=self._udp_port_range,
                )
            except OSError as exc:
                raise RtspConnectionError(f"{self._uri}: cannot bind UDP ports: {exc}") from exc
            offer = TransportSpec(delivery="unicast", client_port=track.udp.ports)
        else:
            offer = TransportSpec(
                lower_transport="TCP", delivery="unicast", interleaved=(2 * n, 2 * n + 1)
            )
        response = await self._request("SETUP", url, {"Transport": format_transport(offer)})
        value = response.headers.get("Transport")
        try:
            answer = parse_transport(value)[0] if value else offer
        except ProtocolError as exc:
            raise RtspProtocolError(f"{self._uri}: bad Transport in SETUP answer: {exc}") from exc
        if not value:
            self._note("no-transport", "SETUP answer has no Transport; assuming our offer")
        if self._session_id is None:
            self._note("no-session", "SETUP answer has no Session header")
        track.transport = answer
        track.announced_ssrc = answer.ssrc
        if answer.is_multicast:
            raise RtspProtocolError(f"{self._uri}: the camera answered SETUP with multicast")
        if self._transport == "udp":
            if answer.is_tcp:
                raise RtspProtocolError(f"{self._uri}: UDP was asked, the camera chose TCP")
            self._setup_udp_peer(track, answer, peer_host)
        else:
            if not answer.is_tcp and value:
                raise RtspProtocolError(f"{self._uri}: TCP was asked, the camera chose UDP")
            self._setup_channels(track, answer.interleaved or offer.interleaved)

    def _setup_channels(self, track: Track, pair: tuple[int, int | None] | None) -> None:
        assert pair is not None
        rtp = pair[0]
        rtcp = pair[1] if pair[1] is not None else rtp + 1
        for channel in (rtp, rtcp):
            if channel > 255 or self._channels[channel] is not None:
                raise RtspProtocolError(
                    f"{self._uri}: SETUP assigned interleaved channel {channel} twice"
                )
        track.rtp_channel = rtp
        track.rtcp_channel = rtcp
        self._channels[rtp] = track.receive_rtp
        self._channels[rtcp] = track.receive_rtcp

    def _setup_udp_peer(self, track: Track, answer: TransportSpec, peer_host: str) -> None:
        """Where the camera's datagrams may come from, and where our RTCP goes."""
        if answer.source and track.udp_sources is not None:
            try:
                source = str(ipaddress.ip_address(answer.source))
            except ValueError:
                self._note("source-name", "ignoring non-address Transport source %r", answer.source)
            else:  # behind NAT the datagrams may come from either address
                track.udp_sources = track.udp_sources | {source}
        if answer.server_port is not None:
            low, high = answer.server_port
            track.rtcp_peer = (peer_host, high if high is not None else low + 1)
        else:
            self._note(
                f"no-server-port-{track.index}",
                "track %d: no server_port; RTCP goes where the camera's RTCP comes from",
                track.index,
            )

    def _udp_handler(self, track: Track, *, rtcp: bool) -> Callable[[bytes, Any], None]:
        receive = track.receive_rtcp if rtcp else track.receive_rtp
        quirks = self._quirks
        stats = self.stats

        def on_datagram(data: bytes, address: Any) -> None:
            sources = track.udp_sources
            if sources is not None and address[0] not in sources and not quirks.udp_any_source:
                stats.foreign_datagrams += 1
                self._note("udp-source", "dropping UDP datagrams from %s (and others)", address[0])
                return
            if rtcp and track.rtcp_peer is None:
                track.rtcp_peer = address
            try:
                receive(data, time.time_ns() // 1000, time.monotonic_ns())
            except Exception as exc:  # the sink's failure ends the session
                self._fail(exc)

        return on_datagram

    def _udp_error(self, exc: Exception) -> None:
        self._note("udp-error", "UDP socket error: %s", exc)

    def _read_play(self, response: Response) -> PlayInfo:
        headers = response.headers
        play_range: RangeValue | None = None
        value = headers.get("Range")
        if value:
            try:
                play_range = parse_range(value)
            except ProtocolError:
                self._note("bad-range", "ignoring unparsable Range %r in PLAY answer", value)
        entries: tuple[RtpInfo, ...] = ()
        value = headers.get("RTP-Info")
        if value:
            try:
                entries = parse_rtp_info(value)
            except ProtocolError:
                self._note("bad-rtp-info", "ignoring unparsable RTP-Info %r", value)
        for track, entry in zip(self._tracks, self._match_rtp_info(entries), strict=True):
            track.rtp_info = entry
        return PlayInfo(play_range, tuple(t.rtp_info for t in self._tracks), headers)

    def _match_rtp_info(self, entries: Sequence[RtpInfo]) -> list[RtpInfo | None]:
        """RTP-Info entries by track: by URL (exact, then by path), else by position."""
        result: list[RtpInfo | None] = [None] * len(self._tracks)
        if not entries:
            return result

        def path(url: str) -> str:
            return urlsplit(url).path.rstrip("/")

        unmatched = list(entries)
        for key in (lambda u: u, path):
            for track in self._tracks:
                if result[track.index] is not None:
                    continue
                want = key(track.stream.control_url)
                for entry in unmatched:
                    if key(entry.url) == want:
                        result[track.index] = entry
                        unmatched.remove(entry)
                        break
        if all(r is None for r in result) and len(entries) == len(self._tracks):
            self._note("rtp-info-order", "RTP-Info URLs match no track; pairing them by order")
            return list(entries)
        return result

    # --- delivery -----------------------------------------------------------------------

    def _early(
        self, handler: Callable[[bytes, int, int], None], data: bytes, wall_us: int, mono_ns: int
    ) -> None:
        """A packet before the PLAY answer: keep it for later, or drop it (quirk)."""
        if self._error is not None or self._closed:
            return
        quirks = self._quirks
        keep = quirks.buffer_early_rtp or self._play_answered
        if not keep or len(self._early_packets) >= quirks.max_early_packets:
            self.stats.early_dropped += 1
            self._note("early-dropped", "dropping RTP/RTCP that arrives before the PLAY answer")
            return
        if not self._play_answered:
            self.stats.early_packets += 1
        self._early_packets.append((handler, data, wall_us, mono_ns))

    def _flush_early(self) -> None:
        early = self._early_packets
        if early:
            self._note(
                "early", "%d packets arrived before the PLAY answer; delivering them", len(early)
            )
        while early and self._error is None:
            handler, data, wall_us, mono_ns = early.popleft()
            try:
                handler(data, wall_us, mono_ns)
            except Exception as exc:
                self._fail(exc)
        early.clear()

    # --- maintenance: keep-alive, receiver reports, watchdog ----------------------------

    def _keepalive_interval(self) -> float:
        if self._timeouts.keepalive is not None:
            return self._timeouts.keepalive
        return max(self._session_timeout / 2, 0.5)

    async def _maintain(self) -> None:
        """One task per session: the timers that do not run per packet."""
        t = self._timeouts
        now = time.monotonic()
        next_keepalive = now + self._keepalive_interval()
        next_report = now + min(1.0, t.rtcp_interval)
        stall_ns = int(t.stall * 1e9)
        try:
            while self._error is None and not self._closed:
                now_ns = time.monotonic_ns()
                now = now_ns / 1e9
                idle_ns = now_ns - self._last_rtp
                if idle_ns >= stall_ns:
                    self._fail(RtspStalled(f"{self._uri}: no RTP for {idle_ns / 1e9:.1f} s"))
                    return
                if self._quirks.send_receiver_reports and now >= next_report:
                    self._send_receiver_reports()
                    next_report = now + t.rtcp_interval * random.uniform(0.75, 1.25)
                if now >= next_keepalive:
                    next_keepalive = now + self._keepalive_interval()
                    task = self._keepalive_task
                    if task is None or task.done():
                        self._keepalive_task = asyncio.get_running_loop().create_task(
                            self._keepalive(), name=f"rtsp-keepalive {self._uri}"
                        )
                wake = min(next_keepalive, (self._last_rtp + stall_ns) / 1e9)
                if self._quirks.send_receiver_reports:
                    wake = min(wake, next_report)
                await asyncio.sleep(max(wake - time.monotonic(), 0.01))
        except Exception as exc:
            self._fail(exc)

    async def _keepalive(self) -> None:
        presentation = self._presentation
        assert presentation is not None
        method = self._keepalive_method
        if method is None:
            method = "GET_PARAMETER" if "GET_PARAMETER" in presentation.public else "OPTIONS"
        try:
            response = await self._request(method, presentation.control_url, check=False)
        except RtspTimeout:
            # RTP still flowing is what matters; the watchdog catches a dead camera.
            self._note("keepalive-timeout", "no answer to the %s keep-alive", method)
            return
        except Exception as exc:
            self._fail(exc)  # auth failure; or a no-op when the session already failed
            return
        if 200 <= response.status < 300:
            self.stats.keepalives += 1
        elif response.status == 454:
            self._fail(self._status_error(response, method, presentation.control_url))
        else:
            if method == "GET_PARAMETER" and self._quirks.keepalive_method is None:
                self._keepalive_method = "OPTIONS"
            self._note(
                f"keepalive-{response.status}",
                "%s keep-alive answered %d %s",
                method,
                response.status,
                response.reason,
            )

    def _receiver_report(self, track: Track, now_us: int) -> bytes:
        block = track.stats.report_block(now_us) if track.stats is not None else None
        return build_receiver_report(self._ssrc, [block] if block else [], cname=self._cname)

    def _send_receiver_reports(self) -> None:
        now_us = time.monotonic_ns() // 1000
        for track in self._tracks:
            if track._send_rtcp(self._receiver_report(track, now_us)):
                self.stats.receiver_reports += 1

    # --- ending -------------------------------------------------------------------------

    def _fail(self, error: BaseException) -> None:
        """End the session with ``error`` (first error wins); stops delivery at once."""
        if self._error is not None or self._closed:
            return
        self._error = error
        log.info("%s: session failed: %s", self._uri, error)
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)
        self._pending.clear()
        waiter = self._tunnel_answer
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        self._end(error)

    def _end(self, error: BaseException | None) -> None:
        self._deliver_rtp = _drop_rtp
        self._deliver_sr = _drop_sr
        self._channels = [_drop_frame] * 256  # no parsing for a session that is over
        self._early_packets.clear()
        sink = self._sink
        self._sink = None
        if sink is not None:
            on_close = getattr(sink, "on_close", None)
            if on_close is not None:
                on_close(error)
        self._ended.set()

    async def _teardown(self) -> None:
        """Best-effort TEARDOWN, on the live connection or, for UDP, on a fresh one."""
        presentation = self._presentation
        if self._session_id is None or presentation is None:
            return
        conn = self._conn
        try:
            async with asyncio.timeout(self._timeouts.teardown):
                if conn is None or not conn.usable:
                    if self._transport != "udp" or not self._quirks.teardown_stale_sessions:
                        return
                    await self._open()
                await self._request("TEARDOWN", presentation.control_url, check=False)
        except (RtspClientError, TimeoutError, OSError) as exc:
            log.debug("%s: TEARDOWN failed: %s", self._uri, exc)

    def _shutdown(self) -> None:
        self._drop_connection()
        for track in self._tracks:
            if track.udp is not None:
                track.udp.close()
        closed = RtspConnectionError(f"{self._uri}: the client was closed")
        for future in self._pending.values():
            if not future.done():
                future.set_exception(closed)
        self._pending.clear()

    # --- logging ------------------------------------------------------------------------

    def _note(self, key: str, message: str, *args: object) -> None:
        """Log a tolerated deviation once per session (never per packet)."""
        if key in self._noted:
            return
        self._noted.add(key)
        log.warning("%s: " + message, self._uri, *args)
