"""Phase 2 of an uplink (uplink.md A.2): the HTTP/1.1 ``h2c-reverse`` upgrade, sans-IO.

The device asks, on its fresh TLS connection, to switch to reversed-role HTTP/2; the cloud
answers 101 and then speaks first as the HTTP/2 *client*. Whatever the cloud sent right after
its 101 (often the connection preface in the same segment) belongs to HTTP/2 and is handed over
as :attr:`UpgradeAnswer.leftover`. The WebSocket variant (``wss://``) is driven by the
``websockets`` sans-IO client in :mod:`nvr.uplink.carrier`; only its headers are decided here.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import SplitResult

from nvr.protocol.rtsp import Headers, Request, Response, RtspParseError, RtspParser

__all__ = ["PROTOCOL", "HandshakeError", "UpgradeAnswer", "request_target", "upgrade_request"]

PROTOCOL: Final = "h2c-reverse"
"""The ``Upgrade`` token (https) and the WebSocket subprotocol (wss)."""
_MAX_HEAD: Final = 16 * 1024


class HandshakeError(Exception):
    """The cloud refused or garbled the protocol switch."""


def request_target(url: SplitResult) -> str:
    """Path and query of the RemoteAddress, ``/`` if it names none."""
    target = url.path or "/"
    return f"{target}?{url.query}" if url.query else target


def authority(url: SplitResult) -> str:
    """``Host`` value: the host, and the port only when it is not the scheme's default."""
    host = url.hostname or ""
    host = f"[{host}]" if ":" in host else host
    port = url.port
    return host if port in (None, 443) else f"{host}:{port}"


def upgrade_request(url: SplitResult, token: str | None = None, agent: str = "nvr") -> bytes:
    """The GET that asks for ``h2c-reverse``; ``token`` goes in as a Bearer (AccessToken)."""
    headers = Headers(
        [
            ("Host", authority(url)),
            ("Connection", "Upgrade"),
            ("Upgrade", PROTOCOL),
            ("User-Agent", agent),
        ]
    )
    if token is not None:
        headers.add("Authorization", f"Bearer {token}")
    return Request("GET", request_target(url), headers, version="HTTP/1.1").serialize()


class UpgradeAnswer:
    """Reads the cloud's answer to :func:`upgrade_request`.

    :meth:`feed` returns False until the whole response head is in, True once it is a proper
    101 to ``h2c-reverse``, and raises :class:`HandshakeError` for anything else.
    """

    def __init__(self) -> None:
        self._parser = RtspParser(max_header_size=_MAX_HEAD)
        self.leftover = b""

    def feed(self, data: bytes) -> bool:
        parser = self._parser
        parser.feed(data)
        try:
            event = parser.next_event()
        except RtspParseError as exc:
            raise HandshakeError(f"bad upgrade response: {exc}") from None
        if event is None:
            if parser.buffered > _MAX_HEAD:
                raise HandshakeError("upgrade response head too long")
            return False
        if not isinstance(event, Response) or not event.version.startswith("HTTP/1."):
            raise HandshakeError("the cloud did not answer with HTTP/1.1")
        if event.status != 101:
            raise HandshakeError(f"upgrade refused: HTTP {event.status} {event.reason}".strip())
        upgrade = event.headers.get("Upgrade") or ""
        if upgrade.strip().lower() != PROTOCOL:
            raise HandshakeError(f"the cloud switched to {upgrade!r}, not {PROTOCOL}")
        self.leftover = parser.take_trailing_data()
        return True
