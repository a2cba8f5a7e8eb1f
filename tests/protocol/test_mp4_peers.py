"""Real peers: files from our writer, fed with PyAV-encoded access units, checked by FFmpeg
(ffprobe frame counts and durations, a full decode) and GStreamer's qtdemux.

H.264/H.265 samples are Annex-B packets converted to 4-byte length-prefixed NAL units. By
default SPS/PPS/VPS and AUDs are taken out of the samples and live only in avcC/hvcC (``avc1``,
``hvc1``); the ``inband`` variants keep every NAL unit in the samples as the store keeps them
(``avc3``/``hev1``), the way an export preserving camera media signing must.
"""

from __future__ import annotations

import math
import shutil
import struct
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from pathlib import Path

import pytest

from nvr.protocol.codecs.annexb import nals_to_length_prefixed, split_annexb
from nvr.protocol.mp4 import (
    FragmentWriter,
    SampleEntry,
    TrackSpec,
    aac_entry,
    avc_entry,
    g711_entry,
    hevc_entry,
    init_segment,
    iter_samples,
    jpeg_entry_for,
    metx_entry,
    read_init,
    read_mfra,
)

av = pytest.importorskip("av")

FFPROBE = shutil.which("ffprobe")
FFMPEG = shutil.which("ffmpeg")
GST_LAUNCH = shutil.which("gst-launch-1.0")

pytestmark = [
    pytest.mark.ffmpeg,
    pytest.mark.skipif(not (FFPROBE and FFMPEG), reason="ffprobe/ffmpeg not installed"),
]

WIDTH, HEIGHT = 160, 120
FPS = 25
VIDEO_TIMESCALE = 90000
FRAME_TICKS = VIDEO_TIMESCALE // FPS
N_FRAMES = 50


@dataclass(frozen=True)
class TrackData:
    spec: TrackSpec
    samples: tuple[tuple[bytes, int, bool, int], ...]  # data, duration, key, composition offset

    @property
    def duration(self) -> int:
        return sum(s[1] for s in self.samples)


# ---------------------------------------------------------------- encoding test media with PyAV


def _need_codec(name: str) -> None:
    if name not in av.codecs_available:
        pytest.skip(f"PyAV has no {name} encoder")


def _video_frames(fmt: str, width: int, height: int) -> Iterator[object]:
    for i in range(N_FRAMES):
        frame = av.VideoFrame(width, height, fmt)
        for p, plane in enumerate(frame.planes):
            rows = height if p == 0 else height // 2
            row = bytes(
                (x * 2 + i * 7 + p * 50 + (x // 16) * i) % 256 for x in range(plane.line_size)
            )
            plane.update(row * rows)
        frame.pts = i
        yield frame


@cache
def _encode_video(
    codec: str,
    fmt: str,
    options: tuple[tuple[str, str], ...],
    size: tuple[int, int] = (WIDTH, HEIGHT),
) -> tuple:
    _need_codec(codec)
    cc = av.CodecContext.create(codec, "w")
    (cc.width, cc.height), cc.pix_fmt = size, fmt
    cc.time_base = Fraction(1, FPS)
    cc.framerate = FPS
    cc.options = dict(options)
    packets = []
    for frame in _video_frames(fmt, *size):
        packets += cc.encode(frame)
    packets += cc.encode(None)
    assert len(packets) == N_FRAMES
    return tuple((bytes(p), p.pts, p.dts, p.is_keyframe) for p in packets)


def _nal_track(
    codec: str, *, inband: bool, track_id: int = 1, size: tuple[int, int] = (WIDTH, HEIGHT)
) -> tuple[TrackData, list[bytes]]:
    hevc = codec == "libx265"
    opts = (("x265-params", "keyint=12:log-level=error"),) if hevc else (("g", "12"),)
    packets = _encode_video(codec, "yuv420p", opts, size)
    params: dict[int, bytes] = {}
    samples = []
    first_dts = packets[0][2]
    for data, pts, dts, key in packets:
        keep = []
        for nal in split_annexb(data):
            kind = (nal[0] >> 1) & 0x3F if hevc else nal[0] & 0x1F
            is_param = kind in ((32, 33, 34) if hevc else (7, 8))
            is_aud = kind == (35 if hevc else 9)
            if is_param:
                params.setdefault(kind, nal)
            if inband or not (is_param or is_aud):
                keep.append(nal)
        sample = nals_to_length_prefixed(keep)
        samples.append((sample, FRAME_TICKS, key, (pts - dts) * FRAME_TICKS))
        assert dts - first_dts == len(samples) - 1
    if hevc:
        entry = hevc_entry(
            [params[32]], [params[33]], [params[34]], fourcc=b"hev1" if inband else b"hvc1"
        )
    else:
        entry = avc_entry([params[7]], [params[8]], fourcc=b"avc3" if inband else b"avc1")
    assert (entry.width, entry.height) == size
    spec = TrackSpec(track_id, VIDEO_TIMESCALE, entry)
    return TrackData(spec, tuple(samples)), list(params.values())


def h264_track(*, inband: bool = False, track_id: int = 1) -> TrackData:
    return _nal_track("libx264", inband=inband, track_id=track_id)[0]


def h265_track(*, inband: bool = False, track_id: int = 1) -> TrackData:
    return _nal_track("libx265", inband=inband, track_id=track_id)[0]


def mjpeg_track(track_id: int = 1) -> TrackData:
    packets = _encode_video("mjpeg", "yuvj420p", ())
    samples = tuple((data, FRAME_TICKS, True, 0) for data, _, _, _ in packets)
    return TrackData(TrackSpec(track_id, VIDEO_TIMESCALE, jpeg_entry_for(samples[0][0])), samples)


@cache
def _encode_audio(codec: str, rate: int, fmt: str, frame_samples: int, seconds: int) -> tuple:
    _need_codec(codec)
    cc = av.CodecContext.create(codec, "w")
    cc.sample_rate, cc.format, cc.layout = rate, fmt, "mono"
    cc.time_base = Fraction(1, rate)
    cc.open()
    size = cc.frame_size or frame_samples
    pack = "<f" if fmt == "fltp" else "<h"
    scale = 0.3 if fmt == "fltp" else 8000
    packets = []
    for i in range(rate * seconds // size):
        frame = av.AudioFrame(format=fmt, layout="mono", samples=size)
        frame.sample_rate = rate
        frame.pts = i * size
        frame.planes[0].update(
            b"".join(
                struct.pack(
                    pack, type(scale)(scale * math.sin(2 * math.pi * 440 * (i * size + k) / rate))
                )
                for k in range(size)
            )
        )
        packets += cc.encode(frame)
    packets += cc.encode(None)
    return tuple((bytes(p), p.duration) for p in packets), bytes(cc.extradata or b"")


def aac_track(track_id: int = 2) -> TrackData:
    packets, asc = _encode_audio("aac", 16000, "fltp", 1024, 2)
    spec = TrackSpec(track_id, 16000, aac_entry(asc))
    assert spec.entry.sample_rate == 16000 and spec.entry.channels == 1
    return TrackData(spec, tuple((d, n, True, 0) for d, n in packets))


def g711_track(law: str, track_id: int = 2) -> TrackData:
    codec = "pcm_mulaw" if law == "ulaw" else "pcm_alaw"
    packets, _ = _encode_audio(codec, 8000, "s16", 160, 2)
    samples = tuple((d, len(d), True, 0) for d, _ in packets)
    return TrackData(TrackSpec(track_id, 8000, g711_entry(law)), samples)


def metadata_track(track_id: int = 3) -> TrackData:
    docs = []
    for i in range(4):
        docs.append(
            (
                b'<tt:MetadataStream xmlns:tt="http://www.onvif.org/ver10/schema">'
                b"<tt:Event><wsnt:NotificationMessage "
                b'xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2">'
                + f"<wsnt:Message>{i}</wsnt:Message>".encode()
                + b"</wsnt:NotificationMessage></tt:Event></tt:MetadataStream>",
                500,
                True,
                0,
            )
        )
    return TrackData(TrackSpec(track_id, 1000, metx_entry()), tuple(docs))


# ---------------------------------------------------------------- writing


def write_file(tracks: Sequence[TrackData], *, with_mfra: bool = True) -> bytes:
    """Interleave tracks by decode time, cutting a fragment before each video key frame."""
    specs = [t.spec for t in tracks]
    init = init_segment(specs)
    writer = FragmentWriter(specs, offset=len(init))
    events = []
    for t in tracks:
        time = 0
        for data, duration, key, cto in t.samples:
            events.append(
                (Fraction(time, t.spec.timescale), t.spec.track_id, data, duration, key, cto)
            )
            time += duration
    events.sort(key=lambda e: (e[0], e[1]))
    out = [init]
    video_id = tracks[0].spec.track_id
    for _, track_id, data, duration, key, cto in events:
        if track_id == video_id and key and writer.pending_samples(video_id):
            out.append(writer.flush())
        writer.add_sample(track_id, data, duration, key=key, composition_offset=cto)
    out.append(writer.flush())
    if with_mfra:
        out.append(writer.mfra())
    return b"".join(out)


def check_reader(data: bytes, tracks: Sequence[TrackData]) -> None:
    """Our own reader gives back every sample byte-identical, with times and key flags."""
    init = read_init(data)
    assert [t.track_id for t in init.tracks] == [t.spec.track_id for t in tracks]
    got: dict[int, list] = {t.spec.track_id: [] for t in tracks}
    for s in iter_samples(data, init):
        got[s.track_id].append(s)
    for t in tracks:
        samples = got[t.spec.track_id]
        assert [s.data for s in samples] == [d for d, _, _, _ in t.samples]
        assert [s.key for s in samples] == [k for _, _, k, _ in t.samples]
        assert [s.composition_offset for s in samples] == [c for _, _, _, c in t.samples]
        times = [0]
        for _, d, _, _ in t.samples:
            times.append(times[-1] + d)
        assert [s.decode_time for s in samples] == times[:-1]
        assert [s.duration for s in samples] == [d for _, d, _, _ in t.samples]
    mfra = read_mfra(data)
    assert mfra is not None
    video = tracks[0]
    keys = [i for i, (_, _, k, _) in enumerate(video.samples) if k]
    assert len(mfra[video.spec.track_id]) == len(keys)


# ---------------------------------------------------------------- running the peers


def ffprobe_streams(path: Path) -> list[dict[str, str]]:
    assert FFPROBE
    proc = subprocess.run(
        [
            FFPROBE,
            "-v",
            "error",
            "-count_frames",
            "-count_packets",
            "-show_entries",
            "stream=index,codec_type,codec_name,nb_read_frames,nb_read_packets,duration,"
            "start_time,width,height,sample_rate,channels",
            "-of",
            "flat=s=_",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", proc.stderr
    streams: dict[int, dict[str, str]] = {}
    for line in proc.stdout.splitlines():
        key, _, value = line.partition("=")
        _, _, index, name = key.split("_", 3)
        streams.setdefault(int(index), {})[name] = value.strip('"')
    return [streams[i] for i in sorted(streams)]


def ffmpeg_decode(path: Path) -> None:
    assert FFMPEG
    proc = subprocess.run(
        [FFMPEG, "-v", "error", "-i", str(path), "-map", "0:v?", "-map", "0:a?", "-f", "null", "-"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", proc.stderr


def gst_run(pipeline: str) -> str:
    if GST_LAUNCH is None:
        pytest.skip("gst-launch-1.0 not installed")
    proc = subprocess.run(
        [GST_LAUNCH, "-v", *pipeline.split()],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "ERROR" not in out, out
    return out


def gst_check(path: Path, pad: str, decode: str, frames: int) -> None:
    """The plain ``qtdemux ! fakesink`` run, then a decode counting buffers at the sink."""
    gst_run(f"filesrc location={path} ! qtdemux ! fakesink")
    out = gst_run(
        f"filesrc location={path} ! qtdemux name=d d.{pad} ! queue ! {decode} "
        "! fakesink silent=false"
    )
    assert out.count("last-message = chain") == frames, out[-2000:]


def _gst_has(*elements: str) -> bool:
    inspect = shutil.which("gst-inspect-1.0")
    if inspect is None:
        return False
    return all(
        subprocess.run([inspect, e], capture_output=True, timeout=30, check=False).returncode == 0
        for e in elements
    )


def seconds(value: str) -> Fraction:
    return Fraction(value)


def assert_stream(stream: dict[str, str], track: TrackData, codec_name: str) -> None:
    assert stream["codec_name"] == codec_name
    assert int(stream["nb_read_frames"]) == len(track.samples)
    assert int(stream["nb_read_packets"]) == len(track.samples)
    scale = track.spec.timescale
    # ffprobe prints microseconds; our times are exact integers in the track timescale.
    assert abs(seconds(stream["duration"]) - Fraction(track.duration, scale)) <= Fraction(1, 10**6)
    first = track.samples[0][3]
    assert abs(seconds(stream["start_time"]) - Fraction(first, scale)) <= Fraction(1, 10**6)


def _write(tmp_path: Path, name: str, tracks: Sequence[TrackData]) -> Path:
    data = write_file(tracks)
    check_reader(data, tracks)
    path = tmp_path / name
    path.write_bytes(data)
    return path


# ---------------------------------------------------------------- tests


@pytest.mark.parametrize("inband", [False, True], ids=["avc1", "avc3-inband"])
def test_h264_video_only(tmp_path: Path, inband: bool) -> None:
    video = h264_track(inband=inband)
    assert any(c for _, _, _, c in video.samples), "expected B-frames (composition offsets)"
    path = _write(tmp_path, "h264.mp4", [video])
    (stream,) = ffprobe_streams(path)
    assert_stream(stream, video, "h264")
    assert (int(stream["width"]), int(stream["height"])) == (WIDTH, HEIGHT)
    ffmpeg_decode(path)


@pytest.mark.gstreamer
@pytest.mark.parametrize("with_meta", [False, True], ids=["video", "video+metx"])
def test_h264_qtdemux(tmp_path: Path, with_meta: bool) -> None:
    tracks = [h264_track(), metadata_track(track_id=2)] if with_meta else [h264_track()]
    path = _write(tmp_path, "h264.mp4", tracks)
    decode = "h264parse ! avdec_h264" if _gst_has("h264parse", "avdec_h264") else "identity"
    gst_check(path, "video_0", decode, N_FRAMES)


@pytest.mark.parametrize("inband", [False, True], ids=["hvc1", "hev1-inband"])
def test_h265_video_only(tmp_path: Path, inband: bool) -> None:
    video = h265_track(inband=inband)
    path = _write(tmp_path, "h265.mp4", [video])
    (stream,) = ffprobe_streams(path)
    assert_stream(stream, video, "hevc")
    assert (int(stream["width"]), int(stream["height"])) == (WIDTH, HEIGHT)
    ffmpeg_decode(path)


@pytest.mark.gstreamer
def test_h265_qtdemux(tmp_path: Path) -> None:
    path = _write(tmp_path, "h265.mp4", [h265_track()])
    decode = "h265parse ! avdec_h265" if _gst_has("h265parse", "avdec_h265") else "identity"
    gst_check(path, "video_0", decode, N_FRAMES)


def test_mjpeg_video_only(tmp_path: Path) -> None:
    video = mjpeg_track()
    path = _write(tmp_path, "mjpeg.mp4", [video])
    (stream,) = ffprobe_streams(path)
    assert_stream(stream, video, "mjpeg")
    ffmpeg_decode(path)


@pytest.mark.gstreamer
def test_mjpeg_qtdemux(tmp_path: Path) -> None:
    path = _write(tmp_path, "mjpeg.mp4", [mjpeg_track()])
    gst_check(path, "video_0", "jpegdec" if _gst_has("jpegdec") else "identity", N_FRAMES)


@pytest.mark.gstreamer
@pytest.mark.parametrize("kind", ["aac", "ulaw", "alaw"])
def test_audio_qtdemux(tmp_path: Path, kind: str) -> None:
    audio = aac_track() if kind == "aac" else g711_track(kind)
    path = _write(tmp_path, f"{kind}.mp4", [h264_track(), audio])
    decoder = {"aac": "avdec_aac", "ulaw": "mulawdec", "alaw": "alawdec"}[kind]
    if not _gst_has(decoder):
        pytest.skip(f"GStreamer element {decoder} not installed")
    gst_check(path, "audio_0", decoder, len(audio.samples))


def test_h264_resolution_change_inband(tmp_path: Path) -> None:
    """A camera switching resolution mid-export: one ``avc3`` track, the new SPS/PPS in-band.

    (A second ``stsd`` entry selected by tfhd's sample_description_index is valid ISO BMFF and
    our reader follows it, but FFmpeg 5.1 ignores the index in fragments and keeps decoding
    with the first avcC, so in-band parameter sets are the portable way.)
    """
    first = h264_track(inband=True)
    second = _nal_track("libx264", inband=True, size=(176, 144))[0]
    spec = first.spec
    init = init_segment([spec])
    writer = FragmentWriter([spec], offset=len(init))
    out = [init]
    for data, duration, key, cto in first.samples + second.samples:
        if key and writer.pending_samples(1):
            out.append(writer.flush())
        writer.add_sample(1, data, duration, key=key, composition_offset=cto)
    out.append(writer.flush())
    path = tmp_path / "switch.mp4"
    path.write_bytes(b"".join(out))
    (stream,) = ffprobe_streams(path)
    assert int(stream["nb_read_frames"]) == 2 * N_FRAMES
    ffmpeg_decode(path)
    assert FFMPEG
    sizes = subprocess.run(
        [FFMPEG, "-v", "info", "-i", str(path), "-vf", "showinfo", "-f", "null", "-"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    ).stderr
    assert sizes.count("s:160x120") == N_FRAMES and sizes.count("s:176x144") == N_FRAMES


def test_h264_with_aac(tmp_path: Path) -> None:
    video, audio = h264_track(), aac_track()
    path = _write(tmp_path, "h264_aac.mp4", [video, audio])
    v, a = ffprobe_streams(path)
    assert_stream(v, video, "h264")
    assert_stream(a, audio, "aac")
    assert (a["sample_rate"], a["channels"]) == ("16000", "1")
    ffmpeg_decode(path)


@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_h264_with_g711(tmp_path: Path, law: str) -> None:
    video, audio = h264_track(), g711_track(law)
    path = _write(tmp_path, f"h264_{law}.mp4", [video, audio])
    v, a = ffprobe_streams(path)
    assert_stream(v, video, "h264")
    assert_stream(a, audio, "pcm_mulaw" if law == "ulaw" else "pcm_alaw")
    assert (a["sample_rate"], a["channels"]) == ("8000", "1")
    ffmpeg_decode(path)


def test_h264_with_metadata(tmp_path: Path) -> None:
    video, meta = h264_track(), metadata_track(track_id=2)
    path = _write(tmp_path, "h264_meta.mp4", [video, meta])
    streams = ffprobe_streams(path)
    assert_stream(streams[0], video, "h264")
    # FFmpeg exposes the metx track as a data stream it cannot decode; our reader checked it.
    assert len(streams) == 2 and streams[1]["codec_type"] == "data"
    assert int(streams[1]["nb_read_packets"]) == len(meta.samples)
    assert seconds(streams[1]["duration"]) == Fraction(meta.duration, 1000)
    ffmpeg_decode(path)
    init = read_init(path.read_bytes())
    entry: SampleEntry = init.track(2).entry
    assert (entry.fourcc, entry.namespace, entry.content_encoding) == (
        b"metx",
        "http://www.onvif.org/ver10/schema",
        "",
    )


def test_h264_aac_metadata(tmp_path: Path) -> None:
    video, audio, meta = h264_track(), aac_track(), metadata_track()
    path = _write(tmp_path, "all.mp4", [video, audio, meta])
    streams = ffprobe_streams(path)
    assert_stream(streams[0], video, "h264")
    assert_stream(streams[1], audio, "aac")
    ffmpeg_decode(path)
