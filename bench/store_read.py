"""Store read benchmark: seeks, backward GOPs and forward reads over a day of one track.

Builds one video track of ``--minutes`` (default 1440: 24 h) of 25 fps frames of
``--frame-bytes`` (default 200 B: 2.16 M frames, 432 MB) with a key frame every ``--gop``
frames, written through the real synchronous track writer (60 s segments, a checkpoint every
10 segments), then measures on it:

* seek-to-time: ``clean_point(t)`` then the first frame read through a cursor at ``t``, for
  random ``t``; with a cold index cache (a new, empty cache for each seek: one segment row,
  one frame-index blob and its decoding) and a warm one (every segment's index cached);
  p50 / p99 / max;
* backward GOP iteration (``gops_backward`` from the end, cold cache): GOPs/s, frames/s;
* forward read (``frames`` from the start, cold cache): frames/s, MB/s.

The OS page cache is warm throughout (the data has just been written). The scratch storage
directory goes in the temp dir if it is on the repository's filesystem (else next to the
repository), or in ``--dir``; SQLite by default, ``--database-url`` names a PostgreSQL server
on which a scratch database is created and dropped. Everything is removed at the end.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(_HERE), str(_HERE.parent)]  # this folder, then the repository

from _common import bench_parser, scratch_database, scratch_dir, table  # noqa: E402

from nvr.store import Store  # noqa: E402
from nvr.store.index_cache import IndexCache  # noqa: E402
from nvr.store.reader import TrackReader  # noqa: E402
from nvr.store.settings import StorageDirSettings, StoreSettings  # noqa: E402
from nvr.store.types import TrackInfo, TrackRef  # noqa: E402
from nvr.store.writer import StoreWriter  # noqa: E402
from tests.store.helpers import H264_ENTRY, T0  # noqa: E402

FPS = 25
FRAME_US = 1_000_000 // FPS
DURATION = 90_000 // FPS
SEGMENT_S = 60
CHECKPOINT_EVERY = 10 * SEGMENT_S * FPS


def build(store: Store, frames: int, size: int, gop: int) -> tuple[TrackInfo, float, int]:
    """Write the track; returns it, the build time and the number of index commits."""
    store.create_recording("day", tracks=(("VIDEO001", "Video"),))
    track = store.get_track("day", "VIDEO001")
    writer = StoreWriter(store.sessions, store.dirs, store.settings, live=store.live)
    tw = writer.open_track(TrackRef(track.id, "day", "VIDEO001"), idle_close_us=None)
    body = random.Random(1).randbytes(size)
    key_head = (size - 4).to_bytes(4, "big") + b"\x65"
    delta_head = (size - 4).to_bytes(4, "big") + b"\x41"
    commits = 0
    t0 = time.monotonic()
    for i in range(frames):
        key = i % gop == 0
        data = (key_head if key else delta_head) + i.to_bytes(8, "big") + body[13:]
        if not tw.append(data, T0 + i * FRAME_US, DURATION, key, H264_ENTRY):
            raise RuntimeError(f"frame {i} was not stored: {tw.status()}")
        if i % CHECKPOINT_EVERY == CHECKPOINT_EVERY - 1:
            writer.checkpoint()
            commits += 1
    if not writer.close():
        raise RuntimeError("the index did not commit")
    return track, time.monotonic() - t0, commits + 1


def reader(store: Store, track: TrackInfo, cache: IndexCache) -> TrackReader:
    return TrackReader(store.sessions, store.dirs, store.live, cache, store.sample_entries, track)


def seek_once(r: TrackReader, t: int) -> float:
    start = time.perf_counter()
    cp = r.clean_point(t)
    with r.cursor(t) as cur:
        first = cur.read(1)
    elapsed = time.perf_counter() - start
    if cp is None or not first or first[0].time_us != cp.time_us or not first[0].key:
        raise RuntimeError(f"seek to {t} found {cp} / {first[:1]}")
    return elapsed


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    qs = statistics.quantiles(samples, n=100, method="inclusive")
    return qs[49] * 1e3, qs[98] * 1e3, max(samples) * 1e3


def main(argv: list[str] | None = None) -> int:
    ap = bench_parser(__doc__)
    ap.add_argument("--minutes", type=float, default=1440, help="footage to build (1440 = 24 h)")
    ap.add_argument("--frame-bytes", type=int, default=200, help="bytes per frame (200)")
    ap.add_argument("--gop", type=int, default=50, help="frames per key frame (50)")
    ap.add_argument("--seeks", type=int, default=500, help="random seeks per cache state (500)")
    ap.add_argument("--max-seconds", type=float, default=60, help="time limit per read test (60)")
    args = ap.parse_args(argv)
    frames = int(args.minutes * 60 * FPS)
    if args.frame_bytes < 16:
        ap.error("--frame-bytes must be at least 16")

    with scratch_dir(args.dir) as work, scratch_database(args.database_url, work) as (engine, db):
        settings = StoreSettings(
            dirs=(StorageDirSettings(path=work / "media", min_free_bytes=0),),
            segment_seconds=SEGMENT_S,
        )
        store = Store(engine, settings)
        store.open()
        print(
            f"store read benchmark: 1 track, {args.minutes:g} min of {FPS} fps = {frames:,} "
            f"frames of {args.frame_bytes} B ({frames * args.frame_bytes / 1e6:.0f} MB), "
            f"GOP {args.gop}, {SEGMENT_S} s segments\ndatabase: {db}\nstorage: {work}",
            flush=True,
        )
        track, build_s, commits = build(store, frames, args.frame_bytes, args.gop)
        segments = len(reader(store, track, IndexCache(0)).segments())
        print(
            f"built in {build_s:.1f} s ({frames / build_s:,.0f} frames/s through the track "
            f"writer, {commits} index commits, {segments} segments)\n",
            flush=True,
        )
        end_us = T0 + frames * FRAME_US
        rng = random.Random(7)
        times = [rng.randrange(T0, end_us) for _ in range(args.seeks)]
        rows: list[list[object]] = []

        deadline = time.monotonic() + args.max_seconds
        cold = []
        for t in times:
            cold.append(seek_once(reader(store, track, IndexCache(4)), t))
            if time.monotonic() > deadline:
                break
        warm_cache = IndexCache(segments + 16)
        warm_reader = reader(store, track, warm_cache)
        for t in times:  # fill the cache
            seek_once(warm_reader, t)
        for t in range(T0, end_us, SEGMENT_S * 1_000_000):
            warm_reader.clean_point(t)
        warm = [seek_once(warm_reader, t) for t in times]
        for name, samples in (("seek, cold index cache", cold), ("seek, warm index cache", warm)):
            p50, p99, worst = percentiles(samples)
            rows.append([name, len(samples), f"{p50:.2f}", f"{p99:.2f}", f"{worst:.2f}"])
        print(table(["seek to time", "seeks", "p50 ms", "p99 ms", "max ms"], rows))
        print()

        rows = []
        r = reader(store, track, IndexCache())
        gops = n = nbytes = 0
        start = time.perf_counter()
        deadline = time.monotonic() + args.max_seconds
        for gop in r.gops_backward(end_us):
            gops += 1
            n += len(gop)
            nbytes += sum(len(f.data) for f in gop)
            if gops % 256 == 0 and time.monotonic() > deadline:
                break
        elapsed = time.perf_counter() - start
        rows.append(
            [
                "backward GOPs",
                f"{n:,}",
                f"{elapsed:.2f}",
                f"{n / elapsed:,.0f}",
                f"{nbytes / 1e6 / elapsed:.1f}",
                f"{gops / elapsed:,.0f}",
            ]
        )

        r = reader(store, track, IndexCache())
        n = nbytes = 0
        start = time.perf_counter()
        deadline = time.monotonic() + args.max_seconds
        for f in r.frames(T0, batch=256):
            n += 1
            nbytes += len(f.data)
            if n % 4096 == 0 and time.monotonic() > deadline:
                break
        elapsed = time.perf_counter() - start
        rows.append(
            [
                "forward frames",
                f"{n:,}",
                f"{elapsed:.2f}",
                f"{n / elapsed:,.0f}",
                f"{nbytes / 1e6 / elapsed:.1f}",
                "",
            ]
        )
        print(table(["read", "frames", "seconds", "frames/s", "MB/s", "GOPs/s"], rows))
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
