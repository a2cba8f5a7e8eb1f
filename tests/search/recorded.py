"""Recordings made the way the daemon makes them, for the search tests and the bench smoke test.

``record_world`` writes through the store's track writer (with the RecordingHistory listener
on a real event bus) and lets the search indexer index everything:

* CAM1 (source ``rtsp://cam1/stream``, location Basement): VIDEO001 (H.264, 25 fps),
  AUDIO001 (G.711, 8 kHz) and META001 (the demo camera's ``tt:MetadataStream`` documents, one
  a second: a MotionAlarm every 10 s, a PTZ position in each) in two runs of
  ``RUN_S`` seconds with a gap of ``GAP_S`` seconds, so RecordingHistory has transitions;
* CAM2 (location Garden): VIDEO001 only has data, one run;
* CAM3: created, never recorded.

``Recording/State`` events are published as the recording engine would. Everything is a
function of ``T0``, so tests compute the expected results independently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from nvr.demo.metadata import metadata_document
from nvr.events import EventBus
from nvr.ingest.history import RecordingHistory
from nvr.search.index import SearchIndexer
from nvr.store import Store
from nvr.store.types import Interval, SampleEntrySpec, TrackRef
from nvr.store.writer import StoreWriter
from tests.store.helpers import (
    METADATA_ENTRY,
    append_all,
    audio_frames,
    make_store,
    video_frames,
)

T0 = 1_750_000_000_000_000
"""2025-06-15T15:06:40Z: whole seconds, a multiple of the demo's 10 s event period."""
RUN_S = 60
GAP_S = 30
CAM1, CAM2, CAM3 = "CAM1", "CAM2", "CAM3"
SOURCE1 = "rtsp://cam1/stream"


def run_starts() -> list[int]:
    return [T0, T0 + (RUN_S + GAP_S) * 1_000_000]


def document_times() -> list[int]:
    """Capture times of the metadata documents of CAM1/META001."""
    return [start + n * 1_000_000 for start in run_starts() for n in range(RUN_S)]


@dataclass
class World:
    store: Store
    bus: EventBus
    history: RecordingHistory
    indexer: SearchIndexer
    data: dict[tuple[str, str], list[Interval]] = field(default_factory=dict)
    """(recording, track) → the runs the store holds."""

    def close(self) -> None:
        self.indexer.stop()
        self.store.close()


def _metadata_frames(
    start_us: int, count: int
) -> list[tuple[bytes, int, int, bool, SampleEntrySpec]]:
    rate = METADATA_ENTRY.clock_rate
    return [
        (metadata_document(start_us + n * 1_000_000), start_us + n * 1_000_000, rate, True,
         METADATA_ENTRY)
        for n in range(count)
    ]  # fmt: skip


def record_world(engine: Engine, root: Path, *, thread: bool = True) -> World:
    bus = EventBus()
    history = RecordingHistory(bus)
    store = make_store(engine, root, checkpoint_seconds=0.05)
    indexer = SearchIndexer(store.sessions, bus, lambda: store, interval=0.2)
    indexer.start(thread=thread)
    store.create_recording(
        CAM1, source_id=SOURCE1, source_name="Cam one", source_location="Basement",
        content="front door",
    )  # fmt: skip
    store.create_recording(CAM2, source_id="rtsp://cam2/stream", source_location="Garden")
    store.create_recording(CAM3, source_location="Attic")
    writer = StoreWriter(store.sessions, store.dirs, store.settings, live=store.live,
                         listener=history)  # fmt: skip
    tracks = {
        (rec, tok): store.get_track(rec, tok)
        for rec, tok in ((CAM1, "VIDEO001"), (CAM1, "AUDIO001"), (CAM1, "META001"),
                         (CAM2, "VIDEO001"))
    }  # fmt: skip
    handles = {
        key: writer.open_track(TrackRef(t.id, key[0], key[1]), idle_close_us=None)
        for key, t in tracks.items()
    }
    for index, start in enumerate(run_starts()):
        history.recording_state(CAM1, True, start)
        if index == 0:
            history.recording_state(CAM2, True, start)
        append_all(handles[(CAM1, "VIDEO001")], video_frames(RUN_S * 25, start_us=start,
                                                             mean_size=200))  # fmt: skip
        append_all(handles[(CAM1, "AUDIO001")], audio_frames(RUN_S * 50, start_us=start))
        for args in _metadata_frames(start, RUN_S):
            handles[(CAM1, "META001")].append(*args)
        if index == 0:
            append_all(handles[(CAM2, "VIDEO001")], video_frames(RUN_S * 25, start_us=start,
                                                                 mean_size=200))  # fmt: skip
            handles[(CAM2, "VIDEO001")].close()
            history.recording_state(CAM2, False, start + RUN_S * 1_000_000)
        for key, handle in handles.items():
            if key[0] == CAM1:
                handle.break_run()
        history.recording_state(CAM1, False, start + RUN_S * 1_000_000)
        writer.checkpoint()
    for handle in handles.values():
        handle.close()
    writer.close()
    world = World(store, bus, history, indexer)
    for rec, tok in tracks:
        world.data[(rec, tok)] = store.reader(rec, tok).data_intervals()
    indexer.sync()
    return world
