"""Storage directories: registration, identity checks, free space, and where a new segment goes.

A directory is tied to this database by an identity file holding its storage uuid and the
database's ``database_id`` (kept in the ``meta`` table, created on first use). A registered
directory whose identity file is missing (disk not mounted) or names another database (disk
swapped) is marked unavailable and never written into, so recording cannot silently refill an
empty mount point or scribble over another system's disk.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from nvr.db.models import Meta, Segment, StorageDir
from nvr.store.layout import StorageIdentityError, read_identity, write_identity
from nvr.store.settings import StorageDirSettings, StoreSettings
from nvr.store.types import StorageDirStatus, now_us

log = logging.getLogger(__name__)

DATABASE_ID_KEY = "database_id"


def ensure_database_id(sessions: sessionmaker[Session]) -> str:
    """This database's identity, created on first use (two racing processes agree on one)."""
    with sessions() as s:
        value = s.get(Meta, DATABASE_ID_KEY)
        if value is not None:
            return value.value
    try:
        with sessions.begin() as s:
            s.add(Meta(key=DATABASE_ID_KEY, value=str(uuid.uuid4())))
    except IntegrityError:
        pass
    with sessions() as s:
        value = s.get(Meta, DATABASE_ID_KEY)
        assert value is not None
        return value.value


@dataclass(eq=False, slots=True)
class DirHandle:
    """A storage directory at run time. ``writable`` = configured and verified."""

    id: int
    root: Path
    uuid: str
    max_bytes: int | None
    min_free_bytes: int
    writable: bool
    available: bool
    error: str | None = None
    used_at_refresh: int = 0
    written: int = 0
    """Bytes written by this process; only ever grows (the writer thread adds to it)."""
    written_at_refresh: int = 0
    freed_since_refresh: int = 0
    starved: bool = False
    """Retention found nothing more to delete while a cap or floor is violated: no new
    segments go here until it finds room again."""

    @property
    def used_bytes(self) -> int:
        """Our bytes in this directory: the indexed total at the last refresh, plus what was
        written since, minus what deletions reported since."""
        used = self.used_at_refresh + self.written - self.written_at_refresh
        return max(0, used - self.freed_since_refresh)

    def free_bytes(self) -> int:
        try:
            st = os.statvfs(self.root)
        except OSError:
            return 0
        return st.f_bavail * st.f_frsize

    def status(self) -> StorageDirStatus:
        return StorageDirStatus(
            id=self.id,
            path=str(self.root),
            available=self.available,
            writable=self.writable,
            error=self.error,
            free_bytes=self.free_bytes() if self.available else 0,
            used_bytes=self.used_bytes,
            max_bytes=self.max_bytes,
            min_free_bytes=self.min_free_bytes,
        )


class StorageDirs:
    """The storage directories of this store: verified at :meth:`open`, picked per segment."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings: StoreSettings,
        *,
        reserve_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._reserve = reserve_bytes
        """A directory with less free space than this is not picked for a new segment."""
        self._lock = threading.Lock()
        self._by_id: dict[int, DirHandle] = {}
        self._unregistered: list[StorageDirStatus] = []
        self.database_id = ""

    def open(self) -> list[StorageDirStatus]:
        """Register configured directories, verify every known one; returns their status."""
        self.database_id = ensure_database_id(self._sessions)
        handles: dict[int, DirHandle] = {}
        unregistered: list[StorageDirStatus] = []
        configured: set[int] = set()
        for ds in self._settings.dirs:
            handle, problem = self._open_configured(ds)
            if handle is None:
                assert problem is not None
                unregistered.append(problem)
                continue
            handles[handle.id] = handle
            configured.add(handle.id)
        with self._sessions() as s:
            others = s.scalars(select(StorageDir).where(StorageDir.id.not_in(configured))).all()
        for row in others:
            error = self._verify(Path(row.path), row.uuid)
            handles[row.id] = DirHandle(
                id=row.id,
                root=Path(row.path),
                uuid=row.uuid,
                max_bytes=row.max_bytes,
                min_free_bytes=row.min_free_bytes,
                writable=False,
                available=error is None,
                error=error,
            )
        with self._lock:
            self._by_id = handles
            self._unregistered = unregistered
        for h in handles.values():
            if h.error:
                log.error("storage directory %s unavailable: %s", h.root, h.error)
        for p in unregistered:
            log.error("storage directory %s not usable: %s", p.path, p.error)
        self.refresh_usage()
        return self.status()

    def _open_configured(
        self, ds: StorageDirSettings
    ) -> tuple[DirHandle | None, StorageDirStatus | None]:
        root = Path(os.path.abspath(ds.path))
        with self._sessions() as s:
            row = s.scalars(select(StorageDir).where(StorageDir.path == str(root))).first()
        if row is None:
            try:
                row = self._register(root, ds)
            except (StorageIdentityError, OSError) as exc:
                return None, StorageDirStatus(
                    id=None,
                    path=str(root),
                    available=False,
                    writable=False,
                    error=str(exc),
                    free_bytes=0,
                    used_bytes=0,
                    max_bytes=ds.max_bytes,
                    min_free_bytes=ds.min_free_bytes,
                )
        elif (row.max_bytes, row.min_free_bytes) != (ds.max_bytes, ds.min_free_bytes):
            with self._sessions.begin() as s:
                s.execute(
                    update(StorageDir)
                    .where(StorageDir.id == row.id)
                    .values(max_bytes=ds.max_bytes, min_free_bytes=ds.min_free_bytes)
                )
        error = self._verify(root, row.uuid)
        return (
            DirHandle(
                id=row.id,
                root=root,
                uuid=row.uuid,
                max_bytes=ds.max_bytes,
                min_free_bytes=ds.min_free_bytes,
                writable=error is None,
                available=error is None,
                error=error,
            ),
            None,
        )

    def _register(self, root: Path, ds: StorageDirSettings) -> StorageDir:
        """First use of a configured path: adopt its identity file if it is ours (a directory
        that moved), refuse it if it belongs to another database, otherwise create one."""
        storage_uuid: str | None = None
        if root.exists():
            try:
                identity = read_identity(root)
            except StorageIdentityError:
                identity = None
            if identity is not None:
                if identity.get("database_id") != self.database_id:
                    raise StorageIdentityError(
                        f"{root} belongs to database {identity.get('database_id')!r}, "
                        f"not to this one ({self.database_id})"
                    )
                storage_uuid = identity["storage_uuid"]
        with self._sessions.begin() as s:
            if storage_uuid is not None:
                moved = s.scalars(select(StorageDir).where(StorageDir.uuid == storage_uuid)).first()
                if moved is not None:
                    log.warning("storage directory %s moved to %s", moved.path, root)
                    moved.path = str(root)
                    moved.max_bytes = ds.max_bytes
                    moved.min_free_bytes = ds.min_free_bytes
                    return moved
            else:
                storage_uuid = str(uuid.uuid4())
                write_identity(root, storage_uuid, self.database_id)
            row = StorageDir(
                path=str(root),
                uuid=storage_uuid,
                max_bytes=ds.max_bytes,
                min_free_bytes=ds.min_free_bytes,
                created_us=now_us(),
            )
            s.add(row)
            s.flush()
            log.info("registered storage directory %s (%s)", root, storage_uuid)
            return row

    def _verify(self, root: Path, storage_uuid: str) -> str | None:
        """Why the registered directory at ``root`` must not be used, or None if it is ours."""
        try:
            identity = read_identity(root)
        except StorageIdentityError as exc:
            return str(exc)
        if identity.get("storage_uuid") != storage_uuid:
            return (
                f"{root} holds storage {identity.get('storage_uuid')!r}, expected {storage_uuid!r}"
                " (another disk mounted here?)"
            )
        if identity.get("database_id") != self.database_id:
            return f"{root} belongs to database {identity.get('database_id')!r}, not this one"
        return None

    def refresh_usage(self) -> None:
        """Re-read our bytes per directory from the index (a scan: call it rarely)."""
        with self._sessions() as s:
            rows = s.execute(
                select(Segment.storage_dir_id, func.coalesce(func.sum(Segment.bytes), 0)).group_by(
                    Segment.storage_dir_id
                )
            ).all()
        used = {dir_id: int(total) for dir_id, total in rows}
        with self._lock:
            for h in self._by_id.values():
                h.written_at_refresh = h.written
                h.freed_since_refresh = 0
                h.used_at_refresh = used.get(h.id, 0)

    def note_freed(self, dir_id: int, nbytes: int) -> None:
        """Deletion (retention, catalog) reports bytes it removed, so caps stay accurate
        between refreshes."""
        with self._lock:
            h = self._by_id.get(dir_id)
            if h is not None:
                h.freed_since_refresh += nbytes

    def get(self, dir_id: int) -> DirHandle | None:
        return self._by_id.get(dir_id)

    def root(self, dir_id: int) -> Path | None:
        """Where a directory's files are, or None if it is unknown or unavailable."""
        h = self._by_id.get(dir_id)
        return h.root if h is not None and h.available else None

    def handles(self) -> list[DirHandle]:
        return list(self._by_id.values())

    def pick(self) -> DirHandle | None:
        """The directory for a new segment: writable, with room, preferring those under their
        size cap, then the most free space. When every directory is over its cap, the fullest
        is still avoided but recording goes on: retention trims caps, and a cap must not turn
        into a recording gap between two retention sweeps."""
        best: tuple[bool, int, int] | None = None
        chosen: DirHandle | None = None
        for h in list(self._by_id.values()):
            if not h.writable or h.starved:
                continue
            free = h.free_bytes()
            if free < self._reserve:
                continue
            under_cap = h.max_bytes is None or h.used_bytes < h.max_bytes
            rank = (under_cap, free, -h.used_bytes)
            if best is None or rank > best:
                best, chosen = rank, h
        return chosen

    def status(self) -> list[StorageDirStatus]:
        with self._lock:
            handles = list(self._by_id.values())
            unregistered = list(self._unregistered)
        return [h.status() for h in handles] + unregistered
