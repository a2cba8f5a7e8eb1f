"""Exports of real stored media, checked by real peers: ffprobe (codecs, frame counts, start
times, durations), a full FFmpeg decode, GStreamer's qtdemux (and decoders), and our reader
(every box parses, every sample is byte-identical to what the store holds, at its time)."""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import pytest

from nvr.export.verify import verify_file
from nvr.protocol.mp4 import iter_samples, read_init, walk
from tests.export.conftest import T0, Exported
from tests.export.media import Timed
from tests.protocol.test_mp4_peers import (
    FFMPEG,
    _gst_has,
    ffmpeg_decode,
    ffprobe_streams,
    gst_run,
)

pytestmark = [pytest.mark.ffmpeg]


def expected(case: Exported, track: str) -> list[Timed]:
    """What the store holds for the track in the exported range, in order."""
    assert case.request.end_us is not None
    return case.written[track].between(case.result.start_us, case.request.end_us)


def end_seconds(case: Exported, track: str) -> Fraction:
    t, unit, entry = expected(case, track)[-1]
    end_us = t - case.result.start_us
    return Fraction(end_us, 1_000_000) + Fraction(unit.duration, entry.clock_rate)


def test_camera_export_with_ffprobe(camera_export: Exported) -> None:
    case = camera_export
    assert case.result.start_us == T0 + 1_200_000  # the key frame before T0+1.3 s
    video, audio, meta = ffprobe_streams(case.path)
    n_video = len(expected(case, "VIDEO001"))
    assert n_video == 70 + 88
    assert (video["codec_name"], video["width"], video["height"]) == ("h264", "160", "120")
    assert int(video["nb_read_frames"]) == n_video
    assert Fraction(video["start_time"]) == 0
    assert Fraction(video["duration"]) == end_seconds(case, "VIDEO001")
    audio_frames = expected(case, "AUDIO001")
    assert (audio["codec_name"], audio["sample_rate"], audio["channels"]) == ("aac", "16000", "1")
    assert int(audio["nb_read_frames"]) == len(audio_frames)
    first_audio = Fraction(audio_frames[0][0] - case.result.start_us, 1_000_000)
    assert Fraction(audio["start_time"]) == first_audio
    assert Fraction(audio["duration"]) == end_seconds(case, "AUDIO001")
    assert meta["codec_type"] == "data"  # FFmpeg cannot decode metx; our reader checks it
    assert int(meta["nb_read_packets"]) == len(expected(case, "META001"))


def test_camera_export_decodes_every_frame_across_gap_and_resolution_change(
    camera_export: Exported,
) -> None:
    ffmpeg_decode(camera_export.path)  # every video and audio stream
    assert FFMPEG
    plain = subprocess.run(  # the command as an examiner would type it
        [FFMPEG, "-v", "error", "-i", str(camera_export.path), "-f", "null", "-"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert plain.returncode == 0 and plain.stderr == "" and plain.stdout == ""
    proc = subprocess.run(
        [
            FFMPEG,
            "-v",
            "info",
            "-i",
            str(camera_export.path),
            "-map",
            "0:v",
            "-vf",
            "showinfo",
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert proc.stderr.count("s:160x120") == 70 + 50
    assert proc.stderr.count("s:176x144") == 38


@pytest.mark.gstreamer
def test_camera_export_with_qtdemux(camera_export: Exported) -> None:
    path = camera_export.path
    gst_run(f"filesrc location={path} ! qtdemux ! fakesink")
    if not _gst_has("h264parse", "avdec_h264", "avdec_aac"):
        pytest.skip("GStreamer libav decoders not installed")
    out = gst_run(
        f"filesrc location={path} ! qtdemux name=d d.video_0 ! queue ! h264parse ! avdec_h264 "
        "! fakesink silent=false"
    )
    assert out.count("last-message = chain") == len(expected(camera_export, "VIDEO001"))
    assert "width=(int)176, height=(int)144" in out  # followed the resolution change
    out = gst_run(
        f"filesrc location={path} ! qtdemux name=d d.audio_0 ! queue ! avdec_aac "
        "! fakesink silent=false"
    )
    assert out.count("last-message = chain") == len(expected(camera_export, "AUDIO001"))


def test_camera_export_read_back_by_our_reader(camera_export: Exported) -> None:
    case = camera_export
    data = case.path.read_bytes()
    boxes = list(walk(data))  # every box of the file parses, down to the signature boxes
    types = {b.type for b in boxes}
    assert {b"ftyp", b"meta", b"suep", b"ipro", b"sinf", b"cstb", b"schm", b"schi"} <= types
    assert {b"sibo", b"cert", b"moov", b"udta", b"loci", b"moof", b"tfdt", b"mdat"} <= types
    assert b"mfra" not in types
    top = [b.type for b in boxes if b.depth == 0]
    assert top[:3] == [b"ftyp", b"meta", b"moov"]
    init = read_init(data)
    video, audio, meta = init.tracks
    assert [e.fourcc for e in video.entries] == [b"avc3", b"avc3"]
    assert [(e.width, e.height) for e in video.entries] == [(160, 120), (176, 144)]
    assert audio.entry.fourcc == b"mp4a" and meta.entry.fourcc == b"metx"
    assert meta.entry.namespace == "http://www.onvif.org/ver10/schema"
    samples: dict[int, list] = {1: [], 2: [], 3: []}
    for s in iter_samples(data, init):
        samples[s.track_id].append(s)
    origin = case.result.start_us
    for info, token in zip(init.tracks, ("VIDEO001", "AUDIO001", "META001"), strict=True):
        want = expected(case, token)
        got = samples[info.track_id]
        assert [s.data for s in got] == [u.data for _, u, _ in want]
        assert [s.key for s in got] == [u.key for _, u, _ in want]
        for s, (t, _, _) in zip(got, want, strict=True):
            # file time = stored capture time, to within one tick of the track clock
            file_scaled = origin * info.timescale + s.decode_time * 1_000_000
            assert abs(file_scaled - t * info.timescale) < 1_000_000
    video_samples = samples[1]
    assert video_samples[70].decode_time == 48 * 9000  # run 2 at T0+6 s: the gap, via tfdt
    switched = [s for s in video_samples if s.description_index == 2]
    assert len(switched) == 38 and switched[0].key


def test_camera_export_verifies_and_reports(camera_export: Exported) -> None:
    report = verify_file(camera_export.path)
    assert report.ok, report.lines()
    assert report.start_us == T0 + 1_200_000
    assert report.export is not None and report.export.operator == "Officer Dibble"
    assert [s.name for s in report.export.sources] == ["Entrance camera"] * 3
    assert report.location is not None
    assert report.location.degrees() == ("52.52000", "13.40495", "34.00000")
    assert [t.samples for t in report.tracks] == [
        len(expected(camera_export, k)) for k in ("VIDEO001", "AUDIO001", "META001")
    ]
    (signer,) = report.signers
    assert signer.coverage == "the whole file"
    assert signer.certificate is not None and signer.certificate.self_signed


def test_hevc_pcmu_export(hevc_export: Exported, tmp_path: Path) -> None:
    case = hevc_export
    assert case.result.start_us == T0 + 400_000
    video, audio, _ = ffprobe_streams(case.path)
    assert video["codec_name"] == "hevc"
    assert int(video["nb_read_frames"]) == len(expected(case, "VIDEO001"))
    assert (audio["codec_name"], audio["sample_rate"]) == ("pcm_mulaw", "8000")
    assert int(audio["nb_read_frames"]) == len(expected(case, "AUDIO001"))
    assert Fraction(audio["start_time"]) == 0
    ffmpeg_decode(case.path)
    init = read_init(case.path.read_bytes())
    assert init.tracks[0].entry.fourcc == b"hev1"  # the camera sends VPS/SPS/PPS in-band
    assert verify_file(case.path).ok


@pytest.mark.gstreamer
def test_hevc_pcmu_export_with_qtdemux(hevc_export: Exported) -> None:
    path = hevc_export.path
    gst_run(f"filesrc location={path} ! qtdemux ! fakesink")
    if not _gst_has("h265parse", "avdec_h265", "mulawdec"):
        pytest.skip("GStreamer decoders not installed")
    out = gst_run(
        f"filesrc location={path} ! qtdemux name=d d.video_0 ! queue ! h265parse ! avdec_h265 "
        "! fakesink silent=false"
    )
    assert out.count("last-message = chain") == len(expected(hevc_export, "VIDEO001"))
    out = gst_run(
        f"filesrc location={path} ! qtdemux name=d d.audio_0 ! queue ! mulawdec "
        "! fakesink silent=false"
    )
    assert out.count("last-message = chain") == len(expected(hevc_export, "AUDIO001"))
