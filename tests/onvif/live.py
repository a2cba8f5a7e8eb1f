"""A started daemon (store, ingest, exports: ``Daemon.start``) serving the real app over HTTP on
the daemon's loop, as ``nvr serve`` does, with one user of each level; and the SOAP endpoints
that app mounts, found by walking its routes so a newly mounted service is covered without
editing the tests that use this. Also the configuration such a test daemon runs with, and its
playback pieces alone on a store a test brings (``playback_nvr``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from nvr.app import Daemon
from nvr.config import Config, load
from nvr.db.engine import make_engine
from nvr.events import Event
from nvr.onvif.soap import SoapEndpoint
from nvr.playback.wiring import start_playback
from nvr.store import Store
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


def daemon_config(engine: Engine, data: Path, settings: dict[str, object] | None = None) -> Config:
    """The configuration of a test daemon on ``engine`` with its data in ``data``: RTSP on
    127.0.0.1 at a free port; ``settings`` add to or override it."""
    data.mkdir(parents=True, exist_ok=True)
    return load(
        env={"NVR_RTSP_HOST": "127.0.0.1"},
        flags={
            "data_dir": str(data),
            "database_url": engine.url.render_as_string(hide_password=False),
            "rtsp.port": free_port(),
            **(settings or {}),
        },
    )


@contextmanager
def playback_nvr(
    loop: LoopThread, engine: Engine, store: Store, data: Path
) -> Iterator[tuple[Daemon, Any, int]]:
    """The daemon's pieces without ``Daemon.start``, for tests that bring their own ``store``
    (e.g. recorded footage): the app with one user of each level, uvicorn and
    ``start_playback``. Yields the daemon, the app and the HTTP port."""
    daemon = Daemon(daemon_config(engine, data), engine)
    daemon.store = store
    app = build_app(daemon)
    add_standard_users(app.state.onvif.users)
    with http_server(loop, app) as port:
        daemon.playback = loop.call(start_playback(daemon))  # type: ignore[attr-defined]
        try:
            yield daemon, app, port
        finally:
            loop.call(daemon.playback.stop())  # type: ignore[attr-defined]


@contextmanager
def live_nvr(
    loop: LoopThread,
    engine: Engine | str,
    data: Path,
    *,
    demo: bool = False,
    settings: dict[str, object] | None = None,
    handle_type: type[LiveNvr] = LiveNvr,
) -> Iterator[LiveNvr]:
    """``engine``: or a database URL, for a module-scoped fixture (which has no ``engine``
    fixture): the daemon then gets an engine of its own, disposed at the end. ``settings``:
    further configuration, e.g. ``{"http.max_soap_request_bytes": 4096}``; ``handle_type``: a
    subclass of :class:`LiveNvr` with a test module's helpers."""
    with ExitStack() as stack:
        if isinstance(engine, str):
            engine = make_engine(engine)
            stack.callback(engine.dispose)
        config = daemon_config(
            engine, data, {"demo": demo, "discovery.enabled": False, **(settings or {})}
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
