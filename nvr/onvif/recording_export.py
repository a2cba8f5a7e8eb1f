"""ExportRecordedData & co. (export.md Part A) over the daemon's :class:`ExportManager`.

StorageDestination mapping: we have no StorageConfiguration service, so a StorageToken names
a directory of its own under the data directory, ``<data_dir>/exports/<StorageToken>/``, and
RelativePath a subdirectory of it (created on demand). Tokens with path separators or ``..``
and relative paths leaving that directory are refused with BadConfiguration.

One operation may cover several recordings (SearchScope): one file, and one export job of the
manager, per recording. The operation's progress is the mean of its jobs'; its
``tns1:Monitoring/AsynchronousOperationStatus`` property is Initialized when the token is
handed out, Changed as progress moves and Deleted once every job has ended.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Final

from lxml import etree

from nvr.events import EventBus, Items
from nvr.export.job import ExportRequest
from nvr.export.manager import DELETED, ExportManager, ExportStatus, UnknownOperation
from nvr.onvif import recording_types as rt
from nvr.onvif.device_capabilities import model_element
from nvr.onvif.namespaces import TRC
from nvr.onvif.recording_backend import bad_configuration
from nvr.store import Store
from nvr.store.types import NoRecording, RecordingInfo

EXPORT_FORMAT: Final = "ONVIF"
EXPORTS_DIR: Final = "exports"
OPERATION_STATUS: Final = "tns1:Monitoring/AsynchronousOperationStatus"
OPERATION_NAME: Final = "ExportRecordedData"
SERVICE_NAME: Final = TRC
"""ServiceName of the status events: the spec leaves the string open; the namespace is exact."""
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9._-]+")


# ---- request values ----------------------------------------------------------------------------


def destination_dir(data_dir: Path, destination: rt.StorageReferencePath) -> Path:
    """Where a StorageDestination's files go (see the module docstring)."""
    token = destination.StorageToken or ""
    if not token or token in (".", "..") or "/" in token or "\\" in token:
        raise bad_configuration(f"StorageToken {token[:64]!r} names no storage")
    relative = PurePosixPath(destination.RelativePath or "")
    if relative.is_absolute() or ".." in relative.parts or "\\" in str(relative):
        raise bad_configuration("RelativePath must stay inside the storage")
    return data_dir / EXPORTS_DIR / token / relative


def unix_us(value: dt.datetime | None) -> int | None:
    """An xs:dateTime as Unix microseconds (UTC when it carries no offset)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return (value - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)


def scope_recordings(store: Store, scope: rt.SearchScope | None) -> list[RecordingInfo]:
    """The recordings a SearchScope names: IncludedRecordings (each must exist) plus those
    whose SourceId is one of IncludedSources; all recordings when it names none."""
    recordings = list((scope.IncludedRecordings if scope is not None else None) or ())
    sources = {s.Token for s in (scope.IncludedSources if scope is not None else None) or ()}
    if not recordings and not sources:
        return store.recordings()
    chosen = [store.get_recording(token) for token in dict.fromkeys(recordings)]
    if sources:
        named = {r.token for r in chosen}
        chosen += [r for r in store.recordings() if r.source_id in sources and r.token not in named]
    if not chosen:
        raise NoRecording("no recording has a source of the SearchScope")
    return chosen


def file_name(recording: str, operation: str) -> str:
    safe = _UNSAFE.sub("_", recording).strip("._") or "recording"
    return f"{safe}-{operation[:8]}.mp4"


# ---- operations --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OperationStatus:
    progress: float
    files: tuple[rt.FileProgress, ...]
    finished: bool


class ExportOperations:
    """ONVIF export operations over one :class:`ExportManager`; also its status listener."""

    def __init__(self, manager: ExportManager, bus: EventBus) -> None:
        self.manager = manager
        self.bus = bus
        self._jobs: dict[str, tuple[str, ...]] = {}
        self._operation_of: dict[str, str] = {}
        self._lock = threading.Lock()
        if manager.listener is None:
            manager.listener = self.job_changed

    def start(
        self,
        recordings: Sequence[RecordingInfo],
        start_us: int | None,
        end_us: int | None,
        directory: Path,
        operator: str,
    ) -> tuple[str, list[str]]:
        """Queue one export per recording; returns the operation token and the file names."""
        operation = str(uuid.uuid4())
        directory.mkdir(parents=True, exist_ok=True)
        names = [file_name(r.token, operation) for r in recordings]
        for name in names:
            if (directory / name).exists():
                raise bad_configuration(f"{name} already exists at the StorageDestination")
        tokens = tuple(operation if i == 0 else f"{operation}-{i}" for i in range(len(names)))
        with self._lock:
            self._jobs[operation] = tokens
            self._operation_of.update(dict.fromkeys(tokens, operation))
        for recording, name, token in zip(recordings, names, tokens, strict=True):
            request = ExportRequest(
                recording.token, start_us, end_us, directory / name, operator=operator
            )
            self.manager.start(request, token=token)
        return operation, names

    def _statuses(self, operation: str) -> list[ExportStatus]:
        with self._lock:
            tokens = self._jobs.get(operation)
        if tokens is None:
            raise UnknownOperation(f"no export operation {operation!r}")
        statuses = []
        for token in tokens:
            try:
                statuses.append(self.manager.status(token))
            except UnknownOperation:  # not queued yet (we are inside start) or forgotten
                continue
        if not statuses:
            raise UnknownOperation(f"no export operation {operation!r}")
        return statuses

    def status(self, operation: str) -> OperationStatus:
        """GetExportRecordedDataState."""
        return _combined(self._statuses(operation))

    def stop(self, operation: str) -> OperationStatus:
        """StopExportRecordedData: cancel every job of the operation, then its state."""
        with self._lock:
            tokens = self._jobs.get(operation)
        if tokens is None:
            raise UnknownOperation(f"no export operation {operation!r}")
        return _combined([self.manager.stop(t) for t in tokens])

    def job_changed(self, lifecycle: str, status: ExportStatus) -> None:
        """The manager's listener: the operation's AsynchronousOperationStatus property."""
        with self._lock:
            operation = self._operation_of.get(status.token, status.token)
        try:
            combined = self.status(operation)
        except UnknownOperation:  # a job started elsewhere (not through ONVIF)
            combined = _combined([status])
        source = _status_source(operation)
        if lifecycle == DELETED and combined.finished:
            self.bus.delete_property(OPERATION_STATUS, source)
            return
        self.bus.publish_property(
            OPERATION_STATUS,
            source,
            (("Progress", f"{combined.progress:.4f}"),),
            elements=(("FileProgressStatus", partial(file_progress_element, combined.files)),),
        )


def _status_source(operation: str) -> Items:
    return (("Token", operation), ("OperationName", OPERATION_NAME), ("ServiceName", SERVICE_NAME))


def _combined(statuses: Iterable[ExportStatus]) -> OperationStatus:
    items = list(statuses)
    files = tuple(
        rt.FileProgress(FileName=f.name, Progress=round(f.progress, 4))
        for s in items
        for f in s.files
    )
    progress = sum(s.progress for s in items) / len(items) if items else 0.0
    return OperationStatus(round(progress, 4), files, all(s.state.finished for s in items))


def file_progress_element(files: Sequence[rt.FileProgress]) -> etree._Element:
    """The tt:ArrayOfFileProgress ElementItem of the status event."""
    return model_element(
        rt.ArrayOfFileProgress(FileProgress=list(files)),
        rt.ArrayOfFileProgress,
        "FileProgressStatus",
    )
