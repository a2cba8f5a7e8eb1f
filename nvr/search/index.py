"""The search indexer: one thread that keeps the event index in step with what is recorded.

* Bus events — ``tns1:RecordingHistory/*`` and ``tns1:RecordingConfig/*`` — are queued by a
  bus subscriber (it only appends: the bus calls it under its lock) and written in batches,
  one transaction per batch, at most ``interval`` seconds after they were published. Their time
  is the one the producer stamped (media time for RecordingHistory). A ``DeleteTrackData`` also
  removes the track's rows in its range (index_retention.py).
* Metadata documents are indexed by a periodic scan of the committed store (index_metadata.py
  says why a scan and not a hook).
* Every ``prune_interval`` seconds rows older than the oldest data are dropped (front cuts
  without a DeleteTrackData event).

A database outage only delays the index: the queue is kept (bounded, oldest dropped with a
warning) and the metadata mark only moves with the rows. :class:`Generation` is bumped after
every write, so a search waiting at the live edge wakes up at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from lxml import etree
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from nvr.db.models import Event as EventRow
from nvr.db.models import Recording, RecordingJob, Track
from nvr.events import DELETE_TRACK_DATA, Event, EventBus
from nvr.ingest.history import RECORDING_STATE, TRACK_STATE
from nvr.onvif.events_render import message_element
from nvr.search.index_metadata import MetadataScanner
from nvr.search.index_retention import Pruner, TrackKey, delete_track_range
from nvr.search.queries import ensure_topics, mark_property_topics
from nvr.search.timefmt import parse_us
from nvr.store import Store

log = logging.getLogger("nvr.search")

INDEXED_ROOTS: Final = frozenset({"RecordingHistory", "RecordingConfig"})
HISTORY_TOPICS: Final = (TRACK_STATE, RECORDING_STATE)
CATALOG_CHANGES: Final = frozenset(
    {"CreateRecording", "DeleteRecording", "CreateTrack", "DeleteTrack"}
)
"""RecordingConfig events after which cached token → id maps may be stale."""
MAX_QUEUE: Final = 100_000
BATCH: Final = 1000
SCAN_BUDGET: Final = 2000
"""Metadata documents per pass; the next pass follows at once while more are waiting."""


def _root(topic: str) -> str:
    return topic.partition(":")[2].partition("/")[0]


class Generation:
    """A counter searches wait on: bumped whenever the index gained rows."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.value = 0

    def bump(self) -> None:
        with self._cond:
            self.value += 1
            self._cond.notify_all()

    def wait(self, seen: int, timeout: float) -> int:
        with self._cond:
            self._cond.wait_for(lambda: self.value != seen, timeout=max(0.0, timeout))
            return self.value


@dataclass(frozen=True, slots=True)
class _Recording:
    id: int
    token: str
    tracks: dict[str, int]


class _References:
    """Recording, track and job tokens → ids, reloaded when an unknown token turns up."""

    def __init__(self) -> None:
        self._recordings: dict[str, _Recording] = {}
        self._jobs: dict[str, str] = {}
        self._unknown: set[tuple[str | None, str | None]] = set()
        """Tokens still unknown after the last reload (not worth another until the next)."""
        self._loaded = False

    def invalidate(self) -> None:
        self._loaded = False

    def _load(self, s: Session) -> None:
        recordings = {rid: token for rid, token in s.execute(select(Recording.id, Recording.token))}
        tracks: dict[int, dict[str, int]] = {}
        for tid, rid, token in s.execute(select(Track.id, Track.recording_id, Track.token)):
            tracks.setdefault(rid, {})[token] = tid
        self._recordings = {
            token: _Recording(rid, token, tracks.get(rid, {})) for rid, token in recordings.items()
        }
        self._jobs = {
            job: recordings.get(rid, "")
            for job, rid in s.execute(select(RecordingJob.token, RecordingJob.recording_id))
        }
        self._unknown = set()
        self._loaded = True

    def recording(self, s: Session, event: Event) -> _Recording | None:
        source = event.source_dict()
        recording = source.get("RecordingToken") or source.get("Recording")
        job = None if recording else source.get("RecordingJobToken")
        key = (recording, job)
        if not (recording or job) or key in self._unknown:
            return None
        for attempt in range(2):
            if not self._loaded or attempt:
                self._load(s)
            token = recording or self._jobs.get(job or "")
            found = None if token is None else self._recordings.get(token)
            if found is not None:
                return found
        self._unknown.add(key)
        return None


class SearchIndexer:
    """Writes recording events and metadata into the search index (see the module doc)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        bus: EventBus | None = None,
        store: Callable[[], Store | None] = lambda: None,
        *,
        interval: float = 1.0,
        prune_interval: float = 30.0,
    ) -> None:
        self._sessions = sessions
        self._bus = bus
        self._interval = interval
        self._prune_interval = prune_interval
        self._queue: deque[Event] = deque()
        self._queue_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._work = threading.Lock()
        self._thread: threading.Thread | None = None
        self._subscription: int | None = None
        self._refs = _References()
        self._scanner = MetadataScanner(sessions, store)
        self._pruner = Pruner()
        self._next_prune = 0.0
        self._dropped = 0
        self.changes = Generation()
        self.failures = 0

    # ---- lifecycle ----------------------------------------------------------------------------

    def start(self, *, thread: bool = True) -> None:
        """Subscribe to the bus and start the thread (``thread=False``: the caller drives the
        indexer with :meth:`run_once` / :meth:`sync`, as tests and tools do)."""
        if self._bus is not None and self._subscription is None:
            self._subscription = self._bus.subscribe(self._on_event)
        if thread and self._thread is None:
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name="search-indexer", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread after a last pass (queued events are written if the DB is up)."""
        if self._bus is not None and self._subscription is not None:
            self._bus.unsubscribe(self._subscription)
            self._subscription = None
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _on_event(self, event: Event) -> None:
        if _root(event.topic) not in INDEXED_ROOTS:
            return
        with self._queue_lock:
            if len(self._queue) >= MAX_QUEUE:
                self._queue.popleft()
                self._dropped += 1
            self._queue.append(event)
            if len(self._queue) >= BATCH:
                self._wake.set()

    def _run(self) -> None:
        backoff = self._interval
        while True:
            stopping = self._stopping.is_set()
            try:
                more = self.run_once()
                backoff = self._interval
            except Exception:
                self.failures += 1
                log.exception("search indexing failed; retrying in %.0f s", backoff)
                more = False
                backoff = min(backoff * 2, 30.0)
            if stopping:
                return
            if not more:
                self._wake.wait(backoff)
            self._wake.clear()

    # ---- work ---------------------------------------------------------------------------------

    def run_once(self, *, prune: bool | None = None) -> bool:
        """One pass: queued events, a slice of new metadata, a prune when due. True if more
        work is waiting (the caller should run again at once)."""
        with self._work:
            if self._dropped:
                log.warning("search index queue overflowed: %d events not indexed", self._dropped)
                self._dropped = 0
            wrote = self._flush_events()
            documents, more = self._scanner.scan(SCAN_BUDGET)
            now = time.monotonic()
            if prune or (prune is None and now >= self._next_prune):
                self._next_prune = now + self._prune_interval
                with self._sessions.begin() as s:
                    self._pruner.prune(s, ensure_topics(s, HISTORY_TOPICS))
            if wrote or documents:
                self.changes.bump()
            with self._queue_lock:
                return more or len(self._queue) >= BATCH

    def sync(self, *, prune: bool = False) -> None:
        """Index everything published and recorded so far, in the calling thread."""
        first = True
        while self.run_once(prune=prune and first):
            first = False

    def _take(self) -> list[Event]:
        with self._queue_lock:
            batch = [self._queue.popleft() for _ in range(min(BATCH, len(self._queue)))]
        return batch

    def _flush_events(self) -> int:
        written = 0
        while batch := self._take():
            try:
                self._write_batch(batch)
            except Exception:
                with self._queue_lock:  # keep them for the next pass
                    self._queue.extendleft(reversed(batch))
                raise
            written += len(batch)
        return written

    def _write_batch(self, batch: list[Event]) -> None:
        """Write a batch; a recording deleted meanwhile (foreign key) costs one retry with
        fresh references, and a batch failing that way twice is dropped, not retried forever."""
        for attempt in range(2):
            try:
                with self._sessions.begin() as s:
                    self._write(s, batch)
                return
            except IntegrityError:
                self._refs.invalidate()
                if attempt:
                    log.warning("dropped %d events whose recordings are gone", len(batch))

    def _write(self, s: Session, batch: list[Event]) -> None:
        if any(e.topic.rpartition("/")[2] in CATALOG_CHANGES for e in batch):
            self._refs.invalidate()
        ids = ensure_topics(s, [e.topic for e in batch] + list(HISTORY_TOPICS))
        rows = []
        deletions: list[tuple[TrackKey, int, int]] = []
        for event in batch:
            recording = self._refs.recording(s, event)
            if recording is None:
                continue  # the recording is gone (or never was): nothing to attach it to
            row = self._row(event, recording, ids[event.topic])
            rows.append(row)
            if event.topic == DELETE_TRACK_DATA:
                deletion = self._deletion(event, recording)
                if deletion is not None:
                    deletions.append(deletion)
        if rows:
            s.execute(insert(EventRow), rows)
            mark_property_topics(s, (r["topic_id"] for r in rows if r["is_property"]))
        for key, lo, hi in deletions:
            delete_track_range(s, key, lo, hi, ids)

    @staticmethod
    def _row(event: Event, recording: _Recording, topic_id: int) -> dict[str, Any]:
        track_id = None
        if _root(event.topic) == "RecordingHistory":
            source = event.source_dict()
            track_id = recording.tracks.get(source.get("Track") or source.get("TrackToken", ""))
        message_xml = None
        if event.elements:  # ElementItems cannot be rebuilt from the columns
            message_xml = etree.tostring(message_element(event), encoding="unicode")
        return {
            "recording_id": recording.id,
            "track_id": track_id,
            "time_us": event.time_us,
            "topic_id": topic_id,
            "is_property": event.is_property,
            "property_operation": event.property_operation,
            "source": dict(event.source),
            "data": dict(event.data),
            "message_xml": message_xml,
        }

    @staticmethod
    def _deletion(event: Event, recording: _Recording) -> tuple[TrackKey, int, int] | None:
        source, data = event.source_dict(), event.data_dict()
        track_token = source.get("TrackToken", "")
        track_id = recording.tracks.get(track_token)
        try:
            lo, hi = parse_us(data["StartTime"]), parse_us(data["EndTime"])
        except (KeyError, ValueError):
            log.warning("DeleteTrackData without a readable StartTime/EndTime: %s", data)
            return None
        if track_id is None:
            return None
        return TrackKey(recording.id, track_id, recording.token, track_token), lo, hi
