"""Typed parsing and serialising of the RTSP header values the NVR uses.

Both the camera client and the replay server read and write these headers, so each one has a
``parse_<name>(value: str)`` / ``format_<name>(obj) -> str`` pair that round-trips
(``parse(format(x)) == x``). Parsers are lenient where real peers bend RFC 2326 (quoted values,
odd spacing, the ISO-8601 extended clock form) and raise :class:`HeaderError` on anything they
cannot make sense of. Times are integers (nanoseconds), scales are :class:`~decimal.Decimal`:
never floats, so clock ranges and trick-play rates stay exact.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Final, Literal, TypeAlias

from nvr.protocol.errors import ProtocolError

__all__ = [
    "NOW",
    "NS_PER_S",
    "TOKEN_CHARS",
    "ClockRange",
    "Frames",
    "HeaderError",
    "NptRange",
    "NptTime",
    "PortPair",
    "RangeValue",
    "RtpInfo",
    "SessionHeader",
    "TransportSpec",
    "clock_to_datetime",
    "datetime_to_clock",
    "format_content_base",
    "format_cseq",
    "format_frames",
    "format_immediate",
    "format_method_list",
    "format_option_tags",
    "format_range",
    "format_rate_control",
    "format_rtp_info",
    "format_scale",
    "format_session",
    "format_speed",
    "format_transport",
    "format_utc_time",
    "parse_content_base",
    "parse_cseq",
    "parse_frames",
    "parse_immediate",
    "parse_method_list",
    "parse_option_tags",
    "parse_range",
    "parse_rate_control",
    "parse_rtp_info",
    "parse_scale",
    "parse_session",
    "parse_speed",
    "parse_transport",
    "parse_uint",
    "parse_utc_time",
]


class HeaderError(ProtocolError):
    """A header value that does not follow its grammar."""


NS_PER_S: Final = 1_000_000_000
_MAX_UINT_DIGITS: Final = 20
_MAX_FRACTION_DIGITS: Final = 30
TOKEN_CHARS: Final = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_HEX: Final = "0123456789abcdefABCDEF"
_EPOCH_ORDINAL: Final = _dt.date(1970, 1, 1).toordinal()
_OWS: Final = " \t"


# --- small shared helpers -------------------------------------------------------------------


def _show(text: str) -> str:
    """Quote a piece of input for an error message, bounded so hostile input stays short."""
    return repr(text) if len(text) <= 60 else repr(text[:60]) + "…"


def _is_digits(text: str) -> bool:
    """ASCII digits only: ``str.isdigit`` alone would accept '²' and other Unicode digits."""
    return text.isascii() and text.isdigit()


def is_token(text: str) -> bool:
    """True for a non-empty RFC 7230 token (method names, parameter names, auth schemes)."""
    return bool(text) and not text.strip(TOKEN_CHARS)


def parse_uint(text: str, what: str, maximum: int | None = None) -> int:
    """Parse a bounded run of ASCII digits; the digit cap also keeps ``int()`` cheap."""
    if not text or len(text) > _MAX_UINT_DIGITS or not _is_digits(text):
        raise HeaderError(f"{what}: expected an unsigned integer, got {_show(text)}")
    value = int(text)
    if maximum is not None and value > maximum:
        raise HeaderError(f"{what}: {value} is larger than {maximum}")
    return value


def split_outside_quotes(value: str, sep: str) -> list[str]:
    """Split at ``sep`` outside double-quoted strings; strip items and drop empty ones."""
    if '"' not in value:
        parts = value.split(sep)
    else:
        parts = []
        start = 0
        quoted = escaped = False
        for i, char in enumerate(value):
            if quoted:
                if escaped:
                    escaped = False
                elif char == "\\":
                    escaped = True
                elif char == '"':
                    quoted = False
            elif char == '"':
                quoted = True
            elif char == sep:
                parts.append(value[start:i])
                start = i + 1
        if quoted:
            raise HeaderError(f"unterminated quoted string in {_show(value)}")
        parts.append(value[start:])
    stripped = (part.strip(_OWS) for part in parts)
    return [part for part in stripped if part]


def unquote(value: str) -> str:
    """Remove surrounding double quotes and backslash escapes, if the value is quoted."""
    if not value.startswith('"'):
        return value
    if len(value) < 2 or not value.endswith('"'):
        raise HeaderError(f"unterminated quoted string {_show(value)}")
    inner = value[1:-1]
    if "\\" not in inner:
        if '"' in inner:
            raise HeaderError(f"stray quote inside {_show(value)}")
        return inner
    out: list[str] = []
    escaped = False
    for char in inner:
        if escaped:
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            raise HeaderError(f"stray quote inside {_show(value)}")
        else:
            out.append(char)
    if escaped:
        raise HeaderError(f"quoted string ends with a backslash: {_show(value)}")
    return "".join(out)


def quote(value: str) -> str:
    """Quote a string, escaping backslashes and quotes."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _check_printable(value: str, what: str) -> None:
    """Reject characters that would break the header line when serialised."""
    if "\r" in value or "\n" in value or "\0" in value:
        raise HeaderError(f"{what}: line break or NUL in {_show(value)}")


def _needs_quotes(value: str) -> bool:
    return not value or any(c in value for c in ' \t;,="\\')


def _format_param_value(value: str, what: str) -> str:
    """A parameter value as a bare token when safe, else as a quoted string."""
    _check_printable(value, what)
    return quote(value) if _needs_quotes(value) else value


def _split_param(item: str) -> tuple[str, str | None]:
    """``name[=value]`` → (lower-case name, unquoted value or None)."""
    name, eq, value = item.partition("=")
    name = name.strip(_OWS).lower()
    if not is_token(name):
        raise HeaderError(f"bad parameter name in {_show(item)}")
    return name, unquote(value.strip(_OWS)) if eq else None


# --- CSeq, Content-Base ----------------------------------------------------------------------


def parse_cseq(value: str) -> int:
    """CSeq: the request/response sequence number (its low byte goes into 0xABAC headers)."""
    return parse_uint(value.strip(_OWS), "CSeq", 0xFFFFFFFF)


def format_cseq(cseq: int) -> str:
    """Serialise a CSeq."""
    return _format_int(cseq, "CSeq", 0xFFFFFFFF)


def _check_uri(value: str, what: str) -> str:
    if not value or any(c in value for c in " \t\r\n\0"):
        raise HeaderError(f"{what}: not a URI: {_show(value)}")
    return value


def parse_content_base(value: str) -> str:
    """Content-Base: the URI that relative SDP ``a=control`` URLs resolve against."""
    return _check_uri(value.strip(_OWS), "Content-Base")


def format_content_base(uri: str) -> str:
    """Serialise a Content-Base URI."""
    return _check_uri(uri, "Content-Base")


# --- Public / Allow, Require / Proxy-Require / Unsupported -----------------------------------


def _checked_items(
    items: Iterable[str], valid: Callable[[str], bool], what: str
) -> tuple[str, ...]:
    checked = tuple(items)
    for item in checked:
        if not valid(item):
            raise HeaderError(f"{what}: {_show(item)} is not allowed")
    return checked


def _is_option_tag(tag: str) -> bool:
    """Option tags are tokens in spirit but carry '/' (``www.onvif.org/ver20/backchannel``)."""
    return bool(tag) and all("!" <= c <= "~" and c not in ',;"' for c in tag)


def parse_method_list(value: str) -> tuple[str, ...]:
    """Public / Allow: the comma-separated methods a peer supports."""
    return _checked_items(split_outside_quotes(value, ","), is_token, "method list")


def format_method_list(methods: Iterable[str]) -> str:
    """Serialise Public / Allow."""
    return ", ".join(_checked_items(methods, is_token, "method list"))


def parse_option_tags(value: str) -> tuple[str, ...]:
    """Require / Proxy-Require / Unsupported: comma-separated feature tags."""
    return _checked_items(split_outside_quotes(value, ","), _is_option_tag, "option tags")


def format_option_tags(tags: Iterable[str]) -> str:
    """Serialise Require / Proxy-Require / Unsupported."""
    return ", ".join(_checked_items(tags, _is_option_tag, "option tags"))


# --- Transport -------------------------------------------------------------------------------

PortPair: TypeAlias = tuple[int, int | None]
"""A port or channel range ``a-b`` as (a, b); a single value ``a`` as (a, None)."""

Delivery: TypeAlias = Literal["unicast", "multicast"]


@dataclass(frozen=True, slots=True)
class TransportSpec:
    """One alternative of a Transport header (RFC 2326 §12.39).

    ``destination == ""`` means the bare ``destination`` flag without an address.
    Unknown parameters are kept in ``extra`` (lower-case name, value or None) so a server can
    echo them and a quirk policy can inspect them.
    """

    protocol: str = "RTP"
    profile: str = "AVP"
    lower_transport: str | None = None
    delivery: Delivery | None = None
    destination: str | None = None
    source: str | None = None
    interleaved: PortPair | None = None
    append: bool = False
    ttl: int | None = None
    layers: int | None = None
    port: PortPair | None = None
    client_port: PortPair | None = None
    server_port: PortPair | None = None
    ssrc: int | None = None
    mode: str | None = None
    extra: tuple[tuple[str, str | None], ...] = ()

    @property
    def is_tcp(self) -> bool:
        """RTP/AVP/TCP: interleaved on the RTSP connection."""
        return self.lower_transport == "TCP"

    @property
    def is_multicast(self) -> bool:
        """Multicast delivery was asked for (unicast is the RFC default)."""
        return self.delivery == "multicast"

    @property
    def transport_id(self) -> str:
        """``RTP/AVP``, ``RTP/AVP/TCP``…"""
        parts = [self.protocol, self.profile]
        if self.lower_transport is not None:
            parts.append(self.lower_transport)
        return "/".join(parts)


def _parse_pair(value: str | None, what: str, maximum: int) -> PortPair:
    if value is None:
        raise HeaderError(f"Transport: {what} needs a value")
    first, dash, second = value.partition("-")
    low = parse_uint(first.strip(_OWS), f"Transport {what}", maximum)
    second = second.strip(_OWS)
    high = parse_uint(second, f"Transport {what}", maximum) if dash and second else None
    return (low, high)


def _format_pair(pair: PortPair, what: str, maximum: int) -> str:
    low = _format_int(pair[0], f"Transport {what}", maximum)
    if pair[1] is None:
        return low
    return f"{low}-{_format_int(pair[1], f'Transport {what}', maximum)}"


def _parse_ssrc(value: str | None) -> int:
    text = (value or "").strip(_OWS)
    # Some cameras zero-pad the SSRC to more than 8 digits.
    digits = text.lstrip("0") or "0"
    if not text or len(digits) > 8 or digits.strip(_HEX):
        raise HeaderError(f"Transport ssrc: expected up to 8 hex digits, got {_show(text)}")
    return int(digits, 16)


def _parse_transport_id(text: str) -> tuple[str, str, str | None]:
    parts = text.split("/")
    if len(parts) not in (2, 3) or not all(is_token(p) for p in parts):
        raise HeaderError(f"Transport: {_show(text)} is not protocol/profile[/lower-transport]")
    upper = [p.upper() for p in parts]
    return upper[0], upper[1], upper[2] if len(upper) == 3 else None


def _parse_transport_spec(text: str) -> TransportSpec:
    items = split_outside_quotes(text, ";")
    if not items:
        raise HeaderError("Transport: empty transport spec")
    protocol, profile, lower = _parse_transport_id(items[0])
    fields: dict[str, object] = {}
    extra: list[tuple[str, str | None]] = []
    for item in items[1:]:
        name, value = _split_param(item)
        if name in ("unicast", "multicast"):
            fields["delivery"] = name
        elif name == "append":
            fields["append"] = True
        elif name in ("destination", "source"):
            fields[name] = value if value is not None else ""
        elif name == "interleaved":
            fields[name] = _parse_pair(value, name, 255)
        elif name in ("port", "client_port", "server_port"):
            fields[name] = _parse_pair(value, name, 65535)
        elif name == "ttl":
            fields[name] = parse_uint((value or "").strip(_OWS), "Transport ttl", 255)
        elif name == "layers":
            fields[name] = parse_uint((value or "").strip(_OWS), "Transport layers", 0xFFFFFFFF)
        elif name == "ssrc":
            fields[name] = _parse_ssrc(value)
        elif name == "mode":
            mode = (value or "").strip(_OWS).upper()
            if not mode:
                raise HeaderError("Transport: empty mode")
            fields[name] = mode
        else:
            extra.append((name, value))
    return TransportSpec(protocol, profile, lower, extra=tuple(extra), **fields)  # type: ignore[arg-type]


def parse_transport(value: str) -> tuple[TransportSpec, ...]:
    """Transport: the alternatives a client offers (or the one a server chose)."""
    specs = tuple(_parse_transport_spec(item) for item in split_outside_quotes(value, ","))
    if not specs:
        raise HeaderError("Transport: no transport spec")
    return specs


def _format_transport_spec(spec: TransportSpec) -> str:
    if not all(is_token(p) for p in (spec.protocol, spec.profile)) or (
        spec.lower_transport is not None and not is_token(spec.lower_transport)
    ):
        raise HeaderError(f"Transport: bad transport id {_show(spec.transport_id)}")
    parts = [spec.transport_id]
    if spec.delivery is not None:
        parts.append(spec.delivery)
    for name in ("destination", "source"):
        address = getattr(spec, name)
        if address == "":
            parts.append(name)
        elif address is not None:
            parts.append(f"{name}={_format_param_value(address, name)}")
    if spec.interleaved is not None:
        parts.append(f"interleaved={_format_pair(spec.interleaved, 'interleaved', 255)}")
    if spec.append:
        parts.append("append")
    if spec.ttl is not None:
        parts.append(f"ttl={_format_int(spec.ttl, 'ttl', 255)}")
    if spec.layers is not None:
        parts.append(f"layers={_format_int(spec.layers, 'layers', 0xFFFFFFFF)}")
    for name in ("port", "client_port", "server_port"):
        pair = getattr(spec, name)
        if pair is not None:
            parts.append(f"{name}={_format_pair(pair, name, 65535)}")
    if spec.ssrc is not None:
        parts.append(f"ssrc={_in_range(spec.ssrc, 'ssrc', 0xFFFFFFFF):08X}")
    if spec.mode is not None:
        parts.append(f"mode={_format_param_value(spec.mode, 'mode')}")
    for name, value in spec.extra:
        if not is_token(name):
            raise HeaderError(f"Transport: bad parameter name {_show(name)}")
        parts.append(name if value is None else f"{name}={_format_param_value(value, name)}")
    return ";".join(parts)


def _in_range(value: int, what: str, maximum: int) -> int:
    if not 0 <= value <= maximum:
        raise HeaderError(f"{what}: {value} out of range")
    return value


def _format_int(value: int, what: str, maximum: int) -> str:
    return str(_in_range(value, what, maximum))


def format_transport(specs: TransportSpec | Iterable[TransportSpec]) -> str:
    """Serialise one or several transport specs."""
    items = (specs,) if isinstance(specs, TransportSpec) else tuple(specs)
    if not items:
        raise HeaderError("Transport: no transport spec")
    return ",".join(_format_transport_spec(spec) for spec in items)


# --- Session ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionHeader:
    """Session: the session id and the server's idle timeout in seconds (None = default 60)."""

    id: str
    timeout: int | None = None


def _check_session_id(session_id: str) -> str:
    if not session_id or not all("!" <= c <= "~" and c not in ';,"' for c in session_id):
        raise HeaderError(f"Session: {_show(session_id)} is not a session id")
    return session_id


def parse_session(value: str) -> SessionHeader:
    """Parse Session; unknown parameters are ignored (some servers add their own)."""
    session_id, _, params = value.partition(";")
    timeout = None
    for item in split_outside_quotes(params, ";"):
        name, param = _split_param(item)
        if name == "timeout":
            timeout = parse_uint((param or "").strip(_OWS), "Session timeout", 0xFFFFFFFF)
    return SessionHeader(_check_session_id(session_id.strip(_OWS)), timeout)


def format_session(session: SessionHeader) -> str:
    """Serialise Session."""
    text = _check_session_id(session.id)
    if session.timeout is not None:
        text += f";timeout={_format_int(session.timeout, 'Session timeout', 0xFFFFFFFF)}"
    return text


# --- RTP-Info --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RtpInfo:
    """One stream of RTP-Info: the first sequence number and RTP time after PLAY."""

    url: str
    seq: int | None = None
    rtptime: int | None = None


def _parse_rtp_info_entry(text: str) -> RtpInfo:
    url: str | None = None
    url_open = False  # an unquoted URL may itself contain ';' (rtsp://h/x;stream=1)
    seq = rtptime = None
    for item in split_outside_quotes(text, ";"):
        name, value = _split_param(item)
        number = (value or "").strip(_OWS)
        if name == "url" and value is not None:
            url = value
            url_open = not item.partition("=")[2].strip(_OWS).startswith('"')
        elif name == "seq":
            seq = parse_uint(number, "RTP-Info seq", 0xFFFF) if number else None
            url_open = False
        elif name == "rtptime":
            rtptime = parse_uint(number, "RTP-Info rtptime", 0xFFFFFFFF) if number else None
            url_open = False
        elif url_open and url is not None:
            url += ";" + item
    if not url:
        raise HeaderError(f"RTP-Info: entry without url: {_show(text)}")
    return RtpInfo(_check_uri(url, "RTP-Info url"), seq, rtptime)


def parse_rtp_info(value: str) -> tuple[RtpInfo, ...]:
    """RTP-Info: one entry per stream, comma-separated (folded lines arrive as ', ')."""
    entries = tuple(_parse_rtp_info_entry(item) for item in split_outside_quotes(value, ","))
    if not entries:
        raise HeaderError("RTP-Info: empty value")
    return entries


def format_rtp_info(entries: RtpInfo | Iterable[RtpInfo]) -> str:
    """Serialise RTP-Info; URLs with ',' or ';' are quoted so they survive the split."""
    items = (entries,) if isinstance(entries, RtpInfo) else tuple(entries)
    if not items:
        raise HeaderError("RTP-Info: no entries")
    out = []
    for entry in items:
        url = _check_uri(entry.url, "RTP-Info url")
        text = "url=" + (quote(url) if any(c in url for c in ',;"\\') else url)
        if entry.seq is not None:
            text += f";seq={_format_int(entry.seq, 'RTP-Info seq', 0xFFFF)}"
        if entry.rtptime is not None:
            text += f";rtptime={_format_int(entry.rtptime, 'RTP-Info rtptime', 0xFFFFFFFF)}"
        out.append(text)
    return ",".join(out)


# --- Range: times ----------------------------------------------------------------------------

NOW: Final = "now"
NptTime: TypeAlias = int | Literal["now"]
"""Normal play time: nanoseconds from the start of the presentation, or ``"now"`` (live)."""


def _parse_fraction(digits: str, what: str) -> int:
    """Decimal fraction digits → nanoseconds, truncating beyond 9 digits."""
    if not digits:
        return 0
    if len(digits) > _MAX_FRACTION_DIGITS or not _is_digits(digits):
        raise HeaderError(f"{what}: bad fraction {_show(digits)}")
    return int(digits[:9].ljust(9, "0"))


def _format_fraction(nanos: int, minimum: int) -> str:
    """Nanoseconds → fraction digits without trailing zeros, at least ``minimum`` digits."""
    return f"{nanos:09d}".rstrip("0").ljust(minimum, "0")


def parse_utc_time(text: str) -> int:
    """``YYYYMMDDThhmmss[.frac]Z`` (or ISO extended ``YYYY-MM-DDThh:mm:ss[.frac]Z``) → ns.

    Returns nanoseconds since the Unix epoch (UTC): exact for the 9 fraction digits the
    grammar allows.
    """
    upper = text.strip(_OWS).upper()
    if not upper.endswith("Z") or "T" not in upper:
        raise HeaderError(f"clock time: expected YYYYMMDDThhmmss[.frac]Z, got {_show(text)}")
    date_part, _, clock_part = upper[:-1].partition("T")
    if len(date_part) == 10 and date_part[4] == "-" and date_part[7] == "-":
        date_part = date_part[:4] + date_part[5:7] + date_part[8:]
    whole, _, fraction = clock_part.partition(".")
    if len(whole) == 8 and whole[2] == ":" and whole[5] == ":":
        whole = whole[:2] + whole[3:5] + whole[6:]
    if len(date_part) != 8 or len(whole) != 6 or not _is_digits(date_part + whole):
        raise HeaderError(f"clock time: expected YYYYMMDDThhmmss[.frac]Z, got {_show(text)}")
    if "." in clock_part and not fraction:
        raise HeaderError(f"clock time: empty fraction in {_show(text)}")
    nanos = _parse_fraction(fraction, "clock time")
    hour, minute, second = int(whole[:2]), int(whole[2:4]), int(whole[4:])
    if hour > 23 or minute > 59 or second > 59:
        raise HeaderError(f"clock time: no such time of day in {_show(text)}")
    try:
        day = _dt.date(int(date_part[:4]), int(date_part[4:6]), int(date_part[6:]))
    except ValueError:
        raise HeaderError(f"clock time: no such date in {_show(text)}") from None
    seconds = (day.toordinal() - _EPOCH_ORDINAL) * 86400 + hour * 3600 + minute * 60 + second
    return seconds * NS_PER_S + nanos


def format_utc_time(ns: int) -> str:
    """Nanoseconds since the epoch → the basic form ``YYYYMMDDThhmmss[.fff…]Z``."""
    seconds, nanos = divmod(ns, NS_PER_S)
    days, seconds = divmod(seconds, 86400)
    ordinal = _EPOCH_ORDINAL + days
    if not 1 <= ordinal <= _dt.date.max.toordinal():
        raise HeaderError(f"clock time: {ns} ns is outside years 1..9999")
    day = _dt.date.fromordinal(ordinal)
    hour, rest = divmod(seconds, 3600)
    minute, second = divmod(rest, 60)
    text = f"{day.year:04d}{day.month:02d}{day.day:02d}T{hour:02d}{minute:02d}{second:02d}"
    if nanos:
        text += "." + _format_fraction(nanos, 3)
    return text + "Z"


def clock_to_datetime(ns: int) -> _dt.datetime:
    """Clock-range nanoseconds → aware UTC datetime (truncated to microseconds)."""
    micros = ns // 1000
    return _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC) + _dt.timedelta(microseconds=micros)


def datetime_to_clock(moment: _dt.datetime) -> int:
    """Datetime → nanoseconds since the epoch; a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.UTC)
    delta = moment - _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)
    return (delta.days * 86400 + delta.seconds) * NS_PER_S + delta.microseconds * 1000


def _parse_npt_time(text: str) -> NptTime:
    text = text.strip(_OWS)
    if text.lower() == NOW:
        return NOW
    whole, dot, fraction = text.partition(".")
    nanos = _parse_fraction(fraction, "npt time")
    if ":" in whole:
        pieces = whole.split(":")
        if len(pieces) != 3 or len(pieces[1]) > 2 or len(pieces[2]) > 2:
            raise HeaderError(f"npt time: expected h:mm:ss[.frac], got {_show(text)}")
        hours = parse_uint(pieces[0], "npt hours")
        minutes = parse_uint(pieces[1], "npt minutes", 59)
        secs = parse_uint(pieces[2], "npt seconds", 59)
        return ((hours * 60 + minutes) * 60 + secs) * NS_PER_S + nanos
    if not whole and not (dot and fraction):
        raise HeaderError(f"npt time: expected seconds, got {_show(text)}")
    secs = parse_uint(whole, "npt seconds") if whole else 0
    return secs * NS_PER_S + nanos


def _format_npt_time(value: NptTime) -> str:
    if value == NOW:
        return NOW
    if not isinstance(value, int) or value < 0:
        raise HeaderError(f"npt time: {value!r} is not a non-negative ns count or 'now'")
    seconds, nanos = divmod(value, NS_PER_S)
    return f"{seconds}.{_format_fraction(nanos, 3)}"


# --- Range: values ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NptRange:
    """``npt=start-[end]`` or ``npt=-end``; times in ns or ``"now"``.

    ``time`` is RFC 2326's optional ``;time=`` (when to act), in ns since the epoch.
    """

    start: NptTime | None = 0
    end: NptTime | None = None
    time: int | None = None

    def __post_init__(self) -> None:
        if self.start is None and self.end is None:
            raise HeaderError("npt range: needs a start or an end")


@dataclass(frozen=True, slots=True)
class ClockRange:
    """``clock=start-[end]`` / ``clock=-end``: absolute UTC times in ns since the epoch.

    ONVIF replay puts the start first whatever the direction, so ``end < start`` is legal and
    means reverse playback down to ``end``.
    """

    start: int | None
    end: int | None = None
    time: int | None = None

    def __post_init__(self) -> None:
        if self.start is None and self.end is None:
            raise HeaderError("clock range: needs a start or an end")

    @property
    def is_decreasing(self) -> bool:
        """True for a closed range that runs backwards (reverse replay)."""
        return self.start is not None and self.end is not None and self.end < self.start


RangeValue: TypeAlias = NptRange | ClockRange


def _split_clock_spec(spec: str) -> tuple[str, str]:
    """Split ``start-end`` where the extended form has '-' inside the dates: cut after 'Z'."""
    if spec.startswith("-"):
        return "", spec[1:]
    cut = spec.upper().find("Z-")
    if cut < 0:
        raise HeaderError(f"clock range: expected start-[end], got {_show(spec)}")
    return spec[: cut + 1], spec[cut + 2 :]


def parse_range(value: str) -> RangeValue:
    """Range in npt or clock units (smpte is not used by ONVIF and is rejected)."""
    items = split_outside_quotes(value, ";")
    if not items:
        raise HeaderError("Range: empty value")
    unit, eq, spec = items[0].partition("=")
    unit = unit.strip(_OWS).lower()
    spec = spec.strip(_OWS)
    when = None
    for item in items[1:]:
        name, param = _split_param(item)
        if name == "time" and param is not None:
            when = parse_utc_time(param)
    if not eq or not spec:
        raise HeaderError(f"Range: expected unit=range, got {_show(value)}")
    if unit == "npt":
        start_text, dash, end_text = spec.partition("-")
        if not dash:
            raise HeaderError(f"npt range: expected start-[end], got {_show(spec)}")
        start = _parse_npt_time(start_text) if start_text.strip(_OWS) else None
        end = _parse_npt_time(end_text) if end_text.strip(_OWS) else None
        return NptRange(start, end, when)
    if unit == "clock":
        start_text, end_text = _split_clock_spec(spec)
        clock_start = parse_utc_time(start_text) if start_text.strip(_OWS) else None
        clock_end = parse_utc_time(end_text) if end_text.strip(_OWS) else None
        return ClockRange(clock_start, clock_end, when)
    raise HeaderError(f"Range: unsupported unit {_show(unit)}")


def format_range(value: RangeValue) -> str:
    """Serialise a Range (clock times always in the basic form, as ONVIF asks)."""
    if isinstance(value, NptRange):
        unit = "npt"
        start = "" if value.start is None else _format_npt_time(value.start)
        end = "" if value.end is None else _format_npt_time(value.end)
    else:
        unit = "clock"
        start = "" if value.start is None else format_utc_time(value.start)
        end = "" if value.end is None else format_utc_time(value.end)
    text = f"{unit}={start}-{end}"
    if value.time is not None:
        text += f";time={format_utc_time(value.time)}"
    return text


# --- Scale / Speed ---------------------------------------------------------------------------


def _parse_decimal(value: str, what: str) -> Decimal:
    """``[+-]digits[.digits]`` → exact Decimal (no exponents, NaN or infinities)."""
    text = value.strip(_OWS)
    body = text[1:] if text[:1] in ("+", "-") else text
    whole, _, fraction = body.partition(".")
    if (
        len(text) > 40
        or not (whole or fraction)
        or (whole and not _is_digits(whole))
        or (fraction and not _is_digits(fraction))
    ):
        raise HeaderError(f"{what}: expected a decimal number, got {_show(value)}")
    return Decimal(text)


def _format_decimal(value: Decimal | int, what: str) -> str:
    number = Decimal(value)
    if not number.is_finite():
        raise HeaderError(f"{what}: {value} is not finite")
    text = format(number, "f")
    return text if "." in text else text + ".0"


def parse_scale(value: str) -> Decimal:
    """Scale: playback rate, negative for reverse (``-1.0``)."""
    return _parse_decimal(value, "Scale")


def format_scale(value: Decimal | int) -> str:
    """Serialise Scale; always with a decimal point (``1.0``, ``-1.0``) like ONVIF examples."""
    return _format_decimal(value, "Scale")


def parse_speed(value: str) -> Decimal:
    """Speed: delivery rate multiplier (accepted with a sign, validated by the caller)."""
    return _parse_decimal(value, "Speed")


def format_speed(value: Decimal | int) -> str:
    """Serialise Speed."""
    return _format_decimal(value, "Speed")


# --- Rate-Control, Immediate, Frames ---------------------------------------------------------


def _parse_yes_no(value: str, what: str) -> bool:
    text = value.strip(_OWS).lower()
    if text == "yes":
        return True
    if text == "no":
        return False
    raise HeaderError(f"{what}: expected yes or no, got {_show(value)}")


def parse_rate_control(value: str) -> bool:
    """Rate-Control: yes = server paces in real time, no = as fast as the socket drains."""
    return _parse_yes_no(value, "Rate-Control")


def format_rate_control(value: bool) -> str:
    """Serialise Rate-Control."""
    return "yes" if value else "no"


def parse_immediate(value: str) -> bool:
    """Immediate: yes = abort the running PLAY and jump at once."""
    return _parse_yes_no(value, "Immediate")


def format_immediate(value: bool) -> str:
    """Serialise Immediate."""
    return "yes" if value else "no"


FrameKind: TypeAlias = Literal["all", "predicted", "intra"]


@dataclass(frozen=True, slots=True)
class Frames:
    """Frames: which frames replay sends; ``intra/<ms>`` spaces key frames in recording time."""

    kind: FrameKind = "all"
    interval_ms: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("all", "predicted", "intra"):
            raise HeaderError(f"Frames: unknown kind {self.kind!r}")
        if self.interval_ms is not None and (self.kind != "intra" or self.interval_ms < 0):
            raise HeaderError("Frames: an interval is only allowed with intra, and >= 0")


def parse_frames(value: str) -> Frames:
    """Parse Frames: ``all`` / ``predicted`` / ``intra`` / ``intra/<ms>``."""
    text = value.strip(_OWS).lower()
    kind, slash, interval = text.partition("/")
    if kind not in ("all", "predicted", "intra") or (slash and kind != "intra"):
        raise HeaderError(
            f"Frames: expected all, predicted, intra or intra/<ms>, got {_show(value)}"
        )
    interval_ms = parse_uint(interval.strip(_OWS), "Frames interval") if slash else None
    return Frames(kind, interval_ms)  # type: ignore[arg-type]


def format_frames(frames: Frames) -> str:
    """Serialise Frames."""
    if frames.interval_ms is None:
        return frames.kind
    return f"{frames.kind}/{frames.interval_ms}"
