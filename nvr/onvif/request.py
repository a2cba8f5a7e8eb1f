"""What a SOAP handler knows about its request: HTTP facts, the caller, the daemon context.

The gate builds one :class:`SoapRequest` per call and hands it to spyne through the WSGI
environ; handlers reach it with :func:`soap_request`. ``after_response`` holds callbacks the
ASGI layer runs on the event loop once the response has been sent (e.g. SystemReboot).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Final

from nvr.onvif.access import Level

if TYPE_CHECKING:
    from nvr.onvif.context import OnvifContext
    from nvr.onvif.envelope import Envelope

ENVIRON_KEY: Final = "nvr.onvif.request"
_HOST_RE: Final = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$")


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    """Lower-case names; repeated headers joined with ", "."""
    body: bytes
    client: str
    scheme: str
    server: tuple[str, int] | None = None
    granted: Principal | None = None
    """Set by a carrier that vouches for the caller itself (the uplink grants its configured
    user level to every request): no per-request credentials are asked for."""

    def with_header(self, name: str, value: str) -> HttpRequest:
        return replace(self, headers={**self.headers, name: value})

    @property
    def target(self) -> str:
        """The request target as in the request line (what a Digest ``uri`` names)."""
        return self.path + ("?" + self.query if self.query else "")

    @property
    def secure(self) -> bool:
        return self.scheme in ("https", "wss")

    @property
    def host(self) -> str:
        """Host[:port] the client used; the socket address if the header is absent or odd."""
        host = self.headers.get("host", "").strip()
        if host and _HOST_RE.match(host):
            return host
        if self.server is None:
            return "localhost"
        address, port = self.server
        address = f"[{address}]" if ":" in address else address
        default = 443 if self.secure else 80
        return address if port == default else f"{address}:{port}"

    @property
    def base_url(self) -> str:
        """``scheme://host[:port]`` for XAddrs: the address the client reached us by."""
        return f"{'https' if self.secure else 'http'}://{self.host}"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who sent the request: a user name and level, or nobody (``Anonymous``)."""

    name: str | None
    level: Level

    @classmethod
    def anonymous(cls) -> Principal:
        return cls(None, Level.ANONYMOUS)


@dataclass(slots=True)
class SoapRequest:
    http: HttpRequest
    principal: Principal
    context: OnvifContext
    after_response: list[Callable[[], None]] = field(default_factory=list)
    envelope: Envelope | None = None
    """The message as the gate parsed it (spyne reuses the tree instead of parsing again)."""


def soap_request(ctx: Any) -> SoapRequest:
    """The :class:`SoapRequest` of a spyne method context."""
    request: SoapRequest = ctx.transport.req_env[ENVIRON_KEY]
    return request
