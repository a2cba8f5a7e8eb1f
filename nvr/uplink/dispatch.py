"""Which handler serves a stream the cloud opens (uplink.md A.5).

Tunnel GET/POST (``application/x-rtsp-tunnelled``) go to the RTSP server, acting as the
uplink's user when its level allows READ_MEDIA (403 otherwise: Digest cannot be asked for in a
tunnel whose requests are not individually authenticated); extended CONNECT for ``websocket``
and every other request go to the daemon's ASGI app.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from nvr.onvif.access import may_read_media
from nvr.onvif.request import Principal
from nvr.uplink.h2conn import Header, header_map
from nvr.uplink.rtsp_stream import RtspTunnelStream, is_tunnel_request
from nvr.uplink.session import Dispatch, StreamHandler, TunnelSession
from nvr.uplink.streams import AsgiApp, HttpStream, WebSocketStream, asgi_scope

if TYPE_CHECKING:
    from nvr.playback.server import RtspServer

__all__ = ["RtspLookup", "dispatcher"]

RtspLookup = Callable[[], "RtspServer | None"]


def dispatcher(app: AsgiApp, principal: Principal, rtsp: RtspLookup) -> Dispatch:
    """The stream dispatch of a tunnel whose requests act as ``principal``."""

    def refuse(session: TunnelSession, stream_id: int, status: int) -> None:
        session.conn.respond(stream_id, status, [(b"content-length", b"0")], end_stream=True)
        session.kick()

    def dispatch(
        session: TunnelSession, stream_id: int, headers: list[Header]
    ) -> StreamHandler | None:
        fields = header_map(headers)
        if fields.get(b":method") == b"CONNECT":
            if fields.get(b":protocol", b"").lower() != b"websocket":
                refuse(session, stream_id, 501)
                return None
            ws = WebSocketStream(session, stream_id)
            ws.start(app, asgi_scope("websocket", headers, principal, session))
            return ws
        if is_tunnel_request(fields):
            server = rtsp()
            if server is None:
                refuse(session, stream_id, 503)
                return None
            if not may_read_media(principal):
                refuse(session, stream_id, 403)
                return None
            protocol = server.connection_protocol(http_tunnel=True, granted_user=principal.name)
            return RtspTunnelStream(session, stream_id, protocol, headers)
        http = HttpStream(session, stream_id)
        http.start(app, asgi_scope("http", headers, principal, session))
        return http

    return dispatch
