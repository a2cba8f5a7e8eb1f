"""Export jobs keyed by operation token, for ExportRecordedData and friends.

``start`` returns the token at once and runs the job on a worker thread (at most
``max_parallel`` at a time; the rest wait as PENDING). ``status`` is
GetExportRecordedDataState, ``stop`` is StopExportRecordedData. The optional ``listener``
gets the lifecycle of tns1:Monitoring/AsynchronousOperationStatus: ``Initialized`` when the
token is handed out, ``Changed`` as progress moves, ``Deleted`` when the job ends however it
ends. Finished jobs stay queryable until ``keep_finished`` newer ones have finished.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from nvr.export.device_identity import SigningIdentity
from nvr.export.job import ExportError, ExportJob, ExportRequest, ExportResult, JobState
from nvr.export.onvif_file import ExportUnit
from nvr.store import Store

log = logging.getLogger(__name__)

INITIALIZED, CHANGED, DELETED = "Initialized", "Changed", "Deleted"


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


class ExportManager:
    def __init__(
        self,
        store: Store,
        identity: SigningIdentity,
        unit: ExportUnit,
        *,
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
        self._pool = ThreadPoolExecutor(max_parallel, thread_name_prefix="export")
        self._jobs: OrderedDict[str, tuple[ExportJob, Future[None] | None]] = OrderedDict()
        self._lock = threading.Lock()

    def start(self, request: ExportRequest, token: str | None = None) -> str:
        """Queue an export; returns its operation token immediately."""
        token = token or str(uuid.uuid4())
        job = ExportJob(self.store, request, self.identity, self.unit, durable=self.durable)
        job.on_progress = lambda _fraction: self._notify(CHANGED, token)
        with self._lock:
            if token in self._jobs:
                raise ValueError(f"operation token {token} is in use")
            self._jobs[token] = (job, None)
        self._notify(INITIALIZED, token)
        with self._lock:  # before the worker can finish and forget it
            self._jobs[token] = (job, self._pool.submit(self._run, token, job))
        return token

    def _run(self, token: str, job: ExportJob) -> None:
        try:
            job.run()
        except ExportError as exc:
            log.info("export %s ended: %s", token, exc)
        except Exception:
            log.exception("export %s failed", token)
        finally:
            self._notify(DELETED, token)
            self._forget_old()

    def _forget_old(self) -> None:
        with self._lock:
            finished = [t for t, (j, _) in self._jobs.items() if j.state.finished]
            for token in finished[: max(0, len(finished) - self._keep)]:
                del self._jobs[token]

    def _job(self, token: str) -> tuple[ExportJob, Future[None] | None]:
        with self._lock:
            try:
                return self._jobs[token]
            except KeyError:
                raise UnknownOperation(f"no export operation {token!r}") from None

    def status(self, token: str) -> ExportStatus:
        job, _ = self._job(token)
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
        """Cancel (the partial file is removed) and return the state once the job ended or
        ``wait`` seconds passed."""
        job, future = self._job(token)
        job.cancel()
        if wait and future is not None:
            try:
                future.result(timeout=wait)
            except Exception:
                pass
        return self.status(token)

    def wait(self, token: str, timeout: float | None = None) -> ExportStatus:
        _, future = self._job(token)
        if future is not None:
            future.result(timeout=timeout)
        return self.status(token)

    def tokens(self) -> list[str]:
        with self._lock:
            return list(self._jobs)

    def active_for(self, recording: str) -> list[str]:
        """Unfinished exports of a recording (DeleteRecording waits for them)."""
        with self._lock:
            return [
                t
                for t, (j, _) in self._jobs.items()
                if j.request.recording == recording and not j.state.finished
            ]

    def shutdown(self) -> None:
        """Cancel everything and wait for the workers (a job stops within 64 frames)."""
        with self._lock:
            jobs = [j for j, _ in self._jobs.values()]
        for job in jobs:
            job.cancel()
        self._pool.shutdown(wait=True, cancel_futures=False)

    def _notify(self, operation: str, token: str) -> None:
        if self.listener is None:
            return
        try:
            self.listener(operation, self.status(token))
        except Exception:
            log.exception("export listener failed")
