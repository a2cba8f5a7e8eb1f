"""The ONVIF Replay service (replay.wsdl) at ``/onvif/replay_service`` (replay.md Part A).

GetReplayUri hands out ``rtsp://<host the client used>:<RTSP port>/recordings/<token>`` for
RTP-Unicast over RTSP (interleaved) or UDP, and the same address as ``http://`` for the HTTP
tunnel, which the RTSP port also serves; the URI is stable per recording. SetReplayConfiguration
persists the SessionTimeout and applies it to the running RTSP server once the response is out.
The service also mounts RTSP over WebSocket on the HTTP port, the door its capabilities
advertise (``RTSPWebSocketUri``).

The RTSP server and the store start after the app is built, so handlers look them up on the
daemon per call (:class:`ReplayBackend`, found through a context variable the endpoint sets,
like the Search service's engine).
"""

from __future__ import annotations

import contextvars
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

from spyne import AnyUri, Unicode, rpc

from nvr.onvif import replay_types as rt
from nvr.onvif import types_tt as tt
from nvr.onvif.access import may_read_media
from nvr.onvif.asgi import granted
from nvr.onvif.device_capabilities import model_element
from nvr.onvif.endpoints import BackendEndpoint, serve_endpoint
from nvr.onvif.faults import OnvifFault
from nvr.onvif.namespaces import TRP
from nvr.onvif.operations import compose
from nvr.onvif.registry import ServiceEntry
from nvr.onvif.replay_policy import REPLAY_ACCESS, REPLAY_OPERATIONS
from nvr.onvif.replay_settings import SESSION_TIMEOUT_RANGE, ReplaySettings
from nvr.onvif.request import HttpRequest, soap_request
from nvr.onvif.soap import SoapService
from nvr.onvif.types_tt import required
from nvr.playback.websocket import WEBSOCKET_PATH, mount_websocket
from nvr.store.types import NoRecording

if TYPE_CHECKING:
    from fastapi import FastAPI

    from nvr.config import Config
    from nvr.onvif.context import OnvifContext
    from nvr.playback.server import RtspServer
    from nvr.playback.wiring import PlaybackHandle
    from nvr.store import Store

REPLAY_PATH: Final = "/onvif/replay_service"
REPLAY_VERSION: Final = (21, 6)
"""replay.wsdl schema version we implement."""
RECORDINGS_PREFIX: Final = "/recordings"
"""RTSP path of the recordings: ``…/recordings/<RecordingToken>`` (DESIGN §7)."""
_SCHEMES: Final = {"RTSP": "rtsp", "UDP": "rtsp", "HTTP": "http"}
"""Transport protocols we serve for RTP-Unicast, and the URI scheme each gets."""


@dataclass(frozen=True)
class ReplayBackend:
    """What the handlers need of the daemon; callables because it starts after the app."""

    config: Config
    settings: ReplaySettings
    store: Callable[[], Store | None]
    playback: Callable[[], PlaybackHandle | None]

    def rtsp_server(self) -> RtspServer | None:
        handle = self.playback()
        return None if handle is None else handle.server

    def rtsp_port(self) -> int:
        """The bound port while serving (it may be 0 in the configuration), else the setting."""
        server = self.rtsp_server()
        return server.port if server is not None else int(self.config["rtsp.port"])

    def check_recording(self, token: str) -> None:
        store = self.store()
        if store is None:
            raise OnvifFault.receiver("Action", "the recordings are not open yet")
        try:
            store.get_recording(token)
        except NoRecording:
            raise OnvifFault.sender(
                "InvalidArgVal", "NoRecording", f"no recording {token[:64]!r}"
            ) from None

    def apply_session_timeout(self, seconds: int) -> None:
        handle = self.playback()
        if handle is not None:
            handle.set_session_timeout(seconds)


_backend: contextvars.ContextVar[ReplayBackend] = contextvars.ContextVar("replay_backend")


def current_backend() -> ReplayBackend:
    return _backend.get()


# ---- pure helpers ------------------------------------------------------------------------------


def capabilities(websocket_uri: str) -> rt.Capabilities:
    low, high = SESSION_TIMEOUT_RANGE
    return rt.Capabilities(
        ReversePlayback=True,
        SessionTimeoutRange=f"{low} {high}",
        RTP_RTSP_TCP=True,
        RTSPWebSocketUri=websocket_uri,
    )


def websocket_uri(request: HttpRequest) -> str:
    """The WebSocket door on the host and port the client reached the service by."""
    return f"{'wss' if request.secure else 'ws'}://{request.host}{WEBSOCKET_PATH}"


def stream_scheme(setup: rt.StreamSetup) -> str:
    """The URI scheme for a StreamSetup we serve; InvalidStreamSetup for the others."""
    transport = setup.Transport
    if setup.Stream != "RTP-Unicast":
        raise OnvifFault.sender(
            "InvalidArgVal", "InvalidStreamSetup", f"{setup.Stream} replay is not offered"
        )
    if transport.Tunnel is not None or transport.Protocol not in _SCHEMES:
        raise OnvifFault.sender(
            "InvalidArgVal",
            "InvalidStreamSetup",
            f"transport {transport.Protocol} is not offered: use RTSP, UDP or HTTP",
        )
    return _SCHEMES[transport.Protocol]


def replay_uri(scheme: str, host: str, port: int, token: str) -> str:
    """``host`` is the Host the client used (its port, the HTTP one, is replaced)."""
    if host.startswith("["):
        name = host[: host.index("]") + 1]
    else:
        name = host.rpartition(":")[0] if ":" in host else host
    return f"{scheme}://{name}:{port}{RECORDINGS_PREFIX}/{quote(token, safe='')}"


def session_timeout_seconds(value: dt.timedelta) -> int:
    """A SessionTimeout in whole seconds (RTSP's unit); ConfigModify outside the range."""
    low, high = SESSION_TIMEOUT_RANGE
    seconds = value.total_seconds()
    if not low <= seconds <= high:
        raise OnvifFault.sender(
            "InvalidArgVal",
            "ConfigModify",
            f"SessionTimeout must be {low} to {high} seconds (SessionTimeoutRange)",
        )
    return round(seconds)


# ---- the service ---------------------------------------------------------------------------


class ReplayMethods:
    """Namespace of the replay operations (composed into one spyne service)."""

    @rpc(_returns=required(rt.Capabilities), _out_variable_name="Capabilities")
    def GetServiceCapabilities(ctx: Any) -> rt.Capabilities:
        return capabilities(websocket_uri(soap_request(ctx).http))

    @rpc(
        required(rt.StreamSetup),
        required(Unicode),
        _returns=required(AnyUri),
        _out_variable_name="Uri",
    )
    def GetReplayUri(ctx: Any, StreamSetup: rt.StreamSetup, RecordingToken: str) -> str:
        backend = current_backend()
        scheme = stream_scheme(StreamSetup)
        backend.check_recording(RecordingToken)
        host = soap_request(ctx).http.host
        return replay_uri(scheme, host, backend.rtsp_port(), RecordingToken)

    @rpc(_returns=required(rt.ReplayConfiguration), _out_variable_name="Configuration")
    def GetReplayConfiguration(ctx: Any) -> rt.ReplayConfiguration:
        seconds = current_backend().settings.session_timeout()
        return rt.ReplayConfiguration(SessionTimeout=dt.timedelta(seconds=seconds))

    @rpc(required(rt.ReplayConfiguration))
    def SetReplayConfiguration(ctx: Any, Configuration: rt.ReplayConfiguration) -> None:
        backend = current_backend()
        seconds = session_timeout_seconds(Configuration.SessionTimeout)
        backend.settings.set_session_timeout(seconds)
        # On the event loop, where the RTSP server lives, once the response has gone out.
        soap_request(ctx).after_response.append(lambda: backend.apply_session_timeout(seconds))


@cache
def replay_service() -> SoapService:
    """The replay service definition (built once per process: spyne apps are costly)."""
    return SoapService(
        name="ReplayService",
        namespace=TRP,
        services=(compose("ReplayService", [ReplayMethods], REPLAY_OPERATIONS),),
        access=REPLAY_ACCESS,
    )


def replay_entry() -> ServiceEntry:
    """GetServices has no request Host at hand: there the WebSocket URI takes the absolute-path
    form the Streaming spec describes (``ws:/rtsp-over-websocket``, the client adds its host)."""
    return ServiceEntry(
        namespace=TRP,
        path=REPLAY_PATH,
        version=REPLAY_VERSION,
        capabilities=lambda: model_element(
            capabilities(f"ws:{WEBSOCKET_PATH}"), rt.Capabilities, "Capabilities"
        ),
        legacy_slot="Replay",
        legacy=lambda xaddr: tt.ReplayCapabilities(XAddr=xaddr),
    )


def granted_rtsp_user(scope: dict[str, Any]) -> str | None:
    """The user a carrier (the uplink) vouches for on an RTSP-over-WebSocket handshake.

    None for ordinary clients, who authenticate with Digest inside RTSP; PermissionError when
    the granted level may not replay (READ_MEDIA).
    """
    principal = granted(scope)
    if principal is None:
        return None
    if not may_read_media(principal):
        raise PermissionError(f"{principal.level.value} may not replay recordings")
    return principal.name


def mount_replay(app: FastAPI, context: OnvifContext, daemon: Any) -> ReplayBackend:
    """Serve the Replay service and RTSP over WebSocket for ``daemon``.

    ``daemon.store`` and ``daemon.playback`` (what :func:`nvr.playback.wiring.start_playback`
    returned) are read when needed; until they exist, GetReplayUri answers a Receiver fault and
    the WebSocket route 503.
    """
    backend = ReplayBackend(
        config=context.config,
        settings=ReplaySettings(context.sessions, context.config),
        store=lambda: daemon.store,
        playback=lambda: getattr(daemon, "playback", None),
    )
    endpoint = BackendEndpoint(replay_service(), context, backend, _backend)
    serve_endpoint(app, context, REPLAY_PATH, endpoint, replay_entry())
    mount_websocket(app, backend.rtsp_server, grant=granted_rtsp_user)
    return backend


__all__ = [
    "RECORDINGS_PREFIX",
    "REPLAY_PATH",
    "ReplayBackend",
    "ReplayMethods",
    "mount_replay",
    "replay_service",
]
