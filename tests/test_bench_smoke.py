"""The benchmarks in ``bench/`` still run (tiny parameters; the figures are not checked).

On PostgreSQL they get the server of the test database (they create and drop their own
scratch database there)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import BACKEND

BENCH = Path(__file__).resolve().parents[1] / "bench"


def run_bench(script: str, database_url: str, *args: str) -> str:
    db = ["--database-url", database_url] if BACKEND == "postgresql" else []
    done = subprocess.run(
        [sys.executable, str(BENCH / script), *args, *db],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.parametrize("script", ["store_write.py", "store_read.py", "replay.py", "uplink.py"])
def test_help(script: str) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH / script), "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0 and "--database-url" in done.stdout


def test_store_write_bench(database_url: str, tmp_path: Path) -> None:
    out = run_bench(
        "store_write.py", database_url, "--tracks", "2", "--seconds", "1", "--max-gb", "0.2",
        "--dir", str(tmp_path),
    )  # fmt: skip
    for mode in ("store, as fast as possible", "plain write", "store, paced real time"):
        assert mode in out, out
    assert "store / plain write throughput" in out
    assert not any(tmp_path.iterdir()), "the benchmark left files behind"


def test_store_read_bench(database_url: str, tmp_path: Path) -> None:
    out = run_bench(
        "store_read.py", database_url, "--minutes", "10", "--seeks", "20", "--dir", str(tmp_path)
    )
    for row in ("seek, cold index cache", "seek, warm index cache", "backward GOPs", "forward"):
        assert row in out, out
    assert "15,000 frames" in out
    assert not any(tmp_path.iterdir()), "the benchmark left files behind"


def test_replay_bench(database_url: str, tmp_path: Path) -> None:
    out = run_bench(
        "replay.py", database_url, "--minutes", "5", "--hd-minutes", "1", "--seeks", "10",
        "--sessions", "3", "--hold", "1", "--fast-seconds", "10", "--dir", str(tmp_path),
    )  # fmt: skip
    rows = ("random times of day", "3 x 1x", "Rate-Control no, 1 session", "raw read")
    rows += ("counting client", "replay data path, no server")
    for row in rows:
        assert row in out, out
    assert not any(tmp_path.iterdir()), "the benchmark left files behind"


def test_uplink_bench(database_url: str, tmp_path: Path) -> None:
    out = run_bench(
        "uplink.py", database_url, "--minutes", "0.2", "--fast-seconds", "10", "--sessions", "2",
        "--hold", "1", "--dir", str(tmp_path),
    )  # fmt: skip
    for row in ("RTSP/TCP direct", "uplink tunnel, https", "tunnel / direct throughput", "at 1x"):
        assert row in out, out
    assert not any(tmp_path.iterdir()), "the benchmark left files behind"
