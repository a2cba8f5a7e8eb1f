"""H.264 access units of a test picture showing the capture time, encoded with PyAV.

This is a *source* (the simulated camera), not the recording path: the recorder never
decodes or encodes. The picture is a moving gradient bar plus the UTC time in large digits, so
a replayed or exported clip shows by eye which instant it holds.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from fractions import Fraction

import av

from nvr.demo.font import GLYPH_H, draw_text, text_width
from nvr.protocol.codecs.annexb import split_annexb
from nvr.protocol.codecs.h264 import NAL_IDR, nal_type


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    nal_units: list[bytes]
    """The NAL units of one access unit (no start codes); key frames carry SPS and PPS."""
    key: bool
    capture_us: int


class ClockVideo:
    """Encodes one frame per call to :meth:`frame`; the caller owns the frame clock."""

    def __init__(self, width: int = 640, height: int = 360, fps: int = 10, gop: int = 20) -> None:
        if width % 2 or height % 2:
            raise ValueError("width and height must be even")
        self.width, self.height, self.fps = width, height, fps
        self._codec = av.CodecContext.create("libx264", "w")
        self._codec.width = width
        self._codec.height = height
        self._codec.pix_fmt = "yuv420p"
        self._codec.time_base = Fraction(1, fps)
        self._codec.framerate = Fraction(fps, 1)
        self._codec.gop_size = gop
        self._codec.options = {
            "preset": "ultrafast",
            "tune": "zerolatency",
            "profile": "baseline",
            "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:repeat-headers=1",
        }
        self._index = 0

    def frame(self, capture_us: int) -> EncodedFrame:
        """Render and encode the picture for ``capture_us`` (one access unit out per call)."""
        picture = av.VideoFrame(self.width, self.height, "yuv420p")
        luma = self._render(capture_us, picture.planes[0].line_size)
        picture.planes[0].update(bytes(luma))
        for plane in (picture.planes[1], picture.planes[2]):
            plane.update(bytes([128]) * (plane.line_size * (self.height // 2)))
        picture.pts = self._index
        self._index += 1
        packets = self._codec.encode(picture)
        data = b"".join(bytes(p) for p in packets)
        units = split_annexb(data)
        key = any(nal_type(u) == NAL_IDR for u in units)
        return EncodedFrame(units, key, capture_us)

    def _render(self, capture_us: int, stride: int) -> bytearray:
        w, h = self.width, self.height
        plane = bytearray(stride * h)
        bar = (capture_us // 10_000) % w
        for y in range(h // 2 - 4, h // 2 + 4):
            row = y * stride
            plane[row : row + w] = bytes((x * 200 // w) + 16 for x in range(w))
            plane[row + bar : row + min(w, bar + 8)] = b"\xff" * min(8, w - bar)
        when = dt.datetime.fromtimestamp(capture_us / 1_000_000, dt.UTC)
        date = when.strftime("%Y-%m-%d")
        clock = when.strftime("%H:%M:%S.") + f"{when.microsecond // 100_000}"
        scale = max(1, w // 120)
        for i, line in enumerate((date, clock)):
            x = (w - text_width(line, scale)) // 2
            y = h // 8 + i * (GLYPH_H + 3) * scale
            draw_text(plane, stride, x, y, line, scale)
        return plane
