"""Recordings and tracks: creation with default tracks, look-ups, deletion with data."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from nvr.db.models import Garbage, Run, Segment, SegmentFrames
from nvr.store import Store
from nvr.store.garbage import finish_pending
from nvr.store.layout import IDENTITY_FILE
from nvr.store.types import Interval, InvalidToken, NoRecording, NoTrack, TokenInUse
from tests.store.helpers import (
    T0,
    append_all,
    audio_frames,
    make_store,
    store_engine,  # noqa: F401  (the ``engine`` fixture of the store tests)
    sync_writer,
    video_frames,
)


@pytest.fixture
def store(engine: Engine, tmp_path: Path) -> Iterator[Store]:
    s = make_store(engine, tmp_path, segment_seconds=2)
    yield s
    s.close()


def count(store: Store, model: type) -> int:
    with store.sessions() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def files(store: Store) -> list[Path]:
    return sorted(
        p
        for h in store.dirs.handles()
        for p in h.root.rglob("*")
        if p.is_file() and p.name != IDENTITY_FILE
    )


def test_a_recording_gets_the_default_tracks(store: Store) -> None:
    rec = store.create_recording(source_name="Gate", content="north entrance")
    assert 0 < len(rec.token) <= 36
    assert [(t.token, t.kind, t.description) for t in rec.tracks] == [
        ("VIDEO001", "Video", ""),
        ("AUDIO001", "Audio", ""),
        ("META001", "Metadata", ""),
    ]
    again = store.get_recording(rec.token)
    assert again == rec and again.source_name == "Gate" and again.content == "north entrance"
    assert [r.token for r in store.recordings()] == [rec.token]
    assert rec.track("AUDIO001") == store.get_track(rec.token, "AUDIO001")


def test_recording_fields_and_custom_tracks(store: Store) -> None:
    rec = store.create_recording("cam1", tracks=[("VIDEO001", "Video")], max_retention_us=86_400)
    assert [t.token for t in rec.tracks] == ["VIDEO001"]
    changed = store.catalog.update_recording("cam1", source_id="rtsp://cam1", max_retention_us=5)
    assert changed.source_id == "rtsp://cam1" and changed.max_retention_us == 5
    track = store.catalog.update_track("cam1", "VIDEO001", "main stream")
    assert track.description == "main stream"


def test_tokens_are_checked(store: Store) -> None:
    store.create_recording("cam1")
    with pytest.raises(TokenInUse):
        store.create_recording("cam1")
    with pytest.raises(InvalidToken):
        store.create_recording("x" * 65)
    with pytest.raises(TokenInUse):
        store.create_track("cam1", "Video", "VIDEO001")
    with pytest.raises(TokenInUse):
        store.create_recording("cam2", tracks=[("A", "Audio"), ("A", "Audio")])
    with pytest.raises(ValueError, match="kind"):
        store.create_track("cam1", "Smell")
    with pytest.raises(TypeError):
        store.create_recording("cam3", colour="red")
    assert [r.token for r in store.recordings()] == ["cam1"]


def test_new_track_tokens_follow_the_onvif_style(store: Store) -> None:
    store.create_recording("cam1")
    assert store.create_track("cam1", "Video").token == "VIDEO002"
    store.create_track("cam1", "Video", "VIDEO005")
    assert store.create_track("cam1", "Video").token == "VIDEO006"
    assert store.create_track("cam1", "Metadata").token == "META002"
    other = store.create_recording("cam2")  # track tokens are per recording
    assert other.track("VIDEO001") is not None


def test_unknown_tokens(store: Store) -> None:
    store.create_recording("cam1")
    with pytest.raises(NoRecording):
        store.get_recording("nope")
    with pytest.raises(NoRecording):
        store.get_track("nope", "VIDEO001")
    with pytest.raises(NoTrack):
        store.get_track("cam1", "VIDEO009")
    with pytest.raises(NoTrack):
        store.reader("cam1", "VIDEO009")
    with pytest.raises(NoRecording):
        store.delete_recording("nope")


def _record(store: Store, token: str) -> None:
    for track, frames in (("VIDEO001", video_frames(150)), ("AUDIO001", audio_frames(300))):
        writer, tw = sync_writer(store, token, track)
        append_all(tw, frames)
        assert writer.close()


def test_deleting_a_track_deletes_its_data(store: Store) -> None:
    store.create_recording("cam1")
    _record(store, "cam1")
    video_segments = len(store.reader("cam1", "VIDEO001").segments())
    audio_files = len(store.reader("cam1", "AUDIO001").segments())
    deleted = store.delete_track("cam1", "VIDEO001")
    (track,) = deleted.tracks
    assert (track.token, track.kind, track.segments) == ("VIDEO001", "Video", video_segments)
    assert track.intervals == (Interval(T0, T0 + 6_000_000),)
    assert track.bytes > 0 and deleted.files_unlinked == video_segments
    assert deleted.files_pending == 0
    assert [t.token for t in store.get_recording("cam1").tracks] == ["AUDIO001", "META001"]
    assert len(files(store)) == audio_files
    assert count(store, Garbage) == 0
    assert count(store, Segment) == count(store, SegmentFrames) == audio_files
    assert count(store, Run) == 1
    assert len(list(store.reader("cam1", "AUDIO001").frames(0))) == 300


def test_deleting_a_recording_stops_its_writers_and_deletes_everything(store: Store) -> None:
    store.create_recording("cam1")
    store.create_recording("cam2")
    _record(store, "cam2")
    kept = files(store)
    handle = store.open_writer("cam1", "VIDEO001")
    for f in video_frames(100, mean_size=200):
        handle.submit(*f.args)
    deleted = store.delete_recording("cam1")
    assert handle.closed
    assert deleted.recording_token == "cam1"
    assert {t.token for t in deleted.tracks} == {"VIDEO001", "AUDIO001", "META001"}
    assert deleted.segments == deleted.files_unlinked > 0
    assert files(store) == kept
    with pytest.raises(NoRecording):
        store.get_recording("cam1")
    assert [r.token for r in store.recordings()] == ["cam2"]
    assert count(store, Garbage) == 0
    store.create_recording("cam1")  # the token is free again


def test_files_of_an_unavailable_directory_stay_on_the_garbage_list(store: Store) -> None:
    store.create_recording("cam1")
    _record(store, "cam1")
    before = files(store)
    (handle,) = store.dirs.handles()
    handle.available = False  # e.g. the disk went away after the data was written
    deleted = store.delete_recording("cam1")
    assert deleted.files_unlinked == 0 and deleted.files_pending == deleted.segments > 0
    assert count(store, Garbage) == deleted.segments and files(store) == before
    handle.available = True
    assert finish_pending(store).files == deleted.segments  # what recovery does at start
    assert files(store) == [] and count(store, Garbage) == 0
