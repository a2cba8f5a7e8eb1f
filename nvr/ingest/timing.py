"""Capture times and frame durations for one received track (DESIGN.md §4 "Time").

Durations come from the RTP clock and are exact. Wall-clock capture times come from a
min-delay estimate: a frame can only arrive after it was captured, so the smallest
``arrival - rtp_time`` seen over a sliding window is the best offset between the camera's RTP
clock and our clock (network delay and jitter only ever add). A camera RTCP sender report that
agrees with that estimate within a tolerance (its NTP clock is synchronised) replaces it, which
also lines up the tracks of one camera. The store slews its runs towards these capture times by
at most 500 ppm and starts a new run on a step, so this module only has to be honest.

Frames come out one behind: a frame's duration is known when the next one arrives. Pure logic,
no I/O: the caller passes arrival times.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from nvr.protocol.rtp import TimestampUnwrapper


@dataclass(frozen=True, slots=True)
class TimedFrame:
    """An access unit with its capture time and RTP-clock duration, ready for the store."""

    payload: object
    capture_us: int
    duration: int
    rtp_timestamp: int
    """Unwrapped (64-bit) RTP timestamp."""
    discontinuity: bool
    """The RTP timeline broke before this frame (camera restart, timestamp jump)."""


@dataclass(slots=True)
class _Pending:
    payload: object
    ext_ts: int
    arrival_us: int
    discontinuity: bool


class TrackTiming:
    """Per-track timing state; feed frames in arrival order with :meth:`push`."""

    def __init__(
        self,
        clock_rate: int,
        *,
        window_us: int = 10_000_000,
        sr_tolerance_us: int = 500_000,
        max_step_us: int = 1_000_000,
        default_duration: int | None = None,
    ) -> None:
        if clock_rate <= 0:
            raise ValueError(f"clock rate must be positive, got {clock_rate}")
        self.clock_rate = clock_rate
        self._window_us = window_us
        self._sr_tolerance_us = sr_tolerance_us
        self._max_step_us = max_step_us
        self._unwrap = TimestampUnwrapper()
        self._base_ts: int | None = None
        """Unwrapped timestamp of the current timeline's origin."""
        self._offsets: deque[tuple[int, int]] = deque()
        """(arrival_us, arrival_us - media_us) candidates, monotonic in offset (min-queue)."""
        self._sr_offset: int | None = None
        self._pending: _Pending | None = None
        self._last_duration = default_duration or max(1, clock_rate // 25)
        self.sr_used = False
        self.discontinuities = 0

    def _media_us(self, ext_ts: int) -> int:
        assert self._base_ts is not None
        return (ext_ts - self._base_ts) * 1_000_000 // self.clock_rate

    def _offset(self) -> int:
        if self._sr_offset is not None:
            return self._sr_offset
        return self._offsets[0][1]

    def on_sender_report(self, ntp_unix_us: int, rtp_timestamp: int) -> bool:
        """Take a camera RTCP SR (NTP converted to Unix us); returns whether it is trusted.

        It is trusted when it agrees with the min-delay estimate within the tolerance and never
        puts a capture after its arrival; an SR far off (camera clock not synchronised) is
        ignored, so a badly set camera cannot move recordings in time.
        """
        if self._base_ts is None or not self._offsets:
            return False
        ext = self._unwrap_peek(rtp_timestamp)
        offset = ntp_unix_us - self._media_us(ext)
        estimate = self._offsets[0][1]
        trusted = estimate - self._sr_tolerance_us <= offset <= estimate
        self._sr_offset = offset if trusted else None
        self.sr_used = trusted
        return trusted

    def _unwrap_peek(self, ts: int) -> int:
        last = self._unwrap.last
        if last is None:
            return ts
        delta = (ts - last) % (1 << 32)
        if delta >= 1 << 31:
            delta -= 1 << 32
        return last + delta

    def push(self, payload: object, rtp_timestamp: int, arrival_us: int) -> TimedFrame | None:
        """Add a frame; returns the previous frame with its duration now known."""
        ext = self._unwrap.unwrap(rtp_timestamp)
        discontinuity = False
        if self._base_ts is None:
            self._base_ts = ext
        elif self._pending is not None:
            expected = self._pending.arrival_us + (
                (ext - self._pending.ext_ts) * 1_000_000 // self.clock_rate
            )
            if ext < self._pending.ext_ts or abs(arrival_us - expected) > self._max_step_us:
                discontinuity = self._restart_timeline(ext)
        self._observe(arrival_us, self._media_us(ext))
        out = None
        if self._pending is not None:
            out = self._emit(self._pending, ext if not discontinuity else None)
        self._pending = _Pending(payload, ext, arrival_us, discontinuity)
        return out

    def flush(self) -> TimedFrame | None:
        """The held-back last frame, with the previous frame's duration as its estimate."""
        if self._pending is None:
            return None
        out = self._emit(self._pending, None)
        self._pending = None
        return out

    def _restart_timeline(self, ext: int) -> bool:
        self.discontinuities += 1
        self._base_ts = ext
        self._offsets.clear()
        self._sr_offset = None
        self.sr_used = False
        return True

    def _observe(self, arrival_us: int, media_us: int) -> None:
        offset = arrival_us - media_us
        q = self._offsets
        while q and q[-1][1] >= offset:
            q.pop()
        q.append((arrival_us, offset))
        horizon = arrival_us - self._window_us
        while len(q) > 1 and q[0][0] < horizon:
            q.popleft()

    def _emit(self, frame: _Pending, next_ts: int | None) -> TimedFrame:
        if next_ts is not None and next_ts > frame.ext_ts:
            duration = next_ts - frame.ext_ts
            self._last_duration = duration
        else:
            duration = self._last_duration
        capture = self._media_us(frame.ext_ts) + self._offset()
        return TimedFrame(frame.payload, capture, duration, frame.ext_ts, frame.discontinuity)
