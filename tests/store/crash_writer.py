"""A store writer process for the kill -9 tests (``tests/store/test_crash.py``).

Run as ``python -m tests.store.crash_writer --database-url URL --dir DIR --log FILE``: it opens
a :class:`~nvr.store.Store` (startup recovery runs in ``Store.open``), optionally dumps the
index it finds (``--snapshot``), then records three tracks of recording ``crash`` in real time
through the writer service until it is killed:

* ``VIDEO001``: H.264-like, 25 fps, a key frame every 25 frames, ~20 kB frames (key ~60 kB);
* ``AUDIO001``: G.711-like, 50 frames/s of 160 bytes;
* ``META001``: an ONVIF metadata document every 200 ms.

Frame contents depend only on (track, frame number), see :func:`payload`, so the test can
regenerate the expected bytes. Before each ``submit`` the frame is appended to the ``--log``
side file (``track number capture_us wall_us``; no fsync: a SIGKILL keeps what ``write`` got).
Frame numbers of round ``r`` start at ``r * 1_000_000``. Capture times follow the wall clock
(frames are paced in real time), so "lost at most the last 2 s" can be checked on them.
Prints ``recovered {json}``, ``writing`` and then ``progress`` lines, unbuffered.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import struct
import sys
import time
from pathlib import Path

from nvr.db.engine import make_engine
from nvr.store import Store
from nvr.store.settings import StorageDirSettings, StoreSettings
from nvr.store.types import SampleEntrySpec
from tests.store.helpers import H264_ENTRY, METADATA_ENTRY, PCMU_ENTRY

RECORDING = "crash"
VIDEO, AUDIO, META = "VIDEO001", "AUDIO001", "META001"
TRACKS = (VIDEO, AUDIO, META)
TICK_US = 20_000
"""One audio frame a tick; video every 2nd tick (25 fps), metadata every 10th (5/s)."""
GOP = 25
ROUND_BASE = 1_000_000
ENTRIES: dict[str, SampleEntrySpec] = {VIDEO: H264_ENTRY, AUDIO: PCMU_ENTRY, META: METADATA_ENTRY}
DURATIONS = {VIDEO: 3_600, AUDIO: 160, META: 18_000}
_META_NUMBER = re.compile(rb'Number="(\d+)"')


def payload(track: str, n: int) -> bytes:
    """The bytes of frame ``n`` of ``track`` (deterministic; carries ``n``)."""
    rng = random.Random(f"{track}:{n}")
    if track == VIDEO:
        key = n % GOP == 0
        size = rng.randint(50_000, 70_000) if key else rng.randint(12_000, 24_000)
        body = bytes([0x65 if key else 0x41]) + struct.pack(">Q", n) + rng.randbytes(size)
        return struct.pack(">I", len(body)) + body
    if track == AUDIO:
        return struct.pack(">Q", n) + rng.randbytes(152)
    pad = rng.randbytes(rng.randint(10, 200)).hex()
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<tt:MetadataStream xmlns:tt="http://www.onvif.org/ver10/schema">'
        f'<tt:VideoAnalytics><tt:Frame Number="{n}" Pad="{pad}"/></tt:VideoAnalytics>'
        "</tt:MetadataStream>"
    ).encode()


def frame_number(track: str, data: bytes) -> int:
    """The frame number a payload carries (see :func:`payload`)."""
    if track == VIDEO:
        return int(struct.unpack_from(">Q", data, 5)[0])
    if track == AUDIO:
        return int(struct.unpack_from(">Q", data, 0)[0])
    m = _META_NUMBER.search(data)
    if m is None:
        raise ValueError(f"metadata frame without a number: {data[:80]!r}")
    return int(m.group(1))


def is_key(track: str, n: int) -> bool:
    return track != VIDEO or n % GOP == 0


def settings(media: Path, segment_seconds: float = 3.0) -> StoreSettings:
    return StoreSettings(
        dirs=(StorageDirSettings(path=media, min_free_bytes=0),),
        segment_seconds=segment_seconds,
        checkpoint_seconds=2.0,
    )


def index_snapshot(store: Store) -> dict[str, list[int]]:
    """Frame numbers per track, as the index and the files hold them now."""
    return {
        track: [frame_number(track, f.data) for f in store.reader(RECORDING, track).frames(0)]
        for track in TRACKS
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--database-url", required=True)
    ap.add_argument("--dir", type=Path, required=True, help="the storage directory")
    ap.add_argument("--log", type=Path, required=True, help="side file of submitted frames")
    ap.add_argument("--round", type=int, default=0, help="frame numbers start at round*1e6")
    ap.add_argument("--snapshot", type=Path, help="write the index found at start here (JSON)")
    ap.add_argument("--segment-seconds", type=float, default=3.0)
    ap.add_argument("--seconds", type=float, default=0, help="stop cleanly after this (0: never)")
    args = ap.parse_args(argv)

    engine = make_engine(args.database_url)
    store = Store(engine, settings(args.dir, args.segment_seconds))
    report = store.open()
    rec = report.recovery
    summary = {
        "changes": rec.changes,
        "truncated": len(rec.of("truncated")),
        "bytes_cut": sum(f.bytes_cut for f in rec.segments),
        "closed": len(rec.of("closed")),
        "empty": len(rec.of("empty")),
        "orphans": sum(1 for f in rec.files if f.kind == "orphan"),
        "lost": len(rec.lost),
    }
    print("recovered", json.dumps(summary), flush=True)
    if args.snapshot is not None:
        args.snapshot.write_text(json.dumps(index_snapshot(store)))
    handles = {t: store.open_writer(RECORDING, t) for t in TRACKS}
    side = os.open(args.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    counters = dict.fromkeys(TRACKS, args.round * ROUND_BASE)
    print("writing", flush=True)
    t0_us = time.time_ns() // 1000
    m0 = time.monotonic()
    tick = 0
    while args.seconds <= 0 or tick * TICK_US < args.seconds * 1_000_000:
        delay = m0 + tick * TICK_US / 1e6 - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        capture = t0_us + tick * TICK_US
        due = [AUDIO] + ([VIDEO] if tick % 2 == 0 else []) + ([META] if tick % 10 == 0 else [])
        for track in due:
            n = counters[track]
            counters[track] = n + 1
            os.write(side, f"{track} {n} {capture} {time.time_ns() // 1000}\n".encode())
            if not handles[track].submit(
                payload(track, n), capture, DURATIONS[track], is_key(track, n), ENTRIES[track]
            ):
                os.write(side, f"REFUSED {track} {n}\n".encode())
        tick += 1
        if tick % 50 == 0:
            print("progress", tick, json.dumps(counters), flush=True)
    ok = store.close()
    print("closed", ok, flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
