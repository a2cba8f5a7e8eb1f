"""Replay planning without sockets or a store: PLAY headers to plans (replay.md B.4, B.6),
the order and flags of access units (B.5.1, B.7) and Rate-Control pacing."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from fractions import Fraction

import pytest

from nvr.playback.replay_frames import ForwardMerge, ReverseGops, Status
from nvr.playback.replay_pacing import Pacer
from nvr.playback.replay_plan import (
    Extent,
    PlanError,
    make_plan,
    parse_play_request,
    response_headers,
)
from nvr.protocol.onvif_replay import FLAG_C, FLAG_D, FLAG_E, FLAG_T
from nvr.protocol.rtsp import Headers
from nvr.protocol.rtsp_headers import HeaderError, format_utc_time
from nvr.store.types import Frame

S = 1_000_000
T0 = 1_750_000_000_000_000
EXTENT = Extent(T0, T0 + 11 * S)


def clock(seconds: float) -> str:
    return format_utc_time((T0 + round(seconds * S)) * 1000)


def request(**headers: str):  # type: ignore[no-untyped-def]
    return parse_play_request(Headers([(k.replace("_", "-"), v) for k, v in headers.items()]))


# -- headers to plans -------------------------------------------------------------------------


def test_forward_open_range_defaults() -> None:
    plan = make_plan(request(Range=f"clock={clock(2.5)}-"), EXTENT)
    assert (plan.start_us, plan.end_us, plan.reverse) == (T0 + 2_500_000, None, False)
    assert plan.rate_control and plan.scale == 1 and plan.speed == 1
    assert not plan.key_only and plan.with_audio and plan.jump and not plan.immediate


def test_extended_iso_form_and_fraction_rounding() -> None:
    plan = make_plan(
        request(Range="clock=2025-06-15T15:06:42.0000005Z-2025-06-15T15:06:43.0000005Z"), EXTENT
    )
    assert plan.start_us == T0 + 2 * S  # start rounded down
    assert plan.end_us == T0 + 3 * S + 1  # forward end rounded up: frames before it


def test_reverse_with_decreasing_range() -> None:
    plan = make_plan(
        request(Range=f"clock={clock(10.5)}-{clock(1)}", Scale="-1.0", Rate_Control="no"),
        EXTENT,
    )
    assert (plan.start_us, plan.end_us, plan.reverse) == (T0 + 10_500_000, T0 + S, True)
    assert not plan.with_audio and not plan.rate_control


def test_reverse_to_the_ntp_epoch_goes_back_to_the_beginning() -> None:
    """GStreamer's rtspsrc (Debian 12) sends an open reverse range as ``<start>-19000101T000000Z``:
    a lower bound before all data, so replay runs back to the oldest GOP (no 457)."""
    plan = make_plan(request(Range=f"clock={clock(10.5)}-19000101T000000Z", Scale="-1"), EXTENT)
    assert plan.reverse and plan.start_us == T0 + 10_500_000
    assert plan.end_us is not None and plan.end_us < EXTENT.start_us


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ({"Range": f"clock={clock(5)}-{clock(1)}"}, "decreasing range needs a negative Scale"),
        ({"Range": f"clock={clock(1)}-{clock(5)}", "Scale": "-1"}, "needs a decreasing range"),
        ({"Range": f"clock={clock(3)}-{clock(3)}"}, "empty range"),
        ({"Range": f"clock={clock(12)}-"}, "start after the recorded data"),
        ({"Range": f"clock={clock(-5)}-{clock(-1)}"}, "range before the recorded data"),
        ({"Range": f"clock={clock(-1)}-", "Scale": "-1"}, "reverse start before"),
        ({"Range": f"clock={clock(20)}-{clock(12)}", "Scale": "-1"}, "range after"),
    ],
)
def test_invalid_ranges_are_457(headers: dict[str, str], why: str) -> None:
    with pytest.raises(PlanError) as err:
        make_plan(request(**headers), EXTENT)
    assert err.value.status == 457
    assert why in str(err.value)


def test_live_recording_starts_at_the_edge_for_a_future_start() -> None:
    live = Extent(T0, T0 + 11 * S, live=True)
    plan = make_plan(request(Range=f"clock={clock(30)}-"), live)
    assert plan.start_us == live.end_us


def test_npt_is_relative_to_the_first_data() -> None:
    assert make_plan(request(Range="npt=0.000-"), EXTENT).start_us == T0
    plan = make_plan(request(Range="npt=2.5-4"), EXTENT)
    assert (plan.start_us, plan.end_us) == (T0 + 2_500_000, T0 + 4 * S)
    assert make_plan(request(Range="npt=now-"), Extent(T0, T0 + S, True)).start_us == T0 + S


def test_play_without_range_resumes_and_keeps_headers() -> None:
    first = make_plan(
        request(Range=f"clock={clock(1)}-{clock(9)}", Speed="2.0", Rate_Control="yes"), EXTENT
    )
    resumed = make_plan(request(), EXTENT, position_us=T0 + 4 * S, previous=first)
    assert (resumed.start_us, resumed.end_us) == (T0 + 4 * S, T0 + 9 * S)
    assert resumed.speed == 2 and not resumed.jump
    assert make_plan(request(), EXTENT).start_us == T0  # nothing sent yet: start of footage
    back = make_plan(request(Scale="-1"), EXTENT)
    assert back.reverse and back.start_us == EXTENT.end_us


def test_range_without_start_plays_from_the_position_to_its_end() -> None:
    plan = make_plan(request(Range=f"clock=-{clock(5)}"), EXTENT, position_us=T0 + 2 * S)
    assert (plan.start_us, plan.end_us, plan.jump) == (T0 + 2 * S, T0 + 5 * S, True)
    assert make_plan(request(Range=f"clock=-{clock(5)}"), EXTENT).start_us == T0


def test_rate_control_no_uses_only_the_direction_of_scale() -> None:
    plan = make_plan(
        request(Range=f"clock={clock(9)}-", Scale="-4", Speed="3", Rate_Control="no"), EXTENT
    )
    assert plan.reverse and plan.scale == 1 and plan.speed == 1
    paced = make_plan(request(Range=f"clock={clock(1)}-", Scale="4", Speed="0.5"), EXTENT)
    assert paced.scale == 4 and paced.speed == Fraction(1, 2) and not paced.with_audio


@pytest.mark.parametrize(
    ("value", "key_only", "spacing"),
    [("all", False, 0), ("predicted", False, 0), ("intra", True, 0), ("intra/2000", True, 2 * S)],
)
def test_frames(value: str, key_only: bool, spacing: int) -> None:
    plan = make_plan(request(Range=f"clock={clock(1)}-", Frames=value), EXTENT)
    assert (plan.key_only, plan.min_spacing_us) == (key_only, spacing)


@pytest.mark.parametrize(
    "headers", [{"Scale": "0"}, {"Speed": "-1"}, {"Frames": "predicted/10"}, {"Immediate": "x"}]
)
def test_malformed_headers(headers: dict[str, str]) -> None:
    with pytest.raises(HeaderError):
        request(**headers)


def test_response_headers_echo_effective_values() -> None:
    plan = make_plan(
        request(
            Range=f"clock={clock(10.5)}-{clock(1)}",
            Scale="-2.0",
            Rate_Control="no",
            Immediate="yes",
        ),
        EXTENT,
    )
    assert plan.immediate
    assert response_headers(plan, T0 + 10 * S) == [
        ("Range", "clock=20250615T150650Z-20250615T150641Z"),
        ("Scale", "-1.0"),
        ("Rate-Control", "no"),
    ]
    quiet = make_plan(request(Range=f"clock={clock(1)}-"), EXTENT)
    assert response_headers(quiet, T0 + S) == [("Range", "clock=20250615T150641Z-")]


def test_parse_keeps_decimal_values() -> None:
    req = request(Scale="-1.0", Speed="1.5", Immediate="yes", Rate_Control="no")
    assert (req.scale, req.speed, req.immediate, req.rate_control) == (
        Decimal("-1.0"),
        Decimal("1.5"),
        True,
        False,
    )


# -- frame order and flags --------------------------------------------------------------------

FRAME = 40_000


def frame(t: int, key: bool = False, run: int = 1, first: bool = False, last: bool = False):  # type: ignore[no-untyped-def]
    return Frame(bytes(10), t, 3600, 90_000, key, 1, run, 1, 0, first, last)


def run_frames(start: int, count: int, run: int, gop: int = 5, ended: bool = True) -> list[Frame]:
    return [
        frame(
            start + n * FRAME,
            key=n % gop == 0,
            run=run,
            first=n == 0,
            last=ended and n == count - 1,
        )
        for n in range(count)
    ]


class ListCursor:
    """A forward cursor over a list; ``closed``: done once exhausted (a closed range)."""

    def __init__(self, frames: Iterable[Frame], *, closed: bool = False, chunk: int = 3) -> None:
        self.frames = list(frames)
        self.closed = closed
        self.chunk = chunk
        self.done = False

    def read(self, max_frames: int = 64, max_bytes: int = 1 << 30) -> list[Frame]:
        out, self.frames = self.frames[: self.chunk], self.frames[self.chunk :]
        if not out and self.closed:
            self.done = True
        return out


def flags_of(items) -> list[str]:  # type: ignore[no-untyped-def]
    names = ((FLAG_C, "C"), (FLAG_E, "E"), (FLAG_D, "D"), (FLAG_T, "T"))
    return ["".join(n for bit, n in names if i.flags & bit) for i in items]


def drain(merge: ForwardMerge) -> tuple[list, Status]:  # type: ignore[type-arg]
    items = []
    while True:
        batch = merge.read(max_items=4)
        items += batch.items
        if batch.status is not Status.MORE:
            return items, batch.status


def test_forward_across_a_gap_to_the_end_of_footage() -> None:
    frames = run_frames(T0, 6, 1) + run_frames(T0 + 3 * S, 4, 2)
    items, status = drain(ForwardMerge([ListCursor(frames)], start_us=T0))
    assert [i.frame.time_us for i in items] == [f.time_us for f in frames]
    assert flags_of(items) == ["C", "", "", "", "", "CE", "CD", "", "", "ET"]
    assert status is Status.EDGE  # an open range waits for the recording to resume


def test_closed_range_ends_with_t_and_done() -> None:
    frames = run_frames(T0, 7, 1, ended=False)
    items, status = drain(ForwardMerge([ListCursor(frames, closed=True)], start_us=T0, closed=True))
    assert flags_of(items)[-1] == "T" and status is Status.DONE


def test_live_tail_has_no_flags_until_the_run_ends() -> None:
    cursor = ListCursor(run_frames(T0, 4, 1, ended=False))
    ended = {"yes": False}
    merge = ForwardMerge(
        [cursor], start_us=T0, run_ended=lambda track, f: ended["yes"], read_frames=64
    )
    items, status = drain(merge)
    assert flags_of(items) == ["C", "", "", ""] and status is Status.EDGE
    cursor.frames = [frame(T0 + 4 * FRAME), frame(T0 + 5 * FRAME)]
    ended["yes"] = True  # the recording stopped after these
    items, status = drain(merge)
    assert flags_of(items) == ["", "ET"] and status is Status.EDGE


def test_jump_sets_d_on_tracks_that_sent_before() -> None:
    frames = run_frames(T0 + S, 3, 1)
    merge = ForwardMerge([ListCursor(frames)], start_us=T0 + S, started=[0], jump=True)
    assert flags_of(drain(merge)[0])[0] == "CD"
    fresh = ForwardMerge([ListCursor(run_frames(T0 + S, 3, 1))], start_us=T0 + S, jump=True)
    assert flags_of(drain(fresh)[0])[0] == "C"  # the session's first packet: no D


def test_tracks_merge_by_time_and_others_start_at_the_clean_point() -> None:
    video = run_frames(T0, 6, 1)
    audio = [frame(T0 - 20_000 + n * 50_000, key=True, run=5) for n in range(6)]
    merge = ForwardMerge([ListCursor(video), ListCursor(audio)], start_us=T0, ids=[4, 7])
    items, _ = drain(merge)
    times = [i.frame.time_us for i in items]
    assert times == sorted(times)
    assert {i.track for i in items} == {4, 7}
    assert min(i.frame.time_us for i in items if i.track == 7) >= T0


def test_key_frame_scan_marks_the_last_key_before_a_gap() -> None:
    keys = [f for f in run_frames(T0, 10, 1) + run_frames(T0 + 5 * S, 10, 2) if f.key]
    merge = ForwardMerge([ListCursor(keys)], start_us=T0, run_ended=lambda t, f: True)
    assert flags_of(drain(merge)[0]) == ["C", "CE", "CD", "CET"]


def test_reverse_gops_newest_first_with_d_e_t() -> None:
    run1, run2 = run_frames(T0, 10, 1), run_frames(T0 + 3 * S, 10, 2)
    gops = [run2[5:], run2[:5], run1[5:], run1[:5]]
    reverse = ReverseGops(iter(gops), track=3)
    items = []
    while True:
        batch = reverse.read(max_items=4)
        items += batch.items
        if batch.status is Status.DONE:
            break
    assert [i.frame.time_us for i in items] == [f.time_us for g in gops for f in g]
    assert {i.track for i in items} == {3}
    assert flags_of(items) == [
        *("CD", "", "", "", ""),
        *("CD", "", "", "", "E"),  # this GOP begins run 2: the gap lies behind it
        *("CD", "", "", "", ""),
        *("CD", "", "", "", "ET"),  # start of footage, last frame sent
    ]


def test_reverse_without_data_is_done_at_once() -> None:
    batch = ReverseGops(iter([])).read()
    assert batch.items == [] and batch.status is Status.DONE


# -- pacing -----------------------------------------------------------------------------------


def test_forward_pacing_scale_speed_and_gaps() -> None:
    pacer = Pacer(1_000, 100.0, scale=Fraction(2), speed=Fraction(1))
    assert pacer.forward(T0, FRAME, True) == 1_000
    assert pacer.forward(T0 + FRAME, FRAME, False) == 1_000 + FRAME // 2
    assert pacer.due(1_000 + FRAME // 2) == pytest.approx(100.02)
    # a 10 s gap is cut out of the presentation timeline
    assert pacer.forward(T0 + 10 * S, FRAME, True) == 1_000 + FRAME
    assert pacer.span(FRAME) == FRAME // 2
    fast = Pacer(0, 0.0, speed=Fraction(4))
    assert fast.due(2 * S) == pytest.approx(0.5)
    assert fast.presentation_at(0.5) == 2 * S


def test_reverse_pacing_decreases_inside_a_gop() -> None:
    pacer = Pacer(0, 0.0, reverse=True)
    gop = [T0 + n * FRAME for n in range(3)]
    pacer.reverse_gop(gop[0], gop[-1] + FRAME, after_gap=False)
    stamps = [pacer.backward(t, FRAME) for t in gop]
    assert stamps == [2 * FRAME, FRAME, 0]
    older = [T0 - 3 * FRAME + n * FRAME for n in range(3)]
    pacer.reverse_gop(older[0], older[-1] + FRAME, after_gap=False)
    assert [pacer.backward(t, FRAME) for t in older] == [5 * FRAME, 4 * FRAME, 3 * FRAME]
    # a gap before the next GOP back is skipped
    far = T0 - 10 * S
    pacer.reverse_gop(far, far + FRAME, after_gap=True)
    assert pacer.backward(far, FRAME) == 6 * FRAME
