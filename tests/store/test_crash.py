"""kill -9 of a process writing several tracks, restarted again and again (DESIGN §4: nothing
indexed is ever lost; at most the last ``checkpoint_seconds`` of frames in flight are).

Each round starts ``tests/store/crash_writer.py`` (video 25 fps ~20 kB, audio 50 frames/s,
metadata 5/s, in real time, checkpoints every 2 s), lets it write for a seeded random 1-4 s and
kills it with SIGKILL. After each kill the test reads the index as committed (no recovery); the
next round's process runs recovery in ``Store.open`` and dumps the index it then sees. At the
end: every indexed frame reads back byte-identical, what was indexed at a kill is still there
after recovery and at the end, what was lost at a kill is a tail of that round submitted in the
last checkpoint interval before the kill, and ``fsck --hash`` finds nothing wrong.
"""

from __future__ import annotations

import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine

from nvr.store import Store
from nvr.store.fsck import check
from tests.store.crash_writer import (
    RECORDING,
    ROUND_BASE,
    TRACKS,
    frame_number,
    index_snapshot,
    payload,
    settings,
)

pytestmark = pytest.mark.slow

ROUNDS = 5
SEED = 4242
CHECKPOINT_S = 2.0
COMMIT_SLACK_S = 0.75
"""A checkpoint covers the frames queued when it was collected and becomes durable when its
commit returns: a kill just before that loses one interval plus the commit's latency."""
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Submitted:
    number: int
    capture_us: int
    wall_us: int


def read_side_file(path: Path) -> dict[str, list[Submitted]]:
    out: dict[str, list[Submitted]] = {t: [] for t in TRACKS}
    refused: set[tuple[str, int]] = set()
    for line in path.read_text().splitlines():
        parts = line.split()
        if parts[0] == "REFUSED":
            refused.add((parts[1], int(parts[2])))
        elif len(parts) == 4:  # a line cut by the kill is ignored (that frame was not submitted)
            out[parts[0]].append(Submitted(int(parts[1]), int(parts[2]), int(parts[3])))
    assert not refused, f"the writer service refused frames: {sorted(refused)[:5]}"
    return out


class Writer:
    """One crash_writer process, its stdout read by a thread."""

    def __init__(self, database_url: str, media: Path, work: Path, round_: int) -> None:
        self.log = work / f"round{round_}.log"
        self.snapshot = work / f"snapshot{round_}.json"
        self.stderr = open(work / f"round{round_}.stderr", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.store.crash_writer",
                "--database-url",
                database_url,
                "--dir",
                str(media),
                "--log",
                str(self.log),
                "--round",
                str(round_),
                "--snapshot",
                str(self.snapshot),
            ],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.recovered: dict[str, int] = {}
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put("")

    def wait_for(self, word: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if not line:
                self.kill()
                err = Path(self.stderr.name).read_text(errors="replace")[-3000:]
                pytest.fail(f"crash_writer: no {word!r} line (exit {self.proc.returncode}):\n{err}")
            if line.startswith("recovered "):
                self.recovered = json.loads(line.split(" ", 1)[1])
            if line.split(" ", 1)[0] == word:
                return line

    def kill(self) -> int:
        """SIGKILL now; returns the wall time of the kill in us."""
        kill_us = time.time_ns() // 1000
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self.stderr.close()
        return kill_us


def committed_index(engine: Engine, media: Path) -> dict[str, list[int]]:
    """The index exactly as the killed process committed it (no recovery)."""
    store = Store(engine, settings(media))
    store.open(recover=False)
    try:
        return index_snapshot(store)
    finally:
        store.close()


def test_kill_9_loses_nothing_indexed_and_at_most_the_last_checkpoint(
    engine: Engine, tmp_path: Path
) -> None:
    started = time.monotonic()
    database_url = engine.url.render_as_string(hide_password=False)
    media = tmp_path / "media"
    setup = Store(engine, settings(media))
    setup.open()
    setup.create_recording(RECORDING)
    setup.close()
    rng = random.Random(SEED)

    kills: list[int] = []
    submitted: list[dict[str, list[Submitted]]] = []
    at_kill: list[dict[str, list[int]]] = []
    after_recovery: list[dict[str, list[int]]] = []
    recovered: list[dict[str, int]] = []
    writers: list[Writer] = []
    try:
        for r in range(ROUNDS):
            w = Writer(database_url, media, tmp_path, r)
            writers.append(w)
            w.wait_for("writing")
            recovered.append(w.recovered)
            if r:
                after_recovery.append(json.loads(w.snapshot.read_text()))
            time.sleep(rng.uniform(1.0, 4.0))
            kills.append(w.kill())
            submitted.append(read_side_file(w.log))
            at_kill.append(committed_index(engine, media))
    finally:
        for w in writers:
            if w.proc.poll() is None:
                w.kill()

    # The last restart: recovery in this process.
    store = Store(engine, settings(media))
    report = store.open()
    recovered.append({"changes": report.recovery.changes})
    try:
        after_recovery.append(index_snapshot(store))
        final = {t: list(store.reader(RECORDING, t).frames(0)) for t in TRACKS}
        fsck = check(store, hash=True)
    finally:
        store.close()
    elapsed = time.monotonic() - started

    # 1. Every indexed frame reads back byte-identical; frame numbers only grow.
    final_numbers: dict[str, list[int]] = {}
    for track, frames in final.items():
        numbers = []
        for f in frames:
            n = frame_number(track, f.data)
            assert f.data == payload(track, n), f"{track} frame {n} differs"
            numbers.append(n)
        assert numbers == sorted(set(numbers)), f"{track}: frames out of order or repeated"
        assert numbers == after_recovery[-1][track]
        final_numbers[track] = numbers

    lines = []
    for r in range(ROUNDS):
        # 2. Recovery keeps exactly what was indexed at the kill, and it stays to the end.
        assert after_recovery[r] == at_kill[r], f"round {r}: recovery changed the indexed frames"
        for track in TRACKS:
            kept = set(final_numbers[track])
            assert set(at_kill[r][track]) <= kept, f"round {r} {track}: indexed frames lost"

        # 3. What the kill lost is the tail of the round, submitted in the last checkpoint.
        lo, hi = r * ROUND_BASE, (r + 1) * ROUND_BASE
        worst_age = 0
        counts = []
        for track in TRACKS:
            sent = submitted[r][track]
            assert sent, f"round {r}: nothing submitted on {track}"
            indexed = [n for n in at_kill[r][track] if lo <= n < hi]
            assert indexed == [s.number for s in sent[: len(indexed)]], (
                f"round {r} {track}: the indexed frames are not a prefix of those submitted"
            )
            lost = sent[len(indexed) :]
            counts.append(f"{track}: {len(lost)}/{len(sent)}")
            if lost:
                age_us = kills[r] - lost[0].wall_us
                worst_age = max(worst_age, age_us)
                assert age_us <= (CHECKPOINT_S + COMMIT_SLACK_S) * 1e6, (
                    f"round {r} {track}: lost a frame submitted {age_us / 1e6:.2f} s before "
                    f"the kill (checkpoints every {CHECKPOINT_S} s)"
                )
            last_idx_capture = sent[len(indexed) - 1].capture_us if indexed else None
            if track == "VIDEO001" and last_idx_capture is not None:
                counts.append(
                    f"video capture gap {(sent[-1].capture_us - last_idx_capture) / 1e6:.2f} s"
                )
        lines.append(
            f"kill {r}: lost {', '.join(counts)}; oldest lost frame {worst_age / 1e6:.2f} s "
            f"before the kill; recovery at restart: {recovered[r + 1]}"
        )

    # 4. fsck with checksums is clean.
    assert fsck.problems == 0, str(fsck)
    assert fsck.hashed == fsck.segments > 0
    print(f"\n{ROUNDS} kills in {elapsed:.1f} s; fsck hashed {fsck.hashed} segments")
    print("\n".join(lines))
    total = {t: len(v) for t, v in final_numbers.items()}
    print(f"frames indexed at the end: {total}")
