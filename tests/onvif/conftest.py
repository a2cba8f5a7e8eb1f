"""An in-process nvr HTTP server (uvicorn in a thread, loopback, free port) per test.

The app is the real one (``build_app``) on a database of the backend under test; only
SystemReboot's restart is replaced by a recorder. The store is not opened: the SOAP services
do not need it. Creating and migrating a PostgreSQL database costs about a second, so each
test module gets one (``database_url`` is overridden at module scope) and every test starts
from emptied user and ONVIF-settings tables instead.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import Engine, delete, text

from nvr.app import Daemon
from nvr.config import load
from nvr.db.engine import make_engine
from nvr.db.migrate import upgrade
from nvr.db.models import Meta, User
from nvr.onvif.context import OnvifContext
from nvr.users import UserDirectory, UserLevel
from nvr.web.app import build_app
from tests.conftest import BACKEND, PG_ADMIN_URL, _pg_admin
from tests.daemon import free_port

_modules = itertools.count()
ADMIN = ("admin", "admin-pass-1")
OPERATOR = ("operator", "operator-pass-1")
USER = ("viewer", "viewer-pass-1")


def add_standard_users(users: UserDirectory) -> None:
    """ADMIN, OPERATOR and USER, those not there yet (a restarted daemon keeps its users)."""
    for (name, password), level in (
        (ADMIN, UserLevel.ADMINISTRATOR),
        (OPERATOR, UserLevel.OPERATOR),
        (USER, UserLevel.USER),
    ):
        if users.get(name) is None:
            users.add(name, level, password)


@dataclass
class OnvifServer:
    base_url: str
    context: OnvifContext
    engine: Engine
    reboots: list[float] = field(default_factory=list)
    daemon: Daemon | None = None
    app: Any = None

    @property
    def xaddr(self) -> str:
        return self.base_url + "/onvif/device_service"

    def add_user(self, name: str, level: UserLevel, password: str) -> None:
        self.context.users.add(name, level, password)

    def add_standard_users(self) -> None:
        add_standard_users(self.context.users)


StartServer = Callable[..., OnvifServer]


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One migrated database per module, of the backend under test."""
    name = f"nvr_test_onvif_{os.getpid()}_{next(_modules)}"
    if BACKEND == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('onvif-db') / 'nvr.db'}"
    else:
        _pg(f'CREATE DATABASE "{name}"')
        url = f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    if BACKEND != "sqlite":
        _pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _pg(statement: str) -> None:
    admin = _pg_admin()
    try:
        with admin.connect() as conn:
            conn.execute(text(statement))
    finally:
        admin.dispose()


def _empty(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(delete(User))
        conn.execute(delete(Meta).where(Meta.key.like("onvif.%")))


@pytest.fixture
def start_server(tmp_path: Path, database_url: str) -> Iterator[StartServer]:
    """Start a server; keyword arguments are settings, e.g. ``security_login_failures=2``."""
    running: list[tuple[uvicorn.Server, threading.Thread, Engine]] = []

    def start(**settings: object) -> OnvifServer:
        env = {"NVR_" + k.upper(): str(v) for k, v in settings.items()}
        data_dir = tmp_path / f"data{len(running)}"
        config = load(env=env, flags={"data_dir": str(data_dir), "database_url": database_url})
        data_dir.mkdir(parents=True, exist_ok=True)
        engine = make_engine(config.database_url)
        if not running:
            _empty(engine)
        daemon = Daemon(config, engine)
        app = build_app(daemon)
        context: OnvifContext = app.state.onvif
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=port,
                log_config=None,
                access_log=False,
                lifespan="off",
            )
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        running.append((server, thread, engine))
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.005)
        handle = OnvifServer(f"http://127.0.0.1:{port}", context, engine, daemon=daemon, app=app)
        context.reboot = lambda: handle.reboots.append(time.monotonic())
        return handle

    yield start
    for server, thread, engine in running:
        server.should_exit = True
        thread.join(10)
        engine.dispose()


@pytest.fixture
def server(start_server: StartServer) -> OnvifServer:
    """A server with one user of each level (see ADMIN, OPERATOR, USER)."""
    handle = start_server()
    handle.add_standard_users()
    return handle
