"""RTSP 1.0 messages and a sans-IO byte-stream parser shared by the client and the server.

The camera client and the replay server both read one TCP byte stream in which RTSP messages
(requests *and* responses: servers may send GET_PARAMETER/SET_PARAMETER too) are mixed with
``$``-framed interleaved RTP/RTCP packets (RFC 2326 §10.12). :class:`RtspParser` turns that
stream into :class:`Request`, :class:`Response` and :class:`InterleavedFrame` events; it never
touches a socket, so the asyncio shells, the HTTP tunnel and the WebSocket path all feed it the
same way. The interleaved path runs per RTP packet, so it avoids regexes and buffer re-copies.

Header values are decoded as UTF-8 with ``surrogateescape``: valid UTF-8 reads naturally and any
other byte survives a parse/serialise round trip instead of raising ``UnicodeDecodeError``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Final, TypeAlias

from nvr.protocol.errors import ProtocolError
from nvr.protocol.rtsp_headers import is_token, parse_cseq

__all__ = [
    "DEFAULT_MAX_BODY_SIZE",
    "DEFAULT_MAX_HEADER_SIZE",
    "RTSP_VERSION",
    "STATUS_REASONS",
    "BodyTooLargeError",
    "Event",
    "HeaderTooLargeError",
    "Headers",
    "IncompleteMessageError",
    "InterleavedFrame",
    "Request",
    "Response",
    "RtspError",
    "RtspParseError",
    "RtspParser",
    "encode_interleaved",
    "interleaved_header",
]

RTSP_VERSION: Final = "RTSP/1.0"
DEFAULT_MAX_HEADER_SIZE: Final = 16 * 1024
DEFAULT_MAX_BODY_SIZE: Final = 256 * 1024
MAX_INTERLEAVED_PAYLOAD: Final = 0xFFFF

STATUS_REASONS: Final[Mapping[int, str]] = {
    100: "Continue",
    200: "OK",
    201: "Created",
    250: "Low on Storage Space",
    300: "Multiple Choices",
    301: "Moved Permanently",
    302: "Moved Temporarily",
    303: "See Other",
    305: "Use Proxy",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    410: "Gone",
    411: "Length Required",
    412: "Precondition Failed",
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    415: "Unsupported Media Type",
    451: "Parameter Not Understood",
    452: "Conference Not Found",
    453: "Not Enough Bandwidth",
    454: "Session Not Found",
    455: "Method Not Valid in This State",
    456: "Header Field Not Valid for Resource",
    457: "Invalid Range",
    458: "Parameter Is Read-Only",
    459: "Aggregate Operation Not Allowed",
    460: "Only Aggregate Operation Allowed",
    461: "Unsupported Transport",
    462: "Destination Unreachable",
    463: "Key Management Failure",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    505: "RTSP Version Not Supported",
    551: "Option Not Supported",
}


class RtspError(ProtocolError):
    """Base of the RTSP message errors (also raised for unserialisable messages)."""


class RtspParseError(RtspError):
    """The byte stream is not valid RTSP; the connection cannot be resynchronised."""


class HeaderTooLargeError(RtspParseError):
    """Start line, headers and blank line exceed ``max_header_size`` (answer 413/400)."""


class BodyTooLargeError(RtspParseError):
    """Content-Length exceeds the parser's ``max_body_size`` (answer 413)."""


class IncompleteMessageError(RtspParseError):
    """The stream ended in the middle of a message or an interleaved frame."""


def _show(text: str | bytes) -> str:
    """Bounded repr of offending input for error messages."""
    return repr(text) if len(text) <= 60 else repr(text[:60]) + "…"


# --- headers ---------------------------------------------------------------------------------


def _check_field(name: str, value: str) -> None:
    if not is_token(name):
        raise RtspError(f"invalid header name {_show(name)}")
    if "\r" in value or "\n" in value or "\0" in value:
        raise RtspError(f"header {name}: line break or NUL in value {_show(value)}")


class Headers:
    """Ordered, case-insensitive multi-dict of header fields.

    Order and repeated fields are kept because RTSP needs both (several ``WWW-Authenticate``
    challenges in preference order). Lookups ignore case; names keep the case they came with.
    Iterating yields ``(name, value)`` pairs.
    """

    __slots__ = ("_fields",)

    def __init__(self, fields: Iterable[tuple[str, str]] | Mapping[str, str] | None = None):
        self._fields: list[tuple[str, str, str]] = []  # (lower name, name, value)
        if fields is not None:
            pairs = fields.items() if isinstance(fields, Mapping) else fields
            for name, value in pairs:
                self.add(name, value)

    def add(self, name: str, value: str) -> None:
        """Append a field (repeats allowed)."""
        _check_field(name, value)
        self._fields.append((name.lower(), name, value))

    def set(self, name: str, value: str) -> None:
        """Replace every field of this name by one, at the position of the first."""
        _check_field(name, value)
        lower = name.lower()
        for i, (key, _, _) in enumerate(self._fields):
            if key == lower:
                self._fields[i] = (lower, name, value)
                self._fields[i + 1 :] = [f for f in self._fields[i + 1 :] if f[0] != lower]
                return
        self._fields.append((lower, name, value))

    def get(self, name: str, default: str | None = None) -> str | None:
        """First value of the field, or ``default``."""
        lower = name.lower()
        for key, _, value in self._fields:
            if key == lower:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        """Every value of the field, in order."""
        lower = name.lower()
        return [value for key, _, value in self._fields if key == lower]

    def remove(self, name: str) -> int:
        """Drop every field of this name; returns how many there were."""
        lower = name.lower()
        before = len(self._fields)
        self._fields = [f for f in self._fields if f[0] != lower]
        return before - len(self._fields)

    def items(self) -> list[tuple[str, str]]:
        """All ``(name, value)`` pairs in order."""
        return [(name, value) for _, name, value in self._fields]

    def copy(self) -> Headers:
        """A shallow copy that can be changed independently."""
        clone = Headers()
        clone._fields = list(self._fields)
        return clone

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __setitem__(self, name: str, value: str) -> None:
        self.set(name, value)

    def __delitem__(self, name: str) -> None:
        if not self.remove(name):
            raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        lower = name.lower()
        return any(key == lower for key, _, _ in self._fields)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return ((name, value) for _, name, value in self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return [(k, v) for k, _, v in self._fields] == [(k, v) for k, _, v in other._fields]

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Headers({self.items()!r})"


# --- messages --------------------------------------------------------------------------------


def _encode(text: str, what: str) -> bytes:
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise RtspError(f"{what}: cannot encode {_show(text)}") from None


def _serialize(start_line: str, headers: Headers, body: bytes, version: str) -> bytes:
    """Start line, headers (adding Content-Length when a body needs it), blank line, body.

    An ``HTTP/x.y`` message's Content-Length is nominal (tunnel POST) or announces data that is
    not RTSP framing, as :class:`RtspParser` reads it, so only RTSP messages must match it.
    """
    lines = [start_line]
    lines.extend(f"{name}: {value}" for name, value in headers)
    declared = headers.get_all("Content-Length")
    if declared:
        mismatch = any(_declared_length(value) != len(body) for value in declared)
        if mismatch and not version.startswith("HTTP/"):
            raise RtspError(f"Content-Length {declared} does not match a {len(body)}-byte body")
    elif body:
        lines.append(f"Content-Length: {len(body)}")
    lines.append("\r\n")
    return _encode("\r\n".join(lines), "message head") + body


def _declared_length(value: str) -> int | None:
    """A Content-Length value as a number, None if it is not one."""
    text = value.strip(" \t")
    if not text or len(text) > 18 or not (text.isascii() and text.isdigit()):
        return None
    return int(text)


def _check_version(version: str) -> None:
    proto, slash, number = version.partition("/")
    major, dot, minor = number.partition(".")
    if (
        proto not in ("RTSP", "HTTP")
        or not slash
        or not dot
        or not (major.isascii() and major.isdigit() and len(major) == 1)
        or not (minor.isascii() and minor.isdigit() and len(minor) == 1)
    ):
        raise RtspParseError(f"bad protocol version {_show(version)}")


def _check_uri(uri: str) -> None:
    if not uri or any(c <= " " or c == "\x7f" for c in uri):
        raise RtspParseError(f"bad request URI {_show(uri)}")


class _Message:
    """What requests and responses share: a :class:`Headers` (a plain mapping given to the
    constructor is converted), the CSeq, and serialisation around the start line."""

    __slots__ = ()
    headers: Headers
    body: bytes
    version: str

    def __post_init__(self) -> None:
        if not isinstance(self.headers, Headers):
            self.headers = Headers(self.headers)

    @property
    def cseq(self) -> int | None:
        """The CSeq header as an integer (None when absent); HeaderError if malformed."""
        value = self.headers.get("CSeq")
        return None if value is None else parse_cseq(value)

    def serialize(self) -> bytes:
        """The message as wire bytes (CRLF line ends); RtspError if it cannot be sent."""
        try:
            start = self._start_line()
            _check_version(self.version)
        except RtspParseError as exc:
            raise RtspError(str(exc)) from None
        return _serialize(start, self.headers, self.body, self.version)

    __bytes__ = serialize

    def _start_line(self) -> str:
        """The checked request or status line."""
        raise NotImplementedError


@dataclass(slots=True)
class Request(_Message):
    """An RTSP request (or, with an HTTP version, a tunnel/WebSocket opening request)."""

    method: str
    uri: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    version: str = RTSP_VERSION

    def _start_line(self) -> str:
        if not is_token(self.method):
            raise RtspError(f"bad method {_show(self.method)}")
        _check_uri(self.uri)
        return f"{self.method} {self.uri} {self.version}"


@dataclass(slots=True)
class Response(_Message):
    """An RTSP response; an empty ``reason`` is filled in from the status code."""

    status: int
    reason: str = ""
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    version: str = RTSP_VERSION

    def __post_init__(self) -> None:
        _Message.__post_init__(self)
        if not self.reason:
            self.reason = STATUS_REASONS.get(self.status, "")

    def _start_line(self) -> str:
        if not 100 <= self.status <= 999:
            raise RtspError(f"bad status code {self.status}")
        if "\r" in self.reason or "\n" in self.reason or "\0" in self.reason:
            raise RtspError(f"bad reason phrase {_show(self.reason)}")
        return f"{self.version} {self.status} {self.reason}"


@dataclass(slots=True)
class InterleavedFrame:
    """One ``$``-framed packet: channel (even = RTP, odd = RTCP by convention) and payload."""

    channel: int
    payload: bytes

    def serialize(self) -> bytes:
        """The frame as wire bytes."""
        return encode_interleaved(self.channel, self.payload)

    __bytes__ = serialize


Event: TypeAlias = Request | Response | InterleavedFrame

_FRAME_HEADER: Final = struct.Struct(">BBH")


def interleaved_header(channel: int, length: int) -> bytes:
    """The 4-byte ``$`` header alone, for scatter/gather writes that avoid copying the payload."""
    if not 0 <= channel <= 255:
        raise RtspError(f"interleaved channel {channel} out of range 0..255")
    if not 0 <= length <= MAX_INTERLEAVED_PAYLOAD:
        raise RtspError(f"interleaved payload of {length} bytes does not fit 16 bits")
    return _FRAME_HEADER.pack(0x24, channel, length)


def encode_interleaved(channel: int, payload: bytes | bytearray | memoryview) -> bytes:
    """Frame one RTP/RTCP packet for the RTSP connection."""
    return interleaved_header(channel, len(payload)) + payload


# --- parser ----------------------------------------------------------------------------------


def _parse_start_line(line: str) -> Request | Response:
    """Request line or status line → an empty message of the right kind."""
    if "\r" in line or "\0" in line:
        raise RtspParseError(f"stray CR or NUL in start line {_show(line)}")
    if line.startswith(("RTSP/", "HTTP/")):
        version, _, rest = line.partition(" ")
        status_text, _, reason = rest.strip(" \t").partition(" ")
        _check_version(version)
        if len(status_text) != 3 or not (status_text.isascii() and status_text.isdigit()):
            raise RtspParseError(f"bad status code in {_show(line)}")
        status = int(status_text)
        if status < 100:
            raise RtspParseError(f"bad status code in {_show(line)}")
        return Response(status, reason.strip(" \t"), version=version)
    parts = [part for part in line.split(" ") if part]
    if len(parts) != 3:
        raise RtspParseError(f"expected 'METHOD URI RTSP/1.0', got {_show(line)}")
    method, uri, version = parts
    if not is_token(method):
        raise RtspParseError(f"bad method {_show(method)}")
    _check_uri(uri)
    _check_version(version)
    return Request(method, uri, version=version)


def _parse_header_lines(lines: list[str]) -> Headers:
    """Header lines (CR already stripped) → Headers, joining obsolete folded continuations."""
    pairs: list[list[str]] = []
    for line in lines:
        if line[:1] in (" ", "\t"):
            if not pairs:
                raise RtspParseError(f"continuation line before any header: {_show(line)}")
            pairs[-1][1] = (pairs[-1][1] + " " + line.strip(" \t")).strip(" \t")
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise RtspParseError(f"header line without ':': {_show(line)}")
        pairs.append([name.rstrip(" \t"), value.strip(" \t")])
    headers = Headers()
    try:
        for name, value in pairs:
            headers.add(name, value)
    except RtspError as exc:
        raise RtspParseError(str(exc)) from None
    return headers


def _content_length(headers: Headers, max_body: int) -> int:
    values = headers.get_all("Content-Length")
    if not values:
        return 0  # RFC 2326 §12.14: no Content-Length means no body
    lengths = {_declared_length(value) for value in values}
    if None in lengths:
        raise RtspParseError(f"bad Content-Length {_show(values[0])}")
    if len(lengths) != 1:
        raise RtspParseError(f"conflicting Content-Length headers {values}")
    length = lengths.pop()
    assert length is not None
    if length > max_body:
        raise BodyTooLargeError(f"body of {length} bytes exceeds the limit of {max_body}")
    return length


class RtspParser:
    """Incremental parser: ``feed()`` bytes, then pull events with ``next_event()``.

    Works for both roles and for the messages of either direction. ``next_event()`` returns
    None when it needs more bytes. After a :class:`RtspParseError` the stream is out of sync:
    every later call raises the same error, and the shell should answer 400 and close.

    A request with an ``HTTP/x.y`` version (Apple tunnel GET/POST, WebSocket upgrade on the
    RTSP port) is returned with an empty body and stops the parser, because what follows is not
    RTSP framing (the POST's Content-Length is nominal); the shell takes the rest with
    :meth:`take_trailing_data`. An ``HTTP/x.y`` response (the tunnel GET's answer, seen by a
    client) has no body and the RTSP stream continues after it.
    """

    __slots__ = (
        "_body_length",
        "_buffer",
        "_error",
        "_max_body",
        "_max_header",
        "_pending",
        "_plain",
        "_pos",
        "_scanned",
        "_switched",
    )

    def __init__(
        self,
        *,
        max_header_size: int = DEFAULT_MAX_HEADER_SIZE,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    ) -> None:
        self._max_header = max_header_size
        self._max_body = max_body_size
        self._buffer = bytearray()
        self._pos = 0  # start of unconsumed data in _buffer
        self._scanned = 0  # bytes after _pos already searched for the end of a head
        self._pending: Request | Response | None = None  # head parsed, body outstanding
        self._body_length = 0
        self._error: RtspParseError | None = None
        self._switched = False
        self._plain = True  # no body pending, no error, not switched: frames may take the fast path

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as events."""
        return len(self._buffer) - self._pos

    @property
    def idle(self) -> bool:
        """True between events: nothing buffered, no body outstanding, no error, not switched.

        A shell that frames interleaved packets itself (from its own receive buffer) may do so
        exactly while the parser is idle, and feeds it from the first byte that is not a whole
        ``$`` frame; the events come out the same as if every byte had been fed.
        """
        return self._plain and self._pos == len(self._buffer)

    @property
    def switched(self) -> bool:
        """True once an HTTP request stopped RTSP parsing (see the class docstring)."""
        return self._switched

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append received bytes; consumed bytes are dropped first so the buffer stays small."""
        if self._error is not None:
            return  # the stream is dead; do not grow the buffer
        if self._pos:
            del self._buffer[: self._pos]  # O(1) in CPython: bytearray advances its start
            self._pos = 0
        self._buffer += data

    def feed_eof(self) -> None:
        """Signal the end of the stream; raises if it cut a message or frame short."""
        if self._error is not None:
            raise self._error
        if not self._switched and (self._pending is not None or self._has_partial_data()):
            self._error = IncompleteMessageError(
                f"stream ended with {self.buffered} bytes of an unfinished message or frame"
            )
            self._plain = False
            raise self._error

    def _has_partial_data(self) -> bool:
        tail = self._buffer[self._pos :]
        return bool(tail.strip(b"\r\n"))

    def take_trailing_data(self) -> bytes:
        """Hand over (and forget) the unconsumed bytes, e.g. after an HTTP request."""
        data = bytes(self._buffer[self._pos :])
        self._buffer.clear()
        self._pos = 0
        self._scanned = 0
        return data

    def take_partial_frame(self) -> bytes:
        """If all that is buffered is the start of a ``$`` frame (no message outstanding),
        hand it over and become :attr:`idle`; otherwise return ``b""`` and change nothing.

        The counterpart of :attr:`idle` for a shell that frames packets itself: after a message
        it takes the stream back at a frame boundary instead of feeding every later byte."""
        buf = self._buffer
        pos = self._pos
        if not self._plain or pos == len(buf) or buf[pos] != 0x24:
            return b""
        if len(buf) - pos >= 4 and pos + 4 + ((buf[pos + 2] << 8) | buf[pos + 3]) <= len(buf):
            return b""  # a whole frame: next_event() returns it
        return self.take_trailing_data()

    def __iter__(self) -> Iterator[Event]:
        """Yield every event available now."""
        while (event := self.next_event()) is not None:
            yield event

    def next_event(self) -> Event | None:
        """The next complete event, or None when more data is needed."""
        if self._plain:  # fast path: one whole interleaved frame at the front of the buffer
            buf = self._buffer
            pos = self._pos
            if len(buf) - pos >= 4 and buf[pos] == 0x24:
                stop = pos + 4 + ((buf[pos + 2] << 8) | buf[pos + 3])
                if stop <= len(buf):
                    self._pos = stop
                    return InterleavedFrame(buf[pos + 1], bytes(buf[pos + 4 : stop]))
        return self._next_slow()

    def _next_slow(self) -> Event | None:
        """Everything but the common case: messages, bodies, partial frames, errors."""
        if self._error is not None:
            raise self._error
        if self._switched:
            return None
        try:
            if self._pending is not None:
                return self._take_body()
            buf = self._buffer
            pos = self._pos
            end = len(buf)
            while pos < end:
                first = buf[pos]
                if first == 0x24:
                    if end - pos < 4:
                        break
                    stop = pos + 4 + ((buf[pos + 2] << 8) | buf[pos + 3])
                    if stop > end:
                        break
                    self._pos = stop
                    return InterleavedFrame(buf[pos + 1], bytes(buf[pos + 4 : stop]))
                if first not in (0x0D, 0x0A):  # tolerate blank lines between messages
                    self._pos = pos
                    return self._take_head()
                pos += 1
            self._pos = pos
            return None
        except RtspParseError as exc:
            self._error = exc
            self._plain = False
            raise

    def _take_head(self) -> Event | None:
        """Parse start line + headers once the blank line that ends them has arrived."""
        buf = self._buffer
        pos = self._pos
        first = buf[pos]
        if not (0x41 <= first <= 0x5A or 0x61 <= first <= 0x7A):
            raise RtspParseError(
                f"expected '$' or the start of an RTSP message, got byte 0x{first:02x}"
            )
        limit = pos + self._max_header  # the blank line must end within the limit
        search_from = pos + max(self._scanned - 2, 0)
        lf_lf = buf.find(b"\n\n", search_from, limit)
        lf_crlf = buf.find(b"\n\r\n", search_from, limit)
        if lf_lf < 0 and lf_crlf < 0:
            if len(buf) >= limit:
                raise HeaderTooLargeError(f"message head exceeds {self._max_header} bytes")
            self._scanned = len(buf) - pos
            return None
        if lf_crlf >= 0 and (lf_lf < 0 or lf_crlf < lf_lf):
            head_end, body_start = lf_crlf, lf_crlf + 3
        else:
            head_end, body_start = lf_lf, lf_lf + 2
        text = buf[pos:head_end].decode("utf-8", "surrogateescape")
        lines = [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]
        message = _parse_start_line(lines[0])
        message.headers = _parse_header_lines(lines[1:])
        self._pos = body_start
        self._scanned = 0
        if message.version.startswith("HTTP/"):
            self._switched = isinstance(message, Request)
            self._plain = not self._switched
            return message
        length = _content_length(message.headers, self._max_body)
        if not length:
            return message
        self._pending = message
        self._body_length = length
        self._plain = False
        return self._take_body()

    def _take_body(self) -> Event | None:
        """Attach the body once Content-Length bytes are buffered."""
        buf = self._buffer
        stop = self._pos + self._body_length
        if stop > len(buf):
            return None
        message = self._pending
        assert message is not None
        message.body = bytes(buf[self._pos : stop])
        self._pos = stop
        self._pending = None
        self._plain = True
        return message
