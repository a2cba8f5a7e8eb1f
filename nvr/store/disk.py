"""Filesystem probes and small file operations used by retention, recovery and fsck.

Everything that asks the operating system about space or walks a storage directory lives here,
so tests can patch one module (``free_bytes``, ``used_bytes``) to simulate a full disk.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from nvr.store.layout import IDENTITY_FILE, StorageIdentityError, read_identity

CHUNK = 1 << 20
LOST_AND_FOUND = "lost+found"
"""Never walked or touched: a filesystem's own folder when a storage dir is a mount point."""

SEGMENT_NAME = re.compile(r"t\d+/\d{4}-\d{2}-\d{2}/-?\d+-[A-Za-z0-9_-]+\.[A-Za-z0-9]+")
"""What ``layout.segment_relpath`` produces: only such files may be deleted as orphans."""


def free_bytes(root: Path) -> int:
    """Bytes an unprivileged writer may still use on the filesystem holding ``root``."""
    st = os.statvfs(root)
    return st.f_bavail * st.f_frsize


def used_bytes(root: Path) -> int:
    """Bytes in use on the whole filesystem: an upper bound of our usage, cheap to get."""
    st = os.statvfs(root)
    return (st.f_blocks - st.f_bfree) * st.f_frsize


def available(root: Path, storage_uuid: str) -> bool:
    """The directory is mounted and is the one the database knows: its identity file matches.

    Retention and recovery skip a directory that fails this, so an unmounted disk is never
    mistaken for lost files (which would wipe its index) or refilled.
    """
    try:
        return read_identity(root).get("storage_uuid") == storage_uuid
    except StorageIdentityError:
        return False


@dataclass(slots=True)
class Walk:
    """One pass over a storage directory: every regular file with its size, and the folders."""

    files: dict[str, int] = field(default_factory=dict)
    """Relative POSIX path -> size in bytes."""
    dirs: list[str] = field(default_factory=list)
    """Relative folder paths, parents before children."""


def walk(root: Path) -> Walk:
    """Walk ``root`` once (scandir, no symlink following), skipping the identity file (and
    its temporaries) and ``lost+found``."""
    out = Walk()
    stack = [""]
    while stack:
        rel = stack.pop()
        try:
            entries = list(os.scandir(root / rel if rel else root))
        except FileNotFoundError:
            continue
        for entry in entries:
            name = f"{rel}/{entry.name}" if rel else entry.name
            # The identity file, its temporaries (see write_atomic) and lost+found.
            if not rel and (IDENTITY_FILE in entry.name or entry.name == LOST_AND_FOUND):
                continue
            if entry.is_dir(follow_symlinks=False):
                out.dirs.append(name)
                stack.append(name)
            elif entry.is_file(follow_symlinks=False):
                out.files[name] = entry.stat(follow_symlinks=False).st_size
    return out


def prune_empty_dirs(root: Path, dirs: list[str]) -> int:
    """Remove the folders of ``dirs`` that are empty, deepest first; returns how many went.

    Only safe while no writer may create a file in them (recovery, before writers start)."""
    removed = 0
    for rel in sorted(dirs, key=lambda d: d.count("/"), reverse=True):
        try:
            os.rmdir(root / rel)
            removed += 1
        except OSError:
            pass
    return removed


def sha256_prefix(path: Path, length: int) -> str | None:
    """Hex SHA-256 of the first ``length`` bytes, or None when the file is shorter."""
    h = hashlib.sha256()
    left = length
    with open(path, "rb") as f:
        while left > 0:
            chunk = f.read(min(CHUNK, left))
            if not chunk:
                return None
            h.update(chunk)
            left -= len(chunk)
    return h.hexdigest()


def truncate(path: Path, length: int) -> None:
    """Cut a file to ``length`` bytes and make the new length durable."""
    with open(path, "r+b") as f:
        f.truncate(length)
        f.flush()
        os.fsync(f.fileno())


def copy_range(src: Path, dst: Path, offset: int, length: int) -> str:
    """Copy ``length`` bytes of ``src`` from ``offset`` into a new file ``dst`` and fsync it;
    returns the SHA-256 of what was written. Raises OSError if ``src`` is too short."""
    h = hashlib.sha256()
    with open(src, "rb") as fin, open(dst, "xb") as fout:
        fin.seek(offset)
        left = length
        while left > 0:
            chunk = fin.read(min(CHUNK, left))
            if not chunk:
                raise OSError(f"{src} ends {left} bytes before its indexed length")
            fout.write(chunk)
            h.update(chunk)
            left -= len(chunk)
        fout.flush()
        os.fsync(fout.fileno())
    return h.hexdigest()
