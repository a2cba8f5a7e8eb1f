"""Real encoded media for export tests and the export benchmark, written through the store.

Video is encoded with PyAV the way a camera sends it: constrained baseline H.264 / main
H.265, no B-frames, a fixed GOP, parameter sets repeated in-band before every key frame.
Audio is AAC (16 kHz mono) or PCMU (8 kHz, 20 ms frames); metadata is ONVIF
``tt:MetadataStream`` documents. Clips are encoded once per process (cached) and written into
a store with advancing capture times, so exports run over real stored data.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cache

import av

from nvr.store import Store
from nvr.store.types import SampleEntrySpec
from tests.protocol.test_mp4_peers import split_annexb

FPS = 25
VIDEO_CLOCK = 90_000
FRAME_TICKS = VIDEO_CLOCK // FPS
FRAME_US = 1_000_000 // FPS


@dataclass(frozen=True, slots=True)
class Unit:
    """One access unit as the store keeps it."""

    data: bytes
    duration: int
    key: bool


@dataclass(frozen=True, slots=True)
class Clip:
    units: tuple[Unit, ...]
    entry: SampleEntrySpec

    @property
    def frame_us(self) -> int:
        u = self.units[0]
        return u.duration * 1_000_000 // self.entry.clock_rate


def _length_prefixed(nals: Iterable[bytes]) -> bytes:
    return b"".join(struct.pack(">I", len(n)) + n for n in nals)


def _picture(width: int, height: int, i: int, noise: bool) -> av.VideoFrame:
    frame = av.VideoFrame(width, height, "yuv420p")
    for p, plane in enumerate(frame.planes):
        rows = height if p == 0 else height // 2
        if noise:
            import random

            plane.update(random.Random(i * 3 + p).randbytes(plane.line_size * rows))
            continue
        row = bytes((x * 3 + i * 5 + p * 60) % 256 for x in range(plane.line_size))
        band = bytes((i * 9) % 256 for _ in range(plane.line_size))
        plane.update(row * (rows // 2) + band * (rows - rows // 2))
    frame.pts = i
    return frame


@cache
def video_clip(
    codec: str = "H264",
    width: int = 160,
    height: int = 120,
    frames: int = 50,
    gop: int = 10,
    bitrate: int = 0,
) -> Clip:
    """``frames`` access units; ``bitrate`` (bit/s) > 0 encodes noise at that rate."""
    hevc = codec == "H265"
    cc = av.CodecContext.create("libx265" if hevc else "libx264", "w")
    cc.width, cc.height, cc.pix_fmt = width, height, "yuv420p"
    cc.time_base = Fraction(1, FPS)
    cc.framerate = Fraction(FPS)
    cc.gop_size = gop
    cc.max_b_frames = 0
    if hevc:
        params = f"keyint={gop}:min-keyint={gop}:bframes=0:scenecut=0:repeat-headers=1"
        cc.options = {"preset": "ultrafast", "x265-params": params + ":log-level=error"}
    else:
        opts = {"preset": "ultrafast", "profile": "baseline", "bf": "0", "sc_threshold": "0"}
        if bitrate:
            kbit = bitrate // 1000
            opts["x264-params"] = f"bitrate={kbit}:vbv-maxrate={kbit}:vbv-bufsize={kbit}"
        cc.options = opts
    packets = []
    for i in range(frames):
        packets += cc.encode(_picture(width, height, i, noise=bitrate > 0))
    packets += cc.encode(None)
    assert len(packets) == frames
    units, params_nals = [], {}
    for p in packets:
        nals = split_annexb(bytes(p))
        for nal in nals:
            kind = (nal[0] >> 1) & 0x3F if hevc else nal[0] & 0x1F
            if kind in ((32, 33, 34) if hevc else (7, 8)):
                params_nals.setdefault(kind, nal)
        units.append(Unit(_length_prefixed(nals), FRAME_TICKS, bool(p.is_keyframe)))
    assert units[0].key and all(u.key == (i % gop == 0) for i, u in enumerate(units))
    entry = SampleEntrySpec(
        codec=codec,
        clock_rate=VIDEO_CLOCK,
        parameters=_length_prefixed(params_nals[k] for k in sorted(params_nals)),
        width=width,
        height=height,
    )
    return Clip(tuple(units), entry)


@cache
def audio_clip(codec: str = "AAC", seconds: int = 2) -> Clip:
    """AAC: 16 kHz mono, 1024-sample frames. PCMU: 8 kHz mono, 160-sample (20 ms) frames."""
    aac = codec == "AAC"
    rate = 16_000 if aac else 8_000
    fmt = "fltp" if aac else "s16"
    cc = av.CodecContext.create("aac" if aac else "pcm_mulaw", "w")
    cc.sample_rate, cc.format, cc.layout = rate, fmt, "mono"
    cc.time_base = Fraction(1, rate)
    cc.open()
    size = cc.frame_size or 160
    pack = "<f" if aac else "<h"
    scale = 0.3 if aac else 8000.0
    packets = []
    for i in range(rate * seconds // size):
        frame = av.AudioFrame(format=fmt, layout="mono", samples=size)
        frame.sample_rate = rate
        frame.pts = i * size
        wave = (scale * math.sin(2 * math.pi * 440 * (i * size + k) / rate) for k in range(size))
        frame.planes[0].update(b"".join(struct.pack(pack, v if aac else int(v)) for v in wave))
        packets += cc.encode(frame)
    packets += cc.encode(None)
    units = tuple(Unit(bytes(p), size, True) for p in packets)
    params = bytes(cc.extradata or b"") if aac else b""
    entry = SampleEntrySpec(
        codec=codec, clock_rate=rate, parameters=params, sample_rate=rate, channels=1
    )
    return Clip(units, entry)


METADATA_CLOCK = 90_000


def metadata_doc(n: int, utc: str) -> bytes:
    return (
        '<tt:MetadataStream xmlns:tt="http://www.onvif.org/ver10/schema">'
        f'<tt:VideoAnalytics><tt:Frame UtcTime="{utc}"><tt:Object ObjectId="{n}"/>'
        "</tt:Frame></tt:VideoAnalytics></tt:MetadataStream>"
    ).encode()


Timed = tuple[int, Unit, SampleEntrySpec]
"""(capture time, access unit, sample entry), as submitted to the store."""


@dataclass(frozen=True, slots=True)
class Written:
    """What went into a track: capture time, access unit and sample entry, in order."""

    track: str
    frames: tuple[Timed, ...]

    def between(self, start_us: int, end_us: int) -> list[Timed]:
        return [f for f in self.frames if start_us <= f[0] < end_us]


def schedule(
    clip: Clip, start_us: int, seconds: float | None = None, count: int | None = None
) -> list[Timed]:
    """(capture time, unit, entry) for a clip repeated from ``start_us``; exact times from
    the clock (``count`` units, or as many as fit in ``seconds``)."""
    rate = clip.entry.clock_rate
    if count is None:
        assert seconds is not None
        count = int(seconds * rate) // clip.units[0].duration
    out, ticks = [], 0
    n = len(clip.units)
    for i in range(count):
        unit = clip.units[i % n]
        out.append((start_us + ticks * 1_000_000 // rate, unit, clip.entry))
        ticks += unit.duration
    return out


def metadata_schedule(start_us: int, seconds: int, interval_us: int = 500_000) -> list[Timed]:
    spec = SampleEntrySpec(codec="ONVIF-METADATA", clock_rate=METADATA_CLOCK)
    duration = interval_us * METADATA_CLOCK // 1_000_000
    out = []
    for n in range(seconds * 1_000_000 // interval_us):
        t = start_us + n * interval_us
        out.append((t, Unit(metadata_doc(n, str(t)), duration, True), spec))
    return out


def write_track(store: Store, recording: str, track: str, frames: Sequence[Timed]) -> Written:
    """Submit through the store's writer thread, close the track, wait for the index."""
    handle = store.open_writer(recording, track, idle_close_us=None)
    for t, unit, entry in frames:
        assert handle.submit(unit.data, t, unit.duration, unit.key, entry)
    handle.close().result(timeout=30)
    assert store.writer_service.flush(timeout=30)
    status = handle.status()
    assert status.frames_written == len(frames), status
    return Written(track, tuple(frames))
