"""The output file of an export: written as ``NAME.part``, hashed in write order, renamed when
complete.

Hashing and writing each run on a helper thread, both fed the same fragments in order (their
chunks, written with one ``writev``, never joined). ``hashlib`` and ``writev`` release the GIL,
so with spare cores hashing, writing and reading the store for the next fragment overlap. At
most ``QUEUE`` fragments wait per thread: memory stays bounded whatever the export length.
Written data is handed to writeback as the export goes, so the final fsync is short and the
export does not crowd the page cache.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

QUEUE = 8
MIN_CPUS_FOR_THREADS = 4
WRITEBACK_BYTES = 32 * 1024 * 1024
_IOV_MAX = 1024
_HASHLIB_NAMES = {"SHA1": "sha1", "SHA256": "sha256", "SHA384": "sha384", "SHA512": "sha512"}


def new_hash(name: str) -> hashlib._Hash:
    return hashlib.new(_HASHLIB_NAMES[name])


def part_path(path: Path) -> Path:
    """Where a file is written before it is complete and signed."""
    return path.with_name(path.name + ".part")


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    """``os.write`` until everything is written (short writes happen near a full disk)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def writev_all(fd: int, chunks: Sequence[bytes]) -> None:
    """Write the chunks in order with ``writev`` (no joining copy), however short it returns."""
    for i in range(0, len(chunks), _IOV_MAX):
        group = chunks[i : i + _IOV_MAX]
        done = os.writev(fd, group)
        if done < sum(map(len, group)):  # rare (a signal, a nearly full disk): finish simply
            write_all(fd, b"".join(group)[done:])


class HashingFile:
    """A new file whose every byte is hashed in write order. :meth:`patch` writes without
    hashing (the signature over the zero-filled placeholder that was hashed); :meth:`commit`
    renames ``*.part`` into place. Chunks are kept until written: do not reuse buffers."""

    def __init__(
        self, path: Path, hash_name: str = "SHA256", *, threaded: bool | None = None
    ) -> None:
        self.path = path
        self.part = part_path(path)
        self._hash = new_hash(hash_name)
        self._fd = os.open(self.part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        self._error: BaseException | None = None
        self._written = self._flushed = 0
        self._workers: list[tuple[threading.Thread, queue.Queue[Sequence[bytes] | None]]] = []
        if threaded is None:  # three busy threads (reader, hash, write) need the cores
            threaded = len(os.sched_getaffinity(0)) >= MIN_CPUS_FOR_THREADS
        if threaded:
            for name, work in (("hash", self._update), ("write", self._store)):
                q: queue.Queue[Sequence[bytes] | None] = queue.Queue(QUEUE)
                thread = threading.Thread(
                    target=self._drain, args=(q, work), name=f"export-{name}", daemon=True
                )
                thread.start()
                self._workers.append((thread, q))
        self.position = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Queue ``data`` (copied if it is not ``bytes``: the caller may reuse its buffer)."""
        self.write_all([data if isinstance(data, bytes) else bytes(data)])

    def write_all(self, chunks: Sequence[bytes]) -> None:
        """Several chunks in order (a fragment: its header and its samples), kept until
        written: they must not change meanwhile."""
        if self._error is not None:
            raise self._error
        self.position += sum(map(len, chunks))
        if not self._workers:
            self._update(chunks)
            self._store(chunks)
        for _, q in self._workers:
            q.put(chunks)

    def _update(self, chunks: Sequence[bytes]) -> None:
        update = self._hash.update
        for chunk in chunks:
            update(chunk)

    def _store(self, chunks: Sequence[bytes]) -> None:
        writev_all(self._fd, chunks)
        self._written += sum(map(len, chunks))
        if self._written - self._flushed >= WRITEBACK_BYTES:
            # Start writing back what is done (the final fsync then has little left) and
            # let the kernel drop it from the page cache: an export is written once.
            os.posix_fadvise(self._fd, self._flushed, 0, os.POSIX_FADV_DONTNEED)
            self._flushed = self._written

    def _drain(
        self, q: queue.Queue[Sequence[bytes] | None], work: Callable[[Sequence[bytes]], None]
    ) -> None:
        while (chunks := q.get()) is not None:
            if self._error is None:
                try:
                    work(chunks)
                except BaseException as exc:  # reported to the producer on its next call
                    self._error = exc

    def _stop_workers(self) -> None:
        for _, q in self._workers:
            q.put(None)
        for thread, _ in self._workers:
            thread.join()
        self._workers = []

    def _settle(self) -> None:
        """Everything written and hashed; the helper threads are done."""
        self._stop_workers()
        if self._error is not None:
            raise self._error

    def digest(self) -> bytes:
        self._settle()
        return self._hash.digest()

    def patch(self, offset: int, data: bytes) -> None:
        self._settle()
        os.pwrite(self._fd, data, offset)

    def commit(self, *, durable: bool = True) -> Path:
        """Write the rest (fsync if ``durable``), close, rename ``*.part`` to the final name."""
        self._settle()
        if durable:
            os.fsync(self._fd)
        os.close(self._fd)
        self._fd = -1
        os.replace(self.part, self.path)
        if durable:
            fsync_dir(self.path.parent)
        return self.path

    def abort(self) -> None:
        """Stop, close and remove the partial file."""
        self._error = self._error or RuntimeError("aborted")
        self._stop_workers()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self.part.unlink(missing_ok=True)
