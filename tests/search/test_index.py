"""The search indexer: bus events, metadata documents, retention, restarts, database outages."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import OperationalError

from nvr.db.models import Event as EventRow
from nvr.db.models import EventTopic, MetadataIndexMark, PtzPosition
from nvr.demo.metadata import MOTION_TOPIC, metadata_document
from nvr.events import DELETE_TRACK_DATA, Event
from nvr.ingest.history import RECORDING_STATE, TRACK_STATE
from nvr.onvif.namespaces import TT
from nvr.search.index import SearchIndexer
from nvr.search.timefmt import format_us
from nvr.store.retention import sweep
from nvr.store.types import TrackRef
from nvr.store.writer import StoreWriter
from tests.search.recorded import CAM1, CAM2, RUN_S, T0, World, document_times, record_world
from tests.store.helpers import METADATA_ENTRY, FlakyDatabase

TRACKS = ("VIDEO001", "AUDIO001", "META001")


@pytest.fixture
def world(engine: Engine, tmp_path: Path) -> Iterator[World]:
    recorded = record_world(engine, tmp_path, thread=False)
    yield recorded
    recorded.close()


def rows(world: World, **where: Any) -> list[Any]:
    query = select(EventRow, EventTopic.topic).join(EventTopic, EventTopic.id == EventRow.topic_id)
    for name, value in where.items():
        query = query.where(getattr(EventRow, name) == value)
    with world.store.sessions() as s:
        return list(s.execute(query.order_by(EventRow.time_us, EventRow.id)).all())


def count(world: World, model: Any = EventRow) -> int:
    with world.store.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def track_id(world: World, recording: str, track: str) -> int:
    return world.store.get_track(recording, track).id


def test_history_and_metadata_are_indexed(world: World) -> None:
    video = track_id(world, CAM1, "VIDEO001")
    states = [(r.time_us, r.data["IsDataPresent"]) for r, t in rows(world, track_id=video)]
    expected = []
    for run in world.data[(CAM1, "VIDEO001")]:
        expected += [(run.start_us, "true"), (run.end_us, "false")]
    assert states == expected
    meta = track_id(world, CAM1, "META001")
    motion = [(r, t) for r, t in rows(world, track_id=meta) if t == MOTION_TOPIC]
    assert len(motion) == len([t for t in document_times() if (t // 1_000_000) % 10 == 0])
    row = motion[0][0]
    assert row.is_property and row.property_operation == "Changed"
    assert etree.fromstring(row.message_xml).tag == f"{{{TT}}}Message"
    assert count(world, PtzPosition) == len(document_times())
    with world.store.sessions() as s:
        mark = s.get(MetadataIndexMark, meta)
        topics = dict(s.execute(select(EventTopic.topic, EventTopic.is_property)).all())
    assert mark is not None and mark.until_us == world.data[(CAM1, "META001")][-1].end_us
    assert mark.has_ptz and mark.has_events and mark.has_analytics
    assert topics[MOTION_TOPIC] and topics[TRACK_STATE] and topics[RECORDING_STATE]


def test_events_of_unknown_recordings_and_element_items(world: World) -> None:
    before = count(world)
    world.bus.publish(
        Event(RECORDING_STATE, (("RecordingToken", "gone"),), (("IsRecording", "true"),))
    )
    world.bus.publish(Event("tns1:Receiver/ChangeState", (("ReceiverToken", "R"),)))  # not ours
    configuration = etree.Element(f"{{{TT}}}Configuration")
    etree.SubElement(configuration, f"{{{TT}}}Content").text = "changed"
    world.bus.publish(
        Event(
            "tns1:RecordingConfig/RecordingConfiguration",
            (("RecordingToken", CAM2),),
            elements=(("Configuration", configuration),),
        )
    )
    world.indexer.sync()
    assert count(world) == before + 1
    (row, topic) = rows(world, recording_id=world.store.get_recording(CAM2).id)[-1]
    assert topic == "tns1:RecordingConfig/RecordingConfiguration" and row.track_id is None
    assert b"changed" in row.message_xml.encode() and b"ElementItem" in row.message_xml.encode()


def test_delete_track_data_forgets_the_range(world: World) -> None:
    meta = track_id(world, CAM1, "META001")
    first = world.data[(CAM1, "META001")][0]
    world.bus.publish(
        Event(
            DELETE_TRACK_DATA,
            (("RecordingToken", CAM1), ("TrackToken", "META001")),
            (("StartTime", format_us(first.start_us)), ("EndTime", format_us(first.end_us))),
        )
    )
    world.indexer.sync()
    left = rows(world, track_id=meta)
    assert all(r.time_us > first.end_us for r, t in left if t != TRACK_STATE)
    with world.store.sessions() as s:
        positions = s.scalars(select(PtzPosition.time_us).where(PtzPosition.track_id == meta))
        assert min(positions) > first.end_us
    # the store still holds the run (only the event was sent): Track/State in the range is
    # re-derived from the runs, so it still says what the store says
    states = [(r.time_us, r.data["IsDataPresent"]) for r, t in left if t == TRACK_STATE]
    assert states[:2] == [(first.start_us, "true"), (first.end_us, "false")]


def test_retention_front_cut_is_pruned(world: World) -> None:
    world.store.catalog.update_recording(CAM1, max_retention_us=60_000_000)
    cut_at = T0 + 160_000_000  # the first run and 10 s of the second go
    roots = {h.id: h.root for h in world.store.dirs.handles()}
    result = sweep(world.store, roots, now_us=cut_at)
    assert result.deleted, result
    world.indexer.sync(prune=True)
    for token in TRACKS:
        tid = track_id(world, CAM1, token)
        data_from = world.store.reader(CAM1, token).data_intervals()[0].start_us
        assert data_from > T0
        left = rows(world, track_id=tid)
        assert min(r.time_us for r, t in left) == data_from
        states = [r for r, t in left if t == TRACK_STATE]
        assert (states[0].time_us, states[0].data["IsDataPresent"]) == (data_from, "true")
    starts = [world.store.reader(CAM1, t).data_intervals()[0].start_us for t in TRACKS]
    recording = rows(world, recording_id=world.store.get_recording(CAM1).id, track_id=None)
    # recording-level rows go a minute before the data; IsRecording=true in force is kept
    first = recording[0][0]
    assert (first.time_us, first.data) == (min(starts) - 60_000_000, {"IsRecording": "true"})
    assert [r.data["IsRecording"] for r, _ in recording] == ["true", "false", "true", "false"]


def test_restart_resumes_without_duplicates(world: World) -> None:
    events, positions = count(world), count(world, PtzPosition)
    again = SearchIndexer(world.store.sessions, None, lambda: world.store)
    again.sync(prune=True)
    assert (count(world), count(world, PtzPosition)) == (events, positions)
    # new documents, including one that is not XML, are picked up from the mark
    meta = world.store.get_track(CAM1, "META001")
    writer = StoreWriter(world.store.sessions, world.store.dirs, world.store.settings)
    handle = writer.open_track(TrackRef(meta.id, CAM1, "META001"), idle_close_us=None)
    start = world.data[(CAM1, "META001")][-1].end_us + 10_000_000
    rate = METADATA_ENTRY.clock_rate
    handle.append(b"<not xml", start, rate, True, METADATA_ENTRY)
    for n in range(1, 3):
        time_us = start + n * 1_000_000
        handle.append(metadata_document(time_us), time_us, rate, True, METADATA_ENTRY)
    writer.close()
    again.sync()
    assert count(world, PtzPosition) == positions + 2


def test_database_outage_keeps_the_queue(world: World, engine: Engine) -> None:
    before = count(world)
    flaky = FlakyDatabase(engine)
    try:
        flaky.down = True
        world.history.recording_state(CAM2, True, T0 + RUN_S * 10_000_000)
        with pytest.raises(OperationalError):
            world.indexer.run_once()
        flaky.down = False
        world.indexer.sync()
    finally:
        flaky.remove()
    assert count(world) == before + 1
