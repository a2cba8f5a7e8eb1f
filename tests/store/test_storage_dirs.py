"""Storage directories: identity files, verification at open, choice of directory, usage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from nvr.db.models import Meta, Segment, StorageDir
from nvr.store import Store
from nvr.store.layout import IDENTITY_FILE
from nvr.store.settings import StorageDirSettings, StoreSettings
from nvr.store.storage_dirs import DirHandle
from nvr.store.types import WriterState
from tests.store.helpers import (
    append_all,
    make_settings,
    store_engine,  # noqa: F401  (the ``engine`` fixture of the store tests)
    sync_writer,
    video_frames,
)


def open_store(engine: Engine, *paths: Path, **caps: int | None) -> Store:
    settings = StoreSettings(
        dirs=tuple(
            StorageDirSettings(p, max_bytes=caps.get(p.name), min_free_bytes=0) for p in paths
        ),
        segment_seconds=2,
    )
    store = Store(engine, settings)
    store.open()
    return store


def identity(path: Path) -> dict[str, str]:
    return json.loads((path / IDENTITY_FILE).read_text())


def test_first_open_registers_directories_with_an_identity(engine: Engine, tmp_path: Path) -> None:
    store = open_store(engine, tmp_path / "a", tmp_path / "b")
    with store.sessions() as s:
        database_id = s.get(Meta, "database_id").value  # type: ignore[union-attr]
        rows = s.scalars(select(StorageDir).order_by(StorageDir.id)).all()
    assert [Path(r.path) for r in rows] == [tmp_path / "a", tmp_path / "b"]
    for row in rows:
        assert identity(Path(row.path)) == {"storage_uuid": row.uuid, "database_id": database_id}
    assert all(st.available and st.writable and st.error is None for st in store.dirs.status())
    again = open_store(engine, tmp_path / "a", tmp_path / "b")
    assert again.dirs.database_id == database_id
    assert [st.id for st in again.dirs.status()] == [r.id for r in rows]
    assert all(st.available for st in again.dirs.status())


def test_a_directory_without_its_identity_file_is_never_refilled(
    engine: Engine, tmp_path: Path
) -> None:
    open_store(engine, tmp_path / "a", tmp_path / "b")
    (tmp_path / "a" / IDENTITY_FILE).unlink()  # an unmounted disk looks like this
    store = open_store(engine, tmp_path / "a", tmp_path / "b")
    a, b = store.dirs.status()
    assert not a.available and not a.writable and IDENTITY_FILE in (a.error or "")
    assert b.available and b.writable
    assert not (tmp_path / "a" / IDENTITY_FILE).exists()
    assert store.dirs.pick() is store.dirs.get(b.id)  # type: ignore[arg-type]
    store.create_recording("rec")
    writer, tw = sync_writer(store, "rec")
    append_all(tw, video_frames(100))
    writer.close()
    assert [p.name for p in (tmp_path / "a").rglob("*")] == []


def test_a_directory_of_another_database_is_refused(engine: Engine, tmp_path: Path) -> None:
    open_store(engine, tmp_path / "a")
    data = identity(tmp_path / "a")
    (tmp_path / "a" / IDENTITY_FILE).write_text(json.dumps(data | {"database_id": "other"}))
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / IDENTITY_FILE).write_text(
        json.dumps({"storage_uuid": "x", "database_id": "other"})
    )
    store = open_store(engine, tmp_path / "a", tmp_path / "new")
    a, new = store.dirs.status()
    assert not a.available and "belongs to database 'other'" in (a.error or "")
    assert new.id is None and not new.available and "belongs to database" in (new.error or "")
    assert store.dirs.pick() is None
    store.create_recording("rec")
    _, tw = sync_writer(store, "rec")
    assert append_all(tw, video_frames(10)) == 0
    assert tw.status().state is WriterState.ERROR
    with store.sessions() as s:
        assert s.scalar(select(func.count()).select_from(StorageDir)) == 1


def test_a_moved_directory_is_recognised(engine: Engine, tmp_path: Path) -> None:
    first = open_store(engine, tmp_path / "a")
    (dir_id,) = [st.id for st in first.dirs.status()]
    (tmp_path / "a").rename(tmp_path / "b")
    store = open_store(engine, tmp_path / "b")
    (st,) = store.dirs.status()
    assert st.id == dir_id and st.available and st.path == str(tmp_path / "b")


def test_pick_prefers_room_under_the_cap_then_free_space(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(engine, tmp_path / "a", tmp_path / "b", a=1_000, b=1_000)
    a, b = (store.dirs.get(st.id) for st in store.dirs.status())  # type: ignore[arg-type]
    assert a is not None and b is not None
    free = {a.id: 10 << 30, b.id: 20 << 30}
    monkeypatch.setattr(DirHandle, "free_bytes", lambda self: free[self.id])
    assert store.dirs.pick() is b
    b.written += 5_000  # b over its cap: a has less free space but room under its cap
    assert store.dirs.pick() is a
    a.written += 5_000  # both over their caps: keep recording where there is most room
    assert store.dirs.pick() is b
    free[b.id] = 1_000  # b full
    assert store.dirs.pick() is a
    free[a.id] = 0
    assert store.dirs.pick() is None


def test_usage_follows_writes_and_the_index(engine: Engine, tmp_path: Path) -> None:
    store = Store(engine, make_settings(tmp_path, segment_seconds=2))
    store.open()
    store.create_recording("rec")
    (handle,) = store.dirs.handles()
    writer, tw = sync_writer(store, "rec")
    append_all(tw, video_frames(100))
    assert handle.used_bytes == tw.status().bytes_written
    writer.close()
    store.dirs.refresh_usage()
    with store.sessions() as s:
        indexed = s.scalar(select(func.sum(Segment.bytes)))
    assert handle.used_bytes == indexed == tw.status().bytes_written
    store.dirs.note_freed(handle.id, 1_000)
    assert handle.used_bytes == indexed - 1_000
    (st,) = store.dirs.status()
    assert st.used_bytes == indexed - 1_000 and st.free_bytes > 0


def test_a_directory_no_longer_configured_stays_readable(engine: Engine, tmp_path: Path) -> None:
    store = open_store(engine, tmp_path / "a")
    store.create_recording("rec")
    writer, tw = sync_writer(store, "rec")
    frames = list(video_frames(50))
    append_all(tw, frames)
    writer.close()
    later = open_store(engine, tmp_path / "b")
    old, new = sorted(later.dirs.status(), key=lambda st: st.path)
    assert old.available and not old.writable and new.writable
    assert [f.data for f in later.reader("rec", "VIDEO001").frames(0)] == [f.data for f in frames]


def test_store_status_and_retention_sweep(engine: Engine, tmp_path: Path) -> None:
    store = open_store(engine, tmp_path / "a", a=1)  # a cap of one byte: always over
    (st,) = store.status()
    assert st["path"] == str(tmp_path / "a") and st["available"] and st["writable"]
    store.create_recording("rec")
    handle = store.open_writer("rec", "VIDEO001")
    for f in video_frames(50):
        handle.submit(*f.args)
    assert store.writer_service.flush()
    result = store.sweep_retention()  # only the open segment is left: nothing deletable
    assert result.starved_dirs == [st["id"]]
    assert store.dirs.pick() is None  # no new segments into a starved directory
    offline = Store(engine, store.settings)
    report = offline.open(recover=False)
    assert report.recovery is None and "1 storage directory" in str(report)
    store.close()
