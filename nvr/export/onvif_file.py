"""Writing one ONVIF export file: fragmented MP4 with the surveillance boxes, sealed.

Layout (see ``signing.py`` for why): ``ftyp`` (major ``isom``), file-level ``meta{hdlr,
suep, ipro{sinf{cstb, schm, schi{sibo, cert}}}}``, ``moov`` (``mvex``; ``udta/loci`` if the
location is known), then ``moof``+``mdat`` fragments, each ``traf`` with a ``tfdt``. Samples
are written as stored (nothing is transcoded or rewritten). Memory stays at one fragment
whatever the length: fragments go to ``NAME.part`` while the file is hashed; at the end the
signature is patched into ``sibo``, the file fsynced and renamed to ``NAME``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from nvr.export.boxes import (
    Location,
    SourceEntry,
    StartTimes,
    SurveillanceExport,
    file_meta_box,
    signing_instance,
)
from nvr.export.device_identity import SigningIdentity
from nvr.export.output import HashingFile
from nvr.export.signing import seal
from nvr.protocol.mp4 import FileType, FragmentWriter, SampleEntry, TrackSpec, build_moov, mp4_time

VIDE = b"vide"
DEFAULT_FRAGMENT_US = 2_000_000
"""Fragment length when there is no video to cut at key frames."""
MAX_FRAGMENT_US = 10_000_000
"""Even a very long GOP is split after this much media time."""
MAX_FRAGMENT_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ExportTrack:
    """A track of the file: its sample entries (stsd order = description index) and source."""

    track_id: int
    timescale: int
    entries: tuple[SampleEntry, ...]
    source: SourceEntry
    name: str = ""

    @property
    def handler(self) -> bytes:
        return self.entries[0].handler

    def spec(self) -> TrackSpec:
        return TrackSpec(
            self.track_id,
            self.timescale,
            self.entries[0],
            name=self.name or None,
            more_entries=self.entries[1:],
        )


@dataclass(frozen=True, slots=True)
class ExportUnit:
    """The exporting device as ``suep`` names it."""

    name: str
    url: str = ""
    mac: str = ""


@dataclass(frozen=True, slots=True)
class ExportHeader:
    """What the file says about itself; times are Unix microseconds (UTC)."""

    unit: ExportUnit
    export_time_us: int
    origin_us: int
    """UTC of decode time 0 of every track (``cstb``)."""
    operator: str = ""
    location: Location | None = None


@dataclass(frozen=True, slots=True)
class ExportedFile:
    path: Path
    size: int
    digest: bytes
    signature: bytes
    samples: int


def _init_bytes(
    tracks: Sequence[ExportTrack], header: ExportHeader, identity: SigningIdentity
) -> tuple[bytes, int]:
    """``ftyp`` + ``meta`` + ``moov`` and the file offset of the ``sibo`` payload."""
    suep = SurveillanceExport(
        unit_name=header.unit.name,
        unit_url=header.unit.url,
        unit_mac=header.unit.mac,
        unit_time=mp4_time(header.export_time_us // 1_000_000),
        operator=header.operator,
        sources=tuple(t.source for t in tracks),
    )
    start_times = StartTimes.from_unix_us([(t.track_id, header.origin_us) for t in tracks])
    sinf = signing_instance(
        identity.certificate_der,
        identity.signature_size,
        start_times=start_times,
        algorithm_der=None if identity.algorithm.is_default else identity.algorithm.der(),
    )
    ftyp = FileType().encode()
    meta = file_meta_box(suep, [sinf.data])
    moov = build_moov(
        [t.spec() for t in tracks],
        creation_time=mp4_time(header.origin_us // 1_000_000),
        modification_time=mp4_time(header.export_time_us // 1_000_000),
        udta_children=[header.location.encode()] if header.location else (),
    ).encode()
    sibo_at = len(ftyp) + meta.index(sinf.data) + sinf.signature_offset
    return ftyp + meta + moov, sibo_at


class ExportFileWriter:
    """Streams samples into fragments; :meth:`close` seals and publishes the file.

    Fragments are cut before each key frame of the first video track (one per GOP), every
    ``fragment_us`` when there is no video, and at most every ``MAX_FRAGMENT_US`` or
    ``MAX_FRAGMENT_BYTES``; also where a track's timeline jumps (a gap) or its sample entry
    changes, which ``tfdt`` and ``tfhd`` can only express at a fragment start.
    """

    def __init__(
        self,
        path: Path,
        tracks: Sequence[ExportTrack],
        header: ExportHeader,
        identity: SigningIdentity,
        *,
        fragment_us: int = DEFAULT_FRAGMENT_US,
        durable: bool = True,
    ) -> None:
        if not tracks:
            raise ValueError("an export needs at least one track")
        self.path = path
        self._identity = identity
        self._durable = durable
        self._desc = {t.track_id: 1 for t in tracks}
        videos = [t.track_id for t in tracks if t.handler == VIDE]
        self._primary = videos[0] if videos else None
        # Tracks whose pending media time can cut a fragment, and after how many ticks.
        self._limit = {
            t.track_id: (fragment_us if self._primary is None else MAX_FRAGMENT_US)
            * t.timescale
            // 1_000_000
            for t in tracks
            if self._primary is None or t.track_id == self._primary
        }
        self._frags = FragmentWriter([t.spec() for t in tracks])
        self._pending = self._pending_bytes = 0
        self._next: dict[int, int] = {}
        """Per track with pending samples: the decode time that continues them."""
        self._first: dict[int, int] = {}
        self.samples = 0
        init, self._signature_at = _init_bytes(tracks, header, identity)
        self._out = HashingFile(path, identity.algorithm.hash_name)
        try:
            self._out.write(init)
        except BaseException:
            self._out.abort()
            raise
        self._frags.advance(len(init))

    def add(
        self,
        track_id: int,
        data: bytes,
        decode_time: int,
        duration: int,
        key: bool,
        description_index: int = 1,
    ) -> None:
        """One sample at ``decode_time`` (track timescale; never earlier than the last end)."""
        if self._pending:
            expected = self._next.get(track_id)  # None: nothing of this track pending
            limit = self._limit.get(track_id)
            if (
                (key and track_id == self._primary)
                or self._pending_bytes >= MAX_FRAGMENT_BYTES
                or (
                    expected is not None
                    and (
                        decode_time != expected
                        or description_index != self._desc[track_id]
                        or (limit is not None and decode_time - self._first[track_id] >= limit)
                    )
                )
            ):
                self.flush()
        if track_id not in self._next:
            self._first[track_id] = decode_time
        self._next[track_id] = decode_time + duration
        self._desc[track_id] = description_index
        self._pending += 1
        self._pending_bytes += len(data)
        self._frags.add_sample(
            track_id,
            data,
            duration,
            key=key,
            decode_time=decode_time,
            description_index=description_index,
        )
        self.samples += 1

    def flush(self) -> None:
        """Write the pending fragment now."""
        if self._pending:
            self._out.write_all(self._frags.flush_chunks())
            self._pending = self._pending_bytes = 0
            self._next.clear()
            self._first.clear()

    def close(self) -> ExportedFile:
        """Write the last fragment, sign, fsync and rename ``*.part`` to the final name."""
        try:
            self.flush()
            digest = self._out.digest()
            signature = seal(self._out, self._signature_at, self._identity)
            self._out.commit(durable=self._durable)
        except BaseException:
            self._out.abort()
            raise
        return ExportedFile(self.path, self._out.position, digest, signature, self.samples)

    def abort(self) -> None:
        """Stop and remove the partial file."""
        self._out.abort()

    def __enter__(self) -> ExportFileWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self.abort()
