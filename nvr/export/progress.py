"""Export progress on a terminal: a redrawn bar on a TTY, plain lines in logs and pipes."""

from __future__ import annotations

import time
from typing import TextIO

BAR_WIDTH = 30
LINE_STEP = 0.1
"""Without a TTY: one line per 10 %."""


class ProgressPrinter:
    """Call with fractions 0..1 (``on_progress`` of a job); :meth:`done` ends the display."""

    def __init__(self, stream: TextIO, label: str = "export", *, tty: bool | None = None) -> None:
        self.stream = stream
        self.label = label
        self.tty = stream.isatty() if tty is None else tty
        self._started = time.monotonic()
        self._drawn = -1.0
        self._last_draw = 0.0

    def __call__(self, fraction: float) -> None:
        fraction = min(max(fraction, 0.0), 1.0)
        now = time.monotonic()
        if self.tty:
            if fraction < 1.0 and now - self._last_draw < 0.1:
                return
            filled = int(fraction * BAR_WIDTH)
            bar = "#" * filled + "." * (BAR_WIDTH - filled)
            elapsed = now - self._started
            self.stream.write(f"\r{self.label} [{bar}] {fraction * 100:5.1f}%  {elapsed:6.1f}s")
            self._last_draw = now
        elif fraction >= 1.0 or fraction - self._drawn >= LINE_STEP:
            step = int(fraction / LINE_STEP) * LINE_STEP if fraction < 1.0 else 1.0
            if step <= self._drawn:
                return
            self.stream.write(f"{self.label}: {step * 100:.0f}%\n")
            self._drawn = step
        self.stream.flush()

    def done(self) -> None:
        if self.tty and self._last_draw:
            self.stream.write("\n")
            self.stream.flush()
