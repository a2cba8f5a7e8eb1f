"""The track-based segment store: append-only media files indexed in the database.

:class:`Store` ties the pieces together for the rest of the daemon (ingest writes through
:attr:`Store.writer_service`, replay and export read through :meth:`Store.reader`, the ONVIF
recording service manages recordings through the catalog methods). Startup recovery and
retention live in ``recovery.py`` and ``retention.py``; :meth:`Store.open` calls
``nvr.store.recovery.recover(store)`` when that module exists, before anything is written.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from nvr.db.engine import make_sessionmaker
from nvr.store.catalog import DEFAULT_TRACKS, Catalog
from nvr.store.index_cache import IndexCache
from nvr.store.live import LiveHub
from nvr.store.reader import ForwardCursor, SampleEntries, TrackReader
from nvr.store.service import DEFAULT_MAX_QUEUE_BYTES, TrackHandle, WriterService
from nvr.store.settings import StorageDirSettings, StoreSettings
from nvr.store.storage_dirs import StorageDirs
from nvr.store.types import (
    Deleted,
    Frame,
    RecordingInfo,
    SampleEntryInfo,
    SampleEntrySpec,
    StorageDirStatus,
    StoreListener,
    TrackInfo,
    TrackRef,
)
from nvr.store.writer import DEFAULT_IDLE_CLOSE_US, StoreWriter

if TYPE_CHECKING:
    from nvr.store.retention import SweepResult

__all__ = [
    "Deleted",
    "ForwardCursor",
    "Frame",
    "RecordingInfo",
    "SampleEntrySpec",
    "StorageDirSettings",
    "Store",
    "StoreListener",
    "StoreOpenReport",
    "StoreSettings",
    "TrackHandle",
    "TrackInfo",
    "TrackReader",
]

log = logging.getLogger(__name__)

AUTO_IDLE_CLOSE = -1
"""``Store.open_writer(idle_close_us=...)`` default: chosen by track kind."""


@dataclass(frozen=True, slots=True)
class StoreOpenReport:
    dirs: list[StorageDirStatus]
    recovery: Any = None
    """What ``nvr.store.recovery.recover`` returned (None if skipped or absent)."""

    def __str__(self) -> str:
        lines = [f"{len(self.dirs)} storage director{'y' if len(self.dirs) == 1 else 'ies'}"]
        lines += [f"  {d.path}: unavailable: {d.error}" for d in self.dirs if not d.available]
        if self.recovery is not None:
            lines.append(str(self.recovery))
        return "\n".join(lines)


class Store:
    """The store of one daemon. Attributes for the other store modules (recovery, retention,
    fsck): ``sessions``, ``settings``, ``dirs`` (roots by storage dir id), ``catalog``,
    ``live``, ``index_cache``."""

    def __init__(
        self,
        db: Engine | sessionmaker[Session],
        settings: StoreSettings,
        *,
        listener: StoreListener | None = None,
        index_cache_segments: int = 256,
        max_queue_bytes: int = DEFAULT_MAX_QUEUE_BYTES,
    ) -> None:
        self.sessions = make_sessionmaker(db) if isinstance(db, Engine) else db
        self.settings = settings
        self.listener = listener
        self.dirs = StorageDirs(self.sessions, settings)
        self.catalog = Catalog(self.sessions, self.dirs)
        self.live = LiveHub()
        self.index_cache = IndexCache(index_cache_segments)
        self.sample_entries = SampleEntries(self.sessions)
        self._max_queue_bytes = max_queue_bytes
        self._service: WriterService | None = None
        self._opened = False

    # ---- lifecycle --------------------------------------------------------------------------

    def open(self, *, recover: bool = True) -> StoreOpenReport:
        """Verify storage directories, then run startup recovery (``nvr.store.recovery``, if
        present) unless ``recover`` is False (offline tools that must not change anything)."""
        dirs = self.dirs.open()
        report = None
        if recover and importlib.util.find_spec("nvr.store.recovery") is not None:
            recovery = importlib.import_module("nvr.store.recovery")
            report = recovery.recover(self, self._available_roots())
            dirs = self.dirs.status()
        self._opened = True
        return StoreOpenReport(dirs=dirs, recovery=report)

    def status(self) -> list[dict[str, Any]]:
        """Storage directories as plain values (``/healthz``, the JSON API)."""
        return [asdict(st) for st in self.dirs.status()]

    def sweep_retention(self) -> SweepResult:
        """One retention pass (``nvr.store.retention.sweep``) over the available directories;
        directories where nothing is left to delete stop receiving new segments until a
        later pass finds room again."""
        from nvr.store.retention import sweep

        result = sweep(self, self._available_roots())
        starved = set(result.starved_dirs)
        for handle in self.dirs.handles():
            handle.starved = handle.id in starved
        if result.bytes_freed and any(h.max_bytes is not None for h in self.dirs.handles()):
            self.dirs.refresh_usage()
        return result

    def _available_roots(self) -> dict[int, Path]:
        return {h.id: h.root for h in self.dirs.handles() if h.available}

    def close(self, timeout: float = 30.0) -> bool:
        """Stop writing (final checkpoint); True if everything written is indexed."""
        ok = True
        if self._service is not None:
            ok = self._service.stop(timeout)
            self._service = None
        return ok

    def __enter__(self) -> Store:
        if not self._opened:
            self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- writing ----------------------------------------------------------------------------

    @property
    def writer_service(self) -> WriterService:
        """The writer thread (started on first use)."""
        if self._service is None:
            if not self._opened:
                raise RuntimeError("Store.open() first")
            writer = StoreWriter(
                self.sessions, self.dirs, self.settings, live=self.live, listener=self.listener
            )
            self._service = WriterService(writer, max_queue_bytes=self._max_queue_bytes)
            self._service.start()
        return self._service

    def open_writer(
        self,
        recording_token: str,
        track_token: str,
        *,
        idle_close_us: int | None = AUTO_IDLE_CLOSE,
    ) -> TrackHandle:
        """A handle to record into a track (blocking: database look-ups). ``idle_close_us``
        ends a run after that long without frames (None: never); by default 10 s, and never
        for metadata tracks (their data is sparse)."""
        track = self.catalog.get_track(recording_token, track_token)
        if idle_close_us == AUTO_IDLE_CLOSE:
            idle_close_us = None if track.kind == "Metadata" else DEFAULT_IDLE_CLOSE_US
        ref = TrackRef(track.id, recording_token, track_token)
        return self.writer_service.open_track(ref, idle_close_us=idle_close_us)

    # ---- reading ----------------------------------------------------------------------------

    def reader(self, recording_token: str, track_token: str) -> TrackReader:
        """Read access to a recording track (raises NoRecording / NoTrack)."""
        return self.reader_for(self.catalog.get_track(recording_token, track_token))

    def reader_for(self, track: TrackInfo) -> TrackReader:
        return TrackReader(
            self.sessions, self.dirs, self.live, self.index_cache, self.sample_entries, track
        )

    def sample_entry(self, entry_id: int) -> SampleEntryInfo:
        return self.sample_entries.get(entry_id)

    # ---- catalog ----------------------------------------------------------------------------

    def create_recording(
        self,
        token: str | None = None,
        *,
        tracks: Iterable[tuple[str, str]] = DEFAULT_TRACKS,
        **fields: Any,
    ) -> RecordingInfo:
        return self.catalog.create_recording(token, tracks=tracks, **fields)

    def get_recording(self, token: str) -> RecordingInfo:
        return self.catalog.get_recording(token)

    def recordings(self) -> list[RecordingInfo]:
        return self.catalog.recordings()

    def create_track(
        self, recording_token: str, kind: str, token: str | None = None, description: str = ""
    ) -> TrackInfo:
        return self.catalog.create_track(recording_token, kind, token, description)

    def get_track(self, recording_token: str, track_token: str) -> TrackInfo:
        return self.catalog.get_track(recording_token, track_token)

    def delete_recording(self, token: str) -> Deleted:
        """Stop the recording's writers, then delete it with all its data."""
        rec = self.catalog.get_recording(token)
        self._stop_writers({t.id for t in rec.tracks})
        return self.catalog.delete_recording(token)

    def delete_track(self, recording_token: str, track_token: str) -> Deleted:
        """Stop the track's writer, then delete it with all its data."""
        track = self.catalog.get_track(recording_token, track_token)
        self._stop_writers({track.id})
        return self.catalog.delete_track(recording_token, track_token)

    def _stop_writers(self, track_ids: set[int]) -> None:
        if self._service is not None and not self._service.close_tracks(track_ids):
            log.warning("deleting tracks %s before their index was committed", sorted(track_ids))
