"""The output file of an export: written as ``NAME.part``, hashed in write order, renamed when
complete.

The caller's thread writes (each fragment's chunks with one ``writev``, never joined). With
two or more CPUs a helper thread hashes *behind* it: it reads back what was written, from the
page cache, in ``HASH_BLOCK`` reads into one reused buffer, and feeds those to the hash. Both
``pread`` and ``hashlib`` release the GIL for such buffers, so the helper needs the GIL only a
few times per block, the writer never waits for it (no queue of fragments, no per-chunk
hand-off), and the hash covers exactly the bytes in the file. With one CPU the chunks are
hashed as they are written. Hashed data is handed to writeback as the export goes, so the
final fsync is short and the export does not crowd the page cache.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path

from nvr.durable import fsync_dir

MIN_CPUS_FOR_THREADS = 2
HASH_BLOCK = 4 * 1024 * 1024
WRITEBACK_BYTES = 32 * 1024 * 1024
_IOV_MAX = 1024
_HASHLIB_NAMES = {"SHA1": "sha1", "SHA256": "sha256", "SHA384": "sha384", "SHA512": "sha512"}

Chunk = bytes | bytearray | memoryview


def new_hash(name: str) -> hashlib._Hash:
    return hashlib.new(_HASHLIB_NAMES[name])


def part_path(path: Path) -> Path:
    """Where a file is written before it is complete and signed."""
    return path.with_name(path.name + ".part")


def write_all(fd: int, data: Chunk) -> None:
    """``os.write`` until everything is written (short writes happen near a full disk)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def writev_all(fd: int, chunks: Sequence[Chunk]) -> None:
    """Write the chunks in order with ``writev`` (no joining copy), however short it returns."""
    for i in range(0, len(chunks), _IOV_MAX):
        group = chunks[i : i + _IOV_MAX]
        done = os.writev(fd, group)
        if done < sum(map(len, group)):  # rare (a signal, a nearly full disk): finish simply
            write_all(fd, b"".join(group)[done:])


class HashingFile:
    """A new file whose every byte is hashed in write order. :meth:`patch` writes without
    hashing (the signature over the zero-filled placeholder that was hashed); :meth:`commit`
    renames ``*.part`` into place."""

    def __init__(
        self, path: Path, hash_name: str = "SHA256", *, threaded: bool | None = None
    ) -> None:
        self.path = path
        self.part = part_path(path)
        self._hash = new_hash(hash_name)
        self._fd = os.open(self.part, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        self._error: BaseException | None = None
        self.position = 0
        """Bytes written."""
        self._hashed = 0
        self._advised = (0, 0)
        self._closing = False
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        if threaded is None:
            threaded = len(os.sched_getaffinity(0)) >= MIN_CPUS_FOR_THREADS
        if threaded:
            self._thread = threading.Thread(target=self._follow, name="export-hash", daemon=True)
            self._thread.start()

    def write(self, data: Chunk) -> None:
        self.write_all([data])

    def write_all(self, chunks: Sequence[Chunk]) -> None:
        """Several chunks in order (a fragment: its header and its samples)."""
        if self._error is not None:
            raise self._error
        try:
            writev_all(self._fd, chunks)
        except BaseException as exc:
            self._error = exc
            raise
        size = sum(map(len, chunks))
        if self._thread is None:
            update = self._hash.update
            for chunk in chunks:
                update(chunk)
            self.position = self._hashed = self.position + size
            self._writeback()
            return
        with self._changed:
            self.position += size
            self._changed.notify()

    def _follow(self) -> None:
        """The hashing thread: read back and hash whatever was written, until closed."""
        block = memoryview(bytearray(HASH_BLOCK))
        try:
            while True:
                with self._changed:
                    while self._hashed == self.position and not self._closing:
                        self._changed.wait()
                    end = self.position
                if self._hashed == end or self._error is not None:  # done, or aborted
                    return
                while self._hashed < end and self._error is None:
                    view = block[: min(HASH_BLOCK, end - self._hashed)]
                    if os.preadv(self._fd, [view], self._hashed) != len(view):
                        raise OSError(f"{self.part} shrank while it was being written")
                    self._hash.update(view)
                    self._hashed += len(view)
                    self._writeback()
        except BaseException as exc:  # reported to the writer on its next call
            self._error = self._error or exc

    def _writeback(self) -> None:
        """Every ``WRITEBACK_BYTES`` of hashed data: start writing it back, and let the kernel
        drop the block before it (clean by now) from the page cache: an export is written
        once. Unhashed data is never advised (it must stay cached to be read back)."""
        older, newer = self._advised
        if self._hashed - newer >= WRITEBACK_BYTES:
            os.posix_fadvise(self._fd, older, self._hashed - older, os.POSIX_FADV_DONTNEED)
            self._advised = (newer, self._hashed)

    def _settle(self) -> None:
        """Everything written is hashed; the helper thread is done."""
        if self._thread is not None:
            with self._changed:
                self._closing = True
                self._changed.notify()
            self._thread.join()
            self._thread = None
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
        try:
            self._settle()
        except BaseException:
            pass
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self.part.unlink(missing_ok=True)
