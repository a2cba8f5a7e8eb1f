"""Build store contents directly (rows + files), without the writer, for the retention,
recovery and fsck tests: synthetic frames of 100 ms at 90 kHz, a key frame every second."""

from __future__ import annotations

import hashlib
import itertools
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from nvr.db.models import (
    Hold,
    Recording,
    Run,
    SampleEntry,
    Segment,
    SegmentFrames,
    StorageDir,
    Track,
)
from nvr.store.frame_index import decode_all, encode
from nvr.store.layout import segment_relpath, write_identity

T0 = 1_700_000_000_000_000
"""2023-11-14T22:13:20Z: the start of every test's footage."""
CLOCK = 90_000
FRAME_TICKS = 9_000
FRAME_US = 100_000
S = 1_000_000
_salt = itertools.count()


def payload(seed: int, index: int, key: bool) -> bytes:
    """A frame's bytes: unique per (seed, index), size depending on the frame kind."""
    size = 600 + index % 5 if key else 100 + index % 7
    head = f"{seed}:{index}:".encode()
    return (head * (size // len(head) + 1))[:size]


@dataclass
class Seg:
    id: int
    path: str
    start_us: int
    end_us: int
    frames: list[bytes]
    file: Path

    @property
    def bytes(self) -> int:
        return sum(len(f) for f in self.frames)


@dataclass
class SynthStore:
    sessions: sessionmaker[Session]
    root: Path
    dir_id: int
    entry_id: int
    segs: dict[int, Seg] = field(default_factory=dict)

    @classmethod
    def create(
        cls,
        sessions: sessionmaker[Session],
        root: Path,
        *,
        max_bytes: int | None = None,
        min_free_bytes: int = 0,
    ) -> SynthStore:
        storage_uuid = str(uuid.uuid4())
        write_identity(root, storage_uuid, "test-db")
        with sessions.begin() as s:
            dir_id = s.execute(
                insert(StorageDir)
                .values(
                    path=str(root),
                    uuid=storage_uuid,
                    max_bytes=max_bytes,
                    min_free_bytes=min_free_bytes,
                    created_us=T0,
                )
                .returning(StorageDir.id)
            ).scalar_one()
            entry_id = s.execute(
                insert(SampleEntry)
                .values(digest=storage_uuid, codec="H264", clock_rate=CLOCK, created_us=T0)
                .returning(SampleEntry.id)
            ).scalar_one()
        return cls(sessions, root, dir_id, entry_id)

    def recording(self, token: str, retention_us: int = 0) -> int:
        with self.sessions.begin() as s:
            return s.execute(
                insert(Recording)
                .values(token=token, max_retention_us=retention_us, created_us=T0)
                .returning(Recording.id)
            ).scalar_one()

    def track(self, recording_id: int, token: str = "VIDEO001") -> int:
        with self.sessions.begin() as s:
            return s.execute(
                insert(Track)
                .values(recording_id=recording_id, token=token, kind="Video", created_us=T0)
                .returning(Track.id)
            ).scalar_one()

    def run(
        self,
        track_id: int,
        start_us: int,
        segments: int,
        *,
        seconds: int = 10,
        open_last: bool = False,
    ) -> tuple[int, list[Seg]]:
        """A run of ``segments`` back-to-back segments of ``seconds`` each."""
        end_us = start_us + segments * seconds * S
        with self.sessions.begin() as s:
            run_id = s.execute(
                insert(Run)
                .values(track_id=track_id, start_us=start_us, end_us=end_us, open=open_last)
                .returning(Run.id)
            ).scalar_one()
        segs = [
            self.segment(
                track_id,
                run_id,
                start_us + i * seconds * S,
                frames=seconds * 10,
                open=open_last and i == segments - 1,
            )
            for i in range(segments)
        ]
        return run_id, segs

    def segment(
        self, track_id: int, run_id: int, start_us: int, *, frames: int = 100, open: bool = False
    ) -> Seg:
        data = [payload(start_us // 1000, i, i % 10 == 0) for i in range(frames)]
        blob = encode([(len(f), FRAME_TICKS, i % 10 == 0) for i, f in enumerate(data)])
        content = b"".join(data)
        rel = segment_relpath(track_id, start_us, "H264", f"s{next(_salt)}")
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        with self.sessions.begin() as s:
            seg_id = s.execute(
                insert(Segment)
                .values(
                    track_id=track_id,
                    run_id=run_id,
                    sample_entry_id=self.entry_id,
                    storage_dir_id=self.dir_id,
                    path=rel,
                    start_us=start_us,
                    end_us=start_us + frames * FRAME_US,
                    clock_rate=CLOCK,
                    duration=frames * FRAME_TICKS,
                    frames=frames,
                    key_frames=(frames + 9) // 10,
                    bytes=len(content),
                    sha256=None if open else hashlib.sha256(content).hexdigest(),
                    open=open,
                )
                .returning(Segment.id)
            ).scalar_one()
            s.execute(insert(SegmentFrames).values(segment_id=seg_id, blob=blob))
        seg = Seg(seg_id, rel, start_us, start_us + frames * FRAME_US, data, path)
        self.segs[seg_id] = seg
        return seg

    def hold(
        self,
        recording_id: int,
        start_us: int,
        end_us: int,
        *,
        track_id: int | None = None,
        expires_us: int | None = None,
    ) -> None:
        with self.sessions.begin() as s:
            s.execute(
                insert(Hold).values(
                    recording_id=recording_id,
                    track_id=track_id,
                    start_us=start_us,
                    end_us=end_us,
                    created_us=T0,
                    expires_us=expires_us,
                )
            )

    # -- reading back ----------------------------------------------------------------------

    def rows(self, track_id: int | None = None) -> list[Segment]:
        with self.sessions() as s:
            q = select(Segment).order_by(Segment.start_us, Segment.id)
            if track_id is not None:
                q = q.where(Segment.track_id == track_id)
            return list(s.scalars(q))

    def runs(self, track_id: int) -> list[Run]:
        with self.sessions() as s:
            return list(
                s.scalars(select(Run).where(Run.track_id == track_id).order_by(Run.start_us))
            )

    def stored_frames(self, seg_id: int) -> list[bytes]:
        """The frames of a segment as the index and its file say now."""
        with self.sessions() as s:
            row = s.get(Segment, seg_id)
            blob = s.get(SegmentFrames, seg_id)
            assert row is not None and blob is not None
            data = (self.root / row.path).read_bytes()[: row.bytes]
        return [data[f.offset : f.offset + f.size] for f in decode_all(blob.blob)]

    def files(self) -> set[str]:
        return {
            p.relative_to(self.root).as_posix()
            for p in self.root.rglob("*")
            if p.is_file() and p.name != ".nvr-storage.json"
        }
