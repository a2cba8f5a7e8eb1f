"""Wiring and lifespan of ``nvr serve``: one asyncio process, blocking work in threads."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import Engine

from nvr import __version__, systemd
from nvr.config import Config
from nvr.db.engine import make_engine, make_sessionmaker
from nvr.db.health import DatabaseUnavailable, check
from nvr.db.migrate import upgrade
from nvr.events import EventBus, delete_track_data
from nvr.export.device_identity import device_identity
from nvr.export.manager import ExportManager
from nvr.export.unit import local_unit
from nvr.ingest.engine import IngestEngine
from nvr.ingest.history import RecordingHistory
from nvr.onvif.discovery import DiscoveryResponder, start_discovery
from nvr.onvif.resources import ResourceTracker
from nvr.playback import RtspServer, StaticResolver
from nvr.playback.wiring import PlaybackHandle, start_playback
from nvr.search import create_indexer
from nvr.secretbox import SecretBox
from nvr.store import Store
from nvr.uplink.manager import UplinkManager
from nvr.web.app import build_app

log = logging.getLogger("nvr")


def open_store_offline(config: Config, engine: Engine) -> Store:
    """A store for offline tools (fsck): migrated, directories verified, no recovery writes."""
    upgrade(engine)
    store = Store(engine, config.store_settings())
    store.open(recover=False)
    return store


class StartupError(Exception):
    """The daemon cannot start (a port is taken...): one log line and exit status 1."""


class Daemon:
    """Owns the engine, the store and the scheduler for the life of the process."""

    def __init__(self, config: Config, engine: Engine) -> None:
        self.config = config
        self.engine = engine
        self.sessions = make_sessionmaker(engine)
        self.store: Store | None = None
        self.exports: ExportManager | None = None
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        self.bus = EventBus()
        self.history = RecordingHistory(self.bus)
        """The store's listener: RecordingHistory events onto the bus."""
        self.resources = ResourceTracker(self.bus)
        """Receivers and recordings as tns1:Resource property events (resource queries)."""
        self.search_indexer = create_indexer(self)
        """Indexes recording events and metadata for the Search service."""
        self.ingest: IngestEngine | None = None
        self.playback: PlaybackHandle | None = None
        """The RTSP server on rtsp.port: recordings, then ``rtsp_resources``; the Replay
        service and RTSP over WebSocket find it here."""
        self.rtsp_resources = StaticResolver()
        """What the RTSP server serves besides recordings (``/demo`` with --demo)."""
        self.demo_rtsp: RtspServer | None = None
        self._demo_camera: Any = None
        self.state = "starting"
        self.started_at = time.monotonic()
        self._db_ok = True
        self._db_checked = 0.0
        self.discovery: DiscoveryResponder | None = None
        self.app: Any = None
        """The ASGI app on http.port (``_serve`` sets it); uplinks serve the same one."""
        self.uplinks: UplinkManager | None = None
        """Cloud uplinks (IEC 62676-2-33): the Uplink service updates it."""
        self.on_stop_requested: list[Callable[[], None]] = []
        """Run on SIGTERM/SIGINT before the HTTP server drains (ends waiting PullMessages)."""

    async def start(self) -> None:
        store = Store(self.engine, self.config.store_settings(), listener=self.history)
        report = await asyncio.to_thread(store.open)
        if report is not None:
            log.info("store recovery: %s", report)
        self.store = store
        self.search_indexer.start()
        self.exports = await asyncio.to_thread(self._export_manager, store)
        self.ingest = IngestEngine(
            self.sessions,
            store,
            self.bus,
            self.scheduler,
            history=self.history,
            box=SecretBox.from_file(self.config.key_file),  # camera passwords sealed at rest
        )
        await self.ingest.start()
        await self.resources.start(self.ingest.receivers, self.ingest.jobs, store)
        try:
            self.playback = await start_playback(self)
        except OSError as exc:
            host, port = self.config["rtsp.host"], self.config["rtsp.port"]
            raise StartupError(f"cannot serve RTSP on {host}:{port}: {exc.strerror}") from None
        if self.config["demo"]:
            await self._start_demo(self.ingest)
        await self._start_uplinks()
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
        self.discovery = await start_discovery(self.config, self.sessions)
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
        if self.discovery is not None:  # WS-Discovery Bye first
            await self.discovery.stop()
            self.discovery = None
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        await self.resources.stop()
        if self.ingest is not None:  # recorders end their runs before the final checkpoint
            await self.ingest.stop()
            self.ingest = None
        if self.uplinks is not None:  # tunnelled RTSP sessions end with their tunnels
            await self.uplinks.close()
            self.uplinks = None
        if self.playback is not None:
            await self.playback.stop()
            self.playback = None
        if self.demo_rtsp is not None:
            await self.demo_rtsp.stop()
            self.demo_rtsp = None
        if self._demo_camera is not None:
            await self._demo_camera.close()
            self._demo_camera = None
        if self.exports is not None:
            await asyncio.to_thread(self.exports.shutdown)
            self.exports = None
        await asyncio.to_thread(self.search_indexer.stop)
        if self.store is not None:
            await asyncio.to_thread(self.store.close)
            self.store = None
        log.info("nvr stopped")

    async def _start_uplinks(self) -> None:
        """Dial every configured uplink; its tunnel serves ``self.app`` and the RTSP server."""
        from nvr.uplink.keystore import FileKeystore
        from nvr.uplink.repository import UplinkRepository

        if self.app is None:
            return  # pieces of a daemon without an HTTP app (tests): nothing to tunnel to
        playback = self.playback
        self.uplinks = UplinkManager(
            self.app,
            FileKeystore.for_config(self.config),
            lambda: playback.server if playback is not None else None,
            device=self.config["device.serial_number"] or str(self.config.data_dir),
        )
        self.uplinks.update(await asyncio.to_thread(UplinkRepository(self.sessions).list))
        await self.uplinks.start()

    async def _start_demo(self, ingest: IngestEngine) -> None:
        """``--demo``: the simulated camera, recorded at once.

        The camera is served at ``/demo`` on the RTSP port (Digest, like everything there) and,
        for the recorder, on a private loopback port without credentials, so the demo needs no
        user to exist before it records.
        """
        from nvr.demo.camera import DemoCamera

        self._demo_camera = DemoCamera()
        self.rtsp_resources.add("/demo", self._demo_camera)
        self.demo_rtsp = RtspServer("127.0.0.1", 0, StaticResolver({"/demo": self._demo_camera}))
        await self.demo_rtsp.start()
        await ingest.ensure_demo(f"rtsp://127.0.0.1:{self.demo_rtsp.port}/demo")

    def _export_manager(self, store: Store) -> ExportManager:
        """Export jobs on the scheduler's ``export`` thread pool, signed with the device
        identity (made on first start if absent)."""
        return ExportManager(
            store,
            device_identity(self.config),
            local_unit(self.config),
            scheduler=self.scheduler,
            max_parallel=self.config["export.max_parallel"],
        )

    async def _retention(self) -> None:
        if self.store is None:
            return
        result = await asyncio.to_thread(self.store.sweep_retention)
        for deleted in result.deleted:
            log.info("retention deleted %s", deleted)
            self.bus.publish(
                delete_track_data(
                    deleted.recording_token, deleted.track_token, deleted.start_us, deleted.end_us
                )
            )

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
        if self.ingest is not None:
            status.update(self.ingest.health())
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
    daemon.app = app
    loop = asyncio.get_running_loop()
    server = _Server(
        uvicorn.Config(
            app,
            host=config["http.host"],
            port=config["http.port"],
            log_config=None,
            access_log=False,
            lifespan="off",
            ws_per_message_deflate=False,  # RTSP over WebSocket: RTP does not compress
        )
    )
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _request_exit, server, daemon)
    server_task = asyncio.create_task(server.serve())
    while not server.started and not server_task.done():
        await asyncio.sleep(0.02)
    if server_task.done():
        await server_task
        log.error("could not start the HTTP server on port %s", config["http.port"])
        return 1
    try:
        try:
            await daemon.start()
        except StartupError as exc:
            log.error("%s", exc)
            server.should_exit = True
            await server_task
            return 1
        await server_task
    finally:
        await daemon.stop()
    return 0


def _request_exit(server: uvicorn.Server, daemon: Daemon) -> None:
    if server.should_exit:
        server.force_exit = True
    server.should_exit = True
    for callback in daemon.on_stop_requested:
        try:
            callback()
        except Exception:
            log.exception("stop request callback failed")


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
