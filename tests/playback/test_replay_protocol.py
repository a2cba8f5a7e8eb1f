"""Replay over RTSP, checked packet by packet with our own client (replay.md Part B, Part C):
the extension flags and CSeq byte, sequence numbers across PLAYs, RTP timestamps per
Rate-Control mode, RTCP, status codes, the live edge and isolation of slow clients."""

from __future__ import annotations

import base64
import itertools
import time

import pytest

from nvr.protocol.codecs.annexb import length_prefixed_to_nals
from nvr.protocol.rtcp import Bye, SenderReport
from nvr.protocol.rtsp_headers import parse_rtp_info
from nvr.protocol.sdp import parse_sdp
from tests.playback.helpers import RtspTestClient
from tests.playback.replay_footage import (
    FRAME_US,
    T0,
    Footage,
    ReplayServer,
    S,
    access_units,
    big_recording,
    clock,
    encoded_video,
    footage,
    h264_entry,
    loop,
    read_until_terminal,
    rtcp_packets,
    rtp_packets,
    server,
    setup,
)

__all__ = ["footage", "loop", "server"]  # fixtures

pytestmark = pytest.mark.timeout(120)

REPLAY = ("Require", "onvif-replay")
NO_RC = ("Rate-Control", "no")


def sec(t_us: int | None) -> float:
    assert t_us is not None
    return (t_us - T0) / S


def gop_starts(units: list) -> list[float]:  # type: ignore[type-arg]
    return [sec(u.time_us) for u in units if "D" in u.flags]


def assert_consecutive(packets: list) -> None:  # type: ignore[type-arg]
    """RTP sequence numbers +1 per packet in sending order, whatever the PLAYs did."""
    seqs = [p.seq for p in packets]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs)), seqs


# -- DESCRIBE ---------------------------------------------------------------------------------


def test_describe_lists_the_tracks_with_data(server: ReplayServer, footage: Footage) -> None:
    store = footage.store
    store.create_recording("VIDEO_ONLY")
    writer = store.open_writer("VIDEO_ONLY", "VIDEO001")
    frames = encoded_video()[:25]
    entry = h264_entry(frames[0][0])
    for data, key, t in frames:
        writer.submit(data, t, 3600, key, entry)
    writer.close().result(10)
    store.writer_service.flush(10)
    with RtspTestClient(server.port) as c:
        response = c.request("DESCRIBE", server.url(), [REPLAY])
        assert response.status == 200
        assert response.headers["Content-Base"] == server.url() + "/"
        sd = parse_sdp(response.body.decode())
        assert [m.media for m in sd.media] == ["video", "audio", "application"]
        assert [m.onvif_track for m in sd.media] == ["VIDEO001", "AUDIO001", "META001"]
        assert [m.control for m in sd.media] == ["track1", "track2", "track3"]
        video, audio, meta = sd.media
        assert video.rtpmap(96).encoding_name == "H264"
        sprop = video.fmtp(96).get("sprop-parameter-sets") or ""
        nals = [base64.b64decode(item) for item in sprop.split(",")]
        assert nals == length_prefixed_to_nals(entry.parameters)
        assert audio.rtpmap(0).encoding_name == "PCMU"
        assert meta.rtpmap(98).encoding_name == "vnd.onvif.metadata"
        assert sd.range == f"clock={clock(T0)}-{clock(T0 + 11 * S)}"

        only = parse_sdp(c.request("DESCRIBE", server.url("VIDEO_ONLY")).body.decode())
        assert [(m.media, m.onvif_track) for m in only.media] == [("video", "VIDEO001")]
        assert c.request("DESCRIBE", server.url("NO_SUCH")).status == 404
        assert c.request("DESCRIBE", c.url("/recordings/")).status == 404
        assert c.request("DESCRIBE", c.url("/elsewhere")).status == 404


# -- the worked session (Part C) --------------------------------------------------------------


def test_worked_session_forward_reverse_and_scan(server: ReplayServer, footage: Footage) -> None:
    url = server.url()
    with RtspTestClient(server.port) as c:
        setup(c, url)

        # PLAY 1: forward from inside run 1, across the gap, to the end of footage.
        response = c.request(
            "PLAY", url + "/", [REPLAY, ("Range", f"clock={clock(T0 + 2_440_000)}-"), NO_RC]
        )
        play1 = c.cseq
        assert response.status == 200
        assert response.headers["Range"] == f"clock={clock(T0 + 2 * S)}-"  # the clean point
        assert response.headers["Rate-Control"] == "no"
        info = parse_rtp_info(response.headers["RTP-Info"])
        assert [i.url for i in info] == [f"{url}/track{n}" for n in (1, 2, 3)]
        units = read_until_terminal(c)
        expected = [t for t in footage.video_times if t >= T0 + 2 * S]
        assert [u.time_us for u in units] == expected
        flags = {sec(u.time_us): u.flags for u in units if u.flags}
        keys = {sec(t): "C" for t in footage.key_times if t >= T0 + 2 * S}
        assert flags == {**keys, 3.96: "E", 7.0: "CD", 10.96: "ET"}
        assert {u.cseq for u in units} == {play1 & 0xFF}
        packets = rtp_packets(c, 0)
        assert (packets[0].seq, packets[0].timestamp) == (info[0].seq, info[0].rtptime)
        assert packets[0].ext is not None
        assert_consecutive(packets)
        # the extension rides on the first packet of each access unit only
        starts = [n for n, p in enumerate(packets) if p.ext is not None]
        ends = [n + 1 for n, p in enumerate(packets) if p.marker]
        assert starts == [0, *ends[:-1]]
        # Rate-Control no: RTP time derived from the capture time (B.7)
        assert all(
            u.timestamp - info[0].rtptime == (u.time_us - T0 - 2 * S) * 9 // 100 for u in units
        )
        for channel, stored in ((2, footage.audio), (4, footage.metadata)):
            got = access_units(c, channel)
            assert [u.time_us for u in got] == [t for t in stored if t >= T0 + 2 * S]
            assert got[-1].flags.endswith("ET")
        # B.9: sender reports with NTP = RTP = 0; a BYE follows the terminal access unit
        reports = rtcp_packets(c, 1)
        srs = [p for r in reports for p in r if isinstance(p, SenderReport)]
        assert srs and all(sr.ntp_timestamp == 0 == sr.rtp_timestamp for sr in srs)
        assert any(isinstance(p, Bye) for p in reports[-1])

        # PLAY 2: reverse across the gap, at once (Immediate), down to 1 s.
        before = len(units)
        response = c.request(
            "PLAY",
            url + "/",
            [
                REPLAY,
                ("Range", f"clock={clock(T0 + 10_500_000)}-{clock(T0 + S)}"),
                NO_RC,
                ("Scale", "-1.0"),
                ("Immediate", "yes"),
            ],
        )
        play2 = c.cseq
        assert response.status == 200
        assert response.headers["Range"] == f"clock={clock(T0 + 10 * S)}-{clock(T0 + S)}"
        assert response.headers["Scale"] == "-1.0"
        rtptime = parse_rtp_info(response.headers["RTP-Info"])[0].rtptime
        units = read_until_terminal(c, after=before)[before:]
        assert gop_starts(units) == [10.0, 9.0, 8.0, 7.0, 3.0, 2.0, 1.0]
        assert [sec(u.time_us) for u in units[:3]] == [10.0, 10.04, 10.08]  # GOP forward
        assert [sec(u.time_us) for u in units if "E" in u.flags] == [7.96]  # behind: the gap
        assert [(sec(u.time_us), u.flags) for u in units if "T" in u.flags] == [(1.96, "T")]
        assert all(u.flags.startswith("CD") for u in units if sec(u.time_us) % 1 == 0)
        assert {u.cseq for u in units} == {play2 & 0xFF}
        assert all(u.timestamp - rtptime == (u.time_us - T0 - 10 * S) * 9 // 100 for u in units)
        assert_consecutive(rtp_packets(c, 0))
        assert len(access_units(c, 2)) == len([t for t in footage.audio if t >= T0 + 2 * S])

        # PLAY 3: key-frame scan, at least 2 s of recording apart (Frames: intra/2000).
        before += len(units)
        response = c.request(
            "PLAY",
            url + "/",
            [REPLAY, ("Range", f"clock={clock(T0)}-"), ("Frames", "intra/2000"), NO_RC],
        )
        assert response.status == 200
        units = read_until_terminal(c, after=before)[before:]
        assert [(sec(u.time_us), u.flags) for u in units] == [
            (0.0, "CD"),
            (2.0, "CE"),
            (7.0, "CD"),
            (9.0, "CET"),
        ]
        assert_consecutive(rtp_packets(c, 0))

        # The end of footage does not pause the session (B.8): PAUSE is still valid.
        assert c.request("GET_PARAMETER", url + "/").status == 200
        assert c.request("PAUSE", url + "/").status == 200
        assert c.request("TEARDOWN", url + "/").status == 200


def test_closed_range_ends_with_t_at_its_end(server: ReplayServer) -> None:
    url = server.url()
    with RtspTestClient(server.port) as c:
        setup(c, url, ("track1",))
        response = c.request(
            "PLAY", url + "/", [("Range", f"clock={clock(T0 + S)}-{clock(T0 + 2_500_000)}"), NO_RC]
        )
        assert response.headers["Range"] == f"clock={clock(T0 + S)}-{clock(T0 + 2_500_000)}"
        units = read_until_terminal(c)
        assert sec(units[0].time_us) == 1.0 and sec(units[-1].time_us) == 2.48
        assert units[-1].flags == "T"


# -- pause, resume, seek; Rate-Control yes ----------------------------------------------------


def test_pause_resume_and_seek_keep_sequence_and_timeline(server: ReplayServer) -> None:
    url = server.url()
    with RtspTestClient(server.port) as c:
        setup(c, url, ("track1",))
        response = c.request("PLAY", url + "/", [("Range", f"clock={clock(T0)}-"), ("Speed", "8")])
        assert response.status == 200 and response.headers["Speed"] == "8.0"
        rtptime = parse_rtp_info(response.headers["RTP-Info"])[0].rtptime
        c.read_for(0.3)
        assert c.request("PAUSE", url + "/").status == 200
        c.read_for(0.3)
        paused = access_units(c)
        assert 0 < len(paused) < 200
        c.read_for(0.3)
        assert len(access_units(c)) == len(paused)  # nothing while paused
        assert c.request("PLAY", url + "/").status == 200  # resume: no Range
        units = read_until_terminal(c)
        times = [u.time_us for u in units]
        assert times[: len(paused)] == [u.time_us for u in paused]
        assert times == sorted(set(times))  # exactly where it stopped: no repeat, no hole
        assert "D" not in units[len(paused)].flags
        assert len(units) == 200
        assert_consecutive(rtp_packets(c, 0))
        # Rate-Control yes: RTP time is presentation time, 40 ms per frame at Scale 1 (not
        # Speed), continuous over the pause, and the 3 s gap is cut out.
        steps = {b.timestamp - a.timestamp for a, b in itertools.pairwise(units)}
        assert steps == {FRAME_US * 9 // 100}
        assert units[0].timestamp == rtptime
        srs = [p for r in rtcp_packets(c, 1) for p in r if isinstance(p, SenderReport)]
        assert srs and all(sr.ntp_timestamp != 0 for sr in srs)

        # seek while playing, no Immediate: the new PLAY's packets carry D and its CSeq
        before = len(units)
        c.request("PLAY", url + "/", [("Range", f"clock={clock(T0 + 8_500_000)}-"), ("Speed", "8")])
        seek = c.cseq
        units = read_until_terminal(c, after=before)[before:]
        assert (sec(units[0].time_us), units[0].flags, units[0].cseq) == (8.0, "CD", seek & 0xFF)
        assert_consecutive(rtp_packets(c, 0))


def test_rate_control_yes_timestamps_share_one_clock(server: ReplayServer) -> None:
    """Forward: every track's RTP time is its capture time on one presentation clock.
    Reverse (RFC 2326 App. B): decreasing inside a GOP, increasing from GOP to GOP."""
    url = server.url()
    with RtspTestClient(server.port) as c:
        setup(c, url)
        response = c.request(
            "PLAY",
            url + "/",
            [("Range", f"clock={clock(T0 + S)}-{clock(T0 + 3 * S)}"), ("Speed", "8")],
        )
        infos = parse_rtp_info(response.headers["RTP-Info"])
        read_until_terminal(c)
        for channel, info, rate in (
            (0, infos[0], 90_000),
            (2, infos[1], 8_000),
            (4, infos[2], 90_000),
        ):
            got = access_units(c, channel)
            assert got
            for u in got:
                assert u.timestamp - info.rtptime == (u.time_us - T0 - S) * rate // S

        before, audio = len(access_units(c)), len(access_units(c, 2))
        response = c.request(
            "PLAY",
            url + "/",
            [
                ("Range", f"clock={clock(T0 + 9_500_000)}-{clock(T0 + 7 * S)}"),
                ("Scale", "-1"),
                ("Speed", "8"),
            ],
        )
        assert response.status == 200
        units = read_until_terminal(c, after=before)[before:]
        assert gop_starts(units) == [9.0, 8.0, 7.0]
        gops = [[u for u in units if int(sec(u.time_us)) == g] for g in (9, 8, 7)]
        for gop in gops:
            stamps = [u.timestamp for u in gop]
            assert stamps == sorted(stamps, reverse=True)
        assert gops[0][0].timestamp < gops[1][0].timestamp < gops[2][0].timestamp
        assert len(access_units(c, 2)) == audio  # no audio in reverse


def test_rate_control_no_is_faster_than_real_time(server: ReplayServer) -> None:
    url = server.url()
    with RtspTestClient(server.port) as c:
        setup(c, url)
        started = time.monotonic()
        c.request("PLAY", url + "/", [("Range", f"clock={clock(T0)}-"), NO_RC])
        units = read_until_terminal(c)
        assert len(units) == 200
        assert time.monotonic() - started < 4  # 8 s of footage


# -- status codes -----------------------------------------------------------------------------


def test_status_codes(server: ReplayServer) -> None:
    url = server.url()
    with RtspTestClient(server.port) as c:
        unknown = c.request("DESCRIBE", url, [("Require", "onvif-replay, x-unknown")])
        assert unknown.status == 551 and unknown.headers["Unsupported"] == "x-unknown"
        assert c.request("DESCRIBE", url).status == 200  # Require is accepted, not demanded
        assert c.request("PLAY", url + "/", [("Session", "0123456789ABCDEF")]).status == 454
        setup(c, url, ("track1",))
        assert c.request("PAUSE", url + "/").status == 455  # not playing yet
        bad = [
            (f"clock={clock(T0 + 5 * S)}-{clock(T0 + S)}", None),  # decreasing, forward
            (f"clock={clock(T0 + S)}-{clock(T0 + 5 * S)}", "-1"),  # increasing, reverse
            (f"clock={clock(T0 + 20 * S)}-", None),  # after the footage
            (f"clock={clock(T0 + 4_500_000)}-{clock(T0 + 6 * S)}", None),  # only a gap
            (f"clock={clock(T0 - 20 * S)}-{clock(T0 - 10 * S)}", None),  # before it
        ]
        for value, scale in bad:
            headers = [("Range", value)] + ([("Scale", scale)] if scale else [])
            assert c.request("PLAY", url + "/", headers).status == 457, value
        assert c.request("PLAY", url + "/", [("Scale", "0")]).status == 400
        assert c.request("PLAY", url + "/", [("Range", "clock=garbage")]).status == 400
        assert c.request("PLAY", url + "/", [("Range", f"clock={clock(T0)}-"), NO_RC]).status == 200


# -- the live edge ----------------------------------------------------------------------------


def test_following_a_track_that_is_still_recording(server: ReplayServer, footage: Footage) -> None:
    store = footage.store
    store.create_recording("LIVE")
    frames = encoded_video()
    entry = h264_entry(frames[0][0])
    writer = store.open_writer("LIVE", "VIDEO001")

    def write(part: list) -> None:  # type: ignore[type-arg]
        for data, key, t in part:
            assert writer.submit(data, t, 3600, key, entry)
        assert store.writer_service.flush(10)

    write(list(frames[:50]))  # 0 s .. 1.96 s, the run stays open
    url = server.url("LIVE")
    with RtspTestClient(server.port) as c:
        setup(c, url, ("track1",))
        response = c.request("PLAY", url + "/", [("Range", f"clock={clock(T0 + S)}-"), NO_RC])
        assert response.status == 200
        c.read_for(0.5)
        units = access_units(c)
        assert sec(units[0].time_us) == 1.0 and sec(units[-1].time_us) == 1.96
        assert not any(set(u.flags) & set("EDT") for u in units)  # the live tail: no E
        write(list(frames[50:75]))
        deadline = time.monotonic() + 10
        while len(access_units(c)) < 50 and time.monotonic() < deadline:
            c.pump(0.1)
        units = access_units(c)
        assert [u.time_us for u in units] == [T0 + S + n * FRAME_US for n in range(50)]
        assert not any(set(u.flags) & set("EDT") for u in units)
        # the recording stops, then resumes in a new run after a gap: delivery goes on (B.8)
        writer.close().result(10)
        writer = store.open_writer("LIVE", "VIDEO001")
        write(list(frames[100:125]))  # the footage's second run: 7 s .. 7.96 s
        deadline = time.monotonic() + 10
        while len(access_units(c)) < 75 and time.monotonic() < deadline:
            c.pump(0.1)
        resumed = access_units(c)[50:]
        assert sec(resumed[0].time_us) == 7.0 and resumed[0].flags == "CD"
        assert len(resumed) == 25
        writer.close().result(10)


# -- isolation --------------------------------------------------------------------------------


def test_a_stalled_client_does_not_stall_another(server: ReplayServer, footage: Footage) -> None:
    size = big_recording(footage.store)
    url = server.url("BIG")
    with RtspTestClient(server.port, rcvbuf=4096) as stalled, RtspTestClient(server.port) as c:
        setup(stalled, url, ("track1",))
        stalled.send("PLAY", url + "/", [("Range", f"clock={clock(T0)}-"), NO_RC])
        time.sleep(0.3)  # it now holds a full socket and a full session queue
        setup(c, url, ("track1",))
        started = time.monotonic()
        c.request("PLAY", url + "/", [("Range", f"clock={clock(T0)}-"), NO_RC])
        units = read_until_terminal(c, timeout=60)
        elapsed = time.monotonic() - started
        assert len(units) == 1500
        print(f"replay Rate-Control no: {size / elapsed / 1e6:.1f} MB/s beside a stalled client")
        assert c.request("GET_PARAMETER", url + "/").status == 200
