"""What a replay PLAY asks for (replay.md B.4, B.6), sans-IO: request headers in, a plan out.

The plan says where to start (the requested time: the caller looks the clean point up in the
store), in which direction, which frames, how to pace, and where to stop. Everything that can
be decided without the store is decided here, so it is unit-tested without sockets or a
database; the replay session only adds the index look-ups.

Times are integer microseconds since the Unix epoch. Range values arrive in nanoseconds: a
start is rounded down (a request for 10:15:00.4405 starts with the frame of 10:15:00.440), a
forward end is rounded up (RFC 2326 ranges are half-open, frames *before* the end are sent).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from nvr.protocol.rtsp_headers import (
    NOW,
    ClockRange,
    Frames,
    HeaderError,
    NptRange,
    RangeValue,
    format_range,
    format_rate_control,
    format_scale,
    format_speed,
    parse_frames,
    parse_immediate,
    parse_range,
    parse_rate_control,
    parse_scale,
    parse_speed,
)

__all__ = [
    "INVALID_RANGE",
    "Extent",
    "Plan",
    "PlanError",
    "PlayRequest",
    "make_plan",
    "parse_play_request",
    "response_headers",
]

INVALID_RANGE = 457
_ONE = Fraction(1)


class PlanError(Exception):
    """The PLAY cannot be served as asked; ``status`` is the RTSP answer (457 Invalid Range)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class PlayRequest:
    """The replay headers of one PLAY; ``None`` means the client did not send the header."""

    range: RangeValue | None = None
    scale: Decimal | None = None
    speed: Decimal | None = None
    rate_control: bool | None = None
    frames: Frames | None = None
    immediate: bool = False

    @property
    def reverse(self) -> bool:
        return self.scale is not None and self.scale < 0


def parse_play_request(headers: Mapping[str, str] | object) -> PlayRequest:
    """Read Range, Scale, Speed, Rate-Control, Frames and Immediate (HeaderError if malformed).

    ``headers`` needs a ``get(name)`` that is case-insensitive (``nvr.protocol.rtsp.Headers``).
    """
    get = headers.get  # type: ignore[attr-defined]

    def parsed(name: str, parse):  # type: ignore[no-untyped-def]
        value = get(name)
        return None if value is None else parse(value)

    scale = parsed("Scale", parse_scale)
    speed = parsed("Speed", parse_speed)
    if scale is not None and scale == 0:
        raise HeaderError("Scale: 0 is not a playback rate")
    if speed is not None and speed <= 0:
        raise HeaderError("Speed: must be positive")
    return PlayRequest(
        range=parsed("Range", parse_range),
        scale=scale,
        speed=speed,
        rate_control=parsed("Rate-Control", parse_rate_control),
        frames=parsed("Frames", parse_frames),
        immediate=bool(parsed("Immediate", parse_immediate)),
    )


@dataclass(frozen=True, slots=True)
class Extent:
    """The recorded data of the tracks being played: oldest start, newest end, and whether a
    run is still being recorded (the live edge moves)."""

    start_us: int
    end_us: int
    live: bool = False


@dataclass(frozen=True, slots=True)
class Plan:
    """One PLAY's delivery plan.

    ``start_us`` is the requested start (the clean point is looked up from it, B.6);
    ``end_us`` is exclusive going forward and a lower bound going backward (the GOP holding it
    is the last one sent), None for an open range. ``scale`` and ``speed`` are magnitudes;
    ``jump`` marks a new position (a Range was given), so the first access unit carries D if
    anything was sent before. ``requested`` holds the header values in force (this PLAY's, or
    the previous one's where this one left a header out), for the echo and the next PLAY.
    """

    start_us: int
    end_us: int | None
    reverse: bool
    key_only: bool
    min_spacing_us: int
    rate_control: bool
    scale: Fraction
    speed: Fraction
    jump: bool
    immediate: bool
    requested: PlayRequest
    echo_rate_control: bool = False

    @property
    def with_audio(self) -> bool:
        """Audio goes along only at normal rate, forward, with every frame (B.7: not in
        reverse; at other rates or in a key-frame scan it would be noise)."""
        return not self.reverse and self.scale == _ONE and not self.key_only

    @property
    def closed(self) -> bool:
        return self.end_us is not None

    def same_selection(self, other: Plan) -> bool:
        """Whether ``other`` reads the same frames in the same order (a running reader can be
        reused: a PLAY without Range after PAUSE continues exactly where it stopped)."""
        return (
            self.reverse == other.reverse
            and self.key_only == other.key_only
            and self.min_spacing_us == other.min_spacing_us
            and self.with_audio == other.with_audio
            and self.end_us == other.end_us
        )


def _floor_us(ns: int) -> int:
    return ns // 1000


def _ceil_us(ns: int) -> int:
    return -(-ns // 1000)


def _npt_us(value: int | str | None, extent: Extent) -> int | None:
    """npt is relative to the start of the recorded data; ``now`` is the newest data."""
    if value is None:
        return None
    if value == NOW:
        return extent.end_us
    assert isinstance(value, int)
    return extent.start_us + value // 1000


def _requested_bounds(req: PlayRequest, extent: Extent) -> tuple[int | None, int | None]:
    """(start, end) in µs as the client wrote them; None where it left one out."""
    rng = req.range
    if isinstance(rng, ClockRange):
        start = None if rng.start is None else _floor_us(rng.start)
        if rng.end is None:
            return start, None
        return start, _floor_us(rng.end) if req.reverse else _ceil_us(rng.end)
    if isinstance(rng, NptRange):
        return _npt_us(rng.start, extent), _npt_us(rng.end, extent)
    return None, None


def make_plan(
    req: PlayRequest,
    extent: Extent,
    *,
    position_us: int | None = None,
    previous: Plan | None = None,
) -> Plan:
    """Turn a PLAY into a plan (PlanError with 457 for a range that cannot be played).

    ``position_us`` is the capture time of the last access unit sent by this session (None if
    nothing was sent yet): a PLAY without a start resumes there. ``previous`` is the plan of
    the previous PLAY: a PLAY without Range keeps its end, and the headers it leaves out keep
    their values (RFC 2326: Scale and Speed stay in force until changed).
    """
    kept = previous.requested if previous is not None and req.range is None else None
    scale = req.scale if req.scale is not None else (kept.scale if kept else None)
    speed = req.speed if req.speed is not None else (kept.speed if kept else None)
    rate_control = req.rate_control
    if rate_control is None:
        rate_control = kept.rate_control if kept and kept.rate_control is not None else True
    frames = req.frames if req.frames is not None else (kept.frames if kept else None)
    frames = frames or Frames()
    reverse = scale is not None and scale < 0
    if rate_control:
        scale_abs = Fraction(abs(scale)) if scale is not None else _ONE
        speed_abs = Fraction(speed) if speed is not None else _ONE
    else:  # B.4: with Rate-Control no only the direction of Scale counts
        scale_abs = speed_abs = _ONE

    start, end = _requested_bounds(req, extent)
    if req.range is None and previous is not None and previous.reverse == reverse:
        end = previous.end_us
    if start is None:
        if position_us is not None:
            start = position_us
        else:
            start = extent.end_us if reverse else extent.start_us
    _check_range(start, end, reverse, extent)
    if not reverse and extent.live and start > extent.end_us:
        start = extent.end_us  # not recorded yet: start at the live edge
    return Plan(
        start_us=start,
        end_us=end,
        reverse=reverse,
        key_only=frames.kind == "intra",
        min_spacing_us=(frames.interval_ms or 0) * 1000,
        rate_control=rate_control,
        scale=scale_abs,
        speed=speed_abs,
        jump=req.range is not None,
        immediate=req.immediate,
        requested=PlayRequest(req.range, scale, speed, rate_control, frames, req.immediate),
        echo_rate_control=req.rate_control is not None,
    )


def _check_range(start: int, end: int | None, reverse: bool, extent: Extent) -> None:
    """457 for a range that runs against the direction or holds no recorded data."""
    if end is not None:
        if end == start:
            raise PlanError(INVALID_RANGE, "empty range")
        if (end < start) != reverse:
            raise PlanError(
                INVALID_RANGE,
                "a decreasing range needs a negative Scale"
                if end < start
                else "reverse replay needs a decreasing range",
            )
    if reverse:
        if start < extent.start_us:
            raise PlanError(INVALID_RANGE, "reverse start before the recorded data")
        if end is not None and end >= extent.end_us:
            raise PlanError(INVALID_RANGE, "range after the recorded data")
        return
    if not extent.live and start >= extent.end_us:
        raise PlanError(INVALID_RANGE, "start after the recorded data")
    if end is not None and end <= extent.start_us:
        raise PlanError(INVALID_RANGE, "range before the recorded data")


def response_headers(plan: Plan, actual_start_us: int) -> list[tuple[str, str]]:
    """Range with the actual start (the clean point, B.4), and the effective values of the
    replay headers the client sent (gst-rtsp-server echoes Rate-Control; RFC 2326 answers
    Scale and Speed with what the server really does)."""
    end_ns = None if plan.end_us is None else plan.end_us * 1000
    headers = [("Range", format_range(ClockRange(actual_start_us * 1000, end_ns)))]
    req = plan.requested
    if req.scale is not None:
        value = Decimal(plan.scale.numerator) / Decimal(plan.scale.denominator)
        headers.append(("Scale", format_scale(-value if plan.reverse else value)))
    if req.speed is not None:
        value = Decimal(plan.speed.numerator) / Decimal(plan.speed.denominator)
        headers.append(("Speed", format_speed(value)))
    if plan.echo_rate_control:
        headers.append(("Rate-Control", format_rate_control(plan.rate_control)))
    return headers
