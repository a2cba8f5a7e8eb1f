"""Store write benchmark: N tracks of 4 Mbit/s-like video through the real writer service.

Two modes, each for ``--seconds`` of wall time on a fresh scratch store:

* ``fast``: every track submits as fast as the writer service takes frames (the producer
  waits while more than 32 MB are queued); the run ends once everything submitted is fsynced
  and indexed. Then the same bytes, frame by frame, are written to ONE plain file on the same
  disk with an fsync every 2 s (the physical limit): the ratio of the two rates is the
  store's efficiency (goal >= 0.5).
* ``paced``: every track submits 25 frames/s in real time (tracks staggered), like cameras.

Reported: frames/s, MB/s, how many 4 Mbit/s streams that rate equals, process CPU seconds
(all threads, ``time.process_time``, the synthetic producer included; a PostgreSQL server's
CPU is not) per track-minute of stream, index commits. Frames: 25 fps, GOP 50, ~20 kB mean
(key frames 5x the P frames), drawn from a pre-generated pool so the producer costs little.

The scratch storage directory goes in the temp dir if it is on the repository's filesystem
(else next to the repository), or in ``--dir``; SQLite by default, ``--database-url`` names a
PostgreSQL server on which a scratch database is created and dropped. Everything is removed
at the end.
"""

from __future__ import annotations

import os
import random
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(_HERE), str(_HERE.parent)]  # this folder, then the repository

from _common import bench_parser, scratch_database, scratch_dir, table  # noqa: E402

from nvr.store import Store, TrackHandle  # noqa: E402
from nvr.store.settings import StorageDirSettings, StoreSettings  # noqa: E402
from nvr.store.types import SampleEntrySpec  # noqa: E402
from tests.store.helpers import H264_ENTRY, T0  # noqa: E402

FPS = 25
FRAME_US = 1_000_000 // FPS
DURATION = 90_000 // FPS
QUEUE_LIMIT = 32 * 1024 * 1024
MB = 1e6


def thread_cpu() -> dict[str, float]:
    """CPU seconds (user + system) of this process's live threads, summed by name (Linux)."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for th in threading.enumerate():
        try:
            stat = Path(f"/proc/self/task/{th.native_id}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        name = th.name.split("_")[0].rstrip("-0123456789") or th.name
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


class FramePool:
    """Pre-generated payloads: ``keys`` and ``deltas`` (length-prefixed NAL units)."""

    def __init__(self, mean: int, gop: int, seed: int = 1) -> None:
        rng = random.Random(seed)
        p_mean = mean * gop // (gop + 4)  # key frames are 5x: the mean over a GOP is ``mean``
        self.gop = gop
        self.keys = [
            self._nal(rng, 0x65, int(p_mean * 5 * rng.uniform(0.8, 1.2))) for _ in range(32)
        ]
        self.deltas = [
            self._nal(rng, 0x41, int(p_mean * rng.uniform(0.3, 1.7))) for _ in range(509)
        ]

    @staticmethod
    def _nal(rng: random.Random, head: int, size: int) -> bytes:
        return (size + 1).to_bytes(4, "big") + bytes([head]) + rng.randbytes(size)

    def frame(self, track: int, i: int) -> tuple[bytes, bool]:
        if i % self.gop == 0:
            return self.keys[(i // self.gop + track) % len(self.keys)], True
        return self.deltas[(i * 7 + track * 13) % len(self.deltas)], False


@dataclass
class Result:
    mode: str
    seconds: float
    frames: int
    bytes: int
    cpu: float
    track_minutes: float
    commits: int | None = None
    dropped: int = 0
    threads: dict[str, float] | None = None

    def row(self, stream_bps: float) -> list[object]:
        return [
            self.mode,
            f"{self.seconds:.2f}",
            self.frames,
            f"{self.frames / self.seconds:,.0f}",
            f"{self.bytes / MB / self.seconds:.1f}",
            f"{self.bytes * 8 / self.seconds / stream_bps:,.0f}",
            f"{self.cpu:.2f}",
            f"{self.cpu / self.track_minutes:.3f}" if self.track_minutes else "-",
            "-" if self.commits is None else self.commits,
            self.dropped,
        ]


def open_store(
    engine: object, media: Path, tracks: int, mode: str
) -> tuple[Store, list[TrackHandle]]:
    settings = StoreSettings(
        dirs=(StorageDirSettings(path=media, min_free_bytes=0),),
        segment_seconds=60.0,
        checkpoint_seconds=2.0,
    )
    store = Store(engine, settings)  # type: ignore[arg-type]
    store.open()
    handles = []
    for t in range(tracks):
        token = f"{mode}-{t:03d}"
        store.create_recording(token, tracks=(("VIDEO001", "Video"),))
        handles.append(store.open_writer(token, "VIDEO001"))
    return store, handles


def run_fast(
    engine: object, media: Path, pool: FramePool, tracks: int, seconds: float, max_bytes: int
) -> tuple[Result, int]:
    """As fast as possible for ``seconds`` (or ``max_bytes``); returns the result and the
    number of frame ticks submitted (each tick: one frame per track)."""
    store, handles = open_store(engine, media, tracks, "fast")
    service = store.writer_service
    entry: SampleEntrySpec = H264_ENTRY
    total = ticks = 0
    cpu_before = thread_cpu()
    cpu0, t0 = time.process_time(), time.monotonic()
    deadline = t0 + seconds
    while total < max_bytes:
        if service.queued_bytes > QUEUE_LIMIT:
            if time.monotonic() >= deadline:
                break
            time.sleep(0.0005)
            continue
        if ticks % 8 == 0 and time.monotonic() >= deadline:
            break
        capture = T0 + ticks * FRAME_US
        for t, h in enumerate(handles):
            data, key = pool.frame(t, ticks)
            h.submit(data, capture, DURATION, key, entry)
            total += len(data)
        ticks += 1
    if not service.flush(300):
        raise RuntimeError("the index did not catch up")
    elapsed, cpu = time.monotonic() - t0, time.process_time() - cpu0
    threads = _since(cpu_before, thread_cpu())
    statuses = [h.status() for h in handles]
    commits = service.index_status().checkpoints
    store.close()
    frames = sum(s.frames_written for s in statuses)
    dropped = sum(s.dropped_queue + s.dropped_error for s in statuses)
    written = sum(s.bytes_written for s in statuses)
    result = Result(
        "store, as fast as possible",
        elapsed,
        frames,
        written,
        cpu,
        frames / FPS / 60,
        commits,
        dropped,
        threads,
    )
    return result, ticks


def _since(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items()}


def run_plain(path: Path, pool: FramePool, tracks: int, ticks: int) -> Result:
    """The same frames, in the same order, appended to one file; fsync every 2 s."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    total = frames = 0
    cpu0, t0 = time.process_time(), time.monotonic()
    next_sync = t0 + 2.0
    try:
        for i in range(ticks):
            for t in range(tracks):
                data, _ = pool.frame(t, i)
                os.write(fd, data)
                total += len(data)
                frames += 1
            if time.monotonic() >= next_sync:
                os.fsync(fd)
                next_sync = time.monotonic() + 2.0
        os.fsync(fd)
    finally:
        os.close(fd)
    elapsed, cpu = time.monotonic() - t0, time.process_time() - cpu0
    os.unlink(path)
    return Result("plain write, fsync every 2 s", elapsed, frames, total, cpu, frames / FPS / 60)


def run_paced(engine: object, media: Path, pool: FramePool, tracks: int, seconds: float) -> Result:
    """Real time: frame i of track t is due at i/25 s + t/(25 N) s."""
    store, handles = open_store(engine, media, tracks, "paced")
    service = store.writer_service
    entry: SampleEntrySpec = H264_ENTRY
    n = int(seconds * FPS)
    step = 1.0 / FPS / tracks
    cpu_before = thread_cpu()
    cpu0, t0 = time.process_time(), time.monotonic()
    late = 0.0
    for i in range(n):
        capture = T0 + i * FRAME_US
        for t, h in enumerate(handles):
            due = t0 + i / FPS + t * step
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                late = max(late, -delay)
            data, key = pool.frame(t, i)
            h.submit(data, capture + t * 1000, DURATION, key, entry)
    if not service.flush(60):
        raise RuntimeError("the index did not catch up")
    elapsed, cpu = time.monotonic() - t0, time.process_time() - cpu0
    threads = _since(cpu_before, thread_cpu())
    statuses = [h.status() for h in handles]
    commits = service.index_status().checkpoints
    store.close()
    frames = sum(s.frames_written for s in statuses)
    if late > 0.5:
        print(f"warning: the paced producer fell {late:.2f} s behind", file=sys.stderr)
    return Result(
        "store, paced real time",
        elapsed,
        frames,
        sum(s.bytes_written for s in statuses),
        cpu,
        frames / FPS / 60,
        commits,
        sum(s.dropped_queue + s.dropped_error for s in statuses),
        threads,
    )


def main(argv: list[str] | None = None) -> int:
    ap = bench_parser(__doc__)
    ap.add_argument("--tracks", type=int, default=16, help="tracks written at once (16)")
    ap.add_argument("--seconds", type=float, default=10.0, help="wall time per mode (10)")
    ap.add_argument("--mode", choices=("fast", "paced", "both"), default="both")
    ap.add_argument("--frame-bytes", type=int, default=20_000, help="mean frame size (20000)")
    ap.add_argument("--gop", type=int, default=50, help="frames per key frame (50)")
    ap.add_argument("--max-gb", type=float, default=8.0, help="stop the fast mode there (8)")
    args = ap.parse_args(argv)

    pool = FramePool(args.frame_bytes, args.gop)
    stream_bps = args.frame_bytes * 8 * FPS
    results: list[Result] = []
    ratio = None
    with scratch_dir(args.dir) as work, scratch_database(args.database_url, work) as (engine, db):
        st = os.statvfs(work)
        free = st.f_bavail * st.f_frsize
        max_bytes = min(int(args.max_gb * 1e9), max(0, (free - 2 * 10**9) // 2))
        print(
            f"store write benchmark: {args.tracks} tracks x {FPS} fps, mean frame "
            f"{args.frame_bytes} B ({stream_bps / 1e6:.1f} Mbit/s per track), GOP {args.gop}, "
            f"segments 60 s, checkpoints every 2 s\ndatabase: {db}\nstorage: {work} "
            f"({free / 1e9:.0f} GB free; fast mode capped at {max_bytes / 1e9:.1f} GB)",
            flush=True,
        )
        if args.mode in ("fast", "both"):
            fast, ticks = run_fast(
                engine, work / "fast", pool, args.tracks, args.seconds, max_bytes
            )
            results.append(fast)
            for p in sorted((work / "fast").rglob("*"), reverse=True):  # room for the copy
                if p.is_file() and p.name != ".nvr-storage.json":
                    p.unlink()
            plain = run_plain(work / "plain.bin", pool, args.tracks, ticks)
            results.append(plain)
            ratio = (fast.bytes / fast.seconds) / (plain.bytes / plain.seconds)
        if args.mode in ("paced", "both"):
            results.append(run_paced(engine, work / "paced", pool, args.tracks, args.seconds))
    print()
    print(
        table(
            [
                "mode",
                "seconds",
                "frames",
                "frames/s",
                "MB/s",
                "streams",
                "CPU s",
                "CPU s/track-min",
                "index commits",
                "dropped",
            ],
            [r.row(stream_bps) for r in results],
        )
    )
    print(f"(streams: how many {stream_bps / 1e6:.1f} Mbit/s tracks that rate carries)")
    for r in results:
        if r.threads:
            parts = ", ".join(f"{k} {v:.2f}" for k, v in sorted(r.threads.items()) if v >= 0.005)
            print(f"CPU s by thread, {r.mode}: {parts}")
    if ratio is not None:
        verdict = "ok" if ratio >= 0.5 else "BELOW GOAL"
        print(f"store / plain write throughput: {ratio:.2f} (goal >= 0.5: {verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
