"""Ingest time model: exact durations, min-delay anchoring, SR trust, discontinuities."""

from __future__ import annotations

import itertools
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from nvr.ingest.timing import TimedFrame, TrackTiming

T0 = 1_700_000_000_000_000  # a capture instant in Unix us


def feed(timing: TrackTiming, frames: list[tuple[int, int]]) -> list[TimedFrame]:
    out = [f for ts, arr in frames if (f := timing.push(ts, ts, arr)) is not None]
    last = timing.flush()
    return [*out, last] if last else out


def test_durations_are_exact_rtp_differences_across_wrap() -> None:
    timing = TrackTiming(90_000)
    start = (1 << 32) - 3600 * 5
    stamps = [(start + 3600 * i) % (1 << 32) for i in range(20)]
    frames = feed(timing, [(ts, T0 + 40_000 * i) for i, ts in enumerate(stamps)])
    assert [f.duration for f in frames] == [3600] * 20
    assert all(b.capture_us - a.capture_us == 40_000 for a, b in itertools.pairwise(frames))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 80_000), min_size=30, max_size=200), st.integers(0, 2**32 - 1))
def test_capture_time_is_min_delay_estimate(delays: list[int], base: int) -> None:
    """Capture = true capture + the smallest delay seen: never after any arrival."""
    timing = TrackTiming(90_000)
    arrivals = [T0 + 40_000 * i + d for i, d in enumerate(delays)]
    stamps = [(base + 3600 * i) % (1 << 32) for i in range(len(delays))]
    frames = feed(timing, list(zip(stamps, arrivals, strict=False)))
    for i, f in enumerate(frames):
        assert f.capture_us <= arrivals[i]
        # The estimate uses the min delay seen so far (within the window); it converges.
        assert f.capture_us - (T0 + 40_000 * i) == min(delays[: i + 2])


def test_trusted_sender_report_replaces_estimate() -> None:
    timing = TrackTiming(90_000)
    for i in range(10):
        timing.push(i, 3600 * i, T0 + 40_000 * i + 30_000)  # 30 ms network delay
    # The camera says frame 0 was captured at T0 (NTP synchronised): within tolerance.
    assert timing.on_sender_report(T0, 0)
    f = timing.push(10, 36000, T0 + 400_000 + 30_000)
    assert f is not None and f.capture_us == T0 + 9 * 40_000
    # An SR an hour off is ignored.
    assert not timing.on_sender_report(T0 - 3600_000_000, 0)


def test_timestamp_jump_is_a_discontinuity_with_plausible_duration() -> None:
    timing = TrackTiming(90_000)
    frames = [(3600 * i, T0 + 40_000 * i) for i in range(5)]
    frames += [(123_456_789 + 3600 * i, T0 + 200_000 + 40_000 * i) for i in range(5)]
    out = feed(timing, frames)
    assert [f.discontinuity for f in out] == [False] * 5 + [True] + [False] * 4
    assert out[4].duration == 3600  # last before the jump gets the previous duration
    assert abs(out[5].capture_us - (T0 + 200_000)) < 1_000
    assert timing.discontinuities == 1


def test_clock_drift_is_followed_through_the_window() -> None:
    """Camera clock 200 ppm fast: the window keeps the estimate within ~ one window of drift."""
    rng = random.Random(1)
    timing = TrackTiming(90_000, window_us=5_000_000)
    out = feed(
        timing,
        [
            (
                (3600 * i) % (1 << 32),
                T0 + (40_000 * i) * 1_000_000 // 1_000_200 + rng.randrange(5000),
            )
            for i in range(25 * 120)
        ],
    )
    errors = [
        abs(f.capture_us - (T0 + 40_000 * i * 1_000_000 // 1_000_200)) for i, f in enumerate(out)
    ]
    assert max(errors[25 * 10 :]) < 10_000
