"""G.711 μ-law audio for the demo camera: a quiet tone with a beep at every wall-clock second.

The beep marks the start of each UTC second, so a recording can be checked by ear (and by
test) against the clock burned into the video. The signal repeats every second (440 Hz and
1 kHz both fit a whole number of cycles into one second), so it is encoded once and packets
are slices of that second: no per-packet synthesis.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

__all__ = [
    "SAMPLE_RATE",
    "ToneSource",
    "decode_ulaw",
    "encode_ulaw",
    "linear_to_ulaw",
    "ulaw_to_linear",
]

SAMPLE_RATE = 8000
_BIAS = 0x84  # G.711 μ-law bias (132)
_CLIP = 32635


def linear_to_ulaw(sample: int) -> int:
    """One 16-bit linear PCM sample → one μ-law byte (ITU-T G.711, the classic bias method)."""
    sign = 0
    if sample < 0:
        sample = -sample
        sign = 0x80
    sample = min(sample, _CLIP) + _BIAS
    exponent = (sample >> 7).bit_length() - 1  # segment 0..7
    mantissa = (sample >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def ulaw_to_linear(code: int) -> int:
    """One μ-law byte → 16-bit linear PCM."""
    code = ~code & 0xFF
    exponent = (code >> 4) & 0x07
    sample = ((((code & 0x0F) << 3) + _BIAS) << exponent) - _BIAS
    return -sample if code & 0x80 else sample


def encode_ulaw(samples: Iterable[int]) -> bytes:
    """Linear PCM samples → μ-law bytes."""
    return bytes(linear_to_ulaw(s) for s in samples)


def decode_ulaw(data: bytes) -> list[int]:
    """μ-law bytes → linear PCM samples."""
    return [ulaw_to_linear(b) for b in data]


def _second_of_signal(rate: int, tone_hz: int, tone_amp: int, beep_hz: int, beep_amp: int,
                      beep_ms: int) -> list[int]:  # fmt: skip
    """One second of samples: the tone throughout, the beep over its first ``beep_ms``."""
    beep_len = rate * beep_ms // 1000
    ramp = max(rate // 200, 1)  # 5 ms fade in and out, so the beep does not click
    out = []
    for n in range(rate):
        value = tone_amp * math.sin(2 * math.pi * tone_hz * n / rate)
        if n < beep_len:
            envelope = min(1.0, n / ramp, (beep_len - 1 - n) / ramp)
            value += beep_amp * envelope * math.sin(2 * math.pi * beep_hz * n / rate)
        out.append(round(value))
    return out


class ToneSource:
    """μ-law audio aligned to wall-clock seconds."""

    def __init__(
        self,
        rate: int = SAMPLE_RATE,
        *,
        tone_hz: int = 440,
        tone_amplitude: int = 600,
        beep_hz: int = 1000,
        beep_amplitude: int = 8000,
        beep_ms: int = 100,
    ) -> None:
        self.rate = rate
        self.samples = _second_of_signal(
            rate, tone_hz, tone_amplitude, beep_hz, beep_amplitude, beep_ms
        )
        second = encode_ulaw(self.samples)
        self._second = second + second  # a chunk may wrap around the second boundary

    def chunk(self, start_us: int, count: int) -> bytes:
        """``count`` samples starting at wall-clock instant ``start_us`` (Unix µs)."""
        if count > self.rate:
            raise ValueError("at most one second per chunk")
        offset = (start_us % 1_000_000) * self.rate // 1_000_000
        return self._second[offset : offset + count]
