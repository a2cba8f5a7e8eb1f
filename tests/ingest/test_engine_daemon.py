"""The ingest engine as the daemon assembles it: demo objects made once and reused, /healthz
figures, and jobs restored by a real ``nvr serve`` process."""

from __future__ import annotations

import asyncio
import signal
import socket
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from nvr.cli import _config, build_parser
from nvr.db.engine import make_engine, make_sessionmaker
from nvr.db.migrate import upgrade
from nvr.events import EventBus
from nvr.ingest.engine import DEMO_JOB, DEMO_RECEIVER, DEMO_RECORDING, IngestEngine
from nvr.ingest.job_config import ACTIVE, IDLE, JobConfiguration, JobSource
from nvr.ingest.receiver_config import ALWAYS_CONNECT, ReceiverConfig
from nvr.store import Store
from tests.daemon import Daemon, free_port, get_json, run_nvr
from tests.ingest.test_jobs import run
from tests.store.helpers import make_settings


class Engine_:
    """An IngestEngine over its own store and bus (one 'daemon life')."""

    def __init__(self, engine: Engine, root: Path) -> None:
        self.engine = engine
        self.root = root

    async def __aenter__(self) -> IngestEngine:
        self.store = Store(self.engine, make_settings(self.root))
        await asyncio.to_thread(self.store.open)
        self.ingest = IngestEngine(make_sessionmaker(self.engine), self.store, EventBus())
        await self.ingest.start()
        return self.ingest

    async def __aexit__(self, *exc: object) -> None:
        await self.ingest.stop()
        await asyncio.to_thread(self.store.close)


def test_demo_objects_are_created_once(engine: Engine, tmp_path: Path) -> None:
    async def scenario() -> None:
        # Nothing listens on these ports: the objects matter here, not the recording.
        first, second = (f"rtsp://127.0.0.1:{free_port()}/demo" for _ in range(2))
        async with Engine_(engine, tmp_path) as ingest:
            await ingest.ensure_demo(first)
            await ingest.ensure_demo(first)
            (job,) = ingest.jobs.jobs()
            assert job[0] == DEMO_JOB and job[1].mode == ACTIVE
            assert job[1].sources[0].token == DEMO_RECEIVER
            assert {t.destination for t in job[1].sources[0].tracks} == {
                "VIDEO001",
                "AUDIO001",
                "META001",
            }
            recording = await asyncio.to_thread(ingest.store.get_recording, DEMO_RECORDING)
            assert recording.source_name == "Demo camera"
            await ingest.jobs.set_mode(DEMO_JOB, IDLE)  # an operator's choice survives
        async with Engine_(engine, tmp_path) as ingest:
            await ingest.ensure_demo(second)  # the RTSP port moved: the URI follows
            (receiver,) = ingest.receivers.list()
            assert receiver.token == DEMO_RECEIVER and receiver.config.media_uri == second
            assert [(t, c.mode) for t, c in ingest.jobs.jobs()] == [(DEMO_JOB, IDLE)]
            assert len(await asyncio.to_thread(ingest.store.recordings)) == 1
            health = ingest.health()
            assert health["receivers"]["count"] == 1
            assert health["jobs"] == {
                "count": 1,
                "states": {"Idle": 1},
                "items": [
                    {
                        "token": DEMO_JOB,
                        "recording": DEMO_RECORDING,
                        "mode": IDLE,
                        "priority": 1,
                        "state": "Idle",
                        "tracks": [
                            {"destination": d, "state": "Idle", "error": None, "frames": 0}
                            for d in ("VIDEO001", "AUDIO001", "META001")
                        ],
                    }
                ],
            }

    run(scenario)


def test_serve_restores_receivers_and_jobs(tmp_path: Path, database_url: str) -> None:
    """Objects made through the engine are served by a later ``nvr serve`` (no --demo): the
    job resumes (Active mode, its receiver trying a camera that is not there), and SIGTERM
    still stops cleanly."""
    data_dir = tmp_path / "data"
    settings_root = data_dir  # make_settings puts media under root/media0

    async def prepare() -> None:
        async with Engine_(engine, settings_root) as ingest:
            await asyncio.to_thread(ingest.store.create_recording, "REC")
            dead = f"rtsp://127.0.0.1:{free_port()}/nothing"
            receiver = await ingest.receivers.create(ReceiverConfig(ALWAYS_CONNECT, dead))
            await ingest.jobs.create(
                JobConfiguration("REC", ACTIVE, 3, (JobSource(receiver.token),)), token="JOB"
            )

    engine = make_engine(database_url)  # the daemon's own database (not the shared one)
    upgrade(engine)
    try:
        run(prepare)
    finally:
        engine.dispose()
    storage = f'[storage]\ndirs = [{{ path = "{data_dir / "media0"}", min_free_bytes = 0 }}]\n'
    (tmp_path / "nvr.toml").write_text(storage)
    daemon = Daemon(data_dir, database_url, "--config", str(tmp_path / "nvr.toml"))
    try:
        body: dict[str, Any] = daemon.wait_ready()
        assert body["jobs"]["count"] == 1 and body["receivers"]["count"] == 1
        (job,) = body["jobs"]["items"]
        assert (job["token"], job["mode"], job["priority"]) == ("JOB", ACTIVE, 3)
        assert job["state"] == "Idle"  # won its tracks, but the camera does not answer
        status, body = get_json(daemon.base_url + "/healthz")
        assert status == 200 and body["receivers"]["items"][0]["mode"] == ALWAYS_CONNECT
    finally:
        code = daemon.stop(signal.SIGTERM)
    assert code == 0, daemon.log()


def test_demo_command_is_serve_demo() -> None:
    args = build_parser().parse_args(["demo", "--rtsp-port", "9554"])
    config = _config(args)
    assert args.command == "demo" and config["demo"] is True and config["rtsp.port"] == 9554
    assert _config(build_parser().parse_args(["serve"]))["demo"] is False


def test_demo_with_a_taken_rtsp_port_fails_clearly(tmp_path: Path, database_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_nvr(
            "demo",
            "--data-dir",
            str(tmp_path / "data"),
            "--database-url",
            database_url,
            "--http-port",
            str(free_port()),
            "--rtsp-port",
            str(port),
            env={"NVR_HTTP_HOST": "127.0.0.1", "NVR_RTSP_HOST": "127.0.0.1"},
        )
    assert result.returncode == 1
    assert f"cannot serve RTSP on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr
