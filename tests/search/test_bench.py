"""bench/search.py still runs (tiny sizes; the figures are not checked)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import BACKEND

BENCH = Path(__file__).resolve().parents[2] / "bench" / "search.py"


def test_search_bench(database_url: str, tmp_path: Path) -> None:
    where = ["--sqlite", "--dir", str(tmp_path)] if BACKEND == "sqlite" else []
    if BACKEND == "postgresql":
        where = ["--database-url", database_url.rsplit("/", 1)[0] + "/postgres"]
    done = subprocess.run(
        [sys.executable, str(BENCH), "--recordings", "20", "--events", "3000", "--samples", "3",
         *where],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    for row in ("FindRecordings, all", "FindEvents 1 day bwd, RecordingHistory", "start state"):
        assert row in done.stdout, done.stdout
    if BACKEND == "postgresql":
        assert "MB per million events" in done.stdout
    assert not any(tmp_path.iterdir()), "the benchmark left files behind"
