"""Who is calling, and may they: HTTP Digest, WS-UsernameToken, throttling, access policy.

Core §5.12 for a server speaking both Digest and UsernameToken: no credentials at all on an
operation that needs them → HTTP 401 with one Digest challenge per algorithm; credentials on
both levels → Digest is checked first, then WS-Security, and both must pass; a WS-level
failure → HTTP 400 ``env:Sender/ter:NotAuthorized``. ``PRE_AUTH`` operations are answered
without looking at credentials at all (clients call GetSystemDateAndTime to learn the clock
skew before they can build a valid UsernameToken).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from lxml import etree

from nvr.onvif.access import AccessClass, Level, allowed, weakest
from nvr.onvif.faults import OnvifFault, not_authorized
from nvr.onvif.request import HttpRequest, Principal
from nvr.onvif.throttle import LoginThrottle
from nvr.onvif.wssecurity import (
    UsernameTokenVerifier,
    WsseError,
    WsseRejected,
    find_username_token,
)
from nvr.protocol.rtsp_auth import GUESSES, ServerAuthenticator
from nvr.secretbox import SecretBoxError
from nvr.users import UserDirectory

log = logging.getLogger("nvr.onvif.auth")


@dataclass(frozen=True, slots=True)
class Refusal:
    """The answer instead of dispatching: HTTP status, extra headers, a SOAP fault body."""

    fault: OnvifFault
    status: int
    headers: tuple[tuple[str, str], ...] = ()


class SoapAuthenticator:
    def __init__(
        self,
        users: UserDirectory,
        *,
        digest: ServerAuthenticator,
        wsse: UsernameTokenVerifier,
        throttle: LoginThrottle,
    ) -> None:
        self.users = users
        self.digest = digest
        self.wsse = wsse
        self.throttle = throttle

    def authenticate(
        self,
        request: HttpRequest,
        headers: Sequence[etree._Element],
        access: AccessClass,
    ) -> Principal | Refusal:
        if access is AccessClass.PRE_AUTH:
            return Principal.anonymous()
        if request.granted is not None:  # the carrier vouches for the caller (uplink)
            return _authorized(request.granted, access)
        wait = self.throttle.locked_for(request.client)
        if wait > 0:
            retry = str(int(wait) + 1)
            fault = not_authorized(f"too many failed logins; retry in {retry} s", status=429)
            return Refusal(fault, 429, (("retry-after", retry),))
        names: list[str] = []
        for check in (self._digest_user, self._token_user):
            outcome = check(request, headers)
            if isinstance(outcome, Refusal):
                return outcome
            if outcome is not None:
                names.append(outcome)
        levels = [self._level(name) for name in names]
        if not names or None in levels:  # no credentials, or a user deleted just now
            return self._challenge()
        level = weakest(*(lv for lv in levels if lv is not None))
        return _authorized(Principal(names[-1], level), access)

    def _digest_user(
        self, request: HttpRequest, headers: Sequence[etree._Element]
    ) -> str | Refusal | None:
        """The user an Authorization header proves, a 401, or None without the header."""
        authorization = request.headers.get("authorization")
        if authorization is None:
            return None
        result = self.digest.verify(
            authorization, method=request.method, uri=request.target, password_for=self._password
        )
        if result.ok and result.username is not None:
            return result.username
        if result.status in GUESSES:
            self._failed(request, f"HTTP digest for {result.username!r}: {result.status.value}")
        return self._challenge(stale=result.stale)

    def _token_user(
        self, request: HttpRequest, headers: Sequence[etree._Element]
    ) -> str | Refusal | None:
        """The user a UsernameToken proves, a 400 NotAuthorized, or None without a token."""
        try:
            token = find_username_token(headers)
            if token is None:
                return None
            return self.wsse.verify(token, self._password, secure=request.secure)
        except WsseRejected as exc:
            self._failed(request, f"UsernameToken: {exc}")
        except WsseError as exc:
            log.info("refused UsernameToken from %s: %s", request.client, exc)
        return Refusal(not_authorized(), 400)

    def probe(self, request: HttpRequest) -> Refusal | None:
        """The 401 challenge for an empty POST without credentials, else None.

        HTTP clients that do Digest by themselves (libcurl, and VMSs built on it) first send
        the POST without its body and without credentials, expecting only the challenge; a
        SOAP fault for the missing envelope would end their login there.
        """
        if request.body.strip() or request.granted is not None:
            return None
        if "authorization" in request.headers:
            return None
        return self._challenge()

    def _challenge(self, *, stale: bool = False) -> Refusal:
        headers = tuple(
            ("www-authenticate", value) for value in self.digest.challenges(stale=stale)
        )
        return Refusal(not_authorized(status=401), 401, headers)

    def _failed(self, request: HttpRequest, what: str) -> None:
        lockout = self.throttle.failure(request.client)
        log.warning("failed login from %s: %s", request.client, what)
        if lockout:
            log.warning(
                "locking out %s for %.0f s after repeated failures", request.client, lockout
            )

    def _password(self, name: str) -> str | None:
        try:
            return self.users.password(name)
        except SecretBoxError as exc:
            log.error("cannot check the password of %r: %s", name, exc)
            return None

    def _level(self, name: str) -> Level | None:
        info = self.users.get(name)
        return None if info is None else Level.of(info.level)


def _authorized(principal: Principal, access: AccessClass) -> Principal | Refusal:
    """``principal`` if its level may call an operation of class ``access``, else a 400."""
    if allowed(principal.level, access):
        return principal
    return Refusal(not_authorized(f"{principal.level.value} may not call this operation"), 400)
