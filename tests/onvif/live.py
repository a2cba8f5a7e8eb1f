"""A started daemon (store, ingest, exports: ``Daemon.start``) serving the real app over HTTP on
the daemon's loop, as ``nvr serve`` does, with one user of each level; and the SOAP endpoints
that app mounts, found by walking its routes so a newly mounted service is covered without
editing the tests that use this."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from nvr.app import Daemon
from nvr.config import load
from nvr.events import Event
from nvr.onvif.soap import SoapEndpoint
from nvr.web.app import build_app
from tests.daemon import free_port
from tests.onvif.conftest import ADMIN, OPERATOR, USER, add_standard_users
from tests.playback.helpers import LoopThread
from tests.playback.ws_client import http_server

LEVELS = {
    "Administrator": ADMIN,
    "Operator": OPERATOR,
    "User": USER,
    "Anonymous": None,
}


@dataclass(frozen=True)
class SoapMount:
    path: str
    """Request path (a pull point path gets a made-up id: the gate answers before lookup)."""
    endpoint: SoapEndpoint

    @property
    def namespace(self) -> str:
        return self.endpoint.service.namespace


@dataclass
class LiveNvr:
    daemon: Daemon
    app: Any
    port: int
    loop: LoopThread
    events: list[Event] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def soap_mounts(self) -> list[SoapMount]:
        return soap_mounts(self.app)


def soap_mounts(app: Any) -> list[SoapMount]:
    """Every SOAP endpoint ``app`` routes to, in mounting order."""
    mounts = []
    for route in app.router.routes:
        endpoint = getattr(route, "endpoint", None)
        if isinstance(endpoint, SoapEndpoint):
            path = route.path.replace("{point_id}", "no-such-point")
            mounts.append(SoapMount(path, endpoint))
    return mounts


@contextmanager
def live_nvr(
    loop: LoopThread,
    engine: Engine,
    data: Path,
    *,
    demo: bool = False,
    settings: dict[str, object] | None = None,
    handle_type: type[LiveNvr] = LiveNvr,
) -> Iterator[LiveNvr]:
    """``settings``: further configuration, e.g. ``{"http.max_soap_request_bytes": 4096}``;
    ``handle_type``: a subclass of :class:`LiveNvr` with a test module's helpers."""
    data.mkdir(parents=True, exist_ok=True)
    config = load(
        env={"NVR_RTSP_HOST": "127.0.0.1"},
        flags={
            "data_dir": str(data),
            "database_url": engine.url.render_as_string(hide_password=False),
            "rtsp.port": free_port(),
            "demo": demo,
            "discovery.enabled": False,
            **(settings or {}),
        },
    )
    daemon = Daemon(config, engine)
    app = build_app(daemon)
    add_standard_users(app.state.onvif.users)
    handle = handle_type(daemon, app, 0, loop)
    daemon.bus.subscribe(handle.events.append)
    with http_server(loop, app) as port:
        handle.port = port
        loop.call(daemon.start())
        try:
            yield handle
        finally:
            loop.call(daemon.stop())
