"""``nvr serve --demo`` end to end: a real subprocess records the built-in camera over RTSP,
stops on SIGTERM, starts again on the same data, and what it stored decodes with ffmpeg."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from nvr.app import open_store_offline
from nvr.config import load
from nvr.db.engine import make_engine
from nvr.ingest.engine import DEMO_JOB, DEMO_RECORDING
from nvr.protocol.codecs.annexb import length_prefixed_to_nals, nals_to_annexb
from nvr.store import Store
from tests.conftest import require_binary
from tests.daemon import Daemon, get_json

KINDS = {"VIDEO001": "Video", "AUDIO001": "Audio", "META001": "Metadata"}


def demo_job(daemon: Daemon) -> dict[str, Any] | None:
    status, body = get_json(daemon.base_url + "/healthz")
    if status != 200:
        return None
    return next((j for j in body["jobs"]["items"] if j["token"] == DEMO_JOB), None)


def record_for(daemon: Daemon, seconds: float) -> dict[str, Any]:
    """Wait until the demo job is Active with frames on every track and ``seconds`` passed."""
    daemon.wait_ready()
    start = time.monotonic()
    job: dict[str, Any] | None = None
    while time.monotonic() - start < 30:
        job = demo_job(daemon)
        recording = job is not None and job["state"] == "Active"
        frames = recording and all(t["frames"] > 0 for t in job["tracks"])  # type: ignore[index]
        if frames and time.monotonic() - start >= seconds:
            return job  # type: ignore[return-value]
        time.sleep(0.5)
    raise AssertionError(f"demo job not recording: {job}\n{daemon.log()}")


def annexb_video(store: Store) -> tuple[bytes, int]:
    """The stored video as an Annex B stream (parameter sets before each key frame)."""
    reader = store.reader(DEMO_RECORDING, "VIDEO001")
    out, count = [], 0
    for frame in reader.frames(reader.runs()[0].start_us):
        if frame.key:
            params = store.sample_entry(frame.sample_entry_id).spec.parameters
            out.append(nals_to_annexb(length_prefixed_to_nals(params)))
        out.append(nals_to_annexb(length_prefixed_to_nals(frame.data)))
        count += 1
    return b"".join(out), count


@pytest.mark.ffmpeg
def test_demo_records_across_restart(tmp_path: Path, database_url: str) -> None:
    ffmpeg = require_binary("ffmpeg")
    data_dir = tmp_path / "data"
    bounds = []
    for seconds in (6.0, 3.0):
        daemon = Daemon(data_dir, database_url, "--demo")
        try:
            job = record_for(daemon, seconds)
            assert job["mode"] == "Active" and job["recording"] == DEMO_RECORDING
            assert {t["destination"] for t in job["tracks"]} == set(KINDS)
            bounds.append(time.time_ns() // 1000)
        finally:
            code = daemon.stop()
        assert code == 0, daemon.log()
        assert "Traceback" not in daemon.log(), daemon.log()
    first_stop, _ = bounds

    config = load(flags={"data_dir": str(data_dir), "database_url": database_url})
    engine = make_engine(database_url)
    store = open_store_offline(config, engine)
    try:
        recording = store.get_recording(DEMO_RECORDING)
        assert recording.source_name == "Demo camera"
        assert {t.token: t.kind for t in recording.tracks} == KINDS
        for track in recording.tracks:
            runs = store.reader(DEMO_RECORDING, track.token).runs()
            assert len(runs) >= 2, (track.token, runs)
            assert runs[0].start_us < first_stop < runs[-1].start_us, (track.token, runs)
            assert all(not r.open and r.end_us > r.start_us for r in runs), (track.token, runs)
        stream, stored = annexb_video(store)
    finally:
        store.close()
        engine.dispose()
    assert stored > 50
    video = tmp_path / "video.h264"
    video.write_bytes(stream)
    decoded = subprocess.run(
        [ffmpeg, "-v", "error", "-f", "h264", "-i", str(video), "-f", "framemd5", "-"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert decoded.returncode == 0 and decoded.stderr == "", decoded.stderr
    frames = [line for line in decoded.stdout.splitlines() if line and not line.startswith("#")]
    assert len(frames) == stored
