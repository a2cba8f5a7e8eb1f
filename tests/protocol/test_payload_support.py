"""Shared helpers for the payload tests: real encoded media (PyAV) and a lossy RTP channel.

The encoders run in-process with PyAV's bundled FFmpeg, so the tests need no external tools;
results are cached because several tests use the same clips.
"""

from __future__ import annotations

import math
import random
from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cache

import av
import pytest

from nvr.protocol.codecs.annexb import (
    annexb_to_length_prefixed,
    length_prefixed_to_annexb,
    length_prefixed_to_nals,
)
from nvr.protocol.payload.base import AccessUnit, Depacketizer, Extension, PayloadPacket


def video_frames(width: int, height: int, count: int) -> Iterable[av.VideoFrame]:
    """A moving bar over a fixed noisy gradient: big key frames, small predicted frames."""
    rnd = random.Random(width * height)
    still: dict[int, bytes] = {}
    for i in range(count):
        frame = av.VideoFrame(width, height, "yuv420p")
        for n, plane in enumerate(frame.planes):
            size, stride = plane.buffer_size, plane.line_size
            if n not in still:
                row = bytes((x * 3) & 0xFF for x in range(stride))
                base = (row * (size // stride + 1))[:size]
                noise = rnd.randbytes(size)
                still[n] = bytes(b ^ (c & 0x1F) for b, c in zip(base, noise, strict=True))
            data = still[n]
            if n == 0:  # a white bar 8 lines high moving down 4 lines per frame
                top = (i * 4 * stride) % max(size - 8 * stride, 1)
                data = data[:top] + b"\xff" * (8 * stride) + data[top + 8 * stride :]
            plane.update(data[:size])
        frame.pts = i
        yield frame


@cache
def encode_video(codec: str, width: int, height: int, count: int, **options: str) -> list[bytes]:
    """Encoded packets (Annex B for H.264/H.265, JPEG for MJPEG), one per frame."""
    ctx = av.CodecContext.create(codec, "w")
    ctx.width, ctx.height = width, height
    ctx.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
    ctx.time_base = Fraction(1, 25)
    ctx.framerate = Fraction(25)
    ctx.gop_size = 5
    threads = options.pop("slice_threads", None)
    if threads:
        ctx.thread_type = "SLICE"
        ctx.thread_count = int(threads)
    pix_fmt = options.pop("pix_fmt", None)
    if pix_fmt:
        ctx.pix_fmt = pix_fmt
    ctx.options = options
    out: list[bytes] = []
    for frame in video_frames(width, height, count):
        if ctx.pix_fmt != "yuv420p":
            frame = frame.reformat(format=ctx.pix_fmt)
        out += [bytes(p) for p in ctx.encode(frame)]
    out += [bytes(p) for p in ctx.encode(None)]
    return out


def h26x_access_units(codec: str, width: int, height: int, count: int) -> list[bytes]:
    """Encoded frames in storage form (length-prefixed NAL units)."""
    options = {"tune": "zerolatency"} if codec == "libx264" else {"x265-params": "log-level=none"}
    return [
        annexb_to_length_prefixed(packet)
        for packet in encode_video(codec, width, height, count, **options)
    ]


def decode_video(decoder: str, units: Sequence[bytes], length_prefixed: bool) -> list[tuple]:
    """Decode with PyAV; returns (width, height, luma bytes) per frame."""
    ctx = av.CodecContext.create(decoder, "r")
    frames = []
    for data in units:
        if length_prefixed:
            data = length_prefixed_to_annexb(data)
        frames += ctx.decode(av.Packet(data))
    frames += ctx.decode(None)
    return [(f.width, f.height, bytes(f.planes[0])) for f in frames]


@cache
def encode_aac(frames: int = 20, rate: int = 48000) -> tuple[bytes, list[bytes]]:
    """(AudioSpecificConfig, raw AAC frames) of a stereo tone."""
    ctx = av.CodecContext.create("aac", "w")
    ctx.sample_rate = rate
    ctx.layout = "stereo"
    ctx.format = "fltp"
    ctx.bit_rate = 128000
    ctx.open()
    out: list[bytes] = []
    rnd = random.Random(7)
    for i in range(frames):
        frame = av.AudioFrame(format="fltp", layout="stereo", samples=1024)
        for n, plane in enumerate(frame.planes):
            t0 = i * 1024
            wave = array(
                "f",
                (
                    0.3 * math.sin((t0 + t) * (n + 1) * 0.05) + 0.1 * rnd.random()
                    for t in range(1024)
                ),
            )
            plane.update(wave.tobytes())
        frame.sample_rate = rate
        frame.pts = i * 1024
        out += [bytes(p) for p in ctx.encode(frame)]
    out += [bytes(p) for p in ctx.encode(None)]
    return bytes(ctx.extradata), out


@dataclass(slots=True)
class Sent:
    """One packet on the wire, with the index of the access unit it belongs to."""

    unit: int
    payload: bytes
    marker: bool
    timestamp: int
    seq: int
    extension: Extension | None


def packetize_all(
    packetize: Callable[[bytes], list[PayloadPacket]],
    units: Sequence[bytes],
    ts_step: int,
    seq0: int = 65000,
) -> list[Sent]:
    """Packetize every unit; timestamps ``i * ts_step``, sequence numbers wrapping."""
    out: list[Sent] = []
    for i, unit in enumerate(units):
        for p in packetize(unit):
            ts = (i * ts_step + p.ts_offset) & 0xFFFFFFFF
            out.append(Sent(i, p.payload, p.marker, ts, (seq0 + len(out)) & 0xFFFF, p.extension))
    return out


def deliver(
    depacketizer: Depacketizer,
    packets: Iterable[Sent],
    drop: frozenset[int] = frozenset(),
    duplicate: frozenset[int] = frozenset(),
) -> list[AccessUnit]:
    """Push packets, skipping indices in ``drop`` and sending those in ``duplicate`` twice."""
    out: list[AccessUnit] = []
    for n, p in enumerate(packets):
        if n in drop:
            continue
        for _ in range(2 if n in duplicate else 1):
            out += depacketizer.push(p.payload, p.marker, p.timestamp, p.seq, p.extension)
    return out + depacketizer.flush()


def test_support_encoders_produce_media() -> None:
    """The helpers themselves: encoders give one packet per frame, key frames first."""
    for codec in ("libx264", "libx265"):
        if codec not in av.codecs_available:
            pytest.skip(f"{codec} not in PyAV")
        units = h26x_access_units(codec, 160, 120, 3)
        assert len(units) == 3
        assert all(length_prefixed_to_nals(u) for u in units)
    config, frames = encode_aac(4)
    assert config and frames
