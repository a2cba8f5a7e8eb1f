"""Streaming fragment writer: samples in, ``moof`` + ``mdat`` bytes out.

Memory is bounded by one fragment whatever the file length: the caller feeds samples per track
and asks for a fragment whenever it likes (at a video key frame, every N seconds ...). Only the
random-access index (a few integers per key frame) grows with the file.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field

from nvr.protocol.mp4.box import full_header, header
from nvr.protocol.mp4.index import RandomAccessEntry, build_mfra
from nvr.protocol.mp4.init import TrackSpec
from nvr.protocol.mp4.sample_entry import VIDE

SYNC_SAMPLE_FLAGS = 0x02000000
"""sample_depends_on = 2 (independent), is_non_sync = 0."""
IS_NON_SYNC = 0x00010000
NON_SYNC_SAMPLE_FLAGS = 0x01010000
"""sample_depends_on = 1 (depends on others), is_non_sync = 1."""

# tfhd / trun flag bits (ISO/IEC 14496-12 8.8.7, 8.8.8), shared with the reader.
TFHD_BASE_DATA_OFFSET = 0x000001
TFHD_SAMPLE_DESCRIPTION_INDEX = 0x000002
TFHD_DEFAULT_DURATION = 0x000008
TFHD_DEFAULT_SIZE = 0x000010
TFHD_DEFAULT_FLAGS = 0x000020
TFHD_DURATION_IS_EMPTY = 0x010000
TFHD_DEFAULT_BASE_IS_MOOF = 0x020000
TRUN_DATA_OFFSET = 0x000001
TRUN_FIRST_SAMPLE_FLAGS = 0x000004
TRUN_DURATION = 0x000100
TRUN_SIZE = 0x000200
TRUN_FLAGS = 0x000400
TRUN_CTO = 0x000800

_I32_MAX = 0x7FFFFFFF
_U32_MAX = 0xFFFFFFFF
_ENTRY3 = struct.Struct(">III")
_ENTRY4 = struct.Struct(">IIIi")


@dataclass
class _TrackState:
    track_id: int
    index_every_sync: bool
    entry_count: int = 1
    description_index: int = 1
    next_time: int = 0
    base_time: int = 0
    data: list[bytes] = field(default_factory=list)
    durations: array[int] = field(default_factory=lambda: array("Q"))
    flags: array[int] = field(default_factory=lambda: array("Q"))
    ctos: array[int] = field(default_factory=lambda: array("q"))
    nbytes: int = 0
    random_access: list[RandomAccessEntry] = field(default_factory=list)

    def reset(self) -> None:
        self.data = []
        self.durations = array("Q")
        self.flags = array("Q")
        self.ctos = array("q")
        self.nbytes = 0
        self.base_time = self.next_time


class FragmentWriter:
    """Accumulates samples per track and serialises them as one fragment on :meth:`flush`.

    ``offset`` is the file position of the next fragment (normally ``len(init_segment)``); it
    feeds the ``tfra`` moof offsets. If the caller writes other boxes between fragments it must
    report them with :meth:`advance`.
    """

    def __init__(
        self,
        tracks: Iterable[TrackSpec],
        *,
        offset: int = 0,
        sequence_number: int = 1,
    ) -> None:
        self._tracks: dict[int, _TrackState] = {}
        for spec in tracks:
            if spec.track_id in self._tracks:
                raise ValueError(f"duplicate track id {spec.track_id}")
            # Video: index every key frame; audio/metadata (all sync): first sample per fragment.
            self._tracks[spec.track_id] = _TrackState(
                spec.track_id, spec.handler == VIDE, len(spec.entries)
            )
        if not self._tracks:
            raise ValueError("at least one track is required")
        self.offset = offset
        self.sequence_number = sequence_number

    def advance(self, nbytes: int) -> None:
        """Account for ``nbytes`` written by the caller between fragments."""
        if nbytes < 0:
            raise ValueError("negative advance")
        self.offset += nbytes

    def next_decode_time(self, track_id: int) -> int:
        """Decode time the next sample of ``track_id`` will get."""
        return self._state(track_id).next_time

    def pending_duration(self, track_id: int) -> int:
        state = self._state(track_id)
        return state.next_time - state.base_time

    def pending_samples(self, track_id: int) -> int:
        return len(self._state(track_id).data)

    @property
    def pending_bytes(self) -> int:
        return sum(s.nbytes for s in self._tracks.values())

    def _state(self, track_id: int) -> _TrackState:
        try:
            return self._tracks[track_id]
        except KeyError:
            raise ValueError(f"unknown track id {track_id}") from None

    def add_sample(
        self,
        track_id: int,
        data: bytes,
        duration: int,
        *,
        key: bool,
        composition_offset: int = 0,
        decode_time: int | None = None,
        description_index: int = 1,
    ) -> None:
        """Queue one access unit; ``duration`` and times are in the track timescale.

        ``decode_time`` places the sample explicitly (e.g. a track starting later than others,
        or after a gap). A jump is only possible at a fragment boundary, because ``tfdt`` is
        the only place a fragment can express it: flush first. Likewise ``description_index``
        (1-based, into ``TrackSpec.entries``) can only change at a fragment boundary.
        """
        state = self._state(track_id)
        if not 0 <= duration <= _U32_MAX:
            raise ValueError(f"track {track_id}: duration {duration} out of range")
        if len(data) > _U32_MAX:
            raise ValueError(f"track {track_id}: sample of {len(data)} bytes is too large")
        if not -(1 << 31) <= composition_offset <= _I32_MAX:
            raise ValueError(f"track {track_id}: composition offset out of range")
        if not 1 <= description_index <= state.entry_count:
            raise ValueError(f"track {track_id}: no sample entry number {description_index}")
        if description_index != state.description_index:
            if state.data:
                raise ValueError(
                    f"track {track_id}: sample entry changes inside a fragment; flush first"
                )
            state.description_index = description_index
        if decode_time is not None and decode_time != state.next_time:
            if state.data:
                raise ValueError(
                    f"track {track_id}: decode time {decode_time} jumps from {state.next_time} "
                    "inside a fragment; flush first"
                )
            if decode_time < state.next_time:
                raise ValueError(
                    f"track {track_id}: decode time {decode_time} goes back before "
                    f"{state.next_time}"
                )
            state.next_time = state.base_time = decode_time
        state.data.append(bytes(data))
        state.durations.append(duration)
        state.flags.append(SYNC_SAMPLE_FLAGS if key else NON_SYNC_SAMPLE_FLAGS)
        state.ctos.append(composition_offset)
        state.nbytes += len(data)
        state.next_time += duration

    def flush_chunks(self) -> list[bytes]:
        """The next fragment as ``[moof + mdat header, sample, sample, ...]``; ``[]`` if empty.

        Returning chunks lets the caller write samples without joining them into one buffer.
        """
        active = [s for s in self._tracks.values() if s.data]
        if not active:
            return []
        trafs = [_traf_size(s) for s in active]
        moof_size = 8 + 16 + sum(trafs)
        payload = sum(s.nbytes for s in active)
        mdat_header = header(b"mdat", payload)
        data_offset = moof_size + len(mdat_header)
        if data_offset + payload > _I32_MAX:
            raise ValueError("fragment larger than 2 GiB; flush more often")
        moof_offset = self.offset
        parts = [
            header(b"moof", moof_size - 8),
            header(b"mfhd", 8),
            full_header(0, 0),
            self.sequence_number.to_bytes(4, "big"),
        ]
        for number, state in enumerate(active, start=1):
            parts.append(_traf(state, data_offset))
            data_offset += state.nbytes
            self._index(state, moof_offset, number)
        parts.append(mdat_header)
        chunks = [b"".join(parts)]
        for state in active:
            chunks.extend(state.data)
            state.reset()
        self.sequence_number += 1
        self.offset += len(chunks[0]) + payload
        return chunks

    def flush(self) -> bytes:
        """The next fragment (``moof`` + ``mdat``) as one byte string; ``b""`` if empty."""
        return b"".join(self.flush_chunks())

    def _index(self, state: _TrackState, moof_offset: int, traf_number: int) -> None:
        time = state.base_time
        for i, (duration, flags) in enumerate(zip(state.durations, state.flags, strict=True)):
            if flags == SYNC_SAMPLE_FLAGS:
                # tfra times are unsigned presentation times; a negative one (no edit list)
                # is clamped to the timeline origin.
                pts = max(0, time + state.ctos[i])
                state.random_access.append(
                    RandomAccessEntry(pts, moof_offset, traf_number, 1, i + 1)
                )
                if not state.index_every_sync:
                    break
            time += duration

    def random_access(self) -> dict[int, list[RandomAccessEntry]]:
        """Key-frame entries so far, per track id, for ``tfra``."""
        return {tid: list(s.random_access) for tid, s in self._tracks.items()}

    def mfra(self) -> bytes:
        """``mfra`` (``tfra`` per track + ``mfro``) for the fragments flushed so far.

        Call after the last :meth:`flush`; the box must be the last one in the file.
        """
        return build_mfra({tid: s.random_access for tid, s in self._tracks.items()})


def _has_cto(state: _TrackState) -> bool:
    return any(state.ctos)


def _traf_size(state: _TrackState) -> int:
    entry = 16 if _has_cto(state) else 12
    tfhd = 16 if state.description_index == 1 else 20
    tfdt = 20
    trun = 8 + 4 + 4 + 4 + entry * len(state.data)
    return 8 + tfhd + tfdt + trun


def _traf(state: _TrackState, data_offset: int) -> bytes:
    cto = _has_cto(state)
    n = len(state.data)
    trun_flags = TRUN_DATA_OFFSET | TRUN_DURATION | TRUN_SIZE | TRUN_FLAGS
    if cto:
        trun_flags |= TRUN_CTO
    version = 1 if cto and min(state.ctos) < 0 else 0
    entry = 16 if cto else 12
    out = bytearray()
    out += header(b"traf", _traf_size(state) - 8)
    if state.description_index == 1:  # the trex default
        out += header(b"tfhd", 8) + full_header(0, TFHD_DEFAULT_BASE_IS_MOOF)
        out += state.track_id.to_bytes(4, "big")
    else:
        tf_flags = TFHD_DEFAULT_BASE_IS_MOOF | TFHD_SAMPLE_DESCRIPTION_INDEX
        out += header(b"tfhd", 12) + full_header(0, tf_flags)
        out += state.track_id.to_bytes(4, "big") + state.description_index.to_bytes(4, "big")
    out += header(b"tfdt", 12) + full_header(1, 0) + state.base_time.to_bytes(8, "big")
    out += header(b"trun", 12 + entry * n) + full_header(version, trun_flags)
    out += n.to_bytes(4, "big") + data_offset.to_bytes(4, "big", signed=True)
    sizes = (len(d) for d in state.data)
    if cto:
        pack4 = _ENTRY4.pack
        for d, s, f, c in zip(state.durations, sizes, state.flags, state.ctos, strict=True):
            out += pack4(d, s, f, c)
    else:
        pack3 = _ENTRY3.pack
        for d, s, f in zip(state.durations, sizes, state.flags, strict=True):
            out += pack3(d, s, f)
    return bytes(out)
