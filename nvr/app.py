"""Wiring and lifespan of ``nvr serve``: one asyncio process, blocking work in threads."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Iterator
from typing import Any

import uvicorn
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import Engine

from nvr import __version__, systemd
from nvr.config import Config
from nvr.db.engine import make_engine, make_sessionmaker
from nvr.db.health import DatabaseUnavailable, check
from nvr.db.migrate import upgrade
from nvr.store import Store
from nvr.web.app import build_app

log = logging.getLogger("nvr")


def open_store_offline(config: Config, engine: Engine) -> Store:
    """A store for offline tools (fsck): migrated, directories verified, no recovery writes."""
    upgrade(engine)
    store = Store(engine, config.store_settings())
    store.open(recover=False)
    return store


class Daemon:
    """Owns the engine, the store and the scheduler for the life of the process."""

    def __init__(self, config: Config, engine: Engine) -> None:
        self.config = config
        self.engine = engine
        self.sessions = make_sessionmaker(engine)
        self.store: Store | None = None
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        self.state = "starting"
        self.started_at = time.monotonic()
        self._db_ok = True
        self._db_checked = 0.0

    async def start(self) -> None:
        store = Store(self.engine, self.config.store_settings())
        report = await asyncio.to_thread(store.open)
        if report is not None:
            log.info("store recovery: %s", report)
        self.store = store
        interval = self.config["storage.retention_interval_seconds"]
        self.scheduler.add_job(
            self._retention, "interval", seconds=interval, max_instances=1, coalesce=True
        )
        watchdog = systemd.watchdog_interval()
        if watchdog:
            self.scheduler.add_job(
                lambda: systemd.notify("WATCHDOG=1"), "interval", seconds=watchdog
            )
        self.scheduler.start()
        self.state = "ready"
        systemd.notify("READY=1", "STATUS=recording")
        log.info(
            "nvr %s ready: http port %s, data in %s, database %s",
            __version__,
            self.config["http.port"],
            self.config.data_dir,
            self.engine.url.render_as_string(hide_password=True),
        )

    async def stop(self) -> None:
        self.state = "stopping"
        systemd.notify("STOPPING=1")
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self.store is not None:
            await asyncio.to_thread(self.store.close)
            self.store = None
        log.info("nvr stopped")

    async def _retention(self) -> None:
        if self.store is None:
            return
        result = await asyncio.to_thread(self.store.sweep_retention)
        for deleted in result.deleted:
            log.info("retention deleted %s", deleted)

    async def health(self) -> dict[str, Any]:
        now = time.monotonic()
        if now - self._db_checked > 1.0:
            self._db_checked = now
            try:
                await asyncio.to_thread(check, self.engine)
                self._db_ok = True
            except DatabaseUnavailable:
                self._db_ok = False
        status: dict[str, Any] = {
            "status": self.state,
            "version": __version__,
            "uptime_s": int(now - self.started_at),
            "database": {"backend": self.engine.dialect.name, "reachable": self._db_ok},
        }
        if self.store is not None:
            status["storage"] = self.store.status()
        return status


class _Server(uvicorn.Server):
    """uvicorn re-raises SIGTERM/SIGINT when ``serve()`` returns, which would kill the process
    before the store's final checkpoint; we handle the signals on the loop instead."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _serve(config: Config, engine: Engine) -> int:
    daemon = Daemon(config, engine)
    app = build_app(daemon)
    loop = asyncio.get_running_loop()
    server = _Server(
        uvicorn.Config(
            app,
            host=config["http.host"],
            port=config["http.port"],
            log_config=None,
            access_log=False,
            lifespan="off",
        )
    )
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _request_exit, server)
    server_task = asyncio.create_task(server.serve())
    while not server.started and not server_task.done():
        await asyncio.sleep(0.02)
    if server_task.done():
        await server_task
        log.error("could not start the HTTP server on port %s", config["http.port"])
        return 1
    try:
        await daemon.start()
        await server_task
    finally:
        await daemon.stop()
    return 0


def _request_exit(server: uvicorn.Server) -> None:
    if server.should_exit:
        server.force_exit = True
    server.should_exit = True


def run(config: Config) -> int:
    """``nvr serve``: check and migrate the database, then serve until a signal."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(config.database_url)
    check(engine)
    before, after = upgrade(engine)
    if before != after:
        log.info("database migrated from %s to %s", before or "empty", after)
    try:
        return asyncio.run(_serve(config, engine))
    finally:
        engine.dispose()
