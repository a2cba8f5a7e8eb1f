"""HTTP/RTSP Basic and Digest authentication (RFC 7617, RFC 2617/7616), sans-IO, both sides.

The camera client answers challenges (:class:`ClientAuthenticator`), the replay server and the
SOAP layer issue and check them (:class:`ServerAuthenticator`); both share the header parsers
and :func:`digest_response`. Server nonces carry their creation time and an HMAC, so the
server needs no nonce table to tell a stale nonce from a forged one; a small bounded table only
tracks nonce counts to refuse replays. Every comparison of secrets is constant-time.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final, TypeAlias
from urllib.parse import quote as _pct_quote
from urllib.parse import unquote as _pct_unquote
from urllib.parse import urlsplit

from nvr.protocol.errors import ProtocolError
from nvr.protocol.rtsp_headers import TOKEN_CHARS, is_token, quote

__all__ = [
    "AuthError",
    "AuthResult",
    "AuthStatus",
    "BasicChallenge",
    "BasicCredentials",
    "Challenge",
    "ClientAuthenticator",
    "Credentials",
    "DigestChallenge",
    "DigestCredentials",
    "OtherChallenge",
    "OtherCredentials",
    "ServerAuthenticator",
    "UriCredentials",
    "basic_authorization",
    "choose_challenge",
    "digest_authorization",
    "digest_response",
    "format_authorization",
    "format_challenge",
    "insert_uri_password",
    "join_uri_credentials",
    "parse_authorization",
    "parse_challenges",
    "parse_www_authenticate",
    "split_uri_credentials",
    "split_uri_password",
]


class AuthError(ProtocolError):
    """Malformed or unsupported authentication header, challenge or URI userinfo."""


def _show(text: str) -> str:
    return repr(text) if len(text) <= 60 else repr(text[:60]) + "…"


def _encode(text: str) -> bytes:
    """Secrets and header values as bytes; surrogateescape keeps non-UTF-8 input hashable."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise AuthError(f"cannot encode {_show(text)}") from None


# --- RFC 7235 list syntax: scheme [token68 | #auth-param], comma-separated ------------------

_TOKEN68: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/"


@dataclass(frozen=True, slots=True)
class _RawAuth:
    scheme: str
    token68: str | None
    params: tuple[tuple[str, str], ...]


def _scan(text: str, pos: int, chars: str = " \t") -> int:
    """Index after the run of ``chars`` starting at ``pos`` (whitespace by default)."""
    while pos < len(text) and text[pos] in chars:
        pos += 1
    return pos


def _read_quoted(text: str, pos: int) -> tuple[str, int]:
    """``text[pos]`` is '"'; returns the unescaped content and the index after the close."""
    out: list[str] = []
    i = pos + 1
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
        elif char == '"':
            return "".join(out), i + 1
        else:
            out.append(char)
            i += 1
    raise AuthError(f"unterminated quoted string in {_show(text[pos:])}")


def _token68_at(text: str, pos: int) -> int:
    """End of a token68 starting at ``pos`` if it fills the item, else -1."""
    end = _scan(text, pos, _TOKEN68)
    if end == pos:
        return -1
    end = _scan(text, end, "=")
    after = _scan(text, end)
    return end if after == len(text) or text[after] == "," else -1


def _starts_param(text: str, pos: int) -> bool:
    """Whether ``name =`` follows (a parameter) rather than a new scheme."""
    end = _scan(text, pos, TOKEN_CHARS)
    if end == pos:
        return False
    after = _scan(text, end)
    return after < len(text) and text[after] == "="


def _read_params(text: str, pos: int) -> tuple[list[tuple[str, str]], int]:
    params: list[tuple[str, str]] = []
    while True:
        end = _scan(text, pos, TOKEN_CHARS)
        name = text[pos:end]
        pos = _scan(text, end)
        if not name or pos >= len(text) or text[pos] != "=":
            raise AuthError(f"expected name=value at {_show(text[pos:])}")
        pos = _scan(text, pos + 1)
        if pos < len(text) and text[pos] == '"':
            value, pos = _read_quoted(text, pos)
        else:  # lenient: cameras send unquoted values with spaces ("realm=IP Camera(1)")
            comma = text.find(",", pos)
            stop = len(text) if comma < 0 else comma
            value, pos = text[pos:stop].strip(" \t"), stop
        params.append((name.lower(), value))
        pos = _scan(text, pos)
        if pos >= len(text):
            return params, pos
        if text[pos] != ",":
            raise AuthError(f"expected ',' at {_show(text[pos:])}")
        following = _scan(text, pos + 1, " \t,")
        if not _starts_param(text, following):
            return params, pos
        pos = following


def _parse_auth_list(text: str) -> list[_RawAuth]:
    """Split a WWW-Authenticate / Authorization value into schemes with their parameters."""
    items: list[_RawAuth] = []
    pos = 0
    while True:
        pos = _scan(text, pos, " \t,")
        if pos >= len(text):
            return items
        end = _scan(text, pos, TOKEN_CHARS)
        scheme = text[pos:end]
        if not scheme:
            raise AuthError(f"expected an authentication scheme at {_show(text[pos:])}")
        pos = _scan(text, end)
        if pos >= len(text) or text[pos] == ",":
            items.append(_RawAuth(scheme, None, ()))
            continue
        if pos == end:
            raise AuthError(f"expected a space after scheme {_show(scheme)}")
        token_end = _token68_at(text, pos)
        if token_end >= 0:
            items.append(_RawAuth(scheme, text[pos:token_end], ()))
            pos = token_end
            continue
        params, pos = _read_params(text, pos)
        items.append(_RawAuth(scheme, None, tuple(params)))


def _quoted(value: str, what: str) -> str:
    if "\r" in value or "\n" in value or "\0" in value:
        raise AuthError(f"{what}: line break or NUL in {_show(value)}")
    return quote(value)


def _token(value: str, what: str) -> str:
    if not is_token(value):
        raise AuthError(f"{what}: {_show(value)} is not a token")
    return value


def _token_param(params: dict[str, str], name: str) -> str | None:
    """A parameter whose value must be a token (algorithm, charset, qop)."""
    value = params.get(name)
    if value is not None and not is_token(value):
        raise AuthError(f"{name} {_show(value)} is not a token")
    return value


def _flag(value: str | None) -> bool:
    return value is not None and value.strip().lower() == "true"


def _format_raw(scheme: str, token68: str | None, params: Sequence[tuple[str, str]]) -> str:
    _token(scheme, "auth scheme")
    if token68 is not None:
        if not token68 or _token68_at(token68, 0) != len(token68):
            raise AuthError(f"{_show(token68)} is not a token68")
        return f"{scheme} {token68}"
    if not params:
        return scheme
    return scheme + " " + ", ".join(f"{_token(k, 'auth-param')}={v}" for k, v in params)


# --- challenges (WWW-Authenticate) -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BasicChallenge:
    """``Basic realm="…"``."""

    realm: str = ""
    charset: str | None = None


@dataclass(frozen=True, slots=True)
class DigestChallenge:
    """``Digest realm=…, nonce=…``; ``algorithm`` None means MD5, ``qop`` () means RFC 2069."""

    realm: str
    nonce: str
    algorithm: str | None = None
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False
    domain: str | None = None
    charset: str | None = None
    userhash: bool = False


@dataclass(frozen=True, slots=True)
class OtherChallenge:
    """A scheme we do not speak (Bearer, Negotiate…), kept so callers can see it was offered."""

    scheme: str
    params: tuple[tuple[str, str], ...] = ()
    token68: str | None = None


Challenge: TypeAlias = BasicChallenge | DigestChallenge | OtherChallenge


def _challenge_from_raw(raw: _RawAuth) -> Challenge:
    kind = raw.scheme.lower()
    params = dict(raw.params)
    if kind == "basic" and raw.token68 is None:
        return BasicChallenge(params.get("realm", ""), _token_param(params, "charset"))
    if kind == "digest" and raw.token68 is None:
        if "realm" not in params or "nonce" not in params:
            raise AuthError("Digest challenge without realm or nonce")
        qop = tuple(q.strip(" \t") for q in params.get("qop", "").split(",") if q.strip(" \t"))
        if not all(is_token(q) for q in qop):
            raise AuthError(f"bad qop list {_show(params['qop'])}")
        return DigestChallenge(
            realm=params["realm"],
            nonce=params["nonce"],
            algorithm=_token_param(params, "algorithm"),
            qop=qop,
            opaque=params.get("opaque"),
            stale=_flag(params.get("stale")),
            domain=params.get("domain"),
            charset=_token_param(params, "charset"),
            userhash=_flag(params.get("userhash")),
        )
    return OtherChallenge(raw.scheme, raw.params, raw.token68)


def parse_www_authenticate(value: str) -> list[Challenge]:
    """One WWW-Authenticate value (it may hold several comma-separated challenges)."""
    challenges = [_challenge_from_raw(raw) for raw in _parse_auth_list(value)]
    if not challenges:
        raise AuthError("WWW-Authenticate: no challenge")
    return challenges


def parse_challenges(values: Iterable[str]) -> list[Challenge]:
    """Every challenge of a 401, in the server's preference order."""
    return [challenge for value in values for challenge in parse_www_authenticate(value)]


def format_challenge(challenge: Challenge) -> str:
    """Serialise one challenge as a WWW-Authenticate value."""
    if isinstance(challenge, BasicChallenge):
        params = [("realm", _quoted(challenge.realm, "realm"))]
        if challenge.charset is not None:
            params.append(("charset", _token(challenge.charset, "charset")))
        return _format_raw("Basic", None, params)
    if isinstance(challenge, DigestChallenge):
        params = [
            ("realm", _quoted(challenge.realm, "realm")),
            ("nonce", _quoted(challenge.nonce, "nonce")),
        ]
        if challenge.algorithm is not None:
            params.append(("algorithm", _token(challenge.algorithm, "algorithm")))
        if challenge.qop:
            for qop in challenge.qop:
                _token(qop, "qop")
            params.append(("qop", _quoted(",".join(challenge.qop), "qop")))
        if challenge.opaque is not None:
            params.append(("opaque", _quoted(challenge.opaque, "opaque")))
        if challenge.stale:
            params.append(("stale", "true"))
        if challenge.domain is not None:
            params.append(("domain", _quoted(challenge.domain, "domain")))
        if challenge.charset is not None:
            params.append(("charset", _token(challenge.charset, "charset")))
        if challenge.userhash:
            params.append(("userhash", "true"))
        return _format_raw("Digest", None, params)
    quoted = [(k, _quoted(v, k)) for k, v in challenge.params]
    return _format_raw(challenge.scheme, challenge.token68, quoted)


# --- credentials (Authorization) -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BasicCredentials:
    """``Basic base64(user:password)``."""

    username: str
    password: str


@dataclass(frozen=True, slots=True)
class DigestCredentials:
    """``Digest username=…, response=…``; ``nc`` is kept as sent because it is hashed as text."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str | None = None
    qop: str | None = None
    nc: str | None = None
    cnonce: str | None = None
    opaque: str | None = None
    userhash: bool = False


@dataclass(frozen=True, slots=True)
class OtherCredentials:
    """Credentials of a scheme we do not check."""

    scheme: str
    params: tuple[tuple[str, str], ...] = ()
    token68: str | None = None


Credentials: TypeAlias = BasicCredentials | DigestCredentials | OtherCredentials


def _basic_from_token(token68: str) -> BasicCredentials:
    try:
        decoded = base64.b64decode(token68, validate=True)
    except (binascii.Error, ValueError):
        raise AuthError("Basic credentials are not valid base64") from None
    user, colon, password = decoded.decode("utf-8", "surrogateescape").partition(":")
    if not colon:
        raise AuthError("Basic credentials without ':' between user and password")
    return BasicCredentials(user, password)


def _digest_from_params(params: dict[str, str]) -> DigestCredentials:
    missing = [k for k in ("username", "realm", "nonce", "uri", "response") if k not in params]
    if missing:
        raise AuthError(f"Digest credentials lack {', '.join(missing)}")
    qop = _token_param(params, "qop")
    nc = params.get("nc")
    if qop is not None and (nc is None or "cnonce" not in params):
        raise AuthError("Digest credentials with qop need nc and cnonce")
    if nc is not None and (not 1 <= len(nc) <= 8 or nc.strip("0123456789abcdefABCDEF")):
        raise AuthError(f"Digest nc {_show(nc)} is not 8 hex digits")
    return DigestCredentials(
        username=params["username"],
        realm=params["realm"],
        nonce=params["nonce"],
        uri=params["uri"],
        response=params["response"],
        algorithm=_token_param(params, "algorithm"),
        qop=qop,
        nc=nc,
        cnonce=params.get("cnonce"),
        opaque=params.get("opaque"),
        userhash=_flag(params.get("userhash")),
    )


def parse_authorization(value: str) -> Credentials:
    """Parse an Authorization value (exactly one set of credentials)."""
    items = _parse_auth_list(value)
    if len(items) != 1:
        raise AuthError(f"Authorization: expected one set of credentials, got {len(items)}")
    raw = items[0]
    kind = raw.scheme.lower()
    if kind == "basic":
        if raw.token68 is None:
            raise AuthError("Basic credentials need a base64 token")
        return _basic_from_token(raw.token68)
    if kind == "digest":
        if raw.token68 is not None:
            raise AuthError("Digest credentials need parameters, not a token")
        return _digest_from_params(dict(raw.params))
    return OtherCredentials(raw.scheme, raw.params, raw.token68)


def format_authorization(credentials: Credentials) -> str:
    """Serialise credentials as an Authorization value."""
    if isinstance(credentials, BasicCredentials):
        if ":" in credentials.username:
            raise AuthError("Basic user names cannot contain ':'")
        pair = _encode(f"{credentials.username}:{credentials.password}")
        return "Basic " + base64.b64encode(pair).decode("ascii")
    if isinstance(credentials, DigestCredentials):
        c = credentials
        params = [
            ("username", _quoted(c.username, "username")),
            ("realm", _quoted(c.realm, "realm")),
            ("nonce", _quoted(c.nonce, "nonce")),
            ("uri", _quoted(c.uri, "uri")),
            ("response", _quoted(c.response, "response")),
        ]
        if c.algorithm is not None:
            params.append(("algorithm", _token(c.algorithm, "algorithm")))
        if c.qop is not None:
            if c.nc is None or c.cnonce is None:
                raise AuthError("Digest credentials with qop need nc and cnonce")
            params.append(("qop", _token(c.qop, "qop")))
        if c.nc is not None:
            params.append(("nc", _token(c.nc, "nc")))
        if c.cnonce is not None:
            params.append(("cnonce", _quoted(c.cnonce, "cnonce")))
        if c.opaque is not None:
            params.append(("opaque", _quoted(c.opaque, "opaque")))
        if c.userhash:
            params.append(("userhash", "true"))
        return _format_raw("Digest", None, params)
    quoted = [(k, _quoted(v, k)) for k, v in credentials.params]
    return _format_raw(credentials.scheme, credentials.token68, quoted)


# --- digest computation ----------------------------------------------------------------------

_HashFunction: TypeAlias = Callable[[bytes], str]


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _sha512_256(data: bytes) -> str:
    return hashlib.new("sha512_256", data).hexdigest()


_HASHES: Final[dict[str, _HashFunction]] = {"MD5": _md5, "SHA-256": _sha256}
if "sha512_256" in hashlib.algorithms_available:
    _HASHES["SHA-512-256"] = _sha512_256

# Client preference when a server offers several digests: stronger first.
_STRENGTH: Final = {"SHA-512-256": 3, "SHA-256": 2, "MD5": 1}


def _algorithm(algorithm: str | None) -> tuple[_HashFunction, bool]:
    """Algorithm name (None = MD5) → (hex hash function, is a -sess variant)."""
    name = (algorithm or "MD5").strip().upper()
    session = name.endswith("-SESS")
    function = _HASHES.get(name[:-5] if session else name)
    if function is None:
        raise AuthError(f"unsupported digest algorithm {_show(algorithm or '')}")
    return function, session


def is_supported_algorithm(algorithm: str | None) -> bool:
    """Whether :func:`digest_response` can compute this algorithm."""
    try:
        _algorithm(algorithm)
    except AuthError:
        return False
    return True


def digest_response(
    *,
    username: str,
    realm: str,
    password: str,
    method: str,
    uri: str,
    nonce: str,
    algorithm: str | None = None,
    qop: str | None = None,
    nc: str | None = None,
    cnonce: str | None = None,
    body: bytes = b"",
) -> str:
    """The ``response`` value of RFC 7616 §3.4.1 (RFC 2069 form when ``qop`` is None)."""
    hash_hex, session = _algorithm(algorithm)

    def digest(*parts: str) -> str:
        return hash_hex(b":".join(_encode(part) for part in parts))

    ha1 = digest(username, realm, password)
    if session:
        ha1 = digest(ha1, nonce, cnonce or "")
    qop_kind = (qop or "").lower()
    ha2 = digest(method, uri, hash_hex(body)) if qop_kind == "auth-int" else digest(method, uri)
    if qop is None:
        return digest(ha1, nonce, ha2)
    if qop_kind not in ("auth", "auth-int"):
        raise AuthError(f"unsupported qop {_show(qop)}")
    return digest(ha1, nonce, nc or "", cnonce or "", qop, ha2)


def _pick_qop(offered: Sequence[str]) -> str | None:
    kinds = [q.lower() for q in offered]
    if not kinds:
        return None
    if "auth" in kinds:
        return "auth"
    if "auth-int" in kinds:
        return "auth-int"
    raise AuthError(f"no supported qop in {offered}")


def digest_authorization(
    challenge: DigestChallenge,
    username: str,
    password: str,
    method: str,
    uri: str,
    *,
    nc: int = 1,
    cnonce: str | None = None,
    body: bytes = b"",
) -> DigestCredentials:
    """Answer a Digest challenge for one request (``uri`` exactly as in the request line)."""
    qop = _pick_qop(challenge.qop)
    _, session = _algorithm(challenge.algorithm)
    if not 1 <= nc <= 0xFFFFFFFF:
        raise AuthError(f"nonce count {nc} out of range")
    if cnonce is None and (qop is not None or session):
        cnonce = secrets.token_hex(8)
    nc_text = f"{nc:08x}" if qop is not None else None
    response = digest_response(
        username=username,
        realm=challenge.realm,
        password=password,
        method=method,
        uri=uri,
        nonce=challenge.nonce,
        algorithm=challenge.algorithm,
        qop=qop,
        nc=nc_text,
        cnonce=cnonce,
        body=body,
    )
    shown_user = username
    if challenge.userhash:
        shown_user = _algorithm(challenge.algorithm)[0](_encode(f"{username}:{challenge.realm}"))
    return DigestCredentials(
        username=shown_user,
        realm=challenge.realm,
        nonce=challenge.nonce,
        uri=uri,
        response=response,
        algorithm=challenge.algorithm,
        qop=qop,
        nc=nc_text,
        cnonce=cnonce if (qop is not None or session) else None,
        opaque=challenge.opaque,
        userhash=challenge.userhash,
    )


def basic_authorization(username: str, password: str) -> BasicCredentials:
    """Credentials for a Basic challenge."""
    return BasicCredentials(username, password)


def _rank(challenge: Challenge, allow_basic: bool) -> int:
    if isinstance(challenge, DigestChallenge):
        try:
            _pick_qop(challenge.qop)
            _algorithm(challenge.algorithm)
        except AuthError:
            return 0
        base = (challenge.algorithm or "MD5").strip().upper().removesuffix("-SESS")
        return 1 + _STRENGTH.get(base, 0)
    if isinstance(challenge, BasicChallenge) and allow_basic:
        return 1
    return 0


def choose_challenge(
    challenges: Iterable[Challenge], *, allow_basic: bool = True
) -> DigestChallenge | BasicChallenge | None:
    """The challenge to answer: strongest supported Digest (SHA-256 over MD5), else Basic."""
    best: DigestChallenge | BasicChallenge | None = None
    best_rank = 0
    for challenge in challenges:
        rank = _rank(challenge, allow_basic)
        if rank > best_rank:
            assert not isinstance(challenge, OtherChallenge)
            best, best_rank = challenge, rank
    return best


class ClientAuthenticator:
    """Client-side auth state for one camera connection.

    Feed each 401's WWW-Authenticate values to :meth:`handle_challenges`; it says whether a
    retry can help (False once the chosen challenge already failed, i.e. wrong credentials,
    unless the server flagged the nonce stale). :meth:`authorization` gives the header value
    for every following request, counting nonce uses.
    """

    __slots__ = ("_allow_basic", "_challenge", "_uses", "password", "username")

    def __init__(self, username: str, password: str, *, allow_basic: bool = True) -> None:
        self.username = username
        self.password = password
        self._allow_basic = allow_basic
        self._challenge: DigestChallenge | BasicChallenge | None = None
        self._uses = 0  # authorizations sent since the current challenge arrived

    @property
    def challenge(self) -> DigestChallenge | BasicChallenge | None:
        """The challenge currently answered."""
        return self._challenge

    def handle_challenges(self, www_authenticate: Iterable[str]) -> bool:
        """Absorb a 401's challenges; True when retrying the request may succeed."""
        chosen = choose_challenge(parse_challenges(www_authenticate), allow_basic=self._allow_basic)
        if chosen is None:
            return False
        stale = isinstance(chosen, DigestChallenge) and chosen.stale
        # One failed use of a challenge means the credentials are wrong; several uses mean it
        # worked before and merely expired (servers that forget to say stale=true).
        retry = stale or self._uses != 1 or self._challenge is None
        self._challenge = chosen
        self._uses = 0
        return retry

    def authorization(self, method: str, uri: str, body: bytes = b"") -> str | None:
        """Authorization value for the next request, or None while no challenge was seen."""
        challenge = self._challenge
        if challenge is None:
            return None
        self._uses += 1
        if isinstance(challenge, BasicChallenge):
            return format_authorization(basic_authorization(self.username, self.password))
        credentials = digest_authorization(
            challenge, self.username, self.password, method, uri, nc=self._uses, body=body
        )
        return format_authorization(credentials)


# --- server side -----------------------------------------------------------------------------


class AuthStatus(enum.Enum):
    """Outcome of :meth:`ServerAuthenticator.verify` (how the shell should answer)."""

    OK = "ok"
    MISSING = "missing"  # no Authorization: 401 with challenges
    MALFORMED = "malformed"  # unparsable or incomplete header: 400 (or 401)
    UNSUPPORTED = "unsupported"  # scheme/algorithm/qop not offered: 401
    REALM_MISMATCH = "realm-mismatch"
    URI_MISMATCH = "uri-mismatch"  # digest uri names another resource: 400
    UNKNOWN_USER = "unknown-user"
    BAD_CREDENTIALS = "bad-credentials"
    STALE_NONCE = "stale-nonce"  # right password, old/foreign nonce: 401 with stale=true
    REPLAY = "replay"  # nonce count reused


GUESSES = frozenset(
    {
        AuthStatus.UNKNOWN_USER,
        AuthStatus.BAD_CREDENTIALS,
        AuthStatus.REPLAY,
        AuthStatus.REALM_MISMATCH,
    }
)
"""Outcomes that look like password guessing (the rest are protocol steps): what a login
throttle counts."""


@dataclass(frozen=True, slots=True)
class AuthResult:
    """Verification outcome; ``username`` is set once the credentials named a user."""

    status: AuthStatus
    username: str | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        """Authenticated."""
        return self.status is AuthStatus.OK

    @property
    def stale(self) -> bool:
        """Answer 401 with ``stale=true`` so the client retries without asking the user."""
        return self.status is AuthStatus.STALE_NONCE


class NonceState(enum.Enum):
    """What a server nonce turned out to be."""

    VALID = "valid"
    EXPIRED = "expired"
    FOREIGN = "foreign"  # not issued by this server (or secret/realm changed)


_NONCE_TAG: Final = b"nvr-digest-nonce\0"
_NONCE_CHARS: Final = 43  # base64url of 8 time + 8 random + 16 MAC bytes, unpadded
_B64URL: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_CLOCK_SKEW: Final = 60


class ServerAuthenticator:
    """Issues Digest (and optionally Basic) challenges and verifies Authorization headers.

    ``algorithms`` are offered in order, one challenge each (ONVIF: SHA-256 then MD5).
    ``password_for`` returns the plaintext password of a user, or None if there is none.
    Methods take ``now`` (Unix seconds) for tests; it defaults to the wall clock.
    The nonce-count table is bounded (``max_tracked_nonces``, least recently used dropped) and
    locked, so SOAP handlers in worker threads can share one instance with the RTSP server.
    """

    def __init__(
        self,
        realm: str,
        secret: bytes | None = None,
        *,
        algorithms: Sequence[str] = ("SHA-256", "MD5"),
        use_qop: bool = True,
        allow_legacy: bool = True,
        allow_basic: bool = False,
        nonce_lifetime: int = 300,
        check_uri: bool = True,
        replay_window: int = 64,
        max_tracked_nonces: int = 4096,
    ) -> None:
        for name in algorithms:
            _algorithm(name)
        if not algorithms:
            raise AuthError("at least one digest algorithm is needed")
        self.realm = realm
        self.algorithms = tuple(algorithms)
        self._offered = {name.upper() for name in algorithms}
        self._secret = secret if secret is not None else secrets.token_bytes(32)
        self._use_qop = use_qop
        self._allow_legacy = allow_legacy
        self._allow_basic = allow_basic
        self._lifetime = nonce_lifetime
        self._check_uri = check_uri
        self._window = replay_window
        self._max_tracked = max_tracked_nonces
        self._counts: OrderedDict[str, tuple[int, int]] = OrderedDict()
        self._lock = threading.Lock()

    # nonces

    def _mac(self, body: bytes) -> bytes:
        message = _NONCE_TAG + body + _encode(self.realm)
        return hmac.new(self._secret, message, hashlib.sha256).digest()[:16]

    def make_nonce(self, now: float | None = None) -> str:
        """A fresh nonce: creation time, randomness and an HMAC binding both to us."""
        stamp = max(int(time.time() if now is None else now), 0)
        body = stamp.to_bytes(8, "big") + secrets.token_bytes(8)
        return base64.urlsafe_b64encode(body + self._mac(body)).rstrip(b"=").decode("ascii")

    def nonce_state(self, nonce: str, now: float | None = None) -> NonceState:
        """Check a nonce's HMAC and age without any stored state."""
        if len(nonce) != _NONCE_CHARS or nonce.strip(_B64URL):
            return NonceState.FOREIGN
        try:
            raw = base64.urlsafe_b64decode(nonce + "=")
        except (binascii.Error, ValueError):
            return NonceState.FOREIGN
        body, mac = raw[:16], raw[16:]
        if not hmac.compare_digest(mac, self._mac(body)):
            return NonceState.FOREIGN
        age = (time.time() if now is None else now) - int.from_bytes(body[:8], "big")
        if age < -_CLOCK_SKEW:
            return NonceState.FOREIGN
        return NonceState.EXPIRED if age > self._lifetime else NonceState.VALID

    def challenges(self, *, stale: bool = False, now: float | None = None) -> list[str]:
        """WWW-Authenticate values for a 401, strongest algorithm first."""
        nonce = self.make_nonce(now)
        qop = ("auth",) if self._use_qop else ()
        values = [
            format_challenge(DigestChallenge(self.realm, nonce, name, qop, stale=stale))
            for name in self.algorithms
        ]
        if self._allow_basic:
            values.append(format_challenge(BasicChallenge(self.realm)))
        return values

    # verification

    def verify(
        self,
        authorization: str | None,
        *,
        method: str,
        uri: str,
        password_for: Callable[[str], str | None],
        body: bytes = b"",
        now: float | None = None,
    ) -> AuthResult:
        """Check the Authorization value of a request (``uri`` as in its request line)."""
        if authorization is None:
            return AuthResult(AuthStatus.MISSING)
        try:
            credentials = parse_authorization(authorization)
            if isinstance(credentials, BasicCredentials):
                return self._verify_basic(credentials, password_for)
            if isinstance(credentials, DigestCredentials):
                return self._verify_digest(credentials, method, uri, password_for, body, now)
        except AuthError as exc:  # unparsable, or text that cannot be encoded for hashing
            return AuthResult(AuthStatus.MALFORMED, detail=str(exc))
        return AuthResult(AuthStatus.UNSUPPORTED, detail=f"scheme {credentials.scheme}")

    def _verify_basic(
        self, credentials: BasicCredentials, password_for: Callable[[str], str | None]
    ) -> AuthResult:
        user = credentials.username
        if not self._allow_basic:
            return AuthResult(AuthStatus.UNSUPPORTED, user, "Basic is not allowed")
        password = password_for(user)
        expected = _encode(password if password is not None else secrets.token_hex(16))
        matches = hmac.compare_digest(expected, _encode(credentials.password))
        if password is None:
            return AuthResult(AuthStatus.UNKNOWN_USER, user)
        return AuthResult(AuthStatus.OK if matches else AuthStatus.BAD_CREDENTIALS, user)

    def _precheck_digest(self, c: DigestCredentials, uri: str) -> AuthResult | None:
        """Checks that need no password: what we offered, and that the uri is this request's."""
        if c.realm != self.realm:
            return AuthResult(AuthStatus.REALM_MISMATCH, c.username, f"realm {c.realm!r}")
        if (c.algorithm or "MD5").strip().upper() not in self._offered:
            return AuthResult(AuthStatus.UNSUPPORTED, c.username, f"algorithm {c.algorithm}")
        if c.userhash:
            return AuthResult(AuthStatus.UNSUPPORTED, c.username, "userhash was not offered")
        if c.qop is None and not self._allow_legacy:
            return AuthResult(AuthStatus.UNSUPPORTED, c.username, "Digest without qop")
        if c.qop is not None and c.qop.lower() not in ("auth", "auth-int"):
            return AuthResult(AuthStatus.UNSUPPORTED, c.username, f"qop {c.qop}")
        if c.nc is not None and int(c.nc, 16) == 0:
            return AuthResult(AuthStatus.MALFORMED, c.username, "nonce count 0")
        if self._check_uri and not _same_resource(c.uri, uri):
            return AuthResult(AuthStatus.URI_MISMATCH, c.username, f"uri {c.uri!r}")
        return None

    def _verify_digest(
        self,
        c: DigestCredentials,
        method: str,
        uri: str,
        password_for: Callable[[str], str | None],
        body: bytes,
        now: float | None,
    ) -> AuthResult:
        early = self._precheck_digest(c, uri)
        if early is not None:
            return early
        password = password_for(c.username)
        expected = digest_response(
            username=c.username,
            realm=c.realm,
            password=password if password is not None else "",
            method=method,
            uri=c.uri,
            nonce=c.nonce,
            algorithm=c.algorithm,
            qop=c.qop,
            nc=c.nc,
            cnonce=c.cnonce,
            body=body,
        )
        matches = hmac.compare_digest(_encode(expected), _encode(c.response.lower()))
        if password is None:
            return AuthResult(AuthStatus.UNKNOWN_USER, c.username)
        if not matches:
            return AuthResult(AuthStatus.BAD_CREDENTIALS, c.username)
        # Only now judge the nonce: stale=true promises the client its password was right.
        state = self.nonce_state(c.nonce, now)
        if state is not NonceState.VALID:
            return AuthResult(AuthStatus.STALE_NONCE, c.username, state.value)
        if c.nc is not None and not self._accept_count(c.nonce, int(c.nc, 16)):
            return AuthResult(AuthStatus.REPLAY, c.username, f"nc {c.nc} already used")
        return AuthResult(AuthStatus.OK, c.username)

    def _accept_count(self, nonce: str, count: int) -> bool:
        """Sliding-window replay check per nonce (tolerates slightly out-of-order requests)."""
        with self._lock:
            highest, seen = self._counts.get(nonce, (0, 0))
            if count > highest:
                shift = count - highest
                seen = ((seen << shift) | 1) & ((1 << self._window) - 1)
                highest = count
            else:
                offset = highest - count
                if offset >= self._window or (seen >> offset) & 1:
                    return False
                seen |= 1 << offset
            self._counts[nonce] = (highest, seen)
            self._counts.move_to_end(nonce)
            while len(self._counts) > self._max_tracked:
                self._counts.popitem(last=False)
            return True


def _same_resource(digest_uri: str, request_uri: str) -> bool:
    """Digest ``uri`` vs request line: equal, or the same path in absolute vs path form."""
    if digest_uri.rstrip("/") == request_uri.rstrip("/"):
        return True
    try:
        ours, theirs = urlsplit(request_uri), urlsplit(digest_uri)
    except ValueError:
        return False
    if ours.netloc and theirs.netloc:
        return False  # both absolute and different
    return (ours.path.rstrip("/"), ours.query) == (theirs.path.rstrip("/"), theirs.query)


# --- credentials in URIs ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UriCredentials:
    """User and password taken from ``rtsp://user:pass@host/…`` (percent-decoded)."""

    username: str
    password: str | None = None


def _authority_bounds(uri: str) -> tuple[int, int] | None:
    scheme_end = uri.find("://")
    if scheme_end <= 0:
        return None
    start = scheme_end + 3
    stops = [i for i in (uri.find(c, start) for c in "/?#") if i >= 0]
    return start, min(stops, default=len(uri))


def _pct_decode(text: str, what: str) -> str:
    try:
        return _pct_unquote(text, errors="strict")
    except UnicodeDecodeError:
        raise AuthError(f"{what} in URI is not UTF-8 after percent-decoding") from None


def _userinfo_bounds(uri: str) -> tuple[int, int] | None:
    """Where the userinfo starts and where its ``@`` is; None without userinfo."""
    bounds = _authority_bounds(uri)
    if bounds is None:
        return None
    start, stop = bounds
    at = uri.rfind("@", start, stop)  # rfind: an unescaped '@' in a password still works
    return None if at < 0 else (start, at)


def split_uri_credentials(uri: str) -> tuple[str, UriCredentials | None]:
    """Take the userinfo out of a URI: (URI without it, credentials or None)."""
    bounds = _userinfo_bounds(uri)
    if bounds is None:
        return uri, None
    start, at = bounds
    user, colon, password = uri[start:at].partition(":")
    credentials = UriCredentials(
        _pct_decode(user, "user name"), _pct_decode(password, "password") if colon else None
    )
    return uri[:start] + uri[at + 1 :], credentials


def join_uri_credentials(uri: str, credentials: UriCredentials | None) -> str:
    """Put (percent-encoded) credentials into a URI, replacing any userinfo it had."""
    bare, _ = split_uri_credentials(uri)
    if credentials is None:
        return bare
    bounds = _authority_bounds(bare)
    if bounds is None:
        raise AuthError(f"URI {_show(uri)} has no authority to put credentials in")
    try:
        userinfo = _pct_quote(credentials.username, safe="")
        if credentials.password is not None:
            userinfo += ":" + _pct_quote(credentials.password, safe="")
    except UnicodeEncodeError:
        raise AuthError("credentials cannot be encoded as UTF-8") from None
    start = bounds[0]
    return f"{bare[:start]}{userinfo}@{bare[start:]}"


def split_uri_password(uri: str) -> tuple[str, str | None]:
    """Take the password out of a URI's userinfo, exactly as written (not decoded): (URI that
    keeps only the user name, password text or None). :func:`insert_uri_password` undoes it
    to the character, so a URI stored without its password comes back as the client gave it.
    """
    bounds = _userinfo_bounds(uri)
    if bounds is None:
        return uri, None
    start, at = bounds
    colon = uri.find(":", start, at)
    if colon < 0:
        return uri, None
    return uri[:colon] + uri[at:], uri[colon + 1 : at]


def insert_uri_password(uri: str, password: str | None) -> str:
    """Put a password taken by :func:`split_uri_password` back after the user name."""
    if password is None:
        return uri
    bounds = _userinfo_bounds(uri)
    if bounds is None:
        raise AuthError(f"URI {_show(uri)} has no user name to put a password after")
    at = bounds[1]
    return f"{uri[:at]}:{password}{uri[at:]}"
