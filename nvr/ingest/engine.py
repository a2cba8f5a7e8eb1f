"""The ingest engine of one daemon: receivers, recording jobs and schedules as one unit.

The daemon starts it after the store is open (receivers first, so jobs resuming from the
database find them) and stops it before the store closes (jobs first: their recorders end
the store runs, then the receivers hang up), so the store's final checkpoint covers every
frame that arrived. :meth:`IngestEngine.ensure_demo` creates the demo camera's receiver,
recording and job on first use and reuses them afterwards.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any, Final

from sqlalchemy.orm import Session, sessionmaker

from nvr.events import EventBus
from nvr.ingest.history import RecordingHistory
from nvr.ingest.job_config import ACTIVE, JobConfiguration, JobSource, JobTrack
from nvr.ingest.jobs import RecordingJobManager
from nvr.ingest.receiver_config import AUTO_CONNECT, ReceiverConfig, UnknownReceiver
from nvr.ingest.receivers import ReceiverManager
from nvr.ingest.schedules import ScheduleRegistry
from nvr.secretbox import SecretBox
from nvr.store import Store
from nvr.store.types import NoRecording

__all__ = ["DEMO_JOB", "DEMO_RECEIVER", "DEMO_RECORDING", "IngestEngine"]

log = logging.getLogger("nvr.ingest")

DEMO_RECEIVER: Final = "demo-receiver"
DEMO_RECORDING: Final = "demo-recording"
DEMO_JOB: Final = "demo-job"
DEMO_TRACKS: Final = (
    JobTrack("VIDEO", "VIDEO001"),
    JobTrack("AUDIO", "AUDIO001"),
    JobTrack("METADATA", "META001"),
)


class IngestEngine:
    """Receivers + recording jobs + schedules over one store and event bus; ``box`` seals
    the camera passwords in the database (the daemon's secret box)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        store: Store,
        bus: EventBus,
        scheduler: Any = None,
        *,
        history: RecordingHistory | None = None,
        box: SecretBox | None = None,
    ) -> None:
        self.store = store
        self.receivers = ReceiverManager(sessions, bus, box=box)
        self.schedules = ScheduleRegistry(scheduler)
        self.jobs = RecordingJobManager(
            sessions,
            store,
            self.receivers,
            bus,
            schedules=self.schedules,
            history=history,
        )

    async def start(self) -> None:
        await self.receivers.start()
        await self.jobs.start()

    async def stop(self) -> None:
        await self.jobs.stop()
        await self.receivers.stop()
        self.schedules.close()

    def health(self) -> dict[str, Any]:
        """Counts and states of receivers and jobs (``/healthz``)."""
        receivers = []
        for info in self.receivers.list():
            try:
                last_error = self.receivers.status(info.token).last_error
            except UnknownReceiver:  # deleted meanwhile
                continue
            receivers.append(
                {
                    "token": info.token,
                    "mode": info.config.mode,
                    "state": info.state,
                    "auto_created": info.auto_created,
                    "last_error": last_error,
                }
            )
        jobs = self.jobs.status()
        return {
            "receivers": {
                "count": len(receivers),
                "states": dict(Counter(r["state"] for r in receivers)),
                "items": receivers,
            },
            "jobs": {
                "count": len(jobs),
                "states": dict(Counter(j["state"] for j in jobs)),
                "items": jobs,
            },
        }

    async def ensure_demo(self, media_uri: str) -> None:
        """The demo camera's receiver (AutoConnect to ``media_uri``), recording and Active
        job: created on the first start, reused after (the URI follows the RTSP port). A job
        an operator has since set Idle stays Idle."""
        wanted = ReceiverConfig(mode=AUTO_CONNECT, media_uri=media_uri)
        try:
            current = self.receivers.get(DEMO_RECEIVER)
        except UnknownReceiver:
            await self.receivers.create(wanted, token=DEMO_RECEIVER)
        else:
            if current.config != wanted:
                await self.receivers.configure(DEMO_RECEIVER, wanted)
        try:
            await asyncio.to_thread(self.store.get_recording, DEMO_RECORDING)
        except NoRecording:
            await asyncio.to_thread(
                self.store.create_recording,
                DEMO_RECORDING,
                source_id=media_uri,
                source_name="Demo camera",
                source_location="nvr",
                source_description="The built-in simulated camera (nvr serve --demo)",
                source_address=media_uri,
                content="Demo camera",
            )
        if DEMO_JOB not in {token for token, _ in self.jobs.jobs()}:
            config = JobConfiguration(
                DEMO_RECORDING, ACTIVE, 1, (JobSource(DEMO_RECEIVER, tracks=DEMO_TRACKS),)
            )
            await self.jobs.create(config, token=DEMO_JOB)
            log.info("demo camera: receiver, recording and job created")
