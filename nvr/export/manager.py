"""Export jobs keyed by operation token, for ExportRecordedData and friends, run by APScheduler.

``start`` returns the token at once and adds an APScheduler job with that id to the daemon's
scheduler; it runs :meth:`ExportJob.run` on the scheduler's ``export`` thread-pool executor (at
most ``max_parallel`` at a time; the rest wait as PENDING). APScheduler forgets a one-shot job
once it hands it to an executor, so the job's trigger parks it instead (next run 9000-01-01,
never reached): the scheduler's job list shows every export that is waiting or running, and the
job is removed when the export ends. ``status`` is GetExportRecordedDataState; ``stop`` is
StopExportRecordedData: a cooperative cancel (the export looks at it every 64 frames and
removes its partial file) plus removing the job. Without a daemon scheduler the manager runs
its own background scheduler; ``nvr export`` (no daemon, one job in the foreground) calls
:meth:`ExportJob.run` directly, the very function the scheduled job runs.

The optional ``listener`` gets the lifecycle of tns1:Monitoring/AsynchronousOperationStatus:
``Initialized`` when the token is handed out, ``Changed`` as progress moves, ``Deleted`` when
the job ends however it ends. Finished jobs stay queryable until ``keep_finished`` newer ones
have finished.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.base import BaseTrigger

from nvr.export.device_identity import SigningIdentity
from nvr.export.job import ExportError, ExportJob, ExportRequest, ExportResult, JobState
from nvr.export.onvif_file import ExportUnit
from nvr.store import Store

log = logging.getLogger(__name__)

INITIALIZED, CHANGED, DELETED = "Initialized", "Changed", "Deleted"
EXECUTOR = "export"
"""Alias of the scheduler's thread-pool executor that runs exports (blocking work)."""
PARKED = dt.datetime(9000, 1, 1, tzinfo=dt.UTC)


class UnknownOperation(LookupError):
    """No export has this operation token (ONVIF: ter:InvalidArgVal/ter:BadConfiguration)."""


@dataclass(frozen=True, slots=True)
class FileProgress:
    name: str
    progress: float


@dataclass(frozen=True, slots=True)
class ExportStatus:
    token: str
    recording: str
    state: JobState
    progress: float
    """Overall, 0.0 to 1.0."""
    files: tuple[FileProgress, ...]
    error: str | None = None
    result: ExportResult | None = None


Listener = Callable[[str, ExportStatus], None]


class RunOnceThenPark(BaseTrigger):
    """Fire at once, then stay listed until removed (see the module docstring)."""

    def get_next_fire_time(
        self, previous_fire_time: dt.datetime | None, now: dt.datetime
    ) -> dt.datetime:
        return now if previous_fire_time is None else PARKED

    def __str__(self) -> str:
        return "once"


@dataclass
class _Entry:
    job: ExportJob
    done: threading.Event = field(default_factory=threading.Event)
    claimed: bool = False
    """Set by whoever runs the job (a worker, or ``stop`` for a job that never started)."""


class ExportManager:
    def __init__(
        self,
        store: Store,
        identity: SigningIdentity,
        unit: ExportUnit,
        *,
        scheduler: BaseScheduler | None = None,
        max_parallel: int = 2,
        keep_finished: int = 100,
        listener: Listener | None = None,
        durable: bool = True,
    ) -> None:
        self.store = store
        self.identity = identity
        self.unit = unit
        self.listener = listener
        self.durable = durable
        self._keep = keep_finished
        self._own_scheduler = scheduler is None
        self.scheduler: BaseScheduler = scheduler or BackgroundScheduler(timezone="UTC")
        try:
            self.scheduler.add_executor(ThreadPoolExecutor(max_parallel), EXECUTOR)
        except ValueError:  # a previous manager of this scheduler added it
            pass
        if self._own_scheduler:
            self.scheduler.start()
        self._jobs: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def start(self, request: ExportRequest, token: str | None = None) -> str:
        """Queue an export; returns its operation token (= the scheduler job id) immediately."""
        token = token or str(uuid.uuid4())
        job = ExportJob(self.store, request, self.identity, self.unit, durable=self.durable)
        job.on_progress = lambda _fraction: self._notify(CHANGED, token)
        with self._lock:
            if token in self._jobs:
                raise ValueError(f"operation token {token} is in use")
            self._jobs[token] = _Entry(job)
        self._notify(INITIALIZED, token)
        self.scheduler.add_job(
            self._run,
            RunOnceThenPark(),
            args=(token,),
            id=token,
            name=f"export to {request.output.name}",
            executor=EXECUTOR,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )
        return token

    def _claim(self, token: str) -> _Entry | None:
        """The entry if nobody ran it yet (now it is the caller's to run), else None."""
        with self._lock:
            entry = self._jobs.get(token)
            if entry is None or entry.claimed:
                return None
            entry.claimed = True
            return entry

    def _run(self, token: str) -> None:
        """The scheduled job (it may be handed over after ``stop`` already ended it)."""
        entry = self._claim(token)
        if entry is not None:
            self._execute(token, entry)

    def _execute(self, token: str, entry: _Entry) -> None:
        """The export, then its removal from the scheduler."""
        try:
            entry.job.run()
        except ExportError as exc:
            log.info("export %s ended: %s", token, exc)
        except Exception:
            log.exception("export %s failed", token)
        finally:
            self._unschedule(token)
            self._notify(DELETED, token)
            entry.done.set()
            self._forget_old()

    def _unschedule(self, token: str) -> None:
        try:
            self.scheduler.remove_job(token)
        except JobLookupError:  # already removed, or the scheduler was shut down
            pass

    def _forget_old(self) -> None:
        with self._lock:
            finished = [t for t, e in self._jobs.items() if e.job.state.finished]
            for token in finished[: max(0, len(finished) - self._keep)]:
                del self._jobs[token]

    def _entry(self, token: str) -> _Entry:
        with self._lock:
            try:
                return self._jobs[token]
            except KeyError:
                raise UnknownOperation(f"no export operation {token!r}") from None

    def job(self, token: str) -> ExportJob:
        """The export job of an operation token (its plan, hold and state)."""
        return self._entry(token).job

    def status(self, token: str) -> ExportStatus:
        job = self._entry(token).job
        progress = 1.0 if job.state is JobState.COMPLETED else job.progress
        return ExportStatus(
            token,
            job.request.recording,
            job.state,
            progress,
            tuple(FileProgress(name, progress) for name in job.files),
            job.error,
            job.result,
        )

    def stop(self, token: str, wait: float | None = 10.0) -> ExportStatus:
        """Cancel (the partial file is removed), remove the scheduler job, and return the
        state once the job ended or ``wait`` seconds passed."""
        entry = self._entry(token)
        entry.job.cancel()
        self._unschedule(token)
        if self._claim(token) is not None:  # never started: it ends here, at once
            self._execute(token, entry)
        elif wait:
            entry.done.wait(wait)
        return self.status(token)

    def wait(self, token: str, timeout: float | None = None) -> ExportStatus:
        """The state once the job ended; :class:`TimeoutError` after ``timeout`` seconds."""
        if not self._entry(token).done.wait(timeout):
            raise TimeoutError(f"export {token} still running after {timeout} s")
        return self.status(token)

    def tokens(self) -> list[str]:
        with self._lock:
            return list(self._jobs)

    def active_for(self, recording: str) -> list[str]:
        """Unfinished exports of a recording (DeleteRecording waits for them)."""
        with self._lock:
            return [
                t
                for t, e in self._jobs.items()
                if e.job.request.recording == recording and not e.job.state.finished
            ]

    def shutdown(self) -> None:
        """Cancel everything and wait for the jobs (a running one stops within 64 frames)."""
        for token in self.tokens():
            self.stop(token, wait=None)
        with self._lock:
            entries = list(self._jobs.values())
        for entry in entries:
            entry.done.wait()
        if self._own_scheduler and self.scheduler.running:
            self.scheduler.shutdown(wait=True)

    def _notify(self, operation: str, token: str) -> None:
        if self.listener is None:
            return
        try:
            self.listener(operation, self.status(token))
        except Exception:
            log.exception("export listener failed")
