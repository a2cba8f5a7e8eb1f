"""The Replay service through zeep built from the official replay.wsdl, on the daemon's own
pieces: the real app (``build_app``), a store with recorded footage and ``start_playback``, all
on one event loop as in ``nvr serve``. Every response (faults too) is validated against the
official schemas. End to end: FFmpeg plays the URI GetReplayUri hands out, and a WebSocket
client replays through the advertised RTSPWebSocketUri with Digest auth."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from sqlalchemy import Engine

from nvr.app import Daemon
from nvr.onvif.faults import OnvifFault
from nvr.onvif.namespaces import TRP, TT
from nvr.onvif.operations import wsdl_operations
from nvr.onvif.replay import REPLAY_PATH, replay_uri, session_timeout_seconds
from nvr.onvif.replay_policy import REPLAY_OPERATIONS
from nvr.onvif.replay_settings import ReplaySettings
from nvr.playback.wiring import PlaybackHandle
from nvr.protocol.rtsp_auth import ClientAuthenticator
from nvr.store import Store
from tests.conftest import database_url, require_binary
from tests.onvif.conftest import OPERATOR, USER
from tests.onvif.live import playback_nvr
from tests.onvif.schemas import DEVICE_WSDL, WSDL_DIR, assert_valid
from tests.onvif.zeep_client import OnvifClient, checked, fault_of
from tests.playback.helpers import LoopThread, RtspTestClient, wait_until
from tests.playback.replay_footage import T0, S, footage_store, loop, read_until_terminal, record
from tests.playback.replay_footage import clock as range_clock
from tests.playback.ws_client import WsRtspClient

__all__ = ["database_url", "loop"]  # fixtures: a fresh database per test, the loop thread

pytestmark = pytest.mark.timeout(90)

REPLAY_WSDL = "ver10/replay.wsdl"
REPLAY_BINDING = f"{{{TRP}}}ReplayBinding"
UNICAST_RTSP = {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}}


@dataclass
class Nvr:
    daemon: Daemon
    store: Store
    http_port: int

    @property
    def playback(self) -> PlaybackHandle:
        handle: PlaybackHandle = self.daemon.playback  # type: ignore[attr-defined]
        return handle

    @property
    def rtsp_port(self) -> int:
        return self.playback.server.port

    def xaddr(self, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.http_port}{REPLAY_PATH}"

    def client(self, user: tuple[str, str] | None = USER, host: str = "127.0.0.1") -> OnvifClient:
        return OnvifClient(self.xaddr(host), digest=user, wsdl=REPLAY_WSDL, binding=REPLAY_BINDING)


@pytest.fixture
def nvr(loop: LoopThread, engine: Engine, tmp_path: Path) -> Iterator[Nvr]:
    """The daemon's pieces without ``Daemon.start``: store, app, uvicorn and start_playback."""
    with footage_store(engine, tmp_path / "media") as store:
        store.create_recording("REC_CAM1")
        with playback_nvr(loop, engine, store, tmp_path / "data") as (daemon, _, port):
            yield Nvr(daemon, store, port)


def digest(c: RtspTestClient, url: str, user: tuple[str, str]) -> Any:
    """Answer the server's challenge for ``user``: a function giving Authorization headers."""
    challenge = c.request("DESCRIBE", url)
    assert challenge.status == 401
    auth = ClientAuthenticator(*user)
    assert auth.handle_challenges(challenge.headers.get_all("WWW-Authenticate"))

    def header(method: str, uri: str) -> tuple[str, str]:
        return ("Authorization", auth.authorization(method, uri) or "")

    return header


def test_operation_list_is_the_official_one() -> None:
    assert wsdl_operations(WSDL_DIR / REPLAY_WSDL) == list(REPLAY_OPERATIONS)


def test_capabilities_in_all_three_places(nvr: Nvr) -> None:
    caps = checked(nvr.client(None), "GetServiceCapabilities")  # PRE_AUTH
    assert caps.ReversePlayback is True and caps.RTP_RTSP_TCP is True
    assert [float(x) for x in caps.SessionTimeoutRange] == [10.0, 3600.0]
    assert caps.RTSPWebSocketUri == f"ws://127.0.0.1:{nvr.http_port}/rtsp-over-websocket"
    other = checked(nvr.client(None, host="localhost"), "GetServiceCapabilities")
    assert other.RTSPWebSocketUri == f"ws://localhost:{nvr.http_port}/rtsp-over-websocket"

    device = OnvifClient(f"http://127.0.0.1:{nvr.http_port}/onvif/device_service")
    services = device.service.GetServices(IncludeCapability=True)
    assert_valid(device.last_response, DEVICE_WSDL, REPLAY_WSDL)  # trp:Capabilities checked
    (replay,) = [s for s in services if s.Namespace == TRP]
    assert replay.XAddr == nvr.xaddr() and (replay.Version.Major, replay.Version.Minor) == (21, 6)
    raw = etree.fromstring(device.last_response)
    (element,) = raw.iter(f"{{{TRP}}}Capabilities")
    assert element.get("RTSPWebSocketUri") == "ws:/rtsp-over-websocket"  # no Host at hand
    device.service.GetCapabilities(Category=["All"])
    assert_valid(device.last_response, DEVICE_WSDL)
    raw = etree.fromstring(device.last_response)
    xaddr = raw.find(f".//{{{TT}}}Extension/{{{TT}}}Replay/{{{TT}}}XAddr")
    assert xaddr is not None and xaddr.text == nvr.xaddr()


def test_get_replay_uri_per_transport_and_host(nvr: Nvr) -> None:
    client = nvr.client(USER)
    rtsp = f"rtsp://127.0.0.1:{nvr.rtsp_port}/recordings/REC_CAM1"
    for protocol, expected in (
        ("RTSP", rtsp),
        ("UDP", rtsp),
        ("HTTP", f"http://127.0.0.1:{nvr.rtsp_port}/recordings/REC_CAM1"),
    ):
        setup = {"Stream": "RTP-Unicast", "Transport": {"Protocol": protocol}}
        assert checked(client, "GetReplayUri", StreamSetup=setup, RecordingToken="REC_CAM1") == (
            expected
        )
    nvr.store.create_recording("odd token/ä")
    uri = checked(
        nvr.client(USER, host="localhost"),
        "GetReplayUri",
        StreamSetup=UNICAST_RTSP,
        RecordingToken="odd token/ä",
    )
    assert uri == f"rtsp://localhost:{nvr.rtsp_port}/recordings/odd%20token%2F%C3%A4"


def test_get_replay_uri_faults_and_access(nvr: Nvr) -> None:
    client = nvr.client(USER)
    multicast = {"Stream": "RTP-Multicast", "Transport": {"Protocol": "UDP"}}
    deprecated_tcp = {"Stream": "RTP-Unicast", "Transport": {"Protocol": "TCP"}}
    for setup in (multicast, deprecated_tcp):
        assert fault_of(client, "GetReplayUri", StreamSetup=setup, RecordingToken="REC_CAM1") == [
            "Sender",
            "InvalidArgVal",
            "InvalidStreamSetup",
        ]
    assert fault_of(client, "GetReplayUri", StreamSetup=UNICAST_RTSP, RecordingToken="NO_SUCH") == [
        "Sender",
        "InvalidArgVal",
        "NoRecording",
    ]
    assert fault_of(
        nvr.client(None), "GetReplayUri", StreamSetup=UNICAST_RTSP, RecordingToken="REC_CAM1"
    ) == ["Sender", "NotAuthorized"]
    assert fault_of(nvr.client(None), "GetReplayConfiguration") == ["Sender", "NotAuthorized"]


def test_replay_configuration_is_persisted_and_honoured(nvr: Nvr) -> None:
    assert checked(nvr.client(USER), "GetReplayConfiguration").SessionTimeout == dt.timedelta(
        seconds=60
    )
    assert nvr.playback.server.session_timeout == 60
    operator = nvr.client(OPERATOR)
    thirty = {"SessionTimeout": dt.timedelta(seconds=30)}
    assert fault_of(nvr.client(USER), "SetReplayConfiguration", Configuration=thirty) == [
        "Sender",
        "NotAuthorized",
    ]  # ACTUATE: operators and administrators
    checked(operator, "SetReplayConfiguration", Configuration=thirty)
    assert checked(operator, "GetReplayConfiguration").SessionTimeout == dt.timedelta(seconds=30)
    settings = ReplaySettings(nvr.daemon.sessions, nvr.daemon.config)
    assert settings.session_timeout() == 30  # in the database: what the next start uses
    assert wait_until(lambda: nvr.playback.server.session_timeout == 30)

    # the RTSP server announces (and applies) it to new sessions
    record(nvr.store, "ONE_SECOND", runs=((T0, 25),))
    with RtspTestClient(nvr.rtsp_port) as c:
        url = c.url("/recordings/ONE_SECOND")
        auth = digest(c, url, USER)
        transport = ("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1")
        response = c.request("SETUP", url + "/track1", [transport, auth("SETUP", url + "/track1")])
        assert response.status == 200
        assert response.headers["Session"].endswith(";timeout=30")
        session = nvr.playback.server.sessions[c.session or ""]
        assert session.timeout == 30
    for seconds in (9, 3601, -30):
        bad = {"SessionTimeout": dt.timedelta(seconds=seconds)}
        assert fault_of(operator, "SetReplayConfiguration", Configuration=bad) == [
            "Sender",
            "InvalidArgVal",
            "ConfigModify",
        ]
    assert settings.session_timeout() == 30


def test_ffmpeg_plays_the_replay_uri(nvr: Nvr) -> None:
    ffmpeg = require_binary("ffmpeg")
    short = record(nvr.store, "SHORT", runs=((T0, 25), (T0 + 3 * S, 25)))
    uri = checked(
        nvr.client(USER), "GetReplayUri", StreamSetup=UNICAST_RTSP, RecordingToken="SHORT"
    )
    user, password = USER
    with_credentials = uri.replace("rtsp://", f"rtsp://{user}:{password}@", 1)
    result = subprocess.run(
        [ffmpeg, "-nostdin", "-v", "error", "-rtsp_transport", "tcp", "-i", with_credentials,
         "-map", "0:v", "-f", "null", "-", "-progress", "pipe:1", "-nostats"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr
    frames = [int(n) for n in re.findall(r"^frame=(\d+)", result.stdout, re.M)]
    assert frames[-1] == len(short.video) == 50  # every frame decoded; the BYE ended it
    assert wait_until(lambda: not nvr.playback.server.sessions)


def test_websocket_replay_with_digest(nvr: Nvr) -> None:
    footage = record(nvr.store, "WS", runs=((T0, 25),))
    caps = checked(nvr.client(None), "GetServiceCapabilities")
    uri = checked(nvr.client(USER), "GetReplayUri", StreamSetup=UNICAST_RTSP, RecordingToken="WS")
    base = uri.removesuffix("/recordings/WS")
    with WsRtspClient(caps.RTSPWebSocketUri, base) as c:
        wrong = digest(c, uri, (USER[0], "not-the-password"))
        assert c.request("DESCRIBE", uri, [wrong("DESCRIBE", uri)]).status == 401
        signed = digest(c, uri, USER)
        assert c.request("DESCRIBE", uri, [signed("DESCRIBE", uri)]).status == 200
        for n, control in enumerate(("track1", "track2", "track3")):
            url = f"{uri}/{control}"
            transport = ("Transport", f"RTP/AVP/TCP;unicast;interleaved={2 * n}-{2 * n + 1}")
            assert c.request("SETUP", url, [transport, signed("SETUP", url)]).status == 200
        start = ("Range", f"clock={range_clock(T0)}-")
        play = [signed("PLAY", uri + "/"), start, ("Rate-Control", "no")]
        assert c.request("PLAY", uri + "/", play).status == 200
        units = read_until_terminal(c)
        assert [u.time_us for u in units] == footage.video_times
        assert units[0].flags == "C" and units[-1].flags == "ET"


def test_uri_and_timeout_helpers() -> None:
    assert replay_uri("rtsp", "[::1]:8080", 8554, "A") == "rtsp://[::1]:8554/recordings/A"
    assert replay_uri("http", "nvr.local", 554, "A") == "http://nvr.local:554/recordings/A"
    assert session_timeout_seconds(dt.timedelta(seconds=30.4)) == 30
    with pytest.raises(OnvifFault):
        session_timeout_seconds(dt.timedelta(seconds=9.9))
