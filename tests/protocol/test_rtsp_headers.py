"""Typed RTSP headers: values from the ONVIF examples, leniency, errors, round-trip properties."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nvr.protocol import rtsp_headers as h
from nvr.protocol.errors import ProtocolError
from nvr.protocol.rtsp_headers import (
    NOW,
    ClockRange,
    Frames,
    HeaderError,
    NptRange,
    RtpInfo,
    SessionHeader,
    TransportSpec,
)

NS = 1_000_000_000


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, sec: int = 0, us: int = 0
) -> int:
    """Nanoseconds since the epoch for a UTC calendar time."""
    return h.datetime_to_clock(dt.datetime(year, month, day, hour, minute, sec, us, tzinfo=dt.UTC))


# --- Transport --------------------------------------------------------------------------------


def test_transport_interleaved_replay_setup() -> None:
    (request,) = h.parse_transport("RTP/AVP/TCP;unicast;interleaved=0-1")
    assert request == TransportSpec(lower_transport="TCP", delivery="unicast", interleaved=(0, 1))
    assert request.is_tcp and not request.is_multicast and request.transport_id == "RTP/AVP/TCP"
    reply = TransportSpec(
        lower_transport="TCP", delivery="unicast", interleaved=(0, 1), ssrc=0x1234ABCD
    )
    assert h.format_transport(reply) == "RTP/AVP/TCP;unicast;interleaved=0-1;ssrc=1234ABCD"


def test_transport_udp_live_setup_reply() -> None:
    value = "RTP/AVP;unicast;client_port=50000-50001;server_port=6970-6971;ssrc=5A1F00C3"
    (spec,) = h.parse_transport(value)
    assert spec.client_port == (50000, 50001) and spec.server_port == (6970, 6971)
    assert spec.ssrc == 0x5A1F00C3 and spec.lower_transport is None
    assert h.format_transport(spec) == value


def test_transport_multicast_and_alternatives() -> None:
    specs = h.parse_transport(
        'RTP/AVP;multicast;destination=232.1.1.1;port=5000-5001;ttl=16;mode="PLAY",'
        " RTP/AVP/TCP;unicast;interleaved=2-3 , RTP/AVP/UDP;unicast;client_port=4000"
    )
    assert [s.transport_id for s in specs] == ["RTP/AVP", "RTP/AVP/TCP", "RTP/AVP/UDP"]
    multicast = specs[0]
    assert multicast.is_multicast and multicast.destination == "232.1.1.1"
    assert multicast.port == (5000, 5001) and multicast.ttl == 16 and multicast.mode == "PLAY"
    assert specs[2].client_port == (4000, None)


def test_transport_leniency_and_unknown_parameters() -> None:
    (spec,) = h.parse_transport(
        "rtp/avp/tcp; Unicast ; interleaved = 4 - 5 ;mode=play;ssrc=00000000DEADBEEF;"
        'x-retransmit;x-buffer="1 s";source=10.0.0.9;destination;append;layers=2'
    )
    assert spec.transport_id == "RTP/AVP/TCP" and spec.delivery == "unicast"
    assert spec.interleaved == (4, 5) and spec.mode == "PLAY" and spec.ssrc == 0xDEADBEEF
    assert spec.extra == (("x-retransmit", None), ("x-buffer", "1 s"))
    assert spec.source == "10.0.0.9" and spec.destination == "" and spec.append
    assert h.format_transport(spec) == (
        "RTP/AVP/TCP;unicast;destination;source=10.0.0.9;interleaved=4-5;append;layers=2;"
        'ssrc=DEADBEEF;mode=PLAY;x-retransmit;x-buffer="1 s"'
    )


@pytest.mark.parametrize(
    "value",
    [
        "",
        "RTP",
        "RTP/AVP/TCP/X",
        "RTP/AVP;interleaved=256",
        "RTP/AVP;interleaved",
        "RTP/AVP;client_port=70000",
        "RTP/AVP;client_port=a-b",
        "RTP/AVP;ssrc=123456789",
        "RTP/AVP;ssrc=xyz",
        "RTP/AVP;ttl=300",
        "RTP/AVP;mode=",
        'RTP/AVP;mode="PLAY',
        "RTP/AVP;=1",
        "RTP/AVP;client_port=" + "9" * 30,
        "RTP/AVP;client_port=\u0661\u0662",
    ],
)
def test_transport_errors(value: str) -> None:
    with pytest.raises(HeaderError):
        h.parse_transport(value)


def test_transport_format_errors() -> None:
    with pytest.raises(HeaderError):
        h.format_transport([])
    with pytest.raises(HeaderError):
        h.format_transport(TransportSpec(interleaved=(0, 256)))
    with pytest.raises(HeaderError):
        h.format_transport(TransportSpec(profile="A V P"))


# --- Session, CSeq, Content-Base, lists --------------------------------------------------------


def test_session() -> None:
    assert h.parse_session("9F3C22A1;timeout=60") == SessionHeader("9F3C22A1", 60)
    assert h.parse_session(" 44C1A9 ") == SessionHeader("44C1A9")
    assert h.parse_session("abc$-_.+ ; timeout = 30 ; x=1") == SessionHeader("abc$-_.+", 30)
    assert h.format_session(SessionHeader("9F3C22A1", 60)) == "9F3C22A1;timeout=60"
    for bad in ["", ";timeout=5", "a b", "x;timeout=abc", "é"]:
        with pytest.raises(HeaderError):
            h.parse_session(bad)


def test_cseq() -> None:
    assert h.parse_cseq(" 42 ") == 42 and h.format_cseq(7) == "7"
    for bad in ["", "-1", "1.0", "²", "4294967296", "9" * 50]:
        with pytest.raises(HeaderError):
            h.parse_cseq(bad)
    with pytest.raises(HeaderError):
        h.format_cseq(-1)


def test_content_base() -> None:
    base = "rtsp://10.0.0.5/onvif/replay/REC_CAM1/"
    assert h.parse_content_base(f" {base} ") == base == h.format_content_base(base)
    with pytest.raises(HeaderError):
        h.parse_content_base("rtsp://a b/")


def test_public_and_option_tags() -> None:
    public = "OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER, SET_PARAMETER"
    methods = h.parse_method_list(public)
    assert methods[0] == "OPTIONS" and len(methods) == 8
    assert h.format_method_list(methods) == public
    assert h.parse_method_list("OPTIONS,,PLAY,") == ("OPTIONS", "PLAY")
    tags = h.parse_option_tags("onvif-replay, www.onvif.org/ver20/backchannel")
    assert tags == ("onvif-replay", "www.onvif.org/ver20/backchannel")
    assert h.format_option_tags(tags) == "onvif-replay, www.onvif.org/ver20/backchannel"
    with pytest.raises(HeaderError):
        h.parse_method_list("PLAY, SET PARAMETER")
    with pytest.raises(HeaderError):
        h.parse_option_tags('onvif-replay, "x"')


# --- Range -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("npt=now-", NptRange(NOW)),
        ("npt=0-", NptRange(0)),
        ("npt=0.000-10.5", NptRange(0, 10 * NS + NS // 2)),
        ("npt=-10", NptRange(None, 10 * NS)),
        ("npt=00:01:02.5-", NptRange(62 * NS + NS // 2)),
        ("npt=123:00:00-", NptRange(123 * 3600 * NS)),
        ("NPT = 1.123456789123-", NptRange(1 * NS + 123_456_789)),
        ("npt=.5-", NptRange(NS // 2)),
        ("clock=20250301T101500.440Z-", ClockRange(utc(2025, 3, 1, 10, 15, 0, 440_000))),
        (
            "clock=20250301T100500Z-20250301T090000Z",
            ClockRange(utc(2025, 3, 1, 10, 5), utc(2025, 3, 1, 9, 0)),
        ),
        ("clock=-20250301T090000Z", ClockRange(None, utc(2025, 3, 1, 9))),
        ("clock=2025-03-01T10:15:00.440Z-", ClockRange(utc(2025, 3, 1, 10, 15, 0, 440_000))),
        (
            "clock=2025-03-01T10:15:00Z-2025-03-01T11:00:00.5Z",
            ClockRange(utc(2025, 3, 1, 10, 15), utc(2025, 3, 1, 11, 0, 0, 500_000)),
        ),
        ("clock=20250301t101500.123456789z-", ClockRange(utc(2025, 3, 1, 10, 15) + 123_456_789)),
        (
            "clock=19700101T000000Z-;time=19970123T143720Z",
            ClockRange(0, None, utc(1997, 1, 23, 14, 37, 20)),
        ),
    ],
)
def test_range_parse(value: str, expected: h.RangeValue) -> None:
    assert h.parse_range(value) == expected


def test_range_reverse_and_format() -> None:
    reverse = h.parse_range("clock=20250301T100500Z-20250301T090000Z")
    assert isinstance(reverse, ClockRange) and reverse.is_decreasing
    assert h.format_range(reverse) == "clock=20250301T100500Z-20250301T090000Z"
    start = h.parse_range("clock=2025-03-01T10:14:58.96Z-")
    assert h.format_range(start) == "clock=20250301T101458.960Z-"  # basic form, ms digits
    assert h.format_range(NptRange(NOW)) == "npt=now-"
    assert h.format_range(NptRange(0, 62 * NS + 1)) == "npt=0.000-62.000000001"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "npt",
        "npt=",
        "npt=-",
        "npt=10",
        "npt=a-",
        "npt=1:2-",
        "npt=00:60:00-",
        "npt=00:00:61-",
        "npt=00:00:001-",
        "npt=1.2.3-",
        "smpte=10:07:00-10:07:33:05.01",
        "clock=-",
        "clock=20250301T101500-",
        "clock=20251301T101500Z-",
        "clock=20250230T101500Z-",
        "clock=20250301T241500Z-",
        "clock=20250301T101560Z-",
        "clock=00000101T000000Z-",
        "clock=20250301T101500.Z-",
        "clock=2025301T101500Z-",
        "clock=20250301T101500Z-junkZ",
        "clock=20250301T101500Z-;time=yesterday",
    ],
)
def test_range_errors(value: str) -> None:
    with pytest.raises(HeaderError):
        h.parse_range(value)


def test_range_object_validation() -> None:
    with pytest.raises(HeaderError):
        ClockRange(None, None)
    with pytest.raises(HeaderError):
        NptRange(None, None)
    with pytest.raises(HeaderError):
        h.format_range(NptRange(-1))
    with pytest.raises(HeaderError):
        h.format_utc_time(utc(9999, 12, 31, 23, 59, 59) + NS)


def test_clock_time_is_exact() -> None:
    ns = h.parse_utc_time("20250301T101500.123456789Z")
    assert ns % NS == 123_456_789
    assert h.format_utc_time(ns) == "20250301T101500.123456789Z"
    moment = h.clock_to_datetime(ns)
    assert moment == dt.datetime(2025, 3, 1, 10, 15, 0, 123_456, tzinfo=dt.UTC)
    assert h.datetime_to_clock(dt.datetime(2025, 3, 1, 10, 15)) == ns - 123_456_789
    assert h.format_utc_time(utc(1969, 12, 31, 23, 59, 59, 500_000)) == "19691231T235959.500Z"


# --- RTP-Info ----------------------------------------------------------------------------------


def test_rtp_info_from_a_folded_play_reply() -> None:
    base = "rtsp://10.0.0.5/onvif/replay/REC_CAM1"
    value = f"url={base}/track1;seq=4711;rtptime=3000000, url={base}/track3;seq=301;rtptime=905000"
    assert h.parse_rtp_info(value) == (
        RtpInfo(f"{base}/track1", 4711, 3000000),
        RtpInfo(f"{base}/track3", 301, 905000),
    )
    assert h.format_rtp_info(h.parse_rtp_info(value)) == value.replace(", ", ",")


def test_rtp_info_leniency() -> None:
    assert h.parse_rtp_info("url=rtsp://h/s;stream=1;seq=5;rtptime=") == (
        RtpInfo("rtsp://h/s;stream=1", 5, None),
    )
    assert h.parse_rtp_info('url="rtsp://h/a,b";seq=1;ssrc=1234') == (RtpInfo("rtsp://h/a,b", 1),)
    assert h.format_rtp_info(RtpInfo("rtsp://h/a;b")) == 'url="rtsp://h/a;b"'


@pytest.mark.parametrize(
    "value",
    ["", "seq=1", "url=;seq=1", "url=x;seq=65536", "url=x;rtptime=-1", 'url="x'],
)
def test_rtp_info_errors(value: str) -> None:
    with pytest.raises(HeaderError):
        h.parse_rtp_info(value)


# --- Scale, Speed, Rate-Control, Immediate, Frames ----------------------------------------------


def test_scale_and_speed_are_exact_decimals() -> None:
    assert h.parse_scale("-1.0") == Decimal(-1) and h.format_scale(Decimal("-1.0")) == "-1.0"
    assert h.parse_scale(" +2 ") == 2 and h.format_scale(2) == "2.0"
    assert h.parse_speed("0.1") * 3 == Decimal("0.3")
    assert h.format_speed(Decimal("1E+1")) == "10.0"
    assert h.parse_scale(".5") == Decimal("0.5") and h.parse_scale("4.") == 4
    for bad in ["", "-", ".", "NaN", "inf", "1e3", "--1", "1,5", "١", "1" * 41]:
        with pytest.raises(HeaderError):
            h.parse_scale(bad)
    with pytest.raises(HeaderError):
        h.format_scale(Decimal("NaN"))


def test_yes_no_headers() -> None:
    assert h.parse_rate_control("no") is False and h.parse_rate_control(" YES ") is True
    assert h.parse_immediate("yes") is True
    assert h.format_rate_control(False) == "no" and h.format_immediate(True) == "yes"
    with pytest.raises(HeaderError):
        h.parse_immediate("true")


def test_frames() -> None:
    assert h.parse_frames("all") == Frames()
    assert h.parse_frames("predicted") == Frames("predicted")
    assert h.parse_frames("Intra") == Frames("intra")
    assert h.parse_frames("intra/2000") == Frames("intra", 2000)
    assert h.format_frames(Frames("intra", 4000)) == "intra/4000"
    for bad in ["", "some", "all/100", "intra/", "intra/x", "intra/-5"]:
        with pytest.raises(HeaderError):
            h.parse_frames(bad)
    with pytest.raises(HeaderError):
        Frames("predicted", 5)


# --- properties -------------------------------------------------------------------------------

TCHARS = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
line_text = st.text(
    alphabet=st.characters(exclude_characters="\r\n\0", codec="utf-8"),
    max_size=20,
)
uri_text = st.text(
    alphabet=st.characters(exclude_characters=" \t\r\n\0", codec="utf-8"),
    min_size=1,
    max_size=30,
)
tokens = st.text(alphabet=TCHARS, min_size=1, max_size=10)


def pairs(top: int) -> st.SearchStrategy[tuple[int, int | None]]:
    return st.tuples(st.integers(0, top), st.none() | st.integers(0, top))


known = {"unicast", "multicast", "append", "destination", "source", "interleaved", "ttl"}
known |= {"layers", "port", "client_port", "server_port", "ssrc", "mode"}
transport_specs = st.builds(
    TransportSpec,
    protocol=st.sampled_from(["RTP", "SRTP"]),
    profile=st.sampled_from(["AVP", "SAVP", "AVPF"]),
    lower_transport=st.sampled_from([None, "TCP", "UDP"]),
    delivery=st.sampled_from([None, "unicast", "multicast"]),
    destination=st.none() | line_text,
    source=st.none() | line_text,
    interleaved=st.none() | pairs(255),
    append=st.booleans(),
    ttl=st.none() | st.integers(0, 255),
    layers=st.none() | st.integers(0, 2**32 - 1),
    port=st.none() | pairs(65535),
    client_port=st.none() | pairs(65535),
    server_port=st.none() | pairs(65535),
    ssrc=st.none() | st.integers(0, 2**32 - 1),
    mode=st.none() | st.sampled_from(["PLAY", "RECORD", "PLAY,RECORD"]),
    extra=st.lists(
        st.tuples(tokens.map(str.lower).filter(lambda n: n not in known), st.none() | line_text),
        max_size=3,
    ).map(tuple),
)
ns_in_calendar = st.integers(utc(1, 1, 1), utc(9999, 12, 31, 23, 59, 59) + NS - 1)
npt_times = st.just(NOW) | st.integers(0, 10**15 * NS)


def ranges(kind: type[NptRange] | type[ClockRange], ends: st.SearchStrategy[Any]) -> Any:
    """Ranges with at least one end (the dataclasses reject neither)."""
    both = st.tuples(st.none() | ends, st.none() | ends, st.none() | ns_in_calendar)
    return both.filter(lambda t: t[0] is not None or t[1] is not None).map(lambda t: kind(*t))


ROUND_TRIPS: list[
    tuple[str, Callable[[str], Any], Callable[[Any], str], st.SearchStrategy[Any]]
] = [
    (
        "transport",
        h.parse_transport,
        h.format_transport,
        st.lists(transport_specs, min_size=1, max_size=3).map(tuple),
    ),
    (
        "session",
        h.parse_session,
        h.format_session,
        st.builds(
            SessionHeader,
            st.text(
                alphabet=st.characters(
                    min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=';,"'
                ),
                min_size=1,
            ),
            st.none() | st.integers(0, 2**32 - 1),
        ),
    ),
    (
        "range",
        h.parse_range,
        h.format_range,
        ranges(NptRange, npt_times) | ranges(ClockRange, ns_in_calendar),
    ),
    (
        "rtp-info",
        h.parse_rtp_info,
        h.format_rtp_info,
        st.lists(
            st.builds(
                RtpInfo,
                uri_text,
                st.none() | st.integers(0, 65535),
                st.none() | st.integers(0, 2**32 - 1),
            ),
            min_size=1,
            max_size=3,
        ).map(tuple),
    ),
    ("methods", h.parse_method_list, h.format_method_list, st.lists(tokens, max_size=5).map(tuple)),
    (
        "tags",
        h.parse_option_tags,
        h.format_option_tags,
        st.lists(
            st.text(
                alphabet=st.characters(
                    min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=',;"'
                ),
                min_size=1,
            ),
            max_size=4,
        ).map(tuple),
    ),
    ("content-base", h.parse_content_base, h.format_content_base, uri_text),
    ("scale", h.parse_scale, h.format_scale, st.decimals(-1000, 1000, places=6)),
    ("speed", h.parse_speed, h.format_speed, st.decimals(-1000, 1000, places=3)),
    ("rate-control", h.parse_rate_control, h.format_rate_control, st.booleans()),
    ("immediate", h.parse_immediate, h.format_immediate, st.booleans()),
    (
        "frames",
        h.parse_frames,
        h.format_frames,
        st.builds(Frames, st.sampled_from(["all", "predicted", "intra"]))
        | st.integers(0, 10**9).map(lambda ms: Frames("intra", ms)),
    ),
    ("cseq", h.parse_cseq, h.format_cseq, st.integers(0, 2**32 - 1)),
    ("utc-time", h.parse_utc_time, h.format_utc_time, ns_in_calendar),
]


@pytest.mark.parametrize(
    ("parse", "format_", "values"), [r[1:] for r in ROUND_TRIPS], ids=[r[0] for r in ROUND_TRIPS]
)
def test_format_then_parse_round_trips(
    parse: Callable[[str], Any], format_: Callable[[Any], str], values: st.SearchStrategy[Any]
) -> None:
    @given(values)
    def check(value: Any) -> None:
        text = format_(value)
        assert "\r" not in text and "\n" not in text
        assert parse(text) == value
        assert format_(parse(text)) == text  # serialising is canonical

    check()


@pytest.mark.parametrize("parse", [r[1] for r in ROUND_TRIPS], ids=[r[0] for r in ROUND_TRIPS])
def test_parsers_raise_only_header_errors(parse: Callable[[str], Any]) -> None:
    @given(
        st.text(max_size=60) | st.text(alphabet='0123456789-.:;,="TZ npt clock url', max_size=40)
    )
    def check(text: str) -> None:
        try:
            parse(text)
        except ProtocolError:
            pass

    check()
