"""SDP (RFC 8866, formerly 4566) parsing and generation, plus the stream view RTSP needs.

The ingest reads camera DESCRIBE answers, which bend the grammar in many small ways, so parsing
is lenient by default: missing mandatory lines, stray whitespace, LF-only line ends and malformed
non-essential lines are tolerated and noted in :attr:`SessionDescription.warnings`; only what
cannot be interpreted (a broken ``m=`` line) raises :class:`SdpError`. ``strict=True`` raises on
every deviation, for tests and our own output.

The model keeps every line it understands in typed fields and every attribute (known or not) in
order, so ``generate(parse(x))`` reproduces a well-formed description line for line. Typed views
of the attributes an NVR needs (rtpmap, fmtp, control, x-onvif-track, range, direction,
framerate) are computed on demand; :func:`media_streams` condenses a description to what the
ingest client and the replay server act on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from urllib.parse import urlsplit

from nvr.protocol.errors import ProtocolError

__all__ = [
    "STATIC_PAYLOAD_TYPES",
    "Attribute",
    "Bandwidth",
    "Connection",
    "Fmtp",
    "Media",
    "MediaStream",
    "Origin",
    "RtpMap",
    "SdpError",
    "SessionDescription",
    "Timing",
    "choose_base_url",
    "generate_sdp",
    "make_media",
    "media_streams",
    "parse_fmtp_params",
    "parse_sdp",
    "resolve_control",
    "session_control_url",
]


class SdpError(ProtocolError):
    """A malformed session description, or a model that cannot be serialised."""


def _is_uint(text: str) -> bool:
    """ASCII digits only, and short enough for ``int()`` to be cheap and safe."""
    return 0 < len(text) <= 20 and text.isascii() and text.isdigit()


@dataclass(frozen=True, slots=True)
class RtpMap:
    """``a=rtpmap:<pt> <encoding name>/<clock rate>[/<encoding parameters>]``."""

    payload_type: int
    encoding_name: str
    clock_rate: int
    encoding_params: str | None = None

    @property
    def channels(self) -> int | None:
        """Audio channel count (the encoding parameters), None if absent or not a number."""
        p = self.encoding_params
        return int(p) if p is not None and _is_uint(p) else None


#: RFC 3551 static payload types: pt -> (encoding name, clock rate, channels).
STATIC_PAYLOAD_TYPES: dict[int, tuple[str, int, int | None]] = {
    0: ("PCMU", 8000, 1),
    3: ("GSM", 8000, 1),
    4: ("G723", 8000, 1),
    5: ("DVI4", 8000, 1),
    6: ("DVI4", 16000, 1),
    7: ("LPC", 8000, 1),
    8: ("PCMA", 8000, 1),
    9: ("G722", 8000, 1),
    10: ("L16", 44100, 2),
    11: ("L16", 44100, 1),
    12: ("QCELP", 8000, 1),
    13: ("CN", 8000, 1),
    14: ("MPA", 90000, None),
    15: ("G728", 8000, 1),
    16: ("DVI4", 11025, 1),
    17: ("DVI4", 22050, 1),
    18: ("G729", 8000, 1),
    25: ("CelB", 90000, None),
    26: ("JPEG", 90000, None),
    28: ("nv", 90000, None),
    31: ("H261", 90000, None),
    32: ("MPV", 90000, None),
    33: ("MP2T", 90000, None),
    34: ("H263", 90000, None),
}


@dataclass(slots=True)
class Fmtp:
    """``a=fmtp:<pt> <params>``: parameters in order, keys as written, plus the raw text."""

    payload_type: int
    params: dict[str, str]
    raw: str

    def get(self, key: str, default: str | None = None) -> str | None:
        """Look a parameter up case-insensitively (most codec parameter names are)."""
        if key in self.params:
            return self.params[key]
        low = key.lower()
        for k, v in self.params.items():
            if k.lower() == low:
                return v
        return default


def parse_fmtp_params(text: str) -> dict[str, str]:
    """Split ``k=v;k2=v2`` into an ordered dict; a bare token maps to ''. Never fails."""
    params: dict[str, str] = {}
    for part in text.split(";"):
        part = part.strip()
        if part:
            key, _, value = part.partition("=")
            params[key.strip()] = value.strip()
    return params


@dataclass(slots=True)
class Origin:
    """``o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>``."""

    username: str = "-"
    session_id: str = "0"
    session_version: str = "0"
    nettype: str = "IN"
    addrtype: str = "IP4"
    address: str = "0.0.0.0"

    def __str__(self) -> str:
        return (
            f"{self.username} {self.session_id} {self.session_version} "
            f"{self.nettype} {self.addrtype} {self.address}"
        )


@dataclass(slots=True)
class Connection:
    """``c=<nettype> <addrtype> <address>[/<ttl>][/<count>]``; address kept with suffixes."""

    nettype: str = "IN"
    addrtype: str = "IP4"
    address: str = "0.0.0.0"

    @property
    def host(self) -> str:
        """The address without TTL / count suffixes."""
        return self.address.split("/", 1)[0]

    def __str__(self) -> str:
        return f"{self.nettype} {self.addrtype} {self.address}"


@dataclass(slots=True)
class Bandwidth:
    """``b=<bwtype>:<bandwidth>`` (kbit/s for AS/CT)."""

    type: str
    value: int

    def __str__(self) -> str:
        return f"{self.type}:{self.value}"


@dataclass(slots=True)
class Timing:
    """``t=<start> <stop>`` with its ``r=`` repeat lines (kept raw)."""

    start: int = 0
    stop: int = 0
    repeats: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Attribute:
    """``a=<name>`` (value None) or ``a=<name>:<value>``."""

    name: str
    value: str | None = None


class _Attributes:
    """Attribute look-ups shared by the session and media levels."""

    __slots__ = ()
    attributes: list[Attribute]

    def get(self, name: str) -> str | None:
        """Value of the first attribute called ``name`` (case-insensitive).

        None if absent; '' for a flag attribute such as ``a=recvonly``.
        """
        low = name.lower()
        for a in self.attributes:
            if a.name.lower() == low:
                return "" if a.value is None else a.value
        return None

    def get_all(self, name: str) -> list[str]:
        """Values of every attribute called ``name``, in order ('' for flags)."""
        low = name.lower()
        return [
            "" if a.value is None else a.value for a in self.attributes if a.name.lower() == low
        ]

    def has(self, name: str) -> bool:
        """Whether an attribute called ``name`` is present."""
        return self.get(name) is not None

    def get_stripped(self, name: str) -> str | None:
        """:meth:`get` without surrounding whitespace."""
        v = self.get(name)
        return None if v is None else v.strip()

    def add(self, name: str, value: str | None = None) -> None:
        """Append an attribute."""
        self.attributes.append(Attribute(name, value))

    @property
    def control(self) -> str | None:
        """``a=control`` value, unresolved."""
        return self.get_stripped("control")

    @property
    def range(self) -> str | None:
        """``a=range`` value, raw (e.g. ``npt=now-`` or ``clock=...``)."""
        return self.get("range")

    @property
    def direction(self) -> str | None:
        """``sendrecv``, ``sendonly``, ``recvonly`` or ``inactive`` if one is present here."""
        for a in self.attributes:
            low = a.name.lower()
            if low in _DIRECTIONS:
                return low
        return None


_DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
_DECIMAL = re.compile(r"[0-9]{1,9}(?:\.[0-9]{1,9})?")


@dataclass
class Media(_Attributes):
    """One media description: the ``m=`` line and the lines that follow it."""

    media: str
    port: int
    proto: str
    formats: list[str] = field(default_factory=list)
    port_count: int | None = None
    title: str | None = None
    connections: list[Connection] = field(default_factory=list)
    bandwidths: list[Bandwidth] = field(default_factory=list)
    key: str | None = None
    extra_lines: list[tuple[str, str]] = field(default_factory=list)
    attributes: list[Attribute] = field(default_factory=list)

    def rtpmap(self, payload_type: int) -> RtpMap | None:
        """The rtpmap of ``payload_type``; falls back to the RFC 3551 static table."""
        for value in self.get_all("rtpmap"):
            head = value.split(None, 1)
            if head and _is_uint(head[0]) and int(head[0]) == payload_type:
                return _parse_rtpmap(value)
        static = STATIC_PAYLOAD_TYPES.get(payload_type)
        if static is not None:
            name, rate, channels = static
            return RtpMap(payload_type, name, rate, None if channels is None else str(channels))
        return None

    def rtpmaps(self) -> dict[int, RtpMap]:
        """Every explicit rtpmap, by payload type (malformed entries raise)."""
        out: dict[int, RtpMap] = {}
        for value in self.get_all("rtpmap"):
            m = _parse_rtpmap(value)
            out.setdefault(m.payload_type, m)
        return out

    def fmtp(self, payload_type: int) -> Fmtp | None:
        """The fmtp of ``payload_type``, or None."""
        for value in self.get_all("fmtp"):
            head, _, rest = value.strip().partition(" ")
            if _is_uint(head) and int(head) == payload_type:
                rest = rest.strip()
                return Fmtp(payload_type, parse_fmtp_params(rest), rest)
        return None

    @property
    def onvif_track(self) -> str | None:
        """ONVIF replay track token from ``a=x-onvif-track`` (replay B.2)."""
        return self.get_stripped("x-onvif-track")

    @property
    def framerate(self) -> Fraction | None:
        """``a=framerate`` as an exact fraction (``29.97`` -> 2997/100)."""
        v = self.get_stripped("framerate")
        if v is None:
            return None
        # Checked first: Fraction() would also take exponents such as 1e999999999.
        if not _DECIMAL.fullmatch(v):
            raise SdpError(f"a=framerate value {v!r} is not a decimal number")
        rate = Fraction(v)
        if rate <= 0:
            raise SdpError(f"a=framerate value {v!r} is not positive")
        return rate

    @property
    def payload_types(self) -> list[int]:
        """The formats as RTP payload types (non-numeric formats skipped)."""
        return [int(f) for f in self.formats if _is_uint(f)]


@dataclass
class SessionDescription(_Attributes):
    """A whole session description."""

    version: int = 0
    origin: Origin | None = field(default_factory=Origin)
    name: str = ""
    info: str | None = None
    uri: str | None = None
    emails: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)
    connection: Connection | None = None
    bandwidths: list[Bandwidth] = field(default_factory=list)
    timings: list[Timing] = field(default_factory=list)
    timezone: str | None = None
    key: str | None = None
    extra_lines: list[tuple[str, str]] = field(default_factory=list)
    attributes: list[Attribute] = field(default_factory=list)
    media: list[Media] = field(default_factory=list)
    #: What lenient parsing tolerated or dropped; not part of equality.
    warnings: list[str] = field(default_factory=list, compare=False)

    def to_text(self) -> str:
        """Serialise (see :func:`generate_sdp`)."""
        return generate_sdp(self)

    def to_bytes(self) -> bytes:
        """Serialise as UTF-8."""
        return generate_sdp(self).encode("utf-8")


# --------------------------------------------------------------------------------------------
# Parsing

_LINE_SPLIT = re.compile(r"\r\n|\r|\n")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")


def _parse_rtpmap(value: str) -> RtpMap:
    parts = value.split(None, 1)
    if len(parts) != 2 or not _is_uint(parts[0]):
        raise SdpError(f"a=rtpmap value {value!r} is not '<pt> <encoding>/<clock rate>'")
    pt = int(parts[0])
    if pt > 127:
        raise SdpError(f"a=rtpmap payload type {pt} outside 0..127")
    enc = parts[1].strip().split("/")
    if len(enc) < 2 or not enc[0] or not _is_uint(enc[1]) or int(enc[1]) == 0:
        raise SdpError(f"a=rtpmap value {value!r} lacks an encoding name and clock rate")
    params = "/".join(enc[2:]) if len(enc) > 2 else None
    if params == "":
        params = None
    return RtpMap(pt, enc[0], int(enc[1]), params)


def _parse_media_line(value: str, strict: bool, warn: list[str], lineno: int) -> Media:
    parts = value.split()
    if len(parts) < 3 or (strict and len(parts) < 4):
        raise SdpError(f"line {lineno}: m= line {value!r} needs media, port, proto and formats")
    port_s, _, count_s = parts[1].partition("/")
    if not _is_uint(port_s) or int(port_s) > 65535 or (count_s and not _is_uint(count_s)):
        raise SdpError(f"line {lineno}: m= port {parts[1]!r} is not a port number")
    if len(parts) < 4:
        warn.append(f"line {lineno}: m= line has no formats")
    return Media(
        media=parts[0],
        port=int(port_s),
        proto=parts[2],
        formats=parts[3:],
        port_count=int(count_s) if count_s else None,
    )


def parse_sdp(
    data: str | bytes | bytearray | memoryview, *, strict: bool = False
) -> SessionDescription:
    """Parse a session description from text or bytes.

    Bytes are decoded as UTF-8; when that fails, lenient mode falls back to Latin-1 (cameras
    put local-codepage names in ``s=``) and strict mode raises.
    """
    warnings: list[str] = []

    def problem(msg: str) -> None:
        if strict:
            raise SdpError(msg)
        warnings.append(msg)

    if isinstance(data, str):
        text = data
    else:
        raw = bytes(data)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            problem(f"SDP is not valid UTF-8 (byte {exc.start}); decoded as Latin-1")
            text = raw.decode("latin-1")

    sd = SessionDescription(origin=None)
    seen: set[str] = set()
    media: Media | None = None
    for lineno, raw_line in enumerate(_LINE_SPLIT.split(text), 1):
        line = raw_line.rstrip(" \t\x00")
        if not line:
            continue
        if len(line) < 2 or line[1] != "=":
            head, sep, rest = line.partition("=")
            if sep and len(head.strip()) == 1 and not strict:
                # "a = value" style: tolerate spaces around the '='.
                line = head.strip() + "=" + rest.lstrip()
                warnings.append(f"line {lineno}: spaces around '='")
            else:
                problem(f"line {lineno}: {line[:40]!r} is not '<type>=<value>'")
                continue
        kind, value = line[0], line[2:]

        if kind == "a":
            name, sep, val = value.partition(":")
            if not name:
                problem(f"line {lineno}: attribute with an empty name")
                continue
            (media or sd).attributes.append(Attribute(name, val if sep else None))
        elif kind == "m":
            media = _parse_media_line(value, strict, warnings, lineno)
            sd.media.append(media)
        elif kind == "c":
            parts = value.split()
            if len(parts) != 3:
                problem(f"line {lineno}: c= line {value!r} is not '<net> <addrtype> <addr>'")
                continue
            conn = Connection(*parts)
            if media is not None:
                media.connections.append(conn)
            elif sd.connection is not None:
                problem(f"line {lineno}: second session-level c= line ignored")
            else:
                sd.connection = conn
        elif kind == "b":
            btype, sep, bval = value.partition(":")
            if not sep or not btype or not _is_uint(bval.strip()):
                problem(f"line {lineno}: b= line {value!r} is not '<type>:<integer>'")
                continue
            (media or sd).bandwidths.append(Bandwidth(btype, int(bval.strip())))
        elif kind == "i":
            if media is not None:
                media.title = value
            else:
                sd.info = value
        elif kind == "k":
            (media or sd).key = value
        elif media is not None and kind in "vosuepzt":
            problem(f"line {lineno}: session-level '{kind}=' line inside a media section")
        elif kind == "v":
            if value.strip() != "0":
                problem(f"line {lineno}: SDP version {value!r}, expected 0")
            if _is_uint(value.strip()):
                sd.version = int(value.strip())
            seen.add("v")
        elif kind == "o":
            parts = value.split()
            if len(parts) < 6 or (len(parts) > 6 and strict):
                problem(f"line {lineno}: o= line {value!r} does not have 6 fields")
                continue
            sd.origin = Origin(*parts[:5], " ".join(parts[5:]))
            seen.add("o")
        elif kind == "s":
            sd.name = value
            seen.add("s")
        elif kind == "u":
            sd.uri = value
        elif kind == "e":
            sd.emails.append(value)
        elif kind == "p":
            sd.phones.append(value)
        elif kind == "t":
            parts = value.split()
            if len(parts) != 2 or not all(_is_uint(p) for p in parts):
                problem(f"line {lineno}: t= line {value!r} is not '<start> <stop>'")
                continue
            sd.timings.append(Timing(int(parts[0]), int(parts[1])))
            seen.add("t")
        elif kind == "r":
            if not sd.timings:
                problem(f"line {lineno}: r= line without a preceding t= line")
                continue
            sd.timings[-1].repeats.append(value)
        elif kind == "z":
            sd.timezone = value
        else:
            if strict:
                raise SdpError(f"line {lineno}: unknown SDP line type '{kind}='")
            if not kind.isalpha():
                warnings.append(f"line {lineno}: line type {kind!r} is not a letter; dropped")
                continue
            (media or sd).extra_lines.append((kind, value))
    for needed in "vost":
        if needed not in seen:
            problem(f"mandatory '{needed}=' line missing")
    sd.warnings = warnings
    return sd


# --------------------------------------------------------------------------------------------
# Generation


def generate_sdp(sd: SessionDescription) -> str:
    """Serialise in RFC 8866 line order with CRLF line ends.

    Missing mandatory parts get neutral defaults (``o=- 0 0 IN IP4 0.0.0.0``, ``s= ``,
    ``t=0 0``). Values containing CR, LF or NUL are refused, so a token can never inject lines.
    """
    out: list[str] = []

    def add(kind: str, value: str) -> None:
        if "\r" in value or "\n" in value or "\x00" in value:
            raise SdpError(f"{kind}= value {value[:40]!r} contains a line break or NUL")
        out.append(f"{kind}={value}")

    def add_attrs(attrs: Iterable[Attribute]) -> None:
        for a in attrs:
            if not a.name or ":" in a.name:
                raise SdpError(f"attribute name {a.name!r} is empty or contains ':'")
            add("a", a.name if a.value is None else f"{a.name}:{a.value}")

    def add_extra(lines: Iterable[tuple[str, str]]) -> None:
        for kind, value in lines:
            if len(kind) != 1 or not kind.isalpha():
                raise SdpError(f"extra SDP line type {kind!r} is not one letter")
            add(kind, value)

    add("v", str(sd.version))
    add("o", str(sd.origin if sd.origin is not None else Origin()))
    add("s", sd.name or " ")
    if sd.info is not None:
        add("i", sd.info)
    if sd.uri is not None:
        add("u", sd.uri)
    for e in sd.emails:
        add("e", e)
    for p in sd.phones:
        add("p", p)
    if sd.connection is not None:
        add("c", str(sd.connection))
    for b in sd.bandwidths:
        add("b", str(b))
    for t in sd.timings or [Timing()]:
        add("t", f"{t.start} {t.stop}")
        for r in t.repeats:
            add("r", r)
    if sd.timezone is not None:
        add("z", sd.timezone)
    if sd.key is not None:
        add("k", sd.key)
    add_extra(sd.extra_lines)
    add_attrs(sd.attributes)
    for m in sd.media:
        port = f"{m.port}/{m.port_count}" if m.port_count is not None else str(m.port)
        add("m", " ".join([m.media, port, m.proto, *m.formats]))
        if m.title is not None:
            add("i", m.title)
        for c in m.connections:
            add("c", str(c))
        for b in m.bandwidths:
            add("b", str(b))
        if m.key is not None:
            add("k", m.key)
        add_extra(m.extra_lines)
        add_attrs(m.attributes)
    return "\r\n".join(out) + "\r\n"


def make_media(
    kind: str,
    payload_type: int,
    encoding_name: str,
    clock_rate: int,
    *,
    channels: int | None = None,
    fmtp: Mapping[str, str] | str | None = None,
    control: str | None = None,
    onvif_track: str | None = None,
    direction: str | None = None,
    framerate: str | None = None,
    proto: str = "RTP/AVP",
    port: int = 0,
) -> Media:
    """A media section the way the replay server describes a track (replay Part C order)."""
    if not 0 <= payload_type <= 127:
        raise SdpError(f"payload type {payload_type} outside 0..127")
    rtpmap = f"{payload_type} {encoding_name}/{clock_rate}"
    if channels is not None:
        rtpmap += f"/{channels}"
    m = Media(media=kind, port=port, proto=proto, formats=[str(payload_type)])
    m.add("rtpmap", rtpmap)
    if fmtp is not None:
        text = fmtp if isinstance(fmtp, str) else ";".join(f"{k}={v}" for k, v in fmtp.items())
        m.add("fmtp", f"{payload_type} {text}")
    if framerate is not None:
        m.add("framerate", framerate)
    if control is not None:
        m.add("control", control)
    if onvif_track is not None:
        m.add("x-onvif-track", onvif_track)
    if direction is not None:
        if direction not in _DIRECTIONS:
            raise SdpError(f"direction {direction!r} is not one of {', '.join(_DIRECTIONS)}")
        m.add(direction)
    return m


# --------------------------------------------------------------------------------------------
# Control URLs (RFC 2326 C.1.1) and the stream view


def choose_base_url(
    request_url: str, content_base: str | None = None, content_location: str | None = None
) -> str:
    """The base for relative control URLs: Content-Base, else Content-Location, else request."""
    return content_base or content_location or request_url


def _remove_dot_segments(path: str) -> str:
    out: list[str] = []
    segments = path.split("/")
    for i, seg in enumerate(segments):
        last = i == len(segments) - 1
        if seg == ".":
            if last:
                out.append("")
        elif seg == "..":
            if len(out) > 1:
                out.pop()
            if last:
                out.append("")
        else:
            out.append(seg)
    result = "/".join(out)
    if path.startswith("/") and not result.startswith("/"):
        result = "/" + result
    return result


def _join_url(base: str, ref: str) -> str:
    """RFC 3986 section 5.2 reference resolution, for any scheme (urljoin skips rtsps)."""
    try:
        b = urlsplit(base)
        r = urlsplit(ref)
    except ValueError as exc:  # e.g. an unbalanced IPv6 bracket
        raise SdpError(f"cannot resolve control {ref!r} against {base!r}: {exc}") from exc
    if r.netloc or ref.startswith("//"):
        netloc, path, query = r.netloc, _remove_dot_segments(r.path), r.query
    else:
        netloc = b.netloc
        if not r.path:
            path = b.path
            query = r.query if "?" in ref else b.query
        else:
            if r.path.startswith("/"):
                path = r.path
            elif b.netloc and not b.path:
                path = "/" + r.path
            else:
                path = b.path[: b.path.rfind("/") + 1] + r.path
            path = _remove_dot_segments(path)
            query = r.query
    url = f"{b.scheme}://{netloc}{path}" if b.scheme else f"//{netloc}{path}"
    if query or "?" in ref:
        url += "?" + query
    if r.fragment:
        url += "#" + r.fragment
    return url


def resolve_control(control: str | None, base_url: str, *, append: bool = False) -> str:
    """The absolute URL a control attribute designates (RFC 2326 C.1.1).

    Absent, empty or ``*`` controls mean the base URL itself (aggregate control); absolute
    URLs are used as they are; relative ones are resolved against the base per RFC 3986.
    ``append=True`` instead joins base and control with one '/', as live555 and FFmpeg do -
    the quirk cameras expect when their Content-Base lacks a trailing slash.
    """
    if control is None:
        return base_url
    control = control.strip()
    if not control or control == "*":
        return base_url
    if _SCHEME.match(control):
        return control
    if append:
        return base_url.rstrip("/") + "/" + control.lstrip("/")
    return _join_url(base_url, control)


def session_control_url(sd: SessionDescription, base_url: str, *, append: bool = False) -> str:
    """The aggregate control URL for PLAY/PAUSE/TEARDOWN of the whole session."""
    return resolve_control(sd.control, base_url, append=append)


@dataclass(frozen=True, slots=True)
class MediaStream:
    """What ingest and replay act on for one RTP media section.

    ``fmtp`` keys are lower-cased (codec parameter names are case-insensitive); ``fmtp_raw``
    is the text as received. ``encoding_name``/``clock_rate`` are None for a dynamic payload
    type without rtpmap. ``direction`` defaults to the session level, then ``sendrecv``.
    """

    index: int
    media: str
    payload_type: int
    encoding_name: str | None
    clock_rate: int | None
    channels: int | None
    fmtp: dict[str, str]
    fmtp_raw: str | None
    control_url: str
    onvif_track: str | None
    direction: str
    framerate: Fraction | None
    port: int
    proto: str


def media_streams(
    sd: SessionDescription, base_url: str, *, append_control: bool = False
) -> list[MediaStream]:
    """One :class:`MediaStream` per RTP media section, using its first (preferred) format.

    Sections with a non-RTP transport are left out. A section's control URL is resolved
    against ``base_url`` (see :func:`choose_base_url` and :func:`resolve_control`); without
    ``a=control`` it is the base URL. Raises :class:`SdpError` for an unusable rtpmap,
    framerate or payload type.
    """
    session_dir = sd.direction or "sendrecv"
    out = []
    for index, m in enumerate(sd.media):
        if "RTP" not in m.proto.upper():
            continue
        if not m.formats or not _is_uint(m.formats[0]) or int(m.formats[0]) > 127:
            raise SdpError(f"media section {index} has no RTP payload type: {m.formats!r}")
        pt = int(m.formats[0])
        rtpmap = m.rtpmap(pt)
        fmtp = m.fmtp(pt)
        out.append(
            MediaStream(
                index=index,
                media=m.media.lower(),
                payload_type=pt,
                encoding_name=rtpmap.encoding_name if rtpmap else None,
                clock_rate=rtpmap.clock_rate if rtpmap else None,
                channels=rtpmap.channels if rtpmap else None,
                fmtp={k.lower(): v for k, v in fmtp.params.items()} if fmtp else {},
                fmtp_raw=fmtp.raw if fmtp else None,
                control_url=resolve_control(m.control, base_url, append=append_control),
                onvif_track=m.onvif_track,
                direction=m.direction or session_dir,
                framerate=m.framerate,
                port=m.port,
                proto=m.proto,
            )
        )
    return out
