"""Replay against real clients: GStreamer ``rtspsrc`` in ONVIF mode (through
``tests/peers/gst_replay_client.py``, run by Debian's Python) and FFmpeg.

What rtspsrc 1.22 does, and what these tests accommodate (see DESIGN.md §11):
- it drops the first access unit after each PLAY (a replay start or a seek), so comparisons
  allow the first one to be missing;
- a seek becomes PAUSE + PLAY with ``Range: clock=…`` (no ``Immediate``); a negative rate
  becomes ``Scale: -1.0`` with a decreasing range; ``Rate-Control`` is always sent, ``Frames``
  only for trick-mode seeks; its Range times go through a double and may be 1 µs early;
- ``rtponvifparse`` ends the stream at the first packet carrying T, so a final access unit
  spanning several packets is not decoded; it stamps only extension-carrying (first) packets
  with the NTP time, so absolute times are read from the extension, not from decoded frames.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import time
from functools import cache
from pathlib import Path

import pytest

from tests.conftest import require_binary
from tests.playback.replay_footage import (
    T0,
    Footage,
    LoopThread,
    ReplayServer,
    S,
    footage,
    loop,
    record,
    replay_server,
    server,
)

__all__ = ["footage", "loop", "server"]  # fixtures

pytestmark = pytest.mark.timeout(120)

SYSTEM_PYTHON = "/usr/bin/python3"
CLIENT = Path(__file__).parents[1] / "peers" / "gst_replay_client.py"


@cache
def _gst_missing() -> str | None:
    if not os.path.exists(SYSTEM_PYTHON):
        return f"{SYSTEM_PYTHON} not found"
    probe = "import gi; gi.require_version('Gst', '1.0'); from gi.repository import Gst"
    result = subprocess.run(
        [SYSTEM_PYTHON, "-c", probe], capture_output=True, text=True, timeout=30, check=False
    )
    return result.stderr.strip().splitlines()[-1] if result.returncode else None


def gst_replay(url: str, *args: object, timeout: float = 30) -> tuple[list[dict], float]:  # type: ignore[type-arg]
    """Run the rtspsrc client; (its JSON records, seconds it took)."""
    why = _gst_missing()
    if why is not None:
        if os.environ.get("NVR_TEST_ALLOW_MISSING"):
            pytest.skip(f"GStreamer Python bindings unavailable: {why}")
        pytest.fail(f"GStreamer Python bindings unavailable: {why} (install python3-gi)")
    command = [SYSTEM_PYTHON, str(CLIENT), url, "--timeout", str(timeout), *map(str, args)]
    started = time.monotonic()
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout + 20, check=False
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-2000:]
    records = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    errors = [r for r in records if r["event"] == "error"]
    assert not errors, errors
    return records, elapsed


def units(records: list[dict], media: str = "video") -> list[dict]:  # type: ignore[type-arg]
    return [r for r in records if r["event"] == "rtp" and r["media"] == media]


def sec(t_us: int) -> float:
    return round((t_us - T0) / S, 6)


def assert_tail(received: list[int], expected: list[int]) -> None:
    """``received`` is ``expected``, except that rtspsrc may drop the first one."""
    assert received in (expected, expected[1:]), (
        [sec(t) for t in received[:5]],
        [sec(t) for t in expected[:5]],
    )


# -- GStreamer rtspsrc (onvif-mode=true, is-live=true) ----------------------------------------


def test_rtspsrc_forward_from_a_clock_time(server: ReplayServer, footage: Footage) -> None:
    records, elapsed = gst_replay(server.url(), "--start", T0 + 2_440_000, "--no-rate-control")
    video = units(records)
    expected = [t for t in footage.video_times if t >= T0 + 2 * S]
    assert_tail([u["ntp_us"] for u in video], expected)
    flags = {sec(u["ntp_us"]): u["flags"] for u in video if set(u["flags"]) & set("EDT")}
    assert flags == {3.96: "E", 7.0: "CD", 10.96: "ET"}
    assert len({u["cseq"] for u in video}) == 1
    for media, stored in (("audio", footage.audio), ("application", footage.metadata)):
        assert_tail(
            [u["ntp_us"] for u in units(records, media)], [t for t in stored if t >= T0 + 2 * S]
        )
    decoded = [r for r in records if r["event"] == "frame"]
    assert len(decoded) >= len(expected) - 1  # every access unit it received decodes
    assert {"event": "eos", "media": "video"} in records  # the T bit ended the stream
    assert elapsed < 8  # 7 s of footage: Rate-Control no is not paced


@pytest.mark.parametrize("rate_control", [False, True])
def test_rtspsrc_decodes_what_the_native_path_fragments(
    loop: LoopThread, footage: Footage, rate_control: bool
) -> None:
    """A 40-byte MTU: nearly every access unit is cut into FU-A packets, the P frames by the
    native layout (``_wire.c``), with and without Rate-Control; rtspsrc reassembles and
    decodes them all (but the last, see the module docstring)."""
    end = T0 + 4 * S
    with replay_server(loop, footage.store, mtu=40) as small:
        pace = () if rate_control else ("--no-rate-control",)
        records, _ = gst_replay(small.url(), "--start", T0 + 2_440_000, "--end", end, *pace)
    video = units(records)
    expected = [t for t in footage.video_times if T0 + 2 * S <= t < end]
    assert_tail([u["ntp_us"] for u in video], expected)
    # Fragmented: the first packets of successive access units are several numbers apart.
    assert (video[-1]["seq"] - video[0]["seq"]) & 0xFFFF > 2 * (len(video) - 1)
    decoded = [r for r in records if r["event"] == "frame"]
    assert len(decoded) >= len(expected) - 2


def test_rtspsrc_rate_control_paces_in_real_time(server: ReplayServer, footage: Footage) -> None:
    records, elapsed = gst_replay(server.url(), "--start", T0 + S, "--end", T0 + 2_500_000)
    video = units(records)
    expected = [t for t in footage.video_times if T0 + S <= t < T0 + 2_500_000]
    assert_tail([u["ntp_us"] for u in video], expected)
    assert video[-1]["flags"] == "T"
    assert elapsed >= 1.4  # 1.5 s of footage


def test_rtspsrc_reverse(server: ReplayServer, footage: Footage) -> None:
    records, _ = gst_replay(
        server.url(), "--rate", -1, "--start", T0 + 10_500_000, "--end", T0 + S, "--no-rate-control"
    )
    video = units(records)
    starts = [sec(u["ntp_us"]) for u in video if "D" in u["flags"]]
    assert starts in ([10.0, 9.0, 8.0, 7.0, 3.0, 2.0, 1.0], [9.0, 8.0, 7.0, 3.0, 2.0, 1.0])
    start = T0 + 10_500_000 - 1  # rtspsrc's double arithmetic puts the start 1 µs early
    gops = sorted((t for t in footage.key_times if T0 + S <= t <= start), reverse=True)
    expected = [t for g in gops for t in footage.video_times if g <= t < g + S and t <= start]
    assert_tail([u["ntp_us"] for u in video], expected)
    assert video[-1]["flags"] == "T" and sec(video[-1]["ntp_us"]) == 1.96
    assert not units(records, "audio")  # no audio in reverse
    assert {"event": "eos", "media": "video"} in records


def test_rtspsrc_key_frames_only(server: ReplayServer, footage: Footage) -> None:
    records, _ = gst_replay(server.url(), "--start", T0, "--intra", "--no-rate-control")
    video = units(records)
    assert video and all(u["flags"].startswith("C") for u in video)
    assert_tail([u["ntp_us"] for u in video], footage.key_times)
    assert video[-1]["flags"] == "CET"


def test_rtspsrc_seek_while_playing(server: ReplayServer, footage: Footage) -> None:
    records, _ = gst_replay(
        server.url(),
        "--start", T0 + S, "--rate", 4,
        "--seek-after", 10, "--seek-start", T0 + 8_500_000,
    )  # fmt: skip
    video = units(records)
    first_play = {video[0]["cseq"]}
    before = [u for u in video if u["cseq"] in first_play]
    after = [u for u in video if u["cseq"] not in first_play]
    assert before and after and len({u["cseq"] for u in after}) == 1
    assert sec(before[0]["ntp_us"]) in (1.0, 1.04) and len(before) >= 10
    assert_tail([u["ntp_us"] for u in after], [t for t in footage.video_times if t >= T0 + 8 * S])
    seqs = [u["seq"] for u in video]
    assert all(0 < (b - a) & 0xFFFF < 0x8000 for a, b in itertools.pairwise(seqs))


# -- FFmpeg -----------------------------------------------------------------------------------


@pytest.fixture
def short(footage: Footage) -> Footage:
    """Two runs of one second each, a 2 s gap between them: quick to play in real time."""
    return record(footage.store, "SHORT", runs=((T0, 25), (T0 + 3 * S, 25)))


@pytest.mark.parametrize("transport", ["tcp", "http", "udp"])
def test_ffmpeg_decodes_every_frame(server: ReplayServer, short: Footage, transport: str) -> None:
    ffmpeg = require_binary("ffmpeg")
    result = subprocess.run(
        [ffmpeg, "-nostdin", "-v", "error", "-rtsp_transport", transport,
         "-i", server.url("SHORT"), "-map", "0:v", "-map", "0:a", "-f", "null", "-",
         "-progress", "pipe:1", "-nostats"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr
    frames = [int(n) for n in re.findall(r"^frame=(\d+)", result.stdout, re.M)]
    assert frames[-1] == len(short.video) == 50  # the BYE after T ends the input


def test_ffprobe_sees_the_streams(server: ReplayServer) -> None:
    ffprobe = shutil.which("ffprobe") or require_binary("ffprobe")
    result = subprocess.run(
        [ffprobe, "-v", "error", "-rtsp_transport", "tcp", "-show_streams", server.url()],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert re.findall(r"^codec_type=(\w+)", result.stdout, re.M) == ["video", "audio", "data"]
    assert "codec_name=h264" in result.stdout and "width=160" in result.stdout
