"""Where media files live inside a storage directory, and the identity file that ties a
directory to one database, so a swapped or unmounted disk is detected instead of refilled."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from nvr.durable import write_atomic

IDENTITY_FILE = ".nvr-storage.json"

CODEC_EXTENSIONS = {
    "H264": "h264",
    "H265": "h265",
    "JPEG": "mjpeg",
    "AAC": "aac",
    "PCMU": "ulaw",
    "PCMA": "alaw",
    "ONVIF-METADATA": "xml",
}


class StorageIdentityError(RuntimeError):
    """A storage directory is missing, unreadable, or belongs to another database."""


def segment_relpath(track_id: int, start_us: int, codec: str, salt: str) -> str:
    """``t<track>/<UTC date>/<start_us>-<salt>.<ext>``: one folder a track a day keeps
    directories small and lets an operator find a day's files by eye. ``salt`` keeps names
    unique when two segments of one track share a start (a restart within a microsecond)."""
    day = dt.datetime.fromtimestamp(start_us // 1_000_000, dt.UTC).strftime("%Y-%m-%d")
    ext = CODEC_EXTENSIONS.get(codec, "bin")
    return f"t{track_id}/{day}/{start_us}-{salt}.{ext}"


def write_identity(root: Path, storage_uuid: str, database_id: str) -> None:
    """Create the identity file (atomically) in a directory we have just registered."""
    root.mkdir(parents=True, exist_ok=True)
    doc = {"storage_uuid": storage_uuid, "database_id": database_id}
    write_atomic(root / IDENTITY_FILE, json.dumps(doc).encode(), 0o644)


def read_identity(root: Path) -> dict[str, str]:
    path = root / IDENTITY_FILE
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise StorageIdentityError(
            f"storage directory {root} has no {IDENTITY_FILE}: not mounted, or not ours"
        ) from None
    except (OSError, ValueError) as exc:
        raise StorageIdentityError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict) or "storage_uuid" not in data:
        raise StorageIdentityError(f"{path} is not a storage identity file")
    return data
