"""Recording jobs with the real receiver manager, store and database; the camera is the
built-in demo camera served over RTSP on loopback. Also schedules and RecordingHistory."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from lxml import etree
from sqlalchemy import Engine, select

from nvr.db.engine import make_sessionmaker
from nvr.db.models import RecordingJob as JobRow
from nvr.demo.camera import DemoCamera
from nvr.events import Event, EventBus
from nvr.ingest.history import RECORDING_STATE, TRACK_STATE, RecordingHistory
from nvr.ingest.job_config import (
    ACTIVE,
    IDLE,
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
)
from nvr.ingest.job_xml import TT, configuration_element, state_element
from nvr.ingest.jobs import RecordingJobManager
from nvr.ingest.receiver_config import (
    AUTO_CONNECT,
    NEVER_CONNECT,
    ReceiverConfig,
    UnknownReceiver,
)
from nvr.ingest.receivers import ReceiverManager
from nvr.ingest.schedules import Schedule, ScheduleRegistry, WeeklyWindow
from nvr.playback import RtspServer, StaticResolver
from nvr.store import Store
from nvr.store.types import NoRecording, TrackRef
from tests.daemon import free_port
from tests.onvif.schemas import assert_valid
from tests.store.helpers import make_settings

UTC = dt.UTC
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
TRC = "http://www.onvif.org/ver10/recording/wsdl"
RECORDING_WSDL = "ver10/recording.wsdl"
DEFAULT_TRACKS = (
    JobTrack("VIDEO", "VIDEO001"),
    JobTrack("AUDIO", "AUDIO001"),
    JobTrack("METADATA", "META001"),
)


def xml(element: etree._Element) -> bytes:
    return etree.tostring(element, method="c14n")


def run(scenario: Callable[[], Any], timeout: float = 60) -> Any:
    async def limited() -> Any:
        async with asyncio.timeout(timeout):
            return await scenario()

    return asyncio.run(limited())


class Rig:
    """Store, receiver manager and job manager on one database (new instances per rig, so two
    rigs in a row are a daemon restart); optionally the demo camera at :attr:`uri`."""

    def __init__(
        self, engine: Engine, root: Path, *, camera: bool = True, port: int = 0, **limits: Any
    ) -> None:
        self.engine = engine
        self.root = root
        self.with_camera = camera
        self.port = port
        self.limits = limits
        self.events: list[Event] = []

    async def __aenter__(self) -> Rig:
        sessions = make_sessionmaker(self.engine)
        self.bus = EventBus()
        self.bus.subscribe(self.events.append)
        self.history = RecordingHistory(self.bus)
        self.store = Store(self.engine, make_settings(self.root), listener=self.history)
        await asyncio.to_thread(self.store.open)
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        self.scheduler.start()
        self.receivers = ReceiverManager(
            sessions, self.bus, max_receivers=self.limits.get("max_receivers", 64)
        )
        self.jobs = RecordingJobManager(
            sessions,
            self.store,
            self.receivers,
            self.bus,
            self.scheduler,
            history=self.history,
            max_jobs=self.limits.get("max_jobs", 128),
        )
        self.camera: DemoCamera | None = None
        self.server: RtspServer | None = None
        if self.with_camera:
            self.camera = DemoCamera()
            self.server = RtspServer("127.0.0.1", self.port, StaticResolver({"/demo": self.camera}))
            await self.server.start()
            self.uri = f"rtsp://127.0.0.1:{self.server.port}/demo"
        await self.receivers.start()
        await self.jobs.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.jobs.stop()
        await self.receivers.stop()
        if self.server is not None:
            await self.server.stop()
        if self.camera is not None:
            await self.camera.close()
        self.scheduler.shutdown(wait=False)
        await asyncio.to_thread(self.store.close)

    async def recording(self, token: str = "REC") -> str:
        await asyncio.to_thread(self.store.create_recording, token)
        return token

    async def receiver(self, mode: str = AUTO_CONNECT) -> str:
        config = ReceiverConfig(mode=mode, media_uri=self.uri if mode != NEVER_CONNECT else "")
        return (await self.receivers.create(config)).token

    async def job(self, mode: str, priority: int, *sources: JobSource, **kw: Any) -> str:
        config = JobConfiguration("REC", mode, priority, sources, **kw)
        token, _ = await self.jobs.create(config)
        return token

    def state(self, token: str) -> str:
        return self.jobs.state(token).state

    async def until(self, what: Callable[[], bool], timeout: float = 20) -> None:
        async with asyncio.timeout(timeout):
            while not what():
                await asyncio.sleep(0.05)

    async def until_states(self, **expected: str) -> None:
        """Wait until each job (keyword = token) has the state; fail with all states."""
        try:
            await self.until(lambda: all(self.state(t) == s for t, s in expected.items()))
        except TimeoutError:
            raise AssertionError({t: self.jobs.state(t) for t in expected}) from None

    async def until_runs(self, count: int, track: str = "VIDEO001") -> None:
        """Wait until the track has ``count`` runs in the index."""
        reader = self.store.reader("REC", track)
        async with asyncio.timeout(20):
            while len(await asyncio.to_thread(reader.runs)) < count:
                await asyncio.sleep(0.1)

    def job_states(self, token: str) -> list[str]:
        """The JobState event values of one job, consecutive repeats folded."""
        out: list[str] = []
        for e in self.events:
            if e.topic == TOPIC_JOB_STATE and e.source_dict()["RecordingJobToken"] == token:
                value = e.data_dict().get("State", e.property_operation or "")
                if not out or out[-1] != value:
                    out.append(value)
        return out

    def topic(self, topic: str) -> list[Event]:
        return [e for e in self.events if e.topic == topic]


# --- configuration semantics ----------------------------------------------------------------


def test_auto_create_receiver_and_default_mapping(engine: Engine, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with Rig(engine, tmp_path, camera=False) as rig:
            await rig.recording()
            token, config = await rig.jobs.create(
                JobConfiguration("REC", IDLE, 1, (JobSource(auto_create_receiver=True),))
            )
            (source,) = config.sources
            assert source.token and not source.auto_create_receiver
            assert source.tracks == DEFAULT_TRACKS
            assert rig.receivers.state(source.token) == ("NotConnected", True)
            assert rig.jobs.get(token) == config
            assert rig.jobs.jobs() == [(token, config)]
            state = rig.jobs.state(token)
            assert state.state == IDLE and state.recording_token == "REC"
            assert [t.state for t in state.sources[0].tracks] == [IDLE] * 3
            (event,) = rig.topic(TOPIC_JOB_CONFIGURATION)
            assert event.source_dict() == {"RecordingJobToken": token}
            rendered = dict(event.elements)["Configuration"]()
            assert xml(rendered) == xml(configuration_element(config))
            assert rig.job_states(token) == [IDLE]

            # A second source without Tracks gets the next free track of each type.
            await asyncio.to_thread(rig.store.create_track, "REC", "Video")
            manual = await rig.receiver(NEVER_CONNECT)
            _, two = await rig.jobs.create(
                JobConfiguration(
                    "REC",
                    IDLE,
                    0,
                    (JobSource(manual), JobSource(manual, tracks=(JobTrack("x", "AUDIO001"),))),
                )
            )
            assert two.sources[0].tracks == (
                JobTrack("VIDEO", "VIDEO001"),
                JobTrack("METADATA", "META001"),
            )

            def row() -> JobRow:
                with make_sessionmaker(engine)() as s:
                    return s.scalars(select(JobRow).where(JobRow.token == token)).one()

            stored = await asyncio.to_thread(row)
            assert (stored.mode, stored.priority, stored.activated_us) == (IDLE, 1, 0)

    run(scenario)


def test_faults(engine: Engine, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with Rig(engine, tmp_path, camera=False, max_jobs=2, max_receivers=2) as rig:
            await rig.recording()
            manual = await rig.receiver(NEVER_CONNECT)
            src = JobSource(manual)
            with pytest.raises(NoRecording):
                await rig.jobs.create(JobConfiguration("NOPE", IDLE, 0, (src,)))
            bad = [
                JobConfiguration("REC", IDLE, 0, ()),
                JobConfiguration("REC", IDLE, 0, (JobSource(),)),
                JobConfiguration("REC", IDLE, 0, (JobSource("no-such-receiver"),)),
                JobConfiguration("REC", "Paused", 0, (src,)),
                JobConfiguration("REC", IDLE, -1, (src,)),
                JobConfiguration(
                    "REC",
                    IDLE,
                    0,
                    (JobSource(manual, "http://www.onvif.org/ver10/schema/Profile"),),
                ),
                JobConfiguration(
                    "REC", IDLE, 0, (JobSource(manual, tracks=(JobTrack("V", "X"),)),)
                ),
                JobConfiguration(
                    "REC",
                    IDLE,
                    0,
                    (
                        JobSource(manual, tracks=(JobTrack("VIDEO", "VIDEO001"),)),
                        JobSource(manual, tracks=(JobTrack("VIDEO2", "VIDEO001"),)),
                    ),
                ),
            ]
            for config in bad:
                with pytest.raises(BadConfiguration):
                    await rig.jobs.create(config)
            # AutoCreateReceiver beyond the limit: MaxReceivers, and the receiver this call
            # did create is removed again.
            two_auto = (JobSource(auto_create_receiver=True), JobSource(auto_create_receiver=True))
            with pytest.raises(MaxReceivers):
                await rig.jobs.create(JobConfiguration("REC", IDLE, 0, two_auto))
            assert [r.token for r in rig.receivers.list()] == [manual]
            assert rig.jobs.jobs() == []

            job, config = await rig.jobs.create(JobConfiguration("REC", IDLE, 0, (src,)))
            with pytest.raises(BadConfiguration):  # RecordingToken cannot change
                await asyncio.to_thread(rig.store.create_recording, "OTHER")
                await rig.jobs.set_configuration(
                    job, dataclasses.replace(config, recording_token="OTHER")
                )
            with pytest.raises(BadMode):
                await rig.jobs.set_mode(job, "Paused")
            await rig.jobs.create(JobConfiguration("REC", IDLE, 0, (src,)))
            assert rig.jobs.spare_jobs() == 0
            with pytest.raises(MaxRecordingJobs):
                await rig.jobs.create(JobConfiguration("REC", IDLE, 0, (src,)))
            for call in (rig.jobs.get, rig.jobs.state):
                with pytest.raises(NoRecordingJob):
                    call("nope")
            with pytest.raises(NoRecordingJob):
                await rig.jobs.set_mode("nope", ACTIVE)
            with pytest.raises(NoRecordingJob):
                await rig.jobs.delete("nope")

    run(scenario)


def test_auto_created_receivers_are_deleted_when_unused(engine: Engine, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with Rig(engine, tmp_path, camera=False) as rig:
            await rig.recording()
            manual = await rig.receiver(NEVER_CONNECT)
            a, config_a = await rig.jobs.create(
                JobConfiguration("REC", IDLE, 0, (JobSource(auto_create_receiver=True),))
            )
            auto = config_a.sources[0].token
            assert auto is not None
            b = await rig.job(IDLE, 0, JobSource(auto))
            await rig.jobs.delete(a)  # b still uses the auto receiver
            assert rig.receivers.get(auto).auto_created
            # Reconfiguring b away from it deletes it; a manual receiver is never deleted.
            config_b = rig.jobs.get(b)
            new = await rig.jobs.set_configuration(
                b, dataclasses.replace(config_b, sources=(JobSource(manual),), priority=3)
            )
            assert new.sources[0].token == manual and new.priority == 3
            with pytest.raises(UnknownReceiver):
                rig.receivers.get(auto)
            await rig.jobs.delete(b)
            assert rig.receivers.get(manual).token == manual
            assert [e.property_operation for e in rig.topic(TOPIC_JOB_STATE)][-1] == "Deleted"

    run(scenario)


def test_delete_recording_cascades(engine: Engine, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with Rig(engine, tmp_path) as rig:
            await rig.recording()
            _, config = await rig.jobs.create(
                JobConfiguration("REC", ACTIVE, 0, (JobSource(auto_create_receiver=True),))
            )
            auto = config.sources[0].token
            assert auto is not None
            await rig.receivers.configure(auto, ReceiverConfig(AUTO_CONNECT, rig.uri))
            shared = await rig.receiver()
            job = await rig.job(ACTIVE, 1, JobSource(shared))
            await rig.until_states(**{job: ACTIVE})
            deleted = await rig.jobs.delete_recording("REC")
            assert deleted.recording_token == "REC"
            assert rig.jobs.jobs() == []
            assert [r.token for r in rig.receivers.list()] == [shared]
            assert rig.bus.current_properties() == []  # no job or history state left over

            def rows() -> list[JobRow]:
                with make_sessionmaker(engine)() as s:
                    return list(s.scalars(select(JobRow)))

            assert await asyncio.to_thread(rows) == []
            with pytest.raises(NoRecording):
                await asyncio.to_thread(rig.store.get_recording, "REC")

    run(scenario)


def test_delete_track_while_recording(engine: Engine, tmp_path: Path) -> None:
    """The writer lets go first; the job's mapping still names the track, which now fails."""

    async def scenario() -> None:
        async with Rig(engine, tmp_path) as rig:
            await rig.recording()
            job = await rig.job(ACTIVE, 0, JobSource(await rig.receiver()))
            await rig.until_states(**{job: ACTIVE})
            await rig.jobs.delete_track("REC", "AUDIO001")
            await rig.until_states(**{job: "Error"})
            video, audio, meta = rig.jobs.state(job).sources[0].tracks
            assert (video.state, meta.state) == (ACTIVE, ACTIVE)
            assert audio.state == "Error" and "NoTrack" in (audio.error or "")
            recording = await asyncio.to_thread(rig.store.get_recording, "REC")
            assert [t.token for t in recording.tracks] == ["VIDEO001", "META001"]

    run(scenario)


# --- arbitration ----------------------------------------------------------------------------


def test_spec_priority_example(engine: Engine, tmp_path: Path) -> None:
    """recording.md §4.2: J1(2, Active); J2(4, Idle); J3(3, Active) takes over; delete J3."""

    async def scenario() -> None:
        async with Rig(engine, tmp_path) as rig:
            await rig.recording()
            r1, r2, r3 = [await rig.receiver() for _ in range(3)]
            j1 = await rig.job(ACTIVE, 2, JobSource(r1))
            await rig.until_states(**{j1: ACTIVE})
            j2 = await rig.job(IDLE, 4, JobSource(r2))
            assert (rig.state(j1), rig.state(j2)) == (ACTIVE, IDLE)
            j3 = await rig.job(ACTIVE, 3, JobSource(r3))
            assert rig.state(j1) == IDLE  # lost every track at once
            await rig.until_states(**{j3: ACTIVE, j1: IDLE, j2: IDLE})
            await rig.jobs.delete(j3)
            await rig.until_states(**{j1: ACTIVE, j2: IDLE})
            # j1's receiver was released while it lost: AutoConnect hung up.
            assert rig.job_states(j2) == [IDLE]
            assert [s for s in rig.job_states(j1) if s in (IDLE, ACTIVE)] == [
                IDLE,
                ACTIVE,
                IDLE,
                ACTIVE,
            ]
            assert rig.job_states(j3)[-1] == "Deleted"
            recording = [e.data_dict()["IsRecording"] for e in rig.topic(RECORDING_STATE)]
            assert recording[0] == "true" and recording[-1] == "true"

    run(scenario)


def test_tie_goes_to_the_most_recently_activated(engine: Engine, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with Rig(engine, tmp_path) as rig:
            await rig.recording()
            shared = await rig.receiver()
            first = await rig.job(ACTIVE, 1, JobSource(shared))
            second = await rig.job(ACTIVE, 1, JobSource(shared))
            await rig.until_states(**{first: IDLE, second: ACTIVE})
            await rig.jobs.set_mode(first, IDLE)
            await rig.jobs.set_mode(first, ACTIVE)  # activated again: now the most recent
            await rig.until_states(**{first: ACTIVE, second: IDLE})

    run(scenario)


def test_arbitration_is_per_track_and_state_aggregates(engine: Engine, tmp_path: Path) -> None:
    """A higher-priority job on the video track only: the other job keeps audio and metadata
    (PartiallyActive, with the Information element in its JobState event)."""

    async def scenario() -> None:
        async with Rig(engine, tmp_path) as rig:
            await rig.recording()
            shared = await rig.receiver()
            low = await rig.job(ACTIVE, 1, JobSource(shared))
            video = await rig.job(
                ACTIVE, 5, JobSource(shared, tracks=(JobTrack("VIDEO", "VIDEO001"),))
            )
            expected = {"VIDEO001": IDLE, "AUDIO001": ACTIVE, "META001": ACTIVE}

            def tracks() -> dict[str, str]:
                return {t.destination: t.state for t in rig.jobs.state(low).sources[0].tracks}

            await rig.until(lambda: tracks() == expected)
            await rig.until_states(**{video: ACTIVE})
            state = rig.jobs.state(low)
            assert state.state == "PartiallyActive"
            assert state.sources[0].state == "PartiallyActive"
            last = [
                e for e in rig.topic(TOPIC_JOB_STATE) if e.source_dict()["RecordingJobToken"] == low
            ][-1]
            assert last.data_dict() == {"State": "PartiallyActive"}
            assert xml(dict(last.elements)["Information"]()) == xml(state_element(state))
            winner = [
                e
                for e in rig.topic(TOPIC_JOB_STATE)
                if e.source_dict()["RecordingJobToken"] == video
            ][-1]
            assert winner.elements == ()  # one track, nothing differs

    run(scenario)


def test_incompatible_stream_is_an_error(engine: Engine, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with Rig(engine, tmp_path) as rig:
            await rig.recording()
            shared = await rig.receiver()
            tracks = (JobTrack("AUDIO", "VIDEO001"), JobTrack("METADATA", "META001"))
            job = await rig.job(ACTIVE, 0, JobSource(shared, tracks=tracks))
            await rig.until_states(**{job: "Error"})
            await rig.until(lambda: rig.jobs.state(job).sources[0].tracks[1].state == ACTIVE)
            video, meta = rig.jobs.state(job).sources[0].tracks
            assert (video.state, video.error) == ("Error", "Incompatible Stream")
            assert meta.error is None

    run(scenario)


def test_aggregate() -> None:
    assert aggregate([]) == IDLE
    assert aggregate([ACTIVE, ACTIVE]) == ACTIVE
    assert aggregate([IDLE, ACTIVE]) == "PartiallyActive"
    assert aggregate(["PartiallyActive", ACTIVE]) == "PartiallyActive"
    assert aggregate([IDLE, "Error", ACTIVE]) == "Error"
    assert not JobState("R", IDLE, ()).mixed


# --- persistence, schedules, history --------------------------------------------------------


def test_jobs_survive_a_restart(engine: Engine, tmp_path: Path) -> None:
    port = free_port()

    async def scenario() -> None:
        async with Rig(engine, tmp_path, port=port) as rig:
            await rig.recording()
            # The spec's client flow: Idle job with an auto receiver, ConfigureReceiver, Active.
            active, config = await rig.jobs.create(
                JobConfiguration("REC", IDLE, 2, (JobSource(auto_create_receiver=True),))
            )
            receiver = config.sources[0].token
            assert receiver is not None
            await rig.receivers.configure(receiver, ReceiverConfig(AUTO_CONNECT, rig.uri))
            await rig.jobs.set_mode(active, ACTIVE)
            idle = await rig.job(IDLE, 7, JobSource(receiver), schedule_token="nights")
            await rig.until_states(**{active: ACTIVE})
            await rig.until_runs(1)
            before = rig.jobs.jobs()
            activated = rig.jobs._jobs[active].activated_us
            assert activated > 0
        async with Rig(engine, tmp_path, port=port) as rig:
            assert rig.jobs.jobs() == before
            assert rig.jobs._jobs[active].activated_us == activated
            assert rig.receivers.get(receiver).auto_created
            await rig.until_states(**{active: ACTIVE, idle: IDLE})
            await rig.until_runs(2)  # recording resumed by itself

    run(scenario)


def window(begin: dt.datetime, end: dt.datetime) -> WeeklyWindow:
    return WeeklyWindow(frozenset({begin.weekday()}), begin.time(), end.time())


def test_schedule_switches_a_job(engine: Engine, tmp_path: Path) -> None:
    """A scheduled high-priority job takes the tracks while its window is open; outside it the
    lower-priority job records."""

    async def scenario() -> None:
        async with Rig(engine, tmp_path) as rig:
            await rig.recording()
            shared = await rig.receiver()
            base = await rig.job(ACTIVE, 1, JobSource(shared))
            timed = await rig.job(ACTIVE, 5, JobSource(shared), schedule_token="S")
            await rig.until_states(**{base: ACTIVE, timed: IDLE})  # no such schedule yet
            now = dt.datetime.now(UTC)
            opens, closes = now + dt.timedelta(seconds=1), now + dt.timedelta(seconds=4)
            rig.jobs.schedules.put(Schedule("S", (window(opens, closes),)))
            assert rig.state(timed) == IDLE
            await rig.until_states(**{timed: ACTIVE, base: IDLE})
            assert dt.datetime.now(UTC) >= opens
            await rig.until_states(**{timed: IDLE, base: ACTIVE})
            assert dt.datetime.now(UTC) >= closes

    run(scenario)


def test_recording_history_events(engine: Engine, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with Rig(engine, tmp_path) as rig:
            await rig.recording()
            job = await rig.job(ACTIVE, 0, JobSource(await rig.receiver()))
            await rig.until_states(**{job: ACTIVE})
            await rig.until(lambda: len({e.source for e in rig.topic(TRACK_STATE)}) == 3)
            await rig.jobs.set_mode(job, IDLE)
            await rig.until(
                lambda: rig.topic(RECORDING_STATE)[-1].data_dict() == {"IsRecording": "false"}
            )
        tracks: dict[str, list[tuple[str, int]]] = {}
        for e in rig.topic(TRACK_STATE):
            source = e.source_dict()
            assert source["RecordingToken"] == "REC"
            tracks.setdefault(source["Track"], []).append(
                (e.data_dict()["IsDataPresent"], e.time_us)
            )
        runs = {
            t: await asyncio.to_thread(rig.store.reader("REC", t).runs)
            for t in ("VIDEO001", "AUDIO001", "META001")
        }
        for token, (run,) in runs.items():  # the events carry the media times of the run
            assert tracks[token] == [("true", run.start_us), ("false", run.end_us)]
        recording = [e.data_dict()["IsRecording"] for e in rig.topic(RECORDING_STATE)]
        assert recording == ["true", "false"]

    run(scenario)


def test_schedule_windows() -> None:
    def at(text: str) -> dt.datetime:
        return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)

    # Monday 2026-11-23; Mon+Wed 22:00 -> 02:00 crosses midnight.
    night = Schedule("night", (WeeklyWindow(frozenset({0, 2}), dt.time(22), dt.time(2)),))
    assert not night.active_at(at("2026-11-23T21:59:59"))
    assert night.active_at(at("2026-11-23T22:00:00"))
    assert night.active_at(at("2026-11-24T01:59:59"))
    assert not night.active_at(at("2026-11-24T02:00:00"))
    assert night.next_change(at("2026-11-23T12:00:00")) == at("2026-11-23T22:00:00")
    assert night.next_change(at("2026-11-23T23:00:00")) == at("2026-11-24T02:00:00")
    assert night.next_change(at("2026-11-24T03:00:00")) == at("2026-11-25T22:00:00")
    always = Schedule("always", (WeeklyWindow(frozenset(range(7)), dt.time(0), dt.time(0)),))
    assert always.active_at(at("2026-11-25T13:00:00"))
    assert always.next_change(at("2026-11-25T13:00:00")) is None
    split = Schedule(
        "split",
        (
            WeeklyWindow(frozenset(range(7)), dt.time(8), dt.time(12)),
            WeeklyWindow(frozenset(range(7)), dt.time(12), dt.time(18)),
        ),
    )
    assert split.next_change(at("2026-11-25T09:00:00")) == at("2026-11-25T18:00:00")
    office = Schedule(
        "office", (WeeklyWindow(frozenset({0}), dt.time(9), dt.time(17)),), "Europe/Berlin"
    )
    assert office.active_at(at("2026-11-23T08:30:00"))  # 09:30 in Berlin
    assert not office.active_at(at("2026-11-23T07:30:00"))


def test_schedule_registry_timers() -> None:
    async def scenario() -> list[tuple[str, bool]]:
        scheduler = AsyncIOScheduler(timezone="UTC")
        scheduler.start()
        registry = ScheduleRegistry(scheduler)
        seen: list[tuple[str, bool]] = []
        registry.subscribe(lambda token, on: seen.append((token, on)))
        now = dt.datetime.now(UTC)
        opens, closes = now + dt.timedelta(seconds=0.5), now + dt.timedelta(seconds=1.5)
        registry.put(Schedule("s", (window(opens, closes),)))
        assert not registry.is_active("s")
        await asyncio.sleep(1.0)
        assert registry.is_active("s")
        await asyncio.sleep(1.0)
        assert not registry.is_active("s")
        hour = dt.timedelta(hours=1)
        registry.put(Schedule("s", (window(now - hour, now + hour),)))
        assert registry.is_active("s")
        registry.remove("s")
        assert not registry.is_active("s") and registry.get("s") is None
        registry.close()
        scheduler.shutdown(wait=False)
        return seen

    assert run(scenario) == [("s", True), ("s", False), ("s", True), ("s", False)]


def test_history_listener_unit() -> None:
    bus = EventBus()
    events: list[Event] = []
    bus.subscribe(events.append)
    history = RecordingHistory(bus)
    history.run_started(TrackRef(7, "REC", "VIDEO001"), 1_000)
    history.run_ended(TrackRef(7, "REC", "VIDEO001"), 5_000)
    history.recording_state("REC", True, 900)
    history.recording_state("REC", True, 950)  # unchanged: nothing published
    history.forget_recording("REC")
    got = [(e.topic, e.data_dict(), e.time_us, e.property_operation) for e in events]
    assert got[:3] == [
        (TRACK_STATE, {"IsDataPresent": "true"}, 1_000, "Initialized"),
        (TRACK_STATE, {"IsDataPresent": "false"}, 5_000, "Changed"),
        (RECORDING_STATE, {"IsRecording": "true"}, 900, "Initialized"),
    ]
    assert [(e.topic, e.property_operation) for e in events[3:]] == [
        (RECORDING_STATE, "Deleted"),
        (TRACK_STATE, "Deleted"),
    ]
    assert events[0].source == (("RecordingToken", "REC"), ("Track", "VIDEO001"))
    assert bus.current_properties() == []


def test_job_xml_is_valid_against_the_onvif_schema() -> None:
    """The ElementItem payloads, placed where trc: responses carry the same types."""
    config = JobConfiguration(
        "REC",
        ACTIVE,
        3,
        (JobSource("RCV", tracks=DEFAULT_TRACKS), JobSource("RCV2")),
        schedule_token="nights",
        event_filter={
            "Filter": [{"Topic": "tns1:VideoSource//.", "Source": None}],
            "After": "PT5S",
        },
    )
    tracks = (
        TrackState("VIDEO", "VIDEO001", ACTIVE),
        TrackState("AUDIO", "AUDIO001", "Error", "Incompatible Stream"),
    )
    state = JobState("REC", "Error", (SourceState("RCV", RECEIVER_SOURCE, "Error", tracks),))
    for response, child, element in (
        (
            "GetRecordingJobConfigurationResponse",
            "JobConfiguration",
            configuration_element(config, "x"),
        ),
        ("GetRecordingJobStateResponse", "State", state_element(state, "x")),
    ):
        envelope = etree.Element(f"{{{SOAP12}}}Envelope", nsmap={"env": SOAP12})
        body = etree.SubElement(envelope, f"{{{SOAP12}}}Body")
        wrapper = etree.SubElement(body, f"{{{TRC}}}{response}", nsmap={"trc": TRC})
        holder = etree.SubElement(wrapper, f"{{{TRC}}}{child}")
        holder.extend(list(element))
        for name, value in element.attrib.items():
            holder.set(name, value)
        assert_valid(envelope, RECORDING_WSDL)
    rendered = state_element(state)
    assert rendered.findtext(f"{{{TT}}}Sources/{{{TT}}}Tracks/{{{TT}}}Track[2]/{{{TT}}}Error") == (
        "Incompatible Stream"
    )
