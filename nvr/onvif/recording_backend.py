"""What the Recording service handlers need of the daemon, and engine errors as ONVIF faults.

The store, the ingest engine and the export manager start after the app is built, so they are
looked up on the daemon per call; until they exist a handler answers
``env:Receiver/ter:Action``. Handlers run in worker threads while the job engine lives on the
daemon's event loop: :meth:`RecordingBackend.call` runs a coroutine there and waits. The loop
is remembered by the endpoint when a request arrives (the ASGI side runs on it).

:func:`engine_faults` is the single place engine exceptions become the faults of
recording.md §4.1, so handlers just look things up inside ``with engine_faults():``.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, TypeVar

from nvr.events import Event, EventBus, Items
from nvr.export.manager import UnknownOperation
from nvr.ingest.job_config import (
    BadConfiguration,
    BadMode,
    MaxReceivers,
    MaxRecordingJobs,
    NoRecordingJob,
)
from nvr.onvif.faults import OnvifFault
from nvr.store.types import InvalidToken, NoRecording, NoTrack, TokenInUse

if TYPE_CHECKING:
    from nvr.config import Config
    from nvr.export.manager import ExportManager
    from nvr.ingest.jobs import RecordingJobManager
    from nvr.onvif.recording_export import ExportOperations
    from nvr.store import Store

T = TypeVar("T")

CALL_TIMEOUT: Final = 60.0
"""Seconds a handler waits for the event loop (DeleteRecording may wait for exports first)."""

_SENDER: Final = "Sender"
_RECEIVER: Final = "Receiver"

# exception type -> (env code, subcode chain); first match wins, so subclasses come first.
_FAULTS: Final[tuple[tuple[type[BaseException], str, tuple[str, ...]], ...]] = (
    (NoRecording, _SENDER, ("InvalidArgVal", "NoRecording")),
    (NoTrack, _SENDER, ("InvalidArgVal", "NoTrack")),
    (NoRecordingJob, _SENDER, ("InvalidArgVal", "NoRecordingJob")),
    (BadMode, _SENDER, ("InvalidArgVal", "BadMode")),
    (BadConfiguration, _SENDER, ("InvalidArgVal", "BadConfiguration")),
    (TokenInUse, _SENDER, ("InvalidArgVal", "BadConfiguration")),
    (InvalidToken, _SENDER, ("InvalidArgVal", "BadConfiguration")),
    (UnknownOperation, _SENDER, ("InvalidArgVal", "BadConfiguration")),
    (MaxRecordingJobs, _RECEIVER, ("Action", "MaxRecordingJobs")),
    (MaxReceivers, _RECEIVER, ("Action", "MaxReceivers")),
)


def fault_for(error: BaseException) -> OnvifFault | None:
    """The ONVIF fault an engine error stands for (None: not a client-visible error)."""
    for kind, code, subcodes in _FAULTS:
        if isinstance(error, kind):
            reason = str(error.args[0]) if error.args else subcodes[-1]
            return OnvifFault(code, subcodes, reason[:200])
    return None


@contextmanager
def engine_faults() -> Iterator[None]:
    """Turn the engine errors raised inside into their faults."""
    try:
        yield
    except OnvifFault:
        raise
    except Exception as error:
        fault = fault_for(error)
        if fault is None:
            raise
        raise fault from None


def bad_configuration(reason: str) -> OnvifFault:
    return OnvifFault.sender("InvalidArgVal", "BadConfiguration", reason)


def not_ready() -> OnvifFault:
    return OnvifFault.receiver("Action", "the recorder is not started yet")


@dataclass
class RecordingBackend:
    """The daemon's parts, looked up per call (see the module docstring)."""

    daemon: Any
    config: Config
    loop: asyncio.AbstractEventLoop | None = field(default=None)
    export_operations: ExportOperations | None = None
    """Made on the first export request (see ``recording._operations``)."""

    @property
    def bus(self) -> EventBus:
        bus: EventBus = self.daemon.bus
        return bus

    @property
    def store(self) -> Store:
        store: Store | None = self.daemon.store
        if store is None:
            raise not_ready()
        return store

    @property
    def jobs(self) -> RecordingJobManager:
        ingest = getattr(self.daemon, "ingest", None)
        if ingest is None:
            raise not_ready()
        jobs: RecordingJobManager = ingest.jobs
        return jobs

    @property
    def exports(self) -> ExportManager:
        exports: ExportManager | None = getattr(self.daemon, "exports", None)
        if exports is None:
            raise not_ready()
        return exports

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the daemon's loop and wait for it (engine errors → faults)."""
        if self.loop is None or self.loop.is_closed():
            coroutine.close()
            raise not_ready()
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        with engine_faults():
            return future.result(CALL_TIMEOUT)

    def publish(
        self, topic: str, source: Items, data: Items = (), elements: tuple[Any, ...] = ()
    ) -> None:
        self.bus.publish(Event(topic, source, data, elements=elements))


backend_slot: contextvars.ContextVar[RecordingBackend] = contextvars.ContextVar("recording_backend")
"""Where the Recording endpoint puts the backend for its handlers."""


def current_backend() -> RecordingBackend:
    return backend_slot.get()
