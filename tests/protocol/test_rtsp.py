"""RTSP messages and the sans-IO stream parser: real exchanges, limits, errors, properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nvr.protocol.errors import ProtocolError
from nvr.protocol.rtsp import (
    BodyTooLargeError,
    Event,
    Headers,
    HeaderTooLargeError,
    IncompleteMessageError,
    InterleavedFrame,
    Request,
    Response,
    RtspError,
    RtspParseError,
    RtspParser,
    encode_interleaved,
    interleaved_header,
)
from nvr.protocol.rtsp_headers import HeaderError

BASE = "rtsp://10.0.0.5/onvif/replay/REC_CAM1"

SDP = (
    b"v=0\r\n"
    b"o=- 1740823200 1 IN IP4 10.0.0.5\r\n"
    b"s=ONVIF replay REC_CAM1\r\n"
    b"t=0 0\r\n"
    b"a=control:*\r\n"
    b"m=video 0 RTP/AVP 96\r\n"
    b"a=rtpmap:96 H264/90000\r\n"
    b"a=fmtp:96 packetization-mode=1;profile-level-id=640028;"
    b"sprop-parameter-sets=Z2QAKKzZQHgCJ+IQAAADABAAAAMDwPGDGWA=,aOvjyyLA\r\n"
    b"a=control:track1\r\n"
    b"a=x-onvif-track:VIDEO001\r\n"
    b"m=application 0 RTP/AVP 107\r\n"
    b"a=rtpmap:107 vnd.onvif.metadata/90000\r\n"
    b"a=control:track3\r\n"
    b"a=x-onvif-track:META001\r\n"
)


def wire(text: str) -> bytes:
    """A message written with '\\n' line ends, as sent with CRLF."""
    return text.replace("\n", "\r\n").encode()


def parse_all(data: bytes, **limits: int) -> list[Event]:
    parser = RtspParser(**limits)
    parser.feed(data)
    events = list(parser)
    parser.feed_eof()
    return events


# --- spec/replay.md Part C: client → server ---------------------------------------------------

PART_C_REQUESTS = wire(
    f"OPTIONS {BASE} RTSP/1.0\n"
    "CSeq: 1\n"
    "User-Agent: ExampleVMS/1.0\n"
    "\n"
    f"DESCRIBE {BASE} RTSP/1.0\n"
    "CSeq: 2\n"
    "Accept: application/sdp\n"
    "Require: onvif-replay\n"
    "\n"
    f"DESCRIBE {BASE} RTSP/1.0\n"
    "CSeq: 3\n"
    "Accept: application/sdp\n"
    "Require: onvif-replay\n"
    'Authorization: Digest username="operator", realm="nvr", nonce="5e1b0c9a77",\n'
    f'  uri="{BASE}", response="00112233445566778899aabbccddeeff", algorithm=MD5,'
    ' qop=auth, nc=00000001, cnonce="a1b2"\n'
    "\n"
    f"SETUP {BASE}/track1 RTSP/1.0\n"
    "CSeq: 4\n"
    "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\n"
    "Require: onvif-replay\n"
    "\n"
    f"PLAY {BASE}/ RTSP/1.0\n"
    "CSeq: 5\n"
    "Session: 9F3C22A1\n"
    "Require: onvif-replay\n"
    "Range: clock=20250301T101500.440Z-\n"
    "Rate-Control: no\n"
    "\n"
    f"PLAY {BASE}/ RTSP/1.0\n"
    "CSeq: 6\n"
    "Session: 9F3C22A1\n"
    "Require: onvif-replay\n"
    "Range: clock=20250301T100500Z-20250301T090000Z\n"
    "Rate-Control: no\n"
    "Scale: -1.0\n"
    "Immediate: yes\n"
    "\n"
    f"GET_PARAMETER {BASE}/ RTSP/1.0\n"
    "CSeq: 7\n"
    "Session: 9F3C22A1\n"
    "\n"
    f"PAUSE {BASE}/ RTSP/1.0\n"
    "CSeq: 9\n"
    "Session: 9F3C22A1\n"
    "\n"
    f"TEARDOWN {BASE}/ RTSP/1.0\n"
    "CSeq: 10\n"
    "Session: 9F3C22A1\n"
    "\n"
)


def test_part_c_requests_as_the_server_sees_them() -> None:
    events = parse_all(PART_C_REQUESTS)
    assert all(isinstance(e, Request) for e in events)
    requests = [e for e in events if isinstance(e, Request)]
    assert [(r.method, r.cseq) for r in requests] == [
        ("OPTIONS", 1),
        ("DESCRIBE", 2),
        ("DESCRIBE", 3),
        ("SETUP", 4),
        ("PLAY", 5),
        ("PLAY", 6),
        ("GET_PARAMETER", 7),
        ("PAUSE", 9),
        ("TEARDOWN", 10),
    ]
    assert requests[3].uri == f"{BASE}/track1"
    assert requests[3].headers["transport"] == "RTP/AVP/TCP;unicast;interleaved=0-1"
    # The folded Authorization line arrives as one value.
    auth = requests[2].headers["Authorization"]
    assert auth.startswith('Digest username="operator", realm="nvr", nonce="5e1b0c9a77", uri=')
    assert "\n" not in auth and "  " not in auth
    assert requests[5].headers.get("Scale") == "-1.0"
    assert all(r.body == b"" and r.version == "RTSP/1.0" for r in requests)


# --- spec/replay.md Part C: server → client, with interleaved media -------------------------


def part_c_responses() -> bytes:
    # RTP header + 0xABAC replay extension of the spec's worked example (replay.md B.5).
    rtp = bytes.fromhex("9060126700 2dc6c0 1234abcd abac0003 eb6d5ca470a3d800 a0050000")
    return (
        wire(
            "RTSP/1.0 200 OK\n"
            "CSeq: 1\n"
            "Public: OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER,"
            " SET_PARAMETER\n"
            "\n"
            "RTSP/1.0 401 Unauthorized\n"
            "CSeq: 2\n"
            'WWW-Authenticate: Digest realm="nvr", nonce="5e1b0c9a77", algorithm=MD5, qop="auth"\n'
            "\n"
            "RTSP/1.0 200 OK\n"
            "CSeq: 3\n"
            f"Content-Base: {BASE}/\n"
            "Content-Type: application/sdp\n"
            f"Content-Length: {len(SDP)}\n"
            "\n"
        )
        + SDP
        + wire(
            "RTSP/1.0 200 OK\n"
            "CSeq: 4\n"
            "Transport: RTP/AVP/TCP;unicast;interleaved=0-1;ssrc=1234ABCD\n"
            "Session: 9F3C22A1;timeout=60\n"
            "\n"
            "RTSP/1.0 200 OK\n"
            "CSeq: 5\n"
            "Session: 9F3C22A1\n"
            "Range: clock=20250301T101458.960Z-\n"
            f"RTP-Info: url={BASE}/track1;seq=4711;rtptime=3000000,\n"
            f"          url={BASE}/track3;seq=301;rtptime=905000\n"
            "Rate-Control: no\n"
            "\n"
        )
        + encode_interleaved(0, rtp + b"\x65" * 300)
        + encode_interleaved(1, b"\x80\xc8\x00\x06" + bytes(24))
        + encode_interleaved(0, rtp)
        + wire("RTSP/1.0 200 OK\nCSeq: 7\nSession: 9F3C22A1\n\n")
        + encode_interleaved(2, b"")
    )


def test_part_c_responses_and_media_as_the_client_sees_them() -> None:
    events = parse_all(part_c_responses())
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["Response"] * 5 + ["InterleavedFrame"] * 3 + ["Response", "InterleavedFrame"]
    options, unauthorized, describe, setup, play = events[:5]
    assert isinstance(options, Response) and options.status == 200 and options.reason == "OK"
    assert isinstance(unauthorized, Response) and unauthorized.status == 401
    assert unauthorized.reason == "Unauthorized"
    assert isinstance(describe, Response) and describe.body == SDP
    assert describe.headers["Content-Base"] == f"{BASE}/"
    assert isinstance(setup, Response) and setup.headers["Session"] == "9F3C22A1;timeout=60"
    assert isinstance(play, Response)
    assert play.headers["RTP-Info"] == (
        f"url={BASE}/track1;seq=4711;rtptime=3000000, url={BASE}/track3;seq=301;rtptime=905000"
    )
    frame = events[5]
    assert isinstance(frame, InterleavedFrame) and frame.channel == 0
    assert frame.payload[12:14] == b"\xab\xac" and len(frame.payload) == 28 + 300
    assert events[6] == InterleavedFrame(1, b"\x80\xc8\x00\x06" + bytes(24))
    assert events[-1] == InterleavedFrame(2, b"")


def test_part_c_split_into_single_bytes_gives_the_same_events() -> None:
    data = part_c_responses()
    parser = RtspParser()
    events: list[Event] = []
    for i in range(len(data)):
        parser.feed(data[i : i + 1])
        events.extend(parser)
    assert events == parse_all(data)


# --- spec/streaming.md §12 (live, UDP) -------------------------------------------------------


def test_streaming_live_example() -> None:
    sdp = wire(
        "v=0\no=- 0 0 IN IP4 192.168.1.20\ns=Live\nt=0 0\na=control:*\n"
        "m=video 0 RTP/AVP 96\na=rtpmap:96 H265/90000\na=control:video\n"
    )
    data = (
        wire(
            "RTSP/1.0 200 OK\nCSeq: 2\nContent-Type: application/sdp\n"
            f"Content-Base: rtsp://192.168.1.20/onvif/profile1/\nContent-Length: {len(sdp)}\n\n"
        )
        + sdp
        + wire(
            "RTSP/1.0 200 OK\nCSeq: 3\n"
            "Transport: RTP/AVP;unicast;client_port=50000-50001;server_port=6970-6971;"
            "ssrc=5A1F00C3\nSession: 44C1A9;timeout=60\n\n"
            "RTSP/1.0 200 OK\nCSeq: 5\nSession: 44C1A9\nRange: clock=20250301T101500.257Z-\n"
            "RTP-Info: url=rtsp://192.168.1.20/onvif/profile1/video;seq=17;rtptime=2211801,"
            "url=rtsp://192.168.1.20/onvif/profile1/metadata;seq=9;rtptime=77120\n\n"
        )
    )
    describe, setup, play = parse_all(data)
    assert isinstance(describe, Response) and describe.body == sdp
    assert isinstance(setup, Response) and setup.cseq == 3
    assert isinstance(play, Response) and play.headers["range"] == "clock=20250301T101500.257Z-"


def test_body_without_content_length_is_not_a_body() -> None:
    # RFC 2326 §12.14: no Content-Length means no body, so stray SDP text is a broken message.
    parser = RtspParser()
    parser.feed(wire("RTSP/1.0 200 OK\nCSeq: 2\n\nv=0\no=- 0 0 IN IP4 1.2.3.4\n\n"))
    assert isinstance(parser.next_event(), Response)
    with pytest.raises(RtspParseError, match="METHOD URI"):
        parser.next_event()


# --- line ends, folding, blank lines, both directions ----------------------------------------


def test_bare_lf_and_mixed_line_ends() -> None:
    data = b"OPTIONS * RTSP/1.0\nCSeq: 1\r\nUser-Agent: x\n\r\nRTSP/1.0 200 OK\r\nCSeq: 1\n\n"
    request, response = parse_all(data)
    assert isinstance(request, Request) and request.uri == "*" and request.cseq == 1
    assert request.headers["User-Agent"] == "x"
    assert isinstance(response, Response) and response.cseq == 1


def test_blank_lines_between_messages_are_skipped() -> None:
    data = (
        b"\r\n\r\n"
        + wire("OPTIONS * RTSP/1.0\nCSeq: 1\n\n")
        + b"\r\n"
        + encode_interleaved(0, b"x")
    )
    assert [type(e) for e in parse_all(data)] == [Request, InterleavedFrame]


def test_server_to_client_request_among_media() -> None:
    body = b"position\r\n"
    data = (
        encode_interleaved(0, b"rtp")
        + wire(f"GET_PARAMETER {BASE} RTSP/1.0\nCSeq: 77\nContent-Length: {len(body)}\n\n")
        + body
        + encode_interleaved(1, b"rtcp")
    )
    first, request, last = parse_all(data)
    assert (
        isinstance(request, Request) and request.method == "GET_PARAMETER" and request.body == body
    )
    assert first == InterleavedFrame(0, b"rtp") and last == InterleavedFrame(1, b"rtcp")


def test_body_may_contain_dollar_and_line_ends() -> None:
    body = b"$\x00\x00\x01\r\n\r\nRTSP/1.0 200 OK\r\n\r\n"
    data = wire(f"SET_PARAMETER * RTSP/1.0\nCSeq: 2\nContent-Length: {len(body)}\n\n") + body
    (request,) = parse_all(data)
    assert isinstance(request, Request) and request.body == body


def test_header_values_keep_non_utf8_bytes() -> None:
    data = b"RTSP/1.0 200 OK\r\nServer: Cam\xe9ra\r\nCSeq: 1\r\n\r\n"
    (response,) = parse_all(data)
    assert isinstance(response, Response)
    assert response.serialize() == data


def test_reason_phrase_variants() -> None:
    first, second, third = parse_all(
        b"RTSP/1.0 200\r\n\r\nRTSP/1.0 551 Option not supported\r\n\r\nRTSP/1.0 299 \r\n\r\n"
    )
    assert isinstance(first, Response) and first.reason == "OK"
    assert isinstance(second, Response) and second.reason == "Option not supported"
    assert isinstance(third, Response) and third.reason == ""


# --- HTTP tunnel ------------------------------------------------------------------------------


def test_tunnel_get_stops_the_parser() -> None:
    parser = RtspParser()
    parser.feed(
        wire(
            "GET /onvif/media/profile1 HTTP/1.1\nHost: 10.0.0.5\n"
            "x-sessioncookie: 6f1a5c3e8d2b47a9\n"
            "Accept: application/x-rtsp-tunnelled\n\n"
        )
    )
    request = parser.next_event()
    assert (
        isinstance(request, Request) and request.method == "GET" and request.version == "HTTP/1.1"
    )
    assert parser.switched and parser.next_event() is None


def test_tunnel_post_ignores_its_nominal_content_length() -> None:
    parser = RtspParser()
    parser.feed(
        wire(
            "POST /onvif/media/profile1 HTTP/1.1\nx-sessioncookie: 6f1a5c3e8d2b47a9\n"
            "Content-Type: application/x-rtsp-tunnelled\nContent-Length: 32767\n\n"
        )
        + b"REVTQ1JJQkUgcnRzcDovL2EgUlRTUC8xLjANCg=="
    )
    request = parser.next_event()
    assert isinstance(request, Request) and request.body == b""
    parser.feed(b"more")
    assert parser.next_event() is None
    parser.feed_eof()
    assert parser.take_trailing_data() == b"REVTQ1JJQkUgcnRzcDovL2EgUlRTUC8xLjANCg==more"
    # What was parsed can be sent on: the nominal length is not checked against the body.
    again = RtspParser()
    again.feed(request.serialize())
    assert again.next_event() == request


def test_http_reply_with_a_content_length_serialises_as_parsed() -> None:
    """Found by fuzzing: an HTTP reply has no body here whatever its Content-Length says."""
    (reply,) = parse_all(wire("HTTP/1.0 200 OK\nCSeq: 3\nContent-Length: 4\n\n"))
    assert isinstance(reply, Response) and reply.body == b""
    assert parse_all(reply.serialize()) == [reply]
    with pytest.raises(RtspError, match="does not match"):
        Response(200, headers={"Content-Length": "4"}).serialize()  # RTSP: must match


def test_client_reads_tunnel_get_reply_then_rtsp() -> None:
    data = wire(
        "HTTP/1.0 200 OK\nContent-Type: application/x-rtsp-tunnelled\nCache-Control: no-store\n\n"
        "RTSP/1.0 200 OK\nCSeq: 1\n\n"
    ) + encode_interleaved(0, b"x")
    reply, response, frame = parse_all(data)
    assert isinstance(reply, Response) and reply.version == "HTTP/1.0" and reply.status == 200
    assert isinstance(response, Response) and response.version == "RTSP/1.0"
    assert frame == InterleavedFrame(0, b"x")


# --- limits and malformed input ----------------------------------------------------------------


def test_header_too_large_in_one_chunk() -> None:
    parser = RtspParser(max_header_size=100)
    parser.feed(b"OPTIONS * RTSP/1.0\r\nX: " + b"a" * 200 + b"\r\n\r\n")
    with pytest.raises(HeaderTooLargeError):
        parser.next_event()


def test_header_too_large_trickled_without_end() -> None:
    parser = RtspParser(max_header_size=100)
    parser.feed(b"OPTIONS * RTSP/1.0\r\n")
    with pytest.raises(HeaderTooLargeError):
        for _ in range(100):
            parser.feed(b"X: y\r\n")
            assert parser.next_event() is None


@pytest.mark.parametrize("chunked", [False, True])
def test_header_limit_counts_up_to_the_blank_line(chunked: bool) -> None:
    data = b"OPTIONS * RTSP/1.0\r\nX: " + b"a" * 50 + b"\r\n\r\n"
    pieces = [data[i : i + 1] for i in range(len(data))] if chunked else [data]
    parser = RtspParser(max_header_size=len(data))
    for piece in pieces:
        parser.feed(piece)
        event = parser.next_event()
    assert isinstance(event, Request)
    parser = RtspParser(max_header_size=len(data) - 1)
    with pytest.raises(HeaderTooLargeError):
        for piece in pieces:
            parser.feed(piece)
            parser.next_event()


def test_body_too_large() -> None:
    parser = RtspParser(max_body_size=10)
    parser.feed(b"RTSP/1.0 200 OK\r\nContent-Length: 11\r\n\r\n")
    with pytest.raises(BodyTooLargeError, match="11 bytes"):
        parser.next_event()


def test_errors_are_sticky_and_stop_buffering() -> None:
    parser = RtspParser()
    parser.feed(b"\x00garbage")
    with pytest.raises(RtspParseError, match="0x00"):
        parser.next_event()
    parser.feed(b"RTSP/1.0 200 OK\r\n\r\n")
    with pytest.raises(RtspParseError, match="0x00"):
        parser.next_event()
    assert parser.buffered == len(b"\x00garbage")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"OPTIONS * RTSP/1.0\r\nCSeq 1\r\n\r\n", "without ':'"),
        (b"OPTIONS * RTSP/1.0\r\n continued\r\n\r\n", "continuation"),
        (b"OPTIONS * RTSP/x\r\n\r\n", "version"),
        (b"OPTIONS * SIP/2.0\r\n\r\n", "version"),
        (b"OPTIONS *\r\n\r\n", "METHOD URI"),
        (b"OPT(IONS * RTSP/1.0\r\n\r\n", "bad method"),
        (b"RTSP/1.0 2000 OK\r\n\r\n", "status"),
        (b"RTSP/1.0 099 Hm\r\n\r\n", "status"),
        (b"RTSP/1.0 2x0 OK\r\n\r\n", "status"),
        (b"RTSP/1.0 200 O\rK\r\n\r\n", "CR or NUL"),
        (b"RTSP/1.0 200 OK\r\nContent-Length: -1\r\n\r\n", "Content-Length"),
        (b"RTSP/1.0 200 OK\r\nContent-Length: \xd9\xa3\r\n\r\n", "Content-Length"),
        (b"RTSP/1.0 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", "conflicting"),
        (b"RTSP/1.0 200 OK\r\nBad Name: 1\r\n\r\n", "header name"),
        (b"RTSP/1.0 200 OK\r\nX: a\x00b\r\n\r\n", "NUL"),
        (b"\xff", "0xff"),
    ],
)
def test_malformed_messages(data: bytes, message: str) -> None:
    parser = RtspParser()
    parser.feed(data)
    with pytest.raises(RtspParseError, match=message):
        parser.next_event()


def test_repeated_equal_content_length_is_accepted() -> None:
    (response,) = parse_all(b"RTSP/1.0 200 OK\r\nContent-Length: 2\r\ncontent-length: 02\r\n\r\nab")
    assert isinstance(response, Response) and response.body == b"ab"
    assert parse_all(response.serialize()) == [response]


@pytest.mark.parametrize(
    "data",
    [
        b"$\x00\x00",
        b"$\x00\x00\x05abc",
        b"RTSP/1.0 200 OK\r\nCSeq",
        b"RTSP/1.0 200 OK\r\nContent-Length: 4\r\n\r\nab",
    ],
)
def test_eof_in_the_middle(data: bytes) -> None:
    parser = RtspParser()
    parser.feed(data)
    assert parser.next_event() is None
    with pytest.raises(IncompleteMessageError):
        parser.feed_eof()


def test_eof_after_complete_data_and_blank_lines() -> None:
    parser = RtspParser()
    parser.feed(encode_interleaved(3, b"abc") + b"\r\n")
    assert list(parser) == [InterleavedFrame(3, b"abc")]
    parser.feed_eof()


# --- headers ------------------------------------------------------------------------------------


def test_headers_multidict_semantics() -> None:
    headers = Headers(
        [("WWW-Authenticate", "Digest a"), ("CSeq", "1"), ("www-authenticate", "Basic")]
    )
    assert headers["cseq"] == "1" and "CSEQ" in headers and 5 not in headers
    assert headers.get_all("Www-Authenticate") == ["Digest a", "Basic"]
    headers.set("WWW-AUTHENTICATE", "Digest b")
    assert headers.items() == [("WWW-AUTHENTICATE", "Digest b"), ("CSeq", "1")]
    headers["Session"] = "abc"
    headers.add("Session", "def")
    assert headers.remove("session") == 2 and len(headers) == 2
    del headers["cseq"]
    assert list(headers) == [("WWW-AUTHENTICATE", "Digest b")]
    assert headers.get("missing") is None and headers.get("missing", "x") == "x"
    with pytest.raises(KeyError):
        headers["missing"]
    with pytest.raises(KeyError):
        del headers["missing"]
    copy = headers.copy()
    copy.add("X", "1")
    assert len(headers) == 1 and copy != headers
    assert Headers({"a": "1"}) == Headers([("A", "1")])


@pytest.mark.parametrize(
    ("name", "value"), [("Bad Name", "x"), ("", "x"), ("X", "a\r\nInjected: 1"), ("X", "\0")]
)
def test_headers_reject_unserialisable_fields(name: str, value: str) -> None:
    with pytest.raises(RtspError):
        Headers().add(name, value)


# --- serialisation ------------------------------------------------------------------------------


def test_request_serialisation_adds_content_length() -> None:
    request = Request("SET_PARAMETER", "rtsp://h/x", Headers({"CSeq": "3"}), b"a: b\r\n")
    assert request.serialize() == (
        b"SET_PARAMETER rtsp://h/x RTSP/1.0\r\nCSeq: 3\r\nContent-Length: 6\r\n\r\na: b\r\n"
    )
    assert bytes(request) == request.serialize()


def test_response_serialisation_fills_the_reason() -> None:
    response = Response(454, headers=Headers([("CSeq", "8")]))
    assert response.serialize() == b"RTSP/1.0 454 Session Not Found\r\nCSeq: 8\r\n\r\n"


@pytest.mark.parametrize(
    "message",
    [
        Request("PLAY", "rtsp://h/x", Headers({"Content-Length": "3"}), b"ab"),
        Request("BAD METHOD", "rtsp://h/x"),
        Request("PLAY", "rtsp://h/a b"),
        Request("PLAY", "rtsp://h/x", version="RTSP/10"),
        Response(42),
        Response(200, "O\nK"),
    ],
)
def test_unserialisable_messages(message: Request | Response) -> None:
    with pytest.raises(RtspError):
        message.serialize()


def test_cseq_property() -> None:
    assert Request("OPTIONS", "*").cseq is None
    assert Response(200, headers=Headers({"CSeq": " 17 "})).cseq == 17
    with pytest.raises(HeaderError):
        _ = Request("OPTIONS", "*", Headers({"CSeq": "x"})).cseq


def test_interleaved_helpers() -> None:
    assert encode_interleaved(1, b"ab") == b"$\x01\x00\x02ab"
    assert interleaved_header(255, 65535) == b"$\xff\xff\xff"
    assert InterleavedFrame(4, b"z").serialize() == b"$\x04\x00\x01z"
    with pytest.raises(RtspError):
        interleaved_header(256, 0)
    with pytest.raises(RtspError):
        encode_interleaved(0, bytes(65536))


# --- properties -------------------------------------------------------------------------------

TCHARS = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
tokens = st.text(alphabet=TCHARS, min_size=1, max_size=12)
header_names = tokens.filter(lambda n: n.lower() != "content-length")
header_values = st.text(
    alphabet=st.characters(exclude_characters="\r\n\0", codec="utf-8"), max_size=40
).map(lambda v: v.strip(" \t"))
headers_st = st.lists(st.tuples(header_names, header_values), max_size=6).map(Headers)
uris = st.text(
    alphabet=st.characters(min_codepoint=0x21, exclude_characters="\x7f", codec="utf-8"),
    min_size=1,
    max_size=40,
)
methods = tokens.filter(lambda m: m[0].isalpha())
bodies = st.binary(max_size=300)
rtsp_versions = st.sampled_from(["RTSP/1.0", "RTSP/2.0"])


def with_length(headers: Headers, body: bytes) -> Headers:
    if body:
        headers.add("Content-Length", str(len(body)))
    return headers


requests = st.builds(
    lambda m, u, h, b, v: Request(m, u, with_length(h, b), b, v),
    methods,
    uris,
    headers_st,
    bodies,
    rtsp_versions,
)
responses = st.builds(
    lambda s, r, h, b, v: Response(s, r, with_length(h, b), b, v),
    st.integers(100, 999),
    header_values,
    headers_st,
    bodies,
    rtsp_versions,
)
frames = st.builds(InterleavedFrame, st.integers(0, 255), st.binary(max_size=2000))
events_st = st.lists(st.one_of(requests, responses, frames), max_size=8)


@given(st.one_of(requests, responses, frames))
def test_serialise_then_parse_gives_the_same_event(event: Event) -> None:
    assert parse_all(event.serialize()) == [event]


@given(events_st, st.lists(st.integers(0, 10_000), max_size=20))
def test_any_split_gives_the_same_events(events: list[Event], cuts: list[int]) -> None:
    data = b"".join(e.serialize() for e in events)
    points = sorted({c % (len(data) + 1) for c in cuts})
    parser = RtspParser()
    got: list[Event] = []
    start = 0
    for point in [*points, len(data)]:
        parser.feed(data[start:point])
        got.extend(parser)
        start = point
    parser.feed_eof()
    assert got == events


@given(st.binary(max_size=400))
def test_arbitrary_bytes_raise_only_protocol_errors(data: bytes) -> None:
    try:
        parse_all(data)
    except ProtocolError:
        pass
