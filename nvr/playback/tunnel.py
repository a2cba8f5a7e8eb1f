"""Apple's RTSP-over-HTTP tunnel (streaming.md §4.1): the pieces that are not RTSP.

A client opens a GET (server → client: RTSP responses and ``$`` frames, raw) and a POST
(client → server: base64 of RTSP requests, never answered) glued by ``x-sessioncookie``. The
server shell turns the GET connection into the tunnel's output channel and feeds the decoded
POST bytes to an ordinary RTSP parser, so everything after the pairing is plain RTSP.
"""

from __future__ import annotations

import binascii

from nvr.protocol.rtsp import Request, Response

__all__ = [
    "COOKIE_HEADER",
    "TUNNEL_CONTENT_TYPE",
    "Base64Stream",
    "TunnelError",
    "get_response",
    "http_error",
    "tunnel_cookie",
]

COOKIE_HEADER = "x-sessioncookie"
TUNNEL_CONTENT_TYPE = "application/x-rtsp-tunnelled"
_MAX_COOKIE = 128
_WHITESPACE = b" \t\r\n"


class TunnelError(Exception):
    """The POST body is not base64."""


class Base64Stream:
    """Incremental base64 decoder for the POST body.

    Requests may be split anywhere across TCP reads, and some clients encode each request on its
    own, so ``=`` padding can appear mid-stream: data is decoded quadruplet-exactly and a padded
    quadruplet ends one chunk, never the stream. Whitespace is ignored.
    """

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, data: bytes) -> bytes:
        """Decode what is complete; keep the rest for the next call."""
        text = self._pending + data.translate(None, _WHITESPACE)
        out: list[bytes] = []
        pos = 0
        end = len(text)
        try:
            while end - pos >= 4:
                pad = text.find(b"=", pos)
                if pad < 0:
                    stop = pos + ((end - pos) & ~3)
                else:
                    stop = pos + ((pad - pos) // 4 + 1) * 4
                    if stop > end:
                        break
                out.append(binascii.a2b_base64(text[pos:stop], strict_mode=True))
                pos = stop
        except binascii.Error as exc:
            raise TunnelError(f"POST body is not base64: {exc}") from None
        self._pending = text[pos:]
        return b"".join(out)


def tunnel_cookie(request: Request) -> str | None:
    """The ``x-sessioncookie`` of a tunnel GET/POST, if it has a usable one."""
    cookie = request.headers.get(COOKIE_HEADER)
    if cookie is None:
        return None
    cookie = cookie.strip()
    if not cookie or len(cookie) > _MAX_COOKIE or not cookie.isprintable():
        return None
    return cookie


def get_response(request: Request) -> bytes:
    """The one HTTP response the GET ever gets; the connection then carries raw RTSP."""
    response = Response(
        200,
        version=request.version,
        headers=[
            ("Server", "nvr"),
            ("Connection", "close"),
            ("Cache-Control", "no-store"),
            ("Pragma", "no-cache"),
            ("Content-Type", TUNNEL_CONTENT_TYPE),
        ],
    )
    return response.serialize()


def http_error(status: int, version: str = "HTTP/1.0") -> bytes:
    """A minimal HTTP error before the connection is closed."""
    if not version.startswith("HTTP/"):
        version = "HTTP/1.0"
    response = Response(
        status, version=version, headers=[("Connection", "close"), ("Content-Length", "0")]
    )
    return response.serialize()
