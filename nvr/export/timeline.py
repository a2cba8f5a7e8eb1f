"""Stored frames to file decode times, so that file time = stored capture time.

Inside a segment the store's durations are exact (RTP clock), so samples keep them. Each
segment of a run starts where the store's (slewed, up to 500 ppm) timeline says, so the last
sample before a segment boundary gets the duration that lands the next sample on its stored
time: an hour-long export does not drift from the store's clock. A new run (after a gap)
starts at its stored time; ``tfdt`` carries the jump. Samples are held back by one to learn
their final duration. All arithmetic is integer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from nvr.store.types import Frame

MAX_SEGMENT_CORRECTION_US = 1_000_000
"""A segment start further than this from the running timeline is treated as a gap."""


class UnplannedSampleEntry(LookupError):
    """A frame uses codec parameters the export did not plan for (they changed meanwhile)."""


Sink = Callable[[int, bytes, int, int, bool, int], None]
"""Receives ``(track_id, data, decode_time, duration, key, description_index)``."""


class TrackTimeline:
    """One track's samples in ``timescale`` units relative to ``origin_us``, handed to
    ``sink`` (the file writer) once their duration is final."""

    def __init__(
        self,
        track_id: int,
        timescale: int,
        origin_us: int,
        description_index: Mapping[int, int],
        sink: Sink,
    ) -> None:
        self.track_id = track_id
        self.timescale = timescale
        self.origin_us = origin_us
        self._index = description_index
        self._sink = sink
        self._held: Frame | None = None
        self._held_time = 0
        self._held_duration = 0
        self._held_desc = 0
        self._remainder = 0
        self.samples = 0
        self.end = 0
        """Decode time just past the last sample handed out."""

    def _ticks(self, time_us: int) -> int:
        """Stored time to decode time, to the nearest tick (never before the origin)."""
        return max(0, ((time_us - self.origin_us) * self.timescale + 500_000) // 1_000_000)

    def _rescale(self, frame: Frame) -> int:
        """The frame's duration in the track timescale, carrying the remainder (exact)."""
        total = frame.duration * self.timescale + self._remainder
        ticks = total // frame.clock_rate
        self._remainder = total - ticks * frame.clock_rate
        return ticks

    def push(self, frame: Frame) -> None:
        """Take the next stored frame; the previous one goes to the sink, now complete."""
        held = self._held
        if held is not None and frame.segment_id == held.segment_id:  # the common case
            time = self._held_time + self._held_duration
        elif held is None:
            time = max(self._ticks(frame.time_us), self.end)
        elif frame.run_id != held.run_id:  # a gap: jump to the stored time
            time = max(self._ticks(frame.time_us), self._held_time + self._held_duration)
        else:  # a new segment of the same run: follow its slewed start
            running = self._held_time + self._held_duration
            time = self._ticks(frame.time_us)
            max_shift = MAX_SEGMENT_CORRECTION_US * self.timescale // 1_000_000
            if time <= self._held_time or abs(time - running) > max_shift:
                time = running
            self._held_duration = time - self._held_time
        desc = self._index.get(frame.sample_entry_id)
        if desc is None:
            raise UnplannedSampleEntry(
                f"track {self.track_id}: codec parameters changed at {frame.time_us} during the "
                "export"
            )
        if held is not None:
            self._release(held)
        self._held = frame
        self._held_time = time
        self._held_desc = desc
        self._held_duration = (
            frame.duration if frame.clock_rate == self.timescale else self._rescale(frame)
        )

    def _release(self, held: Frame) -> None:
        self.samples += 1
        self.end = self._held_time + self._held_duration
        self._sink(
            self.track_id,
            held.data,
            self._held_time,
            self._held_duration,
            held.key,
            self._held_desc,
        )

    def finish(self) -> None:
        """Hand out the last frame, with its stored duration."""
        if self._held is not None:
            self._release(self._held)
            self._held = None
