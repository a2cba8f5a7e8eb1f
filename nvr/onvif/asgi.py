"""The ASGI side of a SOAP endpoint: request facts from the scope, the body, the response.

Kept apart from the gate so the uplink tunnel (and anything else that is not uvicorn) can
build an :class:`~nvr.onvif.request.HttpRequest` its own way and reuse the gate unchanged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final
from urllib.parse import parse_qsl

from nvr.onvif.request import HttpRequest, Principal

GRANTED_PRINCIPAL: Final = "nvr.principal"
"""ASGI scope ``extensions`` key under which a carrier (the uplink) passes the
:class:`~nvr.onvif.request.Principal` it grants the request."""

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class Disconnected(Exception):
    """The client went away before sending its whole request."""


def is_wsdl_query(query: str) -> bool:
    return any(key.lower() == "wsdl" for key, _ in parse_qsl(query, keep_blank_values=True))


def granted(scope: Scope) -> Principal | None:
    """The principal a carrier vouches for in ``scope`` (None: an ordinary client)."""
    principal = (scope.get("extensions") or {}).get(GRANTED_PRINCIPAL)
    return principal if isinstance(principal, Principal) else None


def http_request(scope: Scope, body: bytes) -> HttpRequest:
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", []):
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    client = scope.get("client") or ("", 0)
    server = scope.get("server")
    return HttpRequest(
        method=scope["method"],
        path=scope.get("root_path", "") + scope["path"],
        query=scope.get("query_string", b"").decode("latin-1"),
        headers=headers,
        body=body,
        client=str(client[0]),
        scheme=scope.get("scheme", "http"),
        server=(str(server[0]), int(server[1])) if server else None,
        granted=granted(scope),
    )


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None once it exceeds ``limit``."""
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-length" and value.isdigit() and int(value) > limit:
            return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def send_response(
    send: Send, status: int, headers: list[tuple[str, str]], body: bytes
) -> None:
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
