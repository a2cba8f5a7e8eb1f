"""Export fixtures: signing identities, and recordings of real encoded media in a store.

Scenario ``camera`` (recording CAM1): H.264 160x120 at 25 fps, GOP 10 (0.4 s), segments of
2 s; run 1 from T0 to T0+4 s, a 2 s gap, run 2 from T0+6 s whose resolution changes to
176x144 at T0+8 s (a new sample entry at a key frame, same run). AAC audio with the same gap,
ONVIF metadata every 0.5 s throughout. Scenario ``hevc`` (recording CAM2): H.265 with PCMU
audio and metadata, one run. The session-scoped exports run on SQLite; the tests that are
about the database (holds, jobs) build their own small recordings on each backend.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine

from nvr.db.engine import make_engine
from nvr.db.migrate import upgrade
from nvr.export.device_identity import SigningIdentity, generate_identity
from nvr.export.job import ExportJob, ExportRequest, ExportResult
from nvr.export.onvif_file import ExportUnit
from nvr.store import Store
from tests.export.media import (
    Written,
    audio_clip,
    metadata_schedule,
    schedule,
    video_clip,
    write_track,
)
from tests.store.helpers import make_settings

T0 = 1_750_000_000_000_000
"""2025-06-15T15:06:40Z."""
S = 1_000_000
UNIT = ExportUnit("nvr test unit", "http://nvr.example/onvif/device_service", "08:00:27:00:0C:15")


@pytest.fixture(scope="session")
def identity() -> SigningIdentity:
    return generate_identity("export test device", key_bits=2048)


@pytest.fixture(scope="session")
def other_identity() -> SigningIdentity:
    return generate_identity("export test device", key_bits=2048)


def open_store(engine: Engine, root: Path) -> Store:
    store = Store(engine, make_settings(root, segment_seconds=2))
    store.open()
    return store


def record_camera(store: Store, token: str = "CAM1") -> dict[str, Written]:
    store.create_recording(
        token,
        source_name="Entrance camera",
        source_address="http://10.1.2.3/onvif/device_service",
        source_location="geo:52.520008,13.404954,34",
    )
    small, large = video_clip(), video_clip(width=176, height=144)
    aac = audio_clip("AAC")
    video = (
        schedule(small, T0, count=100)
        + schedule(small, T0 + 6 * S, count=50)
        + schedule(large, T0 + 8 * S, count=50)
    )
    audio = schedule(aac, T0, seconds=4) + schedule(aac, T0 + 6 * S, seconds=4)
    return {
        "VIDEO001": write_track(store, token, "VIDEO001", video),
        "AUDIO001": write_track(store, token, "AUDIO001", audio),
        "META001": write_track(store, token, "META001", metadata_schedule(T0, 10)),
    }


def record_hevc(store: Store, token: str = "CAM2") -> dict[str, Written]:
    store.create_recording(token, source_name="Yard camera")
    video = schedule(video_clip("H265"), T0, count=100)
    audio = schedule(audio_clip("PCMU"), T0, seconds=4)
    return {
        "VIDEO001": write_track(store, token, "VIDEO001", video),
        "AUDIO001": write_track(store, token, "AUDIO001", audio),
        "META001": write_track(store, token, "META001", metadata_schedule(T0, 4)),
    }


@dataclass(frozen=True)
class Exported:
    path: Path
    request: ExportRequest
    result: ExportResult
    written: dict[str, Written]


def export(
    store: Store, identity: SigningIdentity, request: ExportRequest, **kw: object
) -> ExportResult:
    return ExportJob(store, request, identity, UNIT, durable=False, **kw).run()  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def sqlite_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Path]]:
    root = tmp_path_factory.mktemp("export-store")
    engine = make_engine(f"sqlite:///{root / 'nvr.db'}")
    upgrade(engine)
    store = open_store(engine, root)
    yield store, root
    store.close()
    engine.dispose()


@pytest.fixture(scope="session")
def camera_export(sqlite_store: tuple[Store, Path], identity: SigningIdentity) -> Exported:
    """CAM1 from T0+1.3 s (between key frames: starts at T0+1.2 s) to T0+9.5 s: both runs,
    the gap and the resolution change."""
    store, root = sqlite_store
    written = record_camera(store)
    request = ExportRequest(
        "CAM1", T0 + 1_300_000, T0 + 9_500_000, root / "camera.mp4", operator="Officer Dibble"
    )
    return Exported(request.output, request, export(store, identity, request), written)


@pytest.fixture(scope="session")
def hevc_export(sqlite_store: tuple[Store, Path], identity: SigningIdentity) -> Exported:
    store, root = sqlite_store
    written = record_hevc(store)
    request = ExportRequest("CAM2", T0 + 500_000, T0 + 3 * S, root / "hevc.mp4")
    return Exported(request.output, request, export(store, identity, request), written)
