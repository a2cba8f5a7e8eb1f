"""The uplink's sans-IO pieces: the h2c-reverse upgrade, back-off, granted levels, the
reversed-role HTTP/2 connection against a real ``h2`` client, the tunnel request head."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from h2 import events as h2e
from h2.config import H2Configuration
from h2.connection import H2Connection

from nvr.onvif.access import Level, may_read_media
from nvr.uplink.backoff import delays, spread
from nvr.uplink.h2conn import INBOUND_WINDOW, ReversedConnection
from nvr.uplink.handshake import HandshakeError, UpgradeAnswer, upgrade_request
from nvr.uplink.levels import granted_principal
from nvr.uplink.rtsp_stream import is_tunnel_request, tunnel_head


def test_upgrade_request_and_answer() -> None:
    request = upgrade_request(urlsplit("https://cloud.example/dev/42?x=1"), token="abc")
    assert request == (
        b"GET /dev/42?x=1 HTTP/1.1\r\nHost: cloud.example\r\nConnection: Upgrade\r\n"
        b"Upgrade: h2c-reverse\r\nUser-Agent: nvr\r\nAuthorization: Bearer abc\r\n\r\n"
    )
    assert b"Host: cloud.example:8443\r\n" in upgrade_request(
        urlsplit("https://cloud.example:8443")
    )
    answer = UpgradeAnswer()
    assert not answer.feed(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c-re")
    assert answer.feed(b"verse\r\nConnection: Upgrade\r\n\r\nPRI * HTTP/2.0\r\n")
    assert answer.leftover == b"PRI * HTTP/2.0\r\n"


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n", "HTTP 401"),
        (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", "websocket"),
        (b"RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\n", "HTTP/1.1"),
        (b"\x00\x01garbage\r\n\r\n", "bad upgrade response"),
    ],
)
def test_refused_upgrades(response: bytes, message: str) -> None:
    with pytest.raises(HandshakeError, match=message):
        UpgradeAnswer().feed(response)


def test_backoff_ascends_to_the_cap_and_differs_per_device() -> None:
    plain = delays(1.0)
    assert [next(plain) for _ in range(7)] == [2, 4, 8, 16, 30, 30, 30]
    factor = spread("device-A", "https://cloud")
    assert factor == spread("device-A", "https://cloud")
    assert 0.75 <= factor < 1
    spreads = {spread(f"device-{n}", "https://cloud") for n in range(50)}
    assert len(spreads) == 50 and max(spreads) - min(spreads) > 0.1
    scaled = delays(factor, first=3)
    assert [next(scaled) for _ in range(6)] == [d * factor for d in (3, 6, 12, 24, 30, 30)]


def test_granted_level_is_the_first_known_one() -> None:
    assert granted_principal("wss://c", ("Role1", "operator", "User")).level is Level.OPERATOR
    principal = granted_principal("wss://c", ("Administrator",))
    assert principal.name == "uplink:wss://c" and may_read_media(principal)
    nobody = granted_principal("wss://c", ("Guest",))
    assert nobody.level is Level.ANONYMOUS and not may_read_media(nobody)
    assert granted_principal("wss://c", ()).level is Level.ANONYMOUS


def _pair() -> tuple[ReversedConnection, H2Connection]:
    """The device and a real h2 client (the cloud) after the preface exchange."""
    device = ReversedConnection()
    cloud = H2Connection(H2Configuration(client_side=True, header_encoding=None))
    cloud.initiate_connection()
    device.receive(cloud.data_to_send())
    events = cloud.receive_data(device.data_to_send())
    settings = next(e for e in events if isinstance(e, h2e.RemoteSettingsChanged))
    assert cloud.remote_settings.enable_connect_protocol == 1
    assert settings.changed_settings[0x4].new_value == INBOUND_WINDOW
    device.receive(cloud.data_to_send())  # SETTINGS ACK
    return device, cloud


def test_reversed_connection_serves_within_the_windows() -> None:
    device, cloud = _pair()
    cloud.send_headers(
        1,
        [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"x"), (b":path", b"/")],
        end_stream=True,
    )
    events = device.receive(cloud.data_to_send())
    assert isinstance(events[0], h2e.RequestReceived)
    device.respond(1, 200, [(b"content-type", b"application/octet-stream")])
    body = bytes(range(256)) * 1024  # 256 KiB: four times the cloud's default window
    device.send(1, body, end_stream=True)
    assert device.pump(1 << 30) == [1]
    assert device.buffered(1) == len(body) - 65535 and device.waiting
    received = b""
    ended = False
    while not ended:
        for event in cloud.receive_data(device.data_to_send()):
            if isinstance(event, h2e.DataReceived):
                received += event.data
                cloud.acknowledge_received_data(event.flow_controlled_length, 1)
            ended = ended or isinstance(event, h2e.StreamEnded)
        device.receive(cloud.data_to_send())  # WINDOW_UPDATEs
        device.pump(1 << 30)
    assert received == body and not device.waiting and device.buffered(1) == 0


def test_tunnel_requests_are_recognised_and_rebuilt_for_the_rtsp_server() -> None:
    get = {b":method": b"GET", b"accept": b"application/x-rtsp-tunnelled"}
    post = {b":method": b"POST", b"content-type": b"application/x-rtsp-tunnelled"}
    assert is_tunnel_request(get) and is_tunnel_request(post)
    assert not is_tunnel_request({b":method": b"POST", b"content-type": b"application/soap+xml"})
    head = tunnel_head(
        [
            (b":method", b"POST"),
            (b":scheme", b"https"),
            (b":authority", b"cloud:443"),
            (b":path", b"/recordings/R"),
            (b"content-type", b"application/x-rtsp-tunnelled"),
            (b"x-sessioncookie", b"abc"),
            (b"content-length", b"2147483647"),
        ]
    )
    assert head == (
        b"POST /recordings/R HTTP/1.1\r\nHost: cloud:443\r\n"
        b"content-type: application/x-rtsp-tunnelled\r\nx-sessioncookie: abc\r\n\r\n"
    )
