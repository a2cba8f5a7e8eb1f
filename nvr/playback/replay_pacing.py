"""Rate-Control yes: presentation times and send times (replay.md B.4, B.7; RFC 2326 App. B).

The session has one presentation timeline in microseconds, shared by all its tracks (so they
stay in sync) and continuous across PLAYs; RTP timestamps are taken from it. A plan maps
capture time onto it: forward ``p = p0 + (capture - anchor) / scale``, reverse
``p = p0 + (anchor - capture) / scale`` (inside a GOP, sent oldest first, presentation times
decrease; successive GOPs increase). Recording gaps are cut out of the timeline: real-time
replay jumps over them (the D bit tells the client) instead of sitting silent for hours.

Send times follow presentation times at ``speed``: ``wall = wall0 + (p - p0) / speed``. A
reverse GOP is due when its newest frame (the one shown first) is.
"""

from __future__ import annotations

from fractions import Fraction

__all__ = ["Pacer"]


class Pacer:
    """Maps capture times of one plan to presentation times and due times (loop seconds)."""

    __slots__ = (
        "_anchor",
        "_covered",
        "_den",
        "_num",
        "_skipped",
        "p0",
        "reverse",
        "speed",
        "wall0",
    )

    def __init__(
        self,
        p0_us: int,
        wall0: float,
        *,
        scale: Fraction = Fraction(1),
        speed: Fraction = Fraction(1),
        reverse: bool = False,
    ) -> None:
        if scale <= 0 or speed <= 0:
            raise ValueError("scale and speed are magnitudes: positive")
        self.p0 = p0_us
        self.wall0 = wall0
        self.speed = speed
        self.reverse = reverse
        self._num, self._den = scale.numerator, scale.denominator
        self._anchor: int | None = None
        self._skipped = 0
        self._covered: int | None = None  # forward: end of data sent; reverse: its start

    def _map(self, delta_us: int) -> int:
        return self.p0 + delta_us * self._den // self._num

    def forward(self, capture_us: int, duration_us: int, new_run: bool) -> int:
        """Presentation time of a forward access unit; ``new_run``: it follows a gap."""
        if self._anchor is None:
            self._anchor = capture_us
        covered = self._covered
        if new_run and covered is not None and capture_us > covered:
            self._skipped += capture_us - covered
        end = capture_us + duration_us
        if covered is None or end > covered:
            self._covered = end
        return self._map(capture_us - self._anchor - self._skipped)

    def reverse_gop(self, first_us: int, end_us: int, after_gap: bool) -> None:
        """Enter the next reverse GOP (its oldest capture and the end of its newest frame);
        ``after_gap``: the GOP sent before it began a block, so a gap lies in between."""
        if self._anchor is None:
            self._anchor = end_us
        covered = self._covered
        if after_gap and covered is not None and end_us < covered:
            self._skipped += covered - end_us
        if covered is None or first_us < covered:
            self._covered = first_us

    def backward(self, capture_us: int, duration_us: int) -> int:
        """Presentation time of a frame of the current reverse GOP (its display ends at the
        capture time of its start: the picture after it in recording order is shown before)."""
        assert self._anchor is not None, "reverse_gop() first"
        return self._map(self._anchor - capture_us - duration_us - self._skipped)

    def span(self, duration_us: int) -> int:
        """How long ``duration_us`` of recording lasts on the presentation clock."""
        return duration_us * self._den // self._num

    def due(self, presentation_us: int) -> float:
        """Loop time at which the access unit at ``presentation_us`` should be sent."""
        return self.wall0 + float(Fraction(presentation_us - self.p0, 1_000_000) / self.speed)

    def presentation_at(self, wall: float) -> int:
        """The presentation time (µs) playing at loop time ``wall`` (for sender reports)."""
        elapsed = Fraction(wall - self.wall0) if wall > self.wall0 else Fraction(0)
        return self.p0 + int(elapsed * self.speed * 1_000_000)
