"""The export output file: the same bytes and digest with or without helper threads; a write
error reaches the caller; an aborted file leaves nothing behind."""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

import pytest

from nvr.export import output
from nvr.export.output import HashingFile

CHUNKS = [bytes([n]) * (1000 + n * 997) for n in range(200)]


@pytest.mark.parametrize("threaded", [False, True])
def test_bytes_digest_patch_and_commit(tmp_path: Path, threaded: bool) -> None:
    path = tmp_path / "out.mp4"
    out = HashingFile(path, threaded=threaded)
    out.write(memoryview(b"head"))
    for i in range(0, len(CHUNKS), 7):
        out.write_all(CHUNKS[i : i + 7])
        assert not path.exists() and out.part.exists()
    data = b"head" + b"".join(CHUNKS)
    assert out.digest() == hashlib.sha256(data).digest() and out.position == len(data)
    out.patch(0, b"HEAD")  # not hashed: the signature slot
    assert out.commit(durable=True) == path
    assert path.read_bytes() == b"HEAD" + data[4:] and not out.part.exists()


@pytest.mark.parametrize("threaded", [False, True])
def test_write_error_reaches_the_caller_and_abort_cleans_up(
    tmp_path: Path, threaded: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(fd: int, chunks: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(output, "writev_all", full)
    out = HashingFile(tmp_path / "out.mp4", threaded=threaded)
    with pytest.raises(OSError, match="No space left"):
        for _ in range(100):
            out.write_all(CHUNKS[:3])
        out.digest()
    out.abort()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("threaded", [False, True])
def test_hash_follows_the_file_across_blocks_and_writeback(
    tmp_path: Path, threaded: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small read-back blocks and writeback steps: many of each, same digest as the bytes."""
    monkeypatch.setattr(output, "HASH_BLOCK", 4096)
    monkeypatch.setattr(output, "WRITEBACK_BYTES", 64 * 1024)
    path = tmp_path / "out.mp4"
    out = HashingFile(path, threaded=threaded)
    written = hashlib.sha256()
    for _ in range(5):
        for chunk in CHUNKS:
            out.write_all([chunk, memoryview(chunk)[:17]])
            written.update(chunk + chunk[:17])
    assert out.digest() == written.digest()
    out.commit(durable=False)
    assert hashlib.sha256(path.read_bytes()).digest() == written.digest()
