"""TrackRecorder: RTP packets of real encoded media in, store frames out (no network).

Media is encoded with PyAV (``tests/export/media.py``) and packetized with our packetizers;
the recorder writes into a fake writer that keeps what it got, so each test can check the
exact frames, durations, key flags and sample entries, and decode the result with PyAV.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from fractions import Fraction
from typing import Any

import av
import pytest

from nvr.ingest.recorder import RecorderStats, TrackRecorder
from nvr.ingest.sample_entries import incompatibility, store_codec
from nvr.protocol.ntp import unix_us_to_ntp
from nvr.protocol.payload import Packetizer, make_packetizer
from nvr.protocol.payload.aac import AacPacketizer
from nvr.protocol.payload.nal import (
    format_sprop,
    length_prefixed_to_nals,
    nals_to_annexb,
    nals_to_length_prefixed,
)
from nvr.protocol.rtcp import SenderReport
from nvr.protocol.rtp import RtpExtension, RtpPacket, build_rtp, parse_rtp
from nvr.protocol.sdp import MediaStream, media_streams, parse_sdp
from nvr.store.types import SampleEntrySpec
from tests.export.media import audio_clip, video_clip

T0 = 1_790_000_000_000_000
H264_PARAMS = (7, 8)
H265_PARAMS = (32, 33, 34)


def make_stream(
    encoding: str,
    clock: int = 90_000,
    *,
    media: str = "video",
    pt: int = 96,
    fmtp: dict[str, str] | None = None,
) -> MediaStream:
    """A MediaStream as DESCRIBE would give it, from a one-media SDP."""
    lines = [
        "v=0",
        "o=- 1 1 IN IP4 127.0.0.1",
        "s=test",
        "t=0 0",
        f"m={media} 0 RTP/AVP {pt}",
        f"a=rtpmap:{pt} {encoding}/{clock}",
        "a=control:track1",
    ]
    if fmtp:
        lines.append(f"a=fmtp:{pt} " + ";".join(f"{k}={v}" for k, v in fmtp.items()))
    sdp = ("\r\n".join(lines) + "\r\n").encode()
    return media_streams(parse_sdp(sdp), "rtsp://cam/media/")[0]


class FakeWriter:
    """Stands in for a store TrackHandle: keeps every submitted frame."""

    def __init__(self, refuse: bool = False) -> None:
        self.frames: list[tuple[bytes, int, int, bool, SampleEntrySpec]] = []
        self.refuse = refuse
        self.closed = False

    def submit(
        self, data: bytes, capture_us: int, duration: int, key: bool, entry: SampleEntrySpec
    ) -> bool:
        assert not self.closed, "submit after close"
        if self.refuse:
            return False
        self.frames.append((data, capture_us, duration, key, entry))
        return True

    def close(self) -> Future[None]:
        self.closed = True
        done: Future[None] = Future()
        done.set_result(None)
        return done


class Wire:
    """Packetizes access units into parsed RTP packets with advancing seq/timestamps."""

    def __init__(self, packetizer: Packetizer, clock: int = 90_000, pt: int = 96) -> None:
        self.packetizer = packetizer
        self.clock = clock
        self.pt = pt
        self.seq = 40_000
        self.ts = 0xFFFF0000  # wraps early: the recorder must not care

    def unit(self, data: bytes, duration: int) -> list[RtpPacket]:
        out = []
        for p in self.packetizer.packetize(data):
            ext = RtpExtension(p.extension.profile, p.extension.data) if p.extension else None
            raw = build_rtp(
                self.pt,
                self.seq,
                (self.ts + p.ts_offset) & 0xFFFFFFFF,
                0x1234,
                p.payload,
                marker=p.marker,
                extension=ext,
            )
            out.append(parse_rtp(raw))
            self.seq = (self.seq + 1) & 0xFFFF
        self.ts = (self.ts + duration) & 0xFFFFFFFF
        return out


def play(
    recorder: TrackRecorder,
    units: Iterable[tuple[bytes, int]],
    wire: Wire,
    *,
    lose: set[tuple[int, int]] = frozenset(),  # type: ignore[assignment]
    skip: Iterable[int] = (),
    start_us: int = T0,
) -> None:
    """Send units (data, duration) through ``wire``; ``lose`` drops (unit, packet) pairs and
    ``skip`` whole units. Arrival times follow the RTP clock plus 2 ms of network delay."""
    elapsed = 0
    skipped = set(skip)
    for n, (data, duration) in enumerate(units):
        packets = wire.unit(data, duration)
        arrival = start_us + elapsed * 1_000_000 // wire.clock + 2_000
        for k, packet in enumerate(packets):
            if n in skipped or (n, k) in lose:
                continue
            recorder.on_rtp(packet, arrival, arrival * 1000)
        elapsed += duration


def nal_types(codec: str, data: bytes) -> list[int]:
    shift, mask = (1, 0x3F) if codec == "H265" else (0, 0x1F)
    return [(nal[0] >> shift) & mask for nal in length_prefixed_to_nals(data)]


def strip_parameter_sets(codec: str, data: bytes) -> bytes:
    params = H265_PARAMS if codec == "H265" else H264_PARAMS
    shift, mask = (1, 0x3F) if codec == "H265" else (0, 0x1F)
    return nals_to_length_prefixed(
        n for n in length_prefixed_to_nals(data) if (n[0] >> shift) & mask not in params
    )


def decode_video(codec: str, frames: list[bytes]) -> int:
    """Decode stored access units (as Annex B, from the first one) with PyAV; frames out."""
    cc = av.CodecContext.create("hevc" if codec == "H265" else "h264", "r")
    count = 0
    for data in frames:
        packet = av.Packet(nals_to_annexb(length_prefixed_to_nals(data)))
        count += len(cc.decode(packet))
    count += len(cc.decode(None))
    return count


def h26x_fmtp(codec: str, entry: SampleEntrySpec) -> dict[str, str]:
    nals = length_prefixed_to_nals(entry.parameters)
    if codec == "H264":
        return {"packetization-mode": "1", "sprop-parameter-sets": format_sprop(nals)}
    by_type = {(n[0] >> 1) & 0x3F: n for n in nals}
    return {
        "sprop-vps": format_sprop([by_type[32]]),
        "sprop-sps": format_sprop([by_type[33]]),
        "sprop-pps": format_sprop([by_type[34]]),
    }


# --- H.264 / H.265 ---------------------------------------------------------------------------


@pytest.mark.parametrize("codec", ["H264", "H265"])
@pytest.mark.parametrize("inband", [True, False], ids=["inband", "sprop-only"])
def test_h26x_frames_entry_and_parameter_sets_in_key_frames(codec: str, inband: bool) -> None:
    clip = video_clip(codec, frames=30, gop=10)
    units = [
        (u.data if inband else strip_parameter_sets(codec, u.data), u.duration) for u in clip.units
    ]
    stream = make_stream(codec, fmtp=h26x_fmtp(codec, clip.entry))
    writer = FakeWriter()
    recorder = TrackRecorder(stream, writer, track_kind="Video")
    play(recorder, units, Wire(make_packetizer(codec, 90_000, mtu=600)))
    recorder.on_close(None)

    assert writer.closed
    assert len(writer.frames) == 30
    assert [f[3] for f in writer.frames] == [u.key for u in clip.units]
    assert [f[2] for f in writer.frames] == [3600] * 30
    times = [f[1] for f in writer.frames]
    assert all(b - a == 40_000 for a, b in itertools.pairwise(times))
    entries = {id(f[4]) for f in writer.frames}
    assert len(entries) == 1, "one SampleEntrySpec instance while parameters do not change"
    entry = writer.frames[0][4]
    assert (entry.codec, entry.width, entry.height) == (codec, 160, 120)
    assert entry.parameters == clip.entry.parameters
    params = set(H265_PARAMS if codec == "H265" else H264_PARAMS)
    for data, *_, key, _ in writer.frames:
        if key:
            assert params <= set(nal_types(codec, data)), "key frame without its parameter sets"
    assert decode_video(codec, [f[0] for f in writer.frames]) == 30
    if not inband:  # only the stored key frames after the first carry inserted sets
        assert recorder._shaper.inserted == 3  # type: ignore[union-attr]
    assert recorder.stats == RecorderStats(frames=30, bytes=sum(len(f[0]) for f in writer.frames))


def test_loss_drops_until_key_frame_and_requests_one_rate_limited() -> None:
    clip = video_clip("H264", frames=30, gop=10)
    asked: list[int] = []
    writer = FakeWriter()
    recorder = TrackRecorder(
        make_stream("H264", fmtp=h26x_fmtp("H264", clip.entry)),
        writer,
        request_key_frame=lambda: asked.append(1),
        key_request_interval=1.0,
    )
    units = [(u.data, u.duration) for u in clip.units]
    play(recorder, units, Wire(make_packetizer("H264", 90_000, mtu=300)), lose={(3, 1)})
    recorder.on_close(None)

    stored = [f for f in writer.frames]
    assert len(stored) == 30 - 7  # units 3..9 cannot be decoded
    assert recorder.depacketizer is not None
    assert recorder.depacketizer.stats.dropped_units == 1  # the damaged unit itself
    assert recorder.stats.dropped == 6  # the rest of its GOP
    assert recorder.stats.after_loss == 1
    assert len(asked) == 1 == recorder.stats.key_frame_requests  # 7 frames in 280 ms: one PLI
    # The last frame before the loss lasts until the next stored frame: the timeline stays exact.
    assert [f[2] for f in stored[:4]] == [3600, 3600, 8 * 3600, 3600]
    assert stored[3][1] - stored[2][1] == 8 * 40_000
    assert decode_video("H264", [f[0] for f in stored[:3]]) == 3
    assert decode_video("H264", [f[0] for f in stored[3:]]) == 20


def test_a_long_hole_ends_the_frame_before_it() -> None:
    """A pause longer than max_hold_us: the frame keeps its own duration, so the store sees
    the time step and records a gap instead of a frame lasting seconds."""
    clip = video_clip("H264", frames=30, gop=10)
    writer = FakeWriter()
    recorder = TrackRecorder(
        make_stream("H264", fmtp=h26x_fmtp("H264", clip.entry)), writer, max_hold_us=300_000
    )
    units = [(u.data, u.duration) for u in clip.units]
    play(recorder, units, Wire(make_packetizer("H264", 90_000)), skip=range(5, 20))
    recorder.on_close(None)
    assert recorder.stats.holes == 1
    assert [f[2] for f in writer.frames[:6]] == [3600] * 6
    assert writer.frames[5][1] - writer.frames[4][1] == 16 * 40_000  # the real capture time


def test_a_stall_on_our_side_keeps_the_timeline() -> None:
    """Our loop (or the network) holds frames back for 3 s, then they arrive in a burst with
    contiguous RTP: capture times stay on the RTP clock, nothing is dropped, no new run."""
    clip = video_clip("H264", frames=30, gop=10)
    writer = FakeWriter()
    recorder = TrackRecorder(make_stream("H264", fmtp=h26x_fmtp("H264", clip.entry)), writer)
    wire = Wire(make_packetizer("H264", 90_000))
    wake = T0 + 3_200_000  # nothing is read from frame 5 on until then: the rest in a burst
    for n, u in enumerate(clip.units):
        arrival = max(T0 + n * 40_000 + 2_000, wake if n >= 5 else 0)
        for packet in wire.unit(u.data, u.duration):
            recorder.on_rtp(packet, arrival, arrival * 1000)
    recorder.on_close(None)
    times = [f[1] for f in writer.frames]
    assert len(times) == 30 and recorder.stats.dropped == 0
    assert times == [T0 + 2_000 + n * 40_000 for n in range(30)]


def test_parameter_sets_in_their_own_access_unit() -> None:
    """Cameras that send SPS/PPS with a timestamp of their own: that unit is no frame, and the
    key frame after it gets the sets."""
    clip = video_clip("H264", frames=20, gop=10)
    units: list[tuple[bytes, int]] = []
    for u in clip.units:
        nals = length_prefixed_to_nals(u.data)
        params = [n for n in nals if n[0] & 0x1F in H264_PARAMS]
        if params:
            units.append((nals_to_length_prefixed(params), 1))
            units.append((strip_parameter_sets("H264", u.data), u.duration - 1))
        else:
            units.append((u.data, u.duration))
    writer = FakeWriter()
    recorder = TrackRecorder(make_stream("H264", fmtp={"packetization-mode": "1"}), writer)
    play(recorder, units, Wire(make_packetizer("H264", 90_000)))
    recorder.on_close(None)
    assert len(writer.frames) == 20
    assert recorder.stats.skipped == 1  # the second one; the first came before any entry
    assert recorder.stats.dropped == 1
    assert all({7, 8} <= set(nal_types("H264", f[0])) for f in writer.frames if f[3])
    assert decode_video("H264", [f[0] for f in writer.frames]) == 20


def test_parameter_sets_between_slices_move_before_the_first() -> None:
    """rtph264pay config-interval=-1 repeats SPS/PPS before every IDR slice; left there, a
    decoder starts a new picture at them and shows half frames."""
    clip = video_clip("H264", frames=20, gop=10)
    units = []
    for u in clip.units:
        nals = length_prefixed_to_nals(u.data)
        if u.key:  # SPS PPS SEI IDR IDR -> AUD SPS PPS SEI IDR SPS PPS IDR
            nals = [b"\x09\xf0", *nals[:4], nals[0], nals[1], *nals[4:]]
        units.append((nals_to_length_prefixed(nals), u.duration))
    writer = FakeWriter()
    recorder = TrackRecorder(make_stream("H264", fmtp={"packetization-mode": "1"}), writer)
    play(recorder, units, Wire(make_packetizer("H264", 90_000)))
    recorder.on_close(None)
    keys = [f[0] for f in writer.frames if f[3]]
    assert [nal_types("H264", k) for k in keys] == [[9, 7, 8, 6, 5, 5], [9, 7, 8, 5, 5]]
    assert decode_video("H264", [f[0] for f in writer.frames]) == 20


def test_new_parameters_make_a_new_entry_on_the_key_frame() -> None:
    small = video_clip("H264", frames=10, gop=10)
    large = video_clip("H264", width=320, height=240, frames=10, gop=10)
    units = [(u.data, u.duration) for u in (*small.units, *large.units)]
    writer = FakeWriter()
    recorder = TrackRecorder(make_stream("H264", fmtp=h26x_fmtp("H264", small.entry)), writer)
    play(recorder, units, Wire(make_packetizer("H264", 90_000)))
    recorder.on_close(None)
    entries = [f[4] for f in writer.frames]
    assert entries[0] is entries[9] and entries[10] is entries[19] and entries[0] is not entries[10]
    assert (entries[10].width, entries[10].height) == (320, 240)
    assert entries[10].parameters == large.entry.parameters


# --- incompatible streams ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "kind", "held", "why"),
    [
        ("H265", "Video", "H264", "the track holds H264 data, the stream is H265"),
        ("H264", "Audio", None, "H264 is video, the track is Audio"),
        ("MP4V-ES", "Video", None, "unsupported encoding"),
    ],
)
def test_incompatible_stream_is_reported_not_written(
    encoding: str, kind: str, held: str | None, why: str
) -> None:
    clip = video_clip("H264" if encoding != "H265" else "H265", frames=5, gop=5)
    reasons: list[str] = []
    writer = FakeWriter()
    recorder = TrackRecorder(
        make_stream(encoding),
        writer,
        track_kind=kind,
        track_codec=held,
        on_incompatible=reasons.append,
    )
    assert recorder.incompatible == why
    codec = "H265" if encoding == "H265" else "H264"
    play(recorder, [(u.data, u.duration) for u in clip.units], Wire(make_packetizer(codec, 90_000)))
    recorder.on_close(None)
    assert writer.frames == [] and writer.closed
    assert reasons == [why]
    if encoding != "MP4V-ES":  # an unknown encoding is not even depacketized
        assert recorder.stats.incompatible == 5


def test_compatibility_rules() -> None:
    assert store_codec(make_stream("h265")) == "H265"
    assert store_codec(make_stream("vnd.onvif.metadata", media="application")) == "ONVIF-METADATA"
    assert incompatibility("PCMU", "Audio", None) is None
    assert incompatibility("PCMA", "Audio", "PCMU") is not None
    assert incompatibility("JPEG", "Extended", None) is None
    assert incompatibility("ONVIF-METADATA", "Video") is not None


# --- JPEG, audio ---------------------------------------------------------------------------


def jpeg_images(width: int, height: int, count: int) -> list[bytes]:
    cc = av.CodecContext.create("mjpeg", "w")
    cc.width, cc.height, cc.pix_fmt = width, height, "yuvj420p"
    cc.time_base = Fraction(1, 25)
    out = []
    for i in range(count):
        frame = av.VideoFrame(width, height, "yuvj420p")
        for plane in frame.planes:
            plane.update(bytes([(i * 37) & 0xFF]) * plane.buffer_size)
        out += [bytes(p) for p in cc.encode(frame)]
    return out


def test_jpeg_entry_follows_the_picture_size() -> None:
    images = jpeg_images(160, 120, 3) + jpeg_images(320, 240, 3)
    writer = FakeWriter()
    recorder = TrackRecorder(make_stream("JPEG", pt=26), writer)
    play(recorder, [(img, 3600) for img in images], Wire(make_packetizer("JPEG", 90_000), pt=26))
    recorder.on_close(None)
    sizes = [(f[4].width, f[4].height) for f in writer.frames]
    assert sizes == [(160, 120)] * 3 + [(320, 240)] * 3
    assert writer.frames[0][4] is writer.frames[2][4]
    assert all(f[3] for f in writer.frames)
    for data, *_ in writer.frames:  # every rebuilt image decodes
        assert len(av.CodecContext.create("mjpeg", "r").decode(av.Packet(data))) == 1


def test_aac_entry_and_frame_durations() -> None:
    clip = audio_clip("AAC", seconds=1)
    packetizer = AacPacketizer(clip.entry.parameters, clock_rate=16_000)
    stream = make_stream("mpeg4-generic", 16_000, media="audio", pt=97, fmtp=packetizer.fmtp())
    writer = FakeWriter()
    recorder = TrackRecorder(stream, writer, track_kind="Audio")
    play(recorder, [(u.data, u.duration) for u in clip.units], Wire(packetizer, 16_000, pt=97))
    recorder.on_close(None)
    assert [f[0] for f in writer.frames] == [u.data for u in clip.units]
    assert {f[2] for f in writer.frames} == {1024}
    entry = writer.frames[0][4]
    assert (entry.codec, entry.parameters, entry.sample_rate, entry.channels) == (
        "AAC",
        clip.entry.parameters,
        16_000,
        1,
    )


def test_g711_frames() -> None:
    clip = audio_clip("PCMU", seconds=1)
    writer = FakeWriter()
    recorder = TrackRecorder(make_stream("PCMU", 8000, media="audio", pt=0), writer)
    wire = Wire(make_packetizer("PCMU", 8000), 8000, pt=0)
    play(recorder, [(u.data, u.duration) for u in clip.units], wire)
    recorder.on_close(None)
    assert b"".join(f[0] for f in writer.frames) == b"".join(u.data for u in clip.units)
    assert {f[2] for f in writer.frames} == {160}
    assert writer.frames[0][4] == SampleEntrySpec("PCMU", 8000, sample_rate=8000, channels=1)


# --- session events and failure handling ---------------------------------------------------


def test_sender_report_anchors_capture_times() -> None:
    clip = video_clip("H264", frames=20, gop=10)
    writer = FakeWriter()
    recorder = TrackRecorder(make_stream("H264", fmtp=h26x_fmtp("H264", clip.entry)), writer)
    wire = Wire(make_packetizer("H264", 90_000))
    units = [(u.data, u.duration) for u in clip.units]
    play(recorder, units[:10], wire)
    # The camera says RTP time `wire.ts` (the next frame) was captured at T0 + 400 ms - 1 ms.
    ntp = unix_us_to_ntp(T0 + 400_000 - 1_000)
    recorder.on_sender_report(SenderReport(0x1234, ntp, wire.ts, 0, 0), T0, T0 * 1000)
    play(recorder, units[10:], wire, start_us=T0 + 400_000)
    recorder.on_close(None)
    assert recorder.stats.sender_reports == 1
    assert writer.frames[10][1] == T0 + 400_000 - 1_000  # the SR's time, not arrival - 2 ms
    assert writer.frames[8][1] == T0 + 322_000  # before the SR: arrival (incl. 2 ms delay)
    assert writer.frames[9][1] == T0 + 359_000  # emitted after it


def test_store_queue_full_counts_drops_and_asks_for_a_key_frame() -> None:
    clip = video_clip("H264", frames=10, gop=10)
    asked: list[int] = []
    writer = FakeWriter(refuse=True)
    recorder = TrackRecorder(
        make_stream("H264", fmtp=h26x_fmtp("H264", clip.entry)),
        writer,
        request_key_frame=lambda: asked.append(1),
    )
    play(
        recorder, [(u.data, u.duration) for u in clip.units], Wire(make_packetizer("H264", 90_000))
    )
    recorder.on_close(None)
    assert recorder.stats.frames == 0 and recorder.stats.dropped == 10
    assert asked == [1]


def test_close_ends_the_recording_and_later_packets_are_ignored() -> None:
    clip = video_clip("H264", frames=10, gop=10)
    writer = FakeWriter()
    recorder = TrackRecorder(make_stream("H264", fmtp=h26x_fmtp("H264", clip.entry)), writer)
    wire = Wire(make_packetizer("H264", 90_000))
    units = [(u.data, u.duration) for u in clip.units]
    play(recorder, units[:5], wire)
    assert len(writer.frames) == 4  # one behind: the duration of the 5th is not known yet
    recorder.on_close(RuntimeError("camera gone"))
    assert len(writer.frames) == 5 and writer.frames[4][2] == 3600 and writer.closed
    play(recorder, units[5:], wire)  # the client may still deliver a packet or two
    recorder.on_close(None)
    assert len(writer.frames) == 5 and recorder.closed


def test_a_bug_in_the_recorder_never_reaches_the_session(monkeypatch: pytest.MonkeyPatch) -> None:
    clip = video_clip("H264", frames=10, gop=10)
    writer = FakeWriter()
    recorder = TrackRecorder(make_stream("H264", fmtp=h26x_fmtp("H264", clip.entry)), writer)

    def broken(unit: Any) -> Any:
        raise ZeroDivisionError("bug")

    monkeypatch.setattr(recorder._shaper, "shape", broken)
    play(
        recorder, [(u.data, u.duration) for u in clip.units], Wire(make_packetizer("H264", 90_000))
    )
    assert recorder.error == "ZeroDivisionError: bug"
    recorder.on_close(None)
    assert writer.closed


# --- metadata -------------------------------------------------------------------------------


def metadata_packets(docs: list[bytes], chunk: int, seq: int = 100) -> Iterator[RtpPacket]:
    """Hand-built RTP packets: each document split in ``chunk``-byte pieces, marker on the
    last; timestamps are the packets' creation times (100 ms apart per document)."""
    ts = 1_000
    for doc in docs:
        pieces = [doc[i : i + chunk] for i in range(0, len(doc), chunk)]
        for k, piece in enumerate(pieces):
            raw = build_rtp(107, seq & 0xFFFF, ts + k, 0x77, piece, marker=k == len(pieces) - 1)
            yield parse_rtp(raw)
            seq += 1
        ts += 9_000


def metadata_document(n: int, size: int = 0) -> bytes:
    pad = "<tt:Extension>" + "x" * size + "</tt:Extension>" if size else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<tt:MetadataStream xmlns:tt="http://www.onvif.org/ver10/schema">'
        f'<tt:VideoAnalytics><tt:Frame UtcTime="2026-01-01T00:00:{n:02d}Z"/></tt:VideoAnalytics>'
        f"{pad}</tt:MetadataStream>"
    ).encode()


def test_sparse_metadata_is_not_held_back_forever() -> None:
    """A document is written when the next one tells its duration, or after max_hold_us."""
    writer = FakeWriter()

    async def scenario() -> None:
        stream = make_stream("vnd.onvif.metadata", media="application", pt=107)
        recorder = TrackRecorder(stream, writer, track_kind="Metadata", max_hold_us=200_000)
        packets = list(metadata_packets([metadata_document(0), metadata_document(1)], 100))
        half = len(packets) // 2
        for p in packets[:half]:
            recorder.on_rtp(p, T0, 0)
        assert writer.frames == []
        await asyncio.sleep(0.3)
        assert [f[0] for f in writer.frames] == [metadata_document(0)]
        for p in packets[half:]:
            recorder.on_rtp(p, T0 + 1_000_000, 0)
        recorder.on_close(None)

    asyncio.run(scenario())
    assert [f[0] for f in writer.frames] == [metadata_document(0), metadata_document(1)]


def test_helpers_agree() -> None:
    """The packet builder above really splits documents (guards the metadata tests)."""
    packets = list(metadata_packets([metadata_document(0, 3000)], 1000))
    assert len(packets) == 4 and [p.marker for p in packets] == [False] * 3 + [True]
    assert b"".join(bytes(p.payload) for p in packets) == metadata_document(0, 3000)
