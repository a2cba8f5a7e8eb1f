"""WS-Security UsernameToken (OASIS UsernameToken Profile 1.0, as ONVIF Core §5.12 uses it).

PasswordDigest = Base64(SHA-1(nonce ‖ created ‖ password)) with the raw (Base64-decoded)
nonce and the Created text exactly as sent. ONVIF requires rejecting tokens without Nonce or
Created; we also reject a Created outside a freshness window and a nonce seen before within
that window. The replay cache only learns nonces of tokens whose digest was correct, so
strangers cannot fill it; its size is bounded anyway.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Final

from lxml import etree

from nvr.onvif.namespaces import WSSE, WSU, clark

_PROFILE: Final = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
)
PASSWORD_DIGEST: Final = _PROFILE + "#PasswordDigest"
PASSWORD_TEXT: Final = _PROFILE + "#PasswordText"
_BASE64: Final = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
)
MAX_NONCE_BYTES: Final = 256


class PasswordText(StrEnum):
    """When a clear-text password in a UsernameToken is acceptable."""

    NEVER = "never"
    TLS = "tls"
    ALWAYS = "always"


class WsseError(Exception):
    """The token is missing parts, stale, replayed or does not match; the text says which."""


class WsseRejected(WsseError):
    """Wrong password, unknown user or a replayed nonce: what a password guesser causes."""


@dataclass(frozen=True, slots=True)
class UsernameToken:
    username: str
    password: str
    password_type: str
    nonce: bytes | None
    created: str | None


def _text(parent: etree._Element, namespace: str, local: str) -> etree._Element | None:
    return parent.find(clark(namespace, local))


def _decode_nonce(element: etree._Element) -> bytes:
    encoding = element.get("EncodingType") or _BASE64
    if encoding != _BASE64:
        raise WsseError(f"unsupported nonce encoding {encoding[:80]!r}")
    try:
        nonce = base64.b64decode((element.text or "").strip(), validate=True)
    except (binascii.Error, ValueError):
        raise WsseError("nonce is not valid Base64") from None
    if not nonce or len(nonce) > MAX_NONCE_BYTES:
        raise WsseError("nonce is empty or too long")
    return nonce


def find_username_token(headers: Iterable[etree._Element]) -> UsernameToken | None:
    """The UsernameToken of the first ``wsse:Security`` header holding one, or None."""
    for block in headers:
        if block.tag != clark(WSSE, "Security"):
            continue
        token = _text(block, WSSE, "UsernameToken")
        if token is None:
            continue
        username = _text(token, WSSE, "Username")
        password = _text(token, WSSE, "Password")
        if username is None or not (username.text or "").strip():
            raise WsseError("UsernameToken without Username")
        if password is None:
            raise WsseError("UsernameToken without Password")
        nonce = _text(token, WSSE, "Nonce")
        created = _text(token, WSU, "Created")
        return UsernameToken(
            username=(username.text or "").strip(),
            password=password.text or "",
            password_type=(password.get("Type") or PASSWORD_TEXT).strip(),
            nonce=None if nonce is None else _decode_nonce(nonce),
            created=None if created is None else (created.text or "").strip(),
        )
    return None


def parse_created(text: str) -> float:
    """xs:dateTime → Unix seconds; a value without zone is taken as UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise WsseError(f"Created {text[:40]!r} is not an xs:dateTime") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def password_digest(nonce: bytes, created: str, password: str) -> str:
    digest = hashlib.sha1(nonce + created.encode() + password.encode()).digest()
    return base64.b64encode(digest).decode("ascii")


class NonceCache:
    """Nonces seen within the freshness window; bounded (oldest dropped past ``capacity``)."""

    def __init__(self, window: float, capacity: int = 65536) -> None:
        self._window = window
        self._capacity = capacity
        self._seen: OrderedDict[bytes, float] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, nonce: bytes, now: float) -> bool:
        """Remember ``nonce``; False when it was already seen (a replay)."""
        with self._lock:
            horizon = now - 2 * self._window
            while self._seen and next(iter(self._seen.values())) < horizon:
                self._seen.popitem(last=False)
            if nonce in self._seen:
                return False
            self._seen[nonce] = now
            while len(self._seen) > self._capacity:
                self._seen.popitem(last=False)
            return True

    def __len__(self) -> int:
        return len(self._seen)


class UsernameTokenVerifier:
    """Checks tokens against the user directory; returns the user name or raises WsseError."""

    def __init__(
        self,
        *,
        window: float = 300.0,
        password_text: PasswordText = PasswordText.TLS,
        clock: Callable[[], float] = time.time,
        capacity: int = 65536,
    ) -> None:
        self.window = window
        self.password_text = password_text
        self._clock = clock
        self._nonces = NonceCache(window, capacity)

    def verify(
        self,
        token: UsernameToken,
        password_for: Callable[[str], str | None],
        *,
        secure: bool,
    ) -> str:
        if token.nonce is None or not token.created:
            raise WsseError("UsernameToken must carry Nonce and Created")
        now = self._clock()
        created = parse_created(token.created)
        if abs(now - created) > self.window:
            raise WsseError("Created is outside the accepted time window")
        if token.password_type == PASSWORD_DIGEST:
            expected = self._expected(token, password_for, digest=True)
        elif token.password_type == PASSWORD_TEXT:
            if self.password_text is PasswordText.NEVER or (
                self.password_text is PasswordText.TLS and not secure
            ):
                raise WsseError("PasswordText is not accepted on this connection")
            expected = self._expected(token, password_for, digest=False)
        else:
            raise WsseError(f"unsupported password type {token.password_type[:100]!r}")
        sent = token.password.strip() if token.password_type == PASSWORD_DIGEST else token.password
        if not hmac.compare_digest(expected.encode(), sent.encode()):
            raise WsseRejected("wrong user name or password")
        if not self._nonces.add(token.nonce, now):
            raise WsseRejected("nonce was already used")
        return token.username

    def _expected(
        self, token: UsernameToken, password_for: Callable[[str], str | None], *, digest: bool
    ) -> str:
        """What the Password element should hold; unknown users get an unguessable value."""
        password = password_for(token.username)
        if password is None:
            return "\0no such user"  # XML text cannot hold NUL, so this never matches
        if not digest:
            return password
        assert token.nonce is not None and token.created is not None
        return password_digest(token.nonce, token.created, password)
