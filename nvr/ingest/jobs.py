"""Recording jobs (recording.md §3, §4, §6): configuration, arbitration, state and events.

A job maps tracks of its sources (receivers) onto tracks of one recording. Every mapped track
is a :class:`_Binding`, the unit of both arbitration and recording: among the *eligible* jobs
(mode Active, schedule open) writing into one destination track, the highest Priority wins and
a tie goes to the job activated most recently (the XSD annotation's rule, deterministic). A
binding that wins attaches to its receiver as its own consumer and acquires it (AutoConnect
demand); the receiver calls our factory after every (re)connect and we open a
:class:`~nvr.ingest.recorder.TrackRecorder` for the matching media. Losing detaches, which
ends the store run before the winner opens the track. One consumer per track (not per job)
means a change of arbitration touches only the tracks that changed hands.

Track state is derived, never stored: Idle unless the binding is attached; then Error if the
recorder refuses the stream ("Incompatible Stream") or could not be opened, Active while a
recorder is live, Idle between sessions. Job and source states aggregate per the spec table.

The values (configuration, states, errors) live in :mod:`nvr.ingest.job_config`. Threading:
mutating methods are coroutines for the event loop (the SOAP layer runs them with
``asyncio.run_coroutine_threadsafe``); :meth:`get`, :meth:`jobs`, :meth:`state` and
:meth:`status` read snapshots and are safe from any thread.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
from collections.abc import Callable, Hashable, Iterable, Mapping
from functools import partial
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from nvr.db.models import Recording
from nvr.db.models import RecordingJob as JobRow
from nvr.events import Event, EventBus
from nvr.ingest.history import RecordingHistory
from nvr.ingest.job_config import (
    ACTIVE,
    DEFAULT_MAX_JOBS,
    ERROR,
    IDLE,
    MODES,
    RECEIVER_SOURCE,
    TOPIC_JOB_CONFIGURATION,
    TOPIC_JOB_STATE,
    BadConfiguration,
    BadMode,
    JobConfiguration,
    JobSource,
    JobState,
    JobTrack,
    MaxReceivers,
    MaxRecordingJobs,
    NoRecordingJob,
    SourceState,
    TrackState,
    aggregate,
    default_tracks,
    sources_from_json,
    sources_to_json,
)
from nvr.ingest.job_xml import configuration_element, state_element
from nvr.ingest.receiver_config import (
    MaxReceiversReached,
    ReceiverConfig,
    ReceiverInUse,
    UnknownReceiver,
)
from nvr.ingest.receivers import ReceiverManager, ReceiverSession
from nvr.ingest.recorder import INCOMPATIBLE_STREAM, TrackRecorder, open_recorder
from nvr.ingest.schedules import ScheduleRegistry
from nvr.ingest.source_tags import match_source_tag
from nvr.protocol.rtcp import SenderReport
from nvr.protocol.rtp import RtpPacket
from nvr.store import Deleted, RecordingInfo, Store
from nvr.store.catalog import check_token, new_token
from nvr.store.types import InvalidToken, StoreError, now_us

__all__ = ["RecordingJobManager"]

log = logging.getLogger("nvr.ingest.jobs")

# --- engine internals -----------------------------------------------------------------------


class _RecorderSink:
    """The session sink of one binding: the recorder's own packet methods (no extra call per
    packet) plus a close hook so the job state follows the session."""

    __slots__ = ("binding", "on_rtp", "on_sender_report", "recorder")

    def __init__(self, recorder: TrackRecorder, binding: _Binding) -> None:
        self.recorder = recorder
        self.binding = binding
        self.on_rtp: Callable[[RtpPacket, int, int], None] = recorder.on_rtp
        self.on_sender_report: Callable[[SenderReport, int, int], None] = recorder.on_sender_report

    def on_close(self, error: BaseException | None = None) -> None:
        self.recorder.on_close(error)
        self.binding.session_ended(self)

    async def wait_closed(self) -> None:
        await self.recorder.wait_closed()


class _Binding:
    """One mapped track of one job source: arbitrated and recorded on its own."""

    def __init__(
        self, job: _Job, index: int, receiver: str, track: JobTrack, kind: str | None
    ) -> None:
        self.job = job
        self.key: Hashable = (job.token, index, track.destination)
        """The receiver consumer id."""
        self.index = index
        self.receiver = receiver
        self.track = track
        self.kind = kind
        self.attached = False
        self.generation = 0
        """Bumped by every attach and detach: a factory call from an older one is stale."""
        self.opening: set[asyncio.Future[None]] = set()
        """Factory calls in flight (opening a store writer in a thread)."""
        self.sink: _RecorderSink | None = None
        self.error: str | None = None
        self.frames_before = 0
        """Frames of this binding's earlier sessions (the live recorder counts its own)."""

    @property
    def destination(self) -> tuple[str, str]:
        return self.job.config.recording_token, self.track.destination

    @property
    def frames(self) -> int:
        sink = self.sink
        return self.frames_before + (sink.recorder.stats.frames if sink is not None else 0)

    def state(self) -> TrackState:
        tag, dest = self.track.source_tag, self.track.destination
        if not self.attached:
            return TrackState(tag, dest, IDLE)
        if self.error is not None:
            return TrackState(tag, dest, ERROR, self.error)
        sink = self.sink
        if sink is None:
            return TrackState(tag, dest, IDLE)
        if sink.recorder.incompatible is not None:
            return TrackState(tag, dest, ERROR, INCOMPATIBLE_STREAM)
        if sink.recorder.error is not None:
            return TrackState(tag, dest, ERROR, sink.recorder.error)
        return TrackState(tag, dest, ACTIVE)

    def status(self) -> dict[str, Any]:
        state = self.state()
        return {
            "destination": state.destination,
            "state": state.state,
            "error": state.error,
            "frames": self.frames,
        }

    def session_ended(self, sink: _RecorderSink) -> None:
        if self.sink is sink:
            self.frames_before += sink.recorder.stats.frames
            self.sink = None
            self.job.changed()


@dataclasses.dataclass(eq=False)
class _Job:
    token: str
    config: JobConfiguration
    activated_us: int
    order: int
    """The row id: the last tie-break, so arbitration never depends on dict order."""
    changed: Callable[[], None]
    """Tells the manager a track state may have changed (it publishes what did)."""
    bindings: list[_Binding] = dataclasses.field(default_factory=list)
    published: JobState | None = None

    def rank(self) -> tuple[int, int, int]:
        return self.config.priority, self.activated_us, self.order

    def receivers(self) -> set[str]:
        return {s.token for s in self.config.sources if s.token}

    def state(self) -> JobState:
        sources = []
        for index, source in enumerate(self.config.sources):
            tracks = tuple(b.state() for b in self.bindings if b.index == index)
            sources.append(
                SourceState(
                    source.token or "",
                    source.type,
                    aggregate(t.state for t in tracks),
                    tracks,
                )
            )
        return JobState(
            self.config.recording_token, aggregate(s.state for s in sources), tuple(sources)
        )


def _bindings(job: _Job, kinds: Mapping[str, str], old: Iterable[_Binding] = ()) -> list[_Binding]:
    """The job's bindings for its configuration, reusing unchanged ones (they keep recording)."""
    previous = {(b.index, b.receiver, b.track): b for b in old}
    out = []
    for index, source in enumerate(job.config.sources):
        for track in source.tracks:
            key = (index, source.token or "", track)
            b = previous.pop(key, None)
            if b is None:
                b = _Binding(job, index, source.token or "", track, kinds.get(track.destination))
            out.append(b)
    return out


# --- the manager ----------------------------------------------------------------------------


class RecordingJobManager:
    """All recording jobs of the daemon (see the module docstring).

    ``history`` (the store's RecordingHistory listener) gets the recordings' IsRecording
    transitions; ``schedules`` defaults to a registry on ``scheduler``.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        store: Store,
        receivers: ReceiverManager,
        bus: EventBus,
        scheduler: Any = None,
        *,
        schedules: ScheduleRegistry | None = None,
        history: RecordingHistory | None = None,
        max_jobs: int = DEFAULT_MAX_JOBS,
        clock: Callable[[], int] = now_us,
    ) -> None:
        self._sessions = sessions
        self._store = store
        self._receivers = receivers
        self._bus = bus
        self.schedules = schedules if schedules is not None else ScheduleRegistry(scheduler)
        self._history = history
        self.max_jobs = max_jobs
        self._clock = clock
        self._jobs: dict[str, _Job] = {}
        self._read_lock = threading.Lock()
        self._lock = asyncio.Lock()
        self._is_recording: set[str] = set()
        self._background: set[asyncio.Task[None]] = set()
        self._running = False
        self.schedules.subscribe(self._schedule_switched)

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the persisted jobs; those in mode Active resume recording."""
        rows, recordings = await asyncio.to_thread(self._load)
        kinds = {r.token: _kinds(r) for r in recordings}
        async with self._lock:
            for row_id, token, recording, config, activated in rows:
                job = _Job(token, config, activated, row_id, self._refresh)
                job.bindings = _bindings(job, kinds.get(recording, {}))
                with self._read_lock:
                    self._jobs[token] = job
            self._running = True
            await self._apply()
        log.info("recording jobs: %d loaded", len(rows))

    async def stop(self) -> None:
        """Detach every recorder (their store runs end); the modes stay as persisted."""
        async with self._lock:
            self._running = False
            await self._detach([b for j in self._jobs.values() for b in j.bindings if b.attached])
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)

    # --- reads (any thread) ---------------------------------------------------------------

    def get(self, token: str) -> JobConfiguration:
        """GetRecordingJobConfiguration."""
        return self._job(token).config

    def jobs(self) -> list[tuple[str, JobConfiguration]]:
        """GetRecordingJobs: (token, configuration) in creation order."""
        with self._read_lock:
            return [(j.token, j.config) for j in self._jobs.values()]

    def state(self, token: str) -> JobState:
        """GetRecordingJobState."""
        return self._job(token).state()

    def spare_jobs(self) -> int:
        """GetRecordingOptions Job@Spare (the limit is per device, not per recording)."""
        with self._read_lock:
            return max(0, self.max_jobs - len(self._jobs))

    def status(self) -> list[dict[str, Any]]:
        """Plain values for /healthz."""
        with self._read_lock:
            jobs = list(self._jobs.values())
        return [
            {
                "token": job.token,
                "recording": job.config.recording_token,
                "mode": job.config.mode,
                "priority": job.config.priority,
                "state": job.state().state,
                "tracks": [b.status() for b in job.bindings],
            }
            for job in jobs
        ]

    def _job(self, token: str) -> _Job:
        with self._read_lock:
            job = self._jobs.get(token)
        if job is None:
            raise NoRecordingJob(f"no recording job {token!r}")
        return job

    # --- configuration (event loop) -------------------------------------------------------

    async def create(
        self, config: JobConfiguration, *, token: str | None = None
    ) -> tuple[str, JobConfiguration]:
        """CreateRecordingJob: returns the token and the effective configuration."""
        async with self._lock:
            if len(self._jobs) >= self.max_jobs:
                raise MaxRecordingJobs(f"at most {self.max_jobs} recording jobs")
            try:
                token = check_token(token or new_token())
            except InvalidToken as exc:
                raise BadConfiguration(str(exc)) from None
            if token in self._jobs:
                raise BadConfiguration(f"recording job {token!r} already exists")
            recording = await self._recording(config.recording_token)
            created: list[str] = []
            try:
                config = await self._effective(config, recording, created)
                now = self._clock()
                activated = now if config.mode == ACTIVE else 0
                row_id = await asyncio.to_thread(
                    self._insert, token, recording.id, config, activated, now
                )
            except BaseException:
                await self._delete_receivers(created)
                raise
            job = _Job(token, config, activated, row_id, self._refresh)
            job.bindings = _bindings(job, _kinds(recording))
            with self._read_lock:
                self._jobs[token] = job
            log.info("recording job %s created for %s", token, config.recording_token)
            self._publish_configuration(job)
            await self._apply()
            return token, config

    async def set_configuration(self, token: str, config: JobConfiguration) -> JobConfiguration:
        """SetRecordingJobConfiguration: returns the effective configuration."""
        async with self._lock:
            job = self._job(token)
            if config.recording_token != job.config.recording_token:
                raise BadConfiguration("the RecordingToken of a job cannot be changed")
            recording = await self._recording(config.recording_token)
            created: list[str] = []
            try:
                config = await self._effective(config, recording, created)
                activated = self._activation(job, config.mode)
                await asyncio.to_thread(self._update, token, config, activated)
            except BaseException:
                await self._delete_receivers(created)
                raise
            await self._reconfigure(job, config, activated, _kinds(recording))
            return config

    async def set_mode(self, token: str, mode: str) -> None:
        """SetRecordingJobMode: Get + Set of the configuration with only Mode changed."""
        if mode not in MODES:
            raise BadMode(f"Mode {mode!r} is not one of {', '.join(MODES)}")
        async with self._lock:
            job = self._job(token)
            if job.config.mode == mode:
                return
            config = dataclasses.replace(job.config, mode=mode)
            activated = self._activation(job, mode)
            await asyncio.to_thread(self._update, token, config, activated)
            job.config, job.activated_us = config, activated
            self._publish_configuration(job)
            await self._apply()

    async def delete(self, token: str) -> None:
        """DeleteRecordingJob, with the auto-created receivers no other job uses."""
        async with self._lock:
            await self._remove([self._job(token)])
            await self._apply()

    async def delete_recording(self, recording_token: str) -> Deleted:
        """DeleteRecording's cascade: the jobs recording into it (and their auto-created
        receivers) go first, so their writers are closed, then the recording and its data."""
        async with self._lock:
            doomed = [j for j in self._jobs.values() if j.config.recording_token == recording_token]
            await self._remove(doomed)
            deleted = await asyncio.to_thread(self._store.delete_recording, recording_token)
            if self._history is not None:
                self._history.forget_recording(recording_token)
            self._is_recording.discard(recording_token)
            await self._apply()
            return deleted

    async def delete_track(self, recording_token: str, track_token: str) -> Deleted:
        """DeleteTrack: jobs writing into the track let go of it first; while their mapping
        still names it, those tracks report Error."""
        async with self._lock:
            users = [
                b
                for j in self._jobs.values()
                for b in j.bindings
                if b.attached and b.destination == (recording_token, track_token)
            ]
            await self._detach(users)
            deleted = await asyncio.to_thread(
                self._store.delete_track, recording_token, track_token
            )
            await self._apply()
            return deleted

    # --- configuration helpers ------------------------------------------------------------

    async def _recording(self, token: str) -> RecordingInfo:
        return await asyncio.to_thread(self._store.get_recording, token)

    def _activation(self, job: _Job, mode: str) -> int:
        """``activated_us`` after a mode change: Idle -> Active is a new activation."""
        if mode == ACTIVE and job.config.mode != ACTIVE:
            return self._clock()
        return job.activated_us

    def _check(self, config: JobConfiguration, recording: RecordingInfo) -> None:
        """Everything that can be refused, checked before anything is created."""
        if config.mode not in MODES:
            raise BadConfiguration(f"Mode {config.mode!r} is not one of {', '.join(MODES)}")
        if config.priority < 0:
            raise BadConfiguration(f"Priority {config.priority} is negative")
        if not config.sources:
            raise BadConfiguration("a recording job needs a Source")
        destinations: set[str] = set()
        for source in config.sources:
            if source.type != RECEIVER_SOURCE:
                raise BadConfiguration(f"SourceToken Type {source.type!r} is not supported")
            if source.token:
                try:
                    self._receivers.get(source.token)
                except UnknownReceiver:
                    raise BadConfiguration(f"no receiver {source.token!r}") from None
            elif not source.auto_create_receiver:
                raise BadConfiguration("a Source needs a SourceToken or AutoCreateReceiver")
            for track in source.tracks:
                if recording.track(track.destination) is None:
                    raise BadConfiguration(
                        f"recording {recording.token!r} has no track {track.destination!r}"
                    )
                if track.destination in destinations:
                    raise BadConfiguration(f"track {track.destination!r} is mapped twice")
                destinations.add(track.destination)

    async def _effective(
        self, config: JobConfiguration, recording: RecordingInfo, created: list[str]
    ) -> JobConfiguration:
        """Validate, create the requested receivers (tokens appended to ``created``) and fill
        in default track mappings: the configuration as the device will use it."""
        self._check(config, recording)
        used = {t.destination for s in config.sources for t in s.tracks}
        sources = []
        for source in config.sources:
            token = source.token
            if not token:
                try:
                    info = await self._receivers.create(ReceiverConfig(), auto_created=True)
                except MaxReceiversReached as exc:
                    raise MaxReceivers(str(exc)) from None
                created.append(info.token)
                token = info.token
            tracks = source.tracks or default_tracks(recording, used)
            sources.append(JobSource(token, RECEIVER_SOURCE, tracks))
        return dataclasses.replace(config, sources=tuple(sources))

    async def _reconfigure(
        self, job: _Job, config: JobConfiguration, activated: int, kinds: Mapping[str, str]
    ) -> None:
        before = job.receivers()
        old = job.bindings
        job.config, job.activated_us = config, activated
        job.bindings = _bindings(job, kinds, old)
        kept = {id(b) for b in job.bindings}
        await self._detach([b for b in old if id(b) not in kept and b.attached])
        self._publish_configuration(job)
        await self._collect_receivers(before - job.receivers())
        await self._apply()

    async def _remove(self, jobs: list[_Job]) -> None:
        """Delete jobs: recorders first, then rows, events and unused auto receivers."""
        if not jobs:
            return
        await self._detach([b for j in jobs for b in j.bindings if b.attached])
        await asyncio.to_thread(self._delete_rows, [j.token for j in jobs])
        receivers: set[str] = set()
        with self._read_lock:
            for job in jobs:
                self._jobs.pop(job.token, None)
        for job in jobs:
            receivers |= job.receivers()
            if job.published is not None:
                self._bus.delete_property(TOPIC_JOB_STATE, _job_source(job.token))
            log.info("recording job %s deleted", job.token)
        await self._collect_receivers(receivers)

    async def _collect_receivers(self, tokens: Iterable[str]) -> None:
        """Delete the auto-created receivers among ``tokens`` that no job references."""
        used = {t for j in self._jobs.values() for t in j.receivers()}
        doomed = []
        for token in set(tokens) - used:
            try:
                if self._receivers.get(token).auto_created:
                    doomed.append(token)
            except UnknownReceiver:
                pass
        await self._delete_receivers(doomed)

    async def _delete_receivers(self, tokens: Iterable[str]) -> None:
        for token in tokens:
            try:
                await self._receivers.delete(token)
            except (UnknownReceiver, ReceiverInUse) as exc:
                log.warning("auto-created receiver %s not deleted: %s", token, exc)

    # --- arbitration and recording --------------------------------------------------------

    def _eligible(self, job: _Job) -> bool:
        """Mode Active and, with a ScheduleToken, the schedule open."""
        if job.config.mode != ACTIVE:
            return False
        schedule = job.config.schedule_token
        return schedule is None or self.schedules.is_active(schedule)

    def _winners(self) -> dict[tuple[str, str], _Job]:
        """Per destination track, the eligible job that writes into it."""
        best: dict[tuple[str, str], _Job] = {}
        for job in self._jobs.values():
            if not self._eligible(job):
                continue
            for b in job.bindings:
                current = best.get(b.destination)
                if current is None or job.rank() > current.rank():
                    best[b.destination] = job
        return best

    async def _apply(self) -> None:
        """Bring the attachments in line with arbitration (call with the lock held): losers
        let go of their tracks before winners open them."""
        winners = self._winners() if self._running else {}
        leave, join = [], []
        for job in self._jobs.values():
            for b in job.bindings:
                wins = winners.get(b.destination) is job
                if b.attached and not wins:
                    leave.append(b)
                elif wins and not b.attached:
                    join.append(b)
        await self._detach(leave)
        for b in join:
            await self._attach(b)
        self._refresh()

    async def _attach(self, b: _Binding) -> None:
        b.attached, b.error = True, None
        b.generation += 1
        generation = b.generation

        async def factory(session: ReceiverSession) -> dict[int, _RecorderSink]:
            return await self._open(b, generation, session)

        try:
            await self._receivers.attach(b.receiver, b.key, factory)
            self._receivers.acquire(b.receiver, b.key)
        except UnknownReceiver:
            b.error = f"receiver {b.receiver!r} does not exist"

    async def _detach(self, bindings: Iterable[_Binding]) -> None:
        """Let go of tracks; when this returns their store writers are closed, so another
        job may open them (factory calls still in flight close what they open)."""
        for b in bindings:
            b.attached, b.error = False, None
            b.generation += 1
            try:
                await self._receivers.detach(b.receiver, b.key)
            except UnknownReceiver:
                pass
            if b.opening:
                await asyncio.gather(*b.opening)

    async def _open(
        self, b: _Binding, generation: int, session: ReceiverSession
    ) -> dict[int, _RecorderSink]:
        """The consumer factory of one binding, called for every receiver session."""
        if b.generation != generation:
            return {}
        position = match_source_tag(b.track.source_tag, session.streams, b.kind)
        if position is None:
            log.info(
                "job %s: no media for SourceTag %r in %s",
                b.job.token,
                b.track.source_tag,
                session.uri,
            )
            return {}
        done = asyncio.get_running_loop().create_future()
        b.opening.add(done)
        try:
            return await self._open_recorder(b, generation, session, position)
        finally:
            b.opening.discard(done)
            done.set_result(None)

    async def _open_recorder(
        self, b: _Binding, generation: int, session: ReceiverSession, position: int
    ) -> dict[int, _RecorderSink]:
        recording, track = b.destination
        try:
            recorder = await open_recorder(
                self._store,
                recording,
                track,
                session.streams[position],
                request_key_frame=session.key_frame_requester(position),
                on_incompatible=lambda _reason: self._refresh(),
            )
        except StoreError as exc:
            if b.generation == generation:
                b.error = f"cannot record into {recording}/{track}: {type(exc).__name__} {exc}"
                log.warning("job %s: %s", b.job.token, b.error)
                self._refresh()
            return {}
        if b.generation != generation:  # detached meanwhile: free the track for its new owner
            recorder.on_close(None)
            await recorder.wait_closed()
            return {}
        b.error = None
        sink = b.sink = _RecorderSink(recorder, b)
        self._refresh()
        return {position: sink}

    # --- state and events -----------------------------------------------------------------

    def _schedule_switched(self, token: str, active: bool) -> None:
        if not self._running or not any(
            j.config.schedule_token == token for j in self._jobs.values()
        ):
            return
        task = asyncio.get_running_loop().create_task(self._rearbitrate())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _rearbitrate(self) -> None:
        async with self._lock:
            await self._apply()

    def _refresh(self) -> None:
        """Publish JobState for every job whose state changed, and IsRecording changes."""
        recording: set[str] = set()
        for job in list(self._jobs.values()):
            state = job.state()
            if any(t.state == ACTIVE for s in state.sources for t in s.tracks):
                recording.add(job.config.recording_token)
            if state != job.published:
                job.published = state
                elements = (("Information", partial(state_element, state)),) if state.mixed else ()
                self._bus.publish_property(
                    TOPIC_JOB_STATE,
                    _job_source(job.token),
                    (("State", state.state),),
                    elements=elements,
                )
        if self._history is not None:
            for token in recording ^ self._is_recording:
                self._history.recording_state(token, token in recording)
        self._is_recording = recording

    def _publish_configuration(self, job: _Job) -> None:
        self._bus.publish(
            Event(
                TOPIC_JOB_CONFIGURATION,
                _job_source(job.token),
                elements=(("Configuration", partial(configuration_element, job.config)),),
            )
        )

    # --- database (threads) ---------------------------------------------------------------

    def _load(
        self,
    ) -> tuple[list[tuple[int, str, str, JobConfiguration, int]], list[RecordingInfo]]:
        with self._sessions() as s:
            rows = s.execute(
                select(JobRow, Recording.token)
                .join(Recording, Recording.id == JobRow.recording_id)
                .order_by(JobRow.id)
            ).all()
            jobs = [
                (
                    row.id,
                    row.token,
                    recording,
                    JobConfiguration(
                        recording_token=recording,
                        mode=row.mode,
                        priority=row.priority,
                        sources=sources_from_json(row.sources or ()),
                        schedule_token=row.schedule_token,
                        event_filter=row.event_filter,
                    ),
                    row.activated_us,
                )
                for row, recording in rows
            ]
        return jobs, self._store.recordings()

    def _insert(
        self, token: str, recording_id: int, config: JobConfiguration, activated: int, now: int
    ) -> int:
        with self._sessions.begin() as s:
            row = JobRow(token=token, recording_id=recording_id, created_us=now)
            _fill_row(row, config, activated)
            s.add(row)
            s.flush()
            return row.id

    def _update(self, token: str, config: JobConfiguration, activated: int) -> None:
        with self._sessions.begin() as s:
            row = s.scalars(select(JobRow).where(JobRow.token == token)).first()
            if row is None:
                raise NoRecordingJob(f"no recording job {token!r}")
            _fill_row(row, config, activated)

    def _delete_rows(self, tokens: list[str]) -> None:
        with self._sessions.begin() as s:
            s.execute(delete(JobRow).where(JobRow.token.in_(tokens)))


def _fill_row(row: JobRow, config: JobConfiguration, activated: int) -> None:
    row.mode = config.mode
    row.priority = config.priority
    row.schedule_token = config.schedule_token
    row.sources = sources_to_json(config.sources)
    row.event_filter = dict(config.event_filter) if config.event_filter is not None else None
    row.activated_us = activated


def _kinds(recording: RecordingInfo) -> dict[str, str]:
    return {t.token: t.kind for t in recording.tracks}


def _job_source(token: str) -> tuple[tuple[str, str], ...]:
    return (("RecordingJobToken", token),)
