"""The Receiver service through zeep built from the official receiver.wsdl, on the daemon's own
pieces: the real app (``build_app``) and a real :class:`ReceiverManager` on the loop uvicorn
serves on, as in ``nvr serve``. Every response (faults too) is validated against the official
schemas. End to end: an AlwaysConnect receiver reaches Connected on a GStreamer camera, and
stays NotConnected with a wrong password."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from lxml import etree
from sqlalchemy import Engine, text

from nvr.app import Daemon
from nvr.config import load
from nvr.ingest.receivers import ReceiverConfig, ReceiverManager
from nvr.onvif.namespaces import TDS, TRV, TT
from nvr.onvif.operations import wsdl_operations
from nvr.onvif.receiver import RECEIVER_PATH
from nvr.onvif.receiver_policy import RECEIVER_OPERATIONS
from nvr.web.app import build_app
from tests.conftest import database_url
from tests.onvif.conftest import ADMIN, OPERATOR, USER, add_standard_users
from tests.onvif.live import live_nvr
from tests.onvif.schemas import DEVICE_WSDL, WSDL_DIR, assert_valid
from tests.onvif.zeep_client import OnvifClient, checked, fault_of
from tests.peers.camera import gst_camera
from tests.playback.helpers import LoopThread
from tests.playback.replay_footage import loop
from tests.playback.ws_client import http_server

__all__ = ["database_url", "loop"]  # fixtures

pytestmark = pytest.mark.timeout(60)

RECEIVER_WSDL = "ver10/receiver.wsdl"
RECEIVER_BINDING = f"{{{TRV}}}ReceiverBinding"
MAX_RECEIVERS = 3
NS = {"tds": TDS, "trv": TRV, "tt": TT}


def configuration(
    uri: str = "rtsp://192.0.2.10/onvif/profile1", mode: str = "NeverConnect", **setup: str
) -> dict[str, Any]:
    stream = setup.get("stream", "RTP-Unicast")
    protocol = setup.get("protocol", "RTSP")
    return {
        "Mode": mode,
        "MediaUri": uri,
        "StreamSetup": {"Stream": stream, "Transport": {"Protocol": protocol}},
    }


@dataclass
class Nvr:
    daemon: Daemon
    receivers: ReceiverManager
    http_port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def client(self, user: tuple[str, str] | None = OPERATOR) -> OnvifClient:
        return OnvifClient(
            self.base_url + RECEIVER_PATH, digest=user, wsdl=RECEIVER_WSDL, binding=RECEIVER_BINDING
        )


@contextmanager
def running_nvr(loop: LoopThread, engine: Engine, data: Path) -> Iterator[Nvr]:
    """App, uvicorn and a started ReceiverManager (as ``daemon.ingest.receivers``)."""
    data.mkdir(exist_ok=True)
    url = engine.url.render_as_string(hide_password=False)
    config = load(env={}, flags={"data_dir": str(data), "database_url": url})
    daemon = Daemon(config, engine)
    manager = ReceiverManager(daemon.sessions, daemon.bus, max_receivers=MAX_RECEIVERS)
    loop.call(manager.start())
    daemon.ingest = SimpleNamespace(receivers=manager)  # type: ignore[assignment]
    app = build_app(daemon)
    add_standard_users(app.state.onvif.users)
    try:
        with http_server(loop, app) as port:
            yield Nvr(daemon, manager, port)
    finally:
        loop.call(manager.stop(timeout=5))


@pytest.fixture
def nvr(loop: LoopThread, engine: Engine, tmp_path: Path) -> Iterator[Nvr]:
    with running_nvr(loop, engine, tmp_path / "data") as handle:
        yield handle


def wait_state(
    client: OnvifClient, token: str, until: Callable[[Any], bool], timeout: float
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        state = checked(client, "GetReceiverState", ReceiverToken=token)
        if until(state) or time.monotonic() > deadline:
            return state
        time.sleep(0.1)


UNKNOWN_TOKEN = ["Sender", "InvalidArgVal", "UnknownToken"]
BAD_CONFIGURATION = ["Sender", "InvalidArgVal", "BadConfiguration"]


# ---- interface -----------------------------------------------------------------------------


def test_operation_list_matches_the_official_wsdl() -> None:
    assert wsdl_operations(WSDL_DIR / RECEIVER_WSDL) == list(RECEIVER_OPERATIONS)


def test_service_capabilities_are_pre_auth(nvr: Nvr) -> None:
    client = nvr.client(user=None)
    caps = checked(client, "GetServiceCapabilities")
    assert (caps.RTP_Multicast, caps.RTP_TCP, caps.RTP_RTSP_TCP) == (False, True, True)
    assert caps.SupportedReceivers == MAX_RECEIVERS
    assert caps.MaximumRTSPURILength == nvr.receivers.max_uri_length >= 128


def test_device_service_lists_the_receiver_service(nvr: Nvr) -> None:
    device = OnvifClient(nvr.base_url + "/onvif/device_service")
    services = device.service.GetServices(IncludeCapability=True)
    assert_valid(device.last_response, DEVICE_WSDL, RECEIVER_WSDL)
    (entry,) = [s for s in services if s.Namespace == TRV]
    assert entry.XAddr == nvr.base_url + RECEIVER_PATH
    raw = etree.fromstring(device.last_response)
    (caps,) = raw.findall(".//tds:Service/tds:Capabilities/trv:Capabilities", NS)
    assert caps.get("SupportedReceivers") == str(MAX_RECEIVERS)
    assert caps.get("RTP_RTSP_TCP") == "true"
    device.service.GetCapabilities(Category=["All"])
    raw = assert_valid(device.last_response, DEVICE_WSDL)
    (legacy,) = raw.findall(".//tds:Capabilities/tt:Extension/tt:Receiver", NS)
    assert [etree.QName(e).localname for e in legacy] == [
        "XAddr",
        "RTP_Multicast",
        "RTP_TCP",
        "RTP_RTSP_TCP",
        "SupportedReceivers",
        "MaximumRTSPURILength",
    ]
    assert legacy.findtext("tt:XAddr", namespaces=NS) == nvr.base_url + RECEIVER_PATH
    assert legacy.findtext("tt:SupportedReceivers", namespaces=NS) == str(MAX_RECEIVERS)


# ---- operations ----------------------------------------------------------------------------


def test_create_get_configure_mode_delete(nvr: Nvr) -> None:
    client = nvr.client()
    assert checked(client, "GetReceivers") == []
    created = checked(client, "CreateReceiver", Configuration=configuration())
    token = created.Token
    assert created.Configuration.Mode == "NeverConnect"
    assert created.Configuration.MediaUri == "rtsp://192.0.2.10/onvif/profile1"
    got = checked(client, "GetReceiver", ReceiverToken=token)
    assert got.Configuration.StreamSetup.Transport.Protocol == "RTSP"
    state = checked(client, "GetReceiverState", ReceiverToken=token)
    assert (state.State, state.AutoCreated) == ("NotConnected", False)
    raw = etree.fromstring(client.last_response)
    assert raw.find(".//trv:GetReceiverStateResponse/trv:ReceiverState/tt:State", NS) is not None

    new = configuration("rtsp://192.0.2.11:8554/live", "AutoConnect", protocol="UDP")
    assert checked(client, "ConfigureReceiver", ReceiverToken=token, Configuration=new) is None
    got = checked(client, "GetReceiver", ReceiverToken=token)
    assert (got.Configuration.Mode, got.Configuration.MediaUri) == (
        "AutoConnect",
        "rtsp://192.0.2.11:8554/live",
    )
    assert got.Configuration.StreamSetup.Transport.Protocol == "UDP"
    checked(client, "SetReceiverMode", ReceiverToken=token, Mode="NeverConnect")
    raw = client.history.last_sent["envelope"]
    assert raw.find(".//trv:SetReceiverMode/trv:Mode", NS) is not None
    assert checked(client, "GetReceiver", ReceiverToken=token).Configuration.Mode == "NeverConnect"
    assert [r.Token for r in checked(client, "GetReceivers")] == [token]

    checked(client, "DeleteReceiver", ReceiverToken=token)
    assert checked(client, "GetReceivers") == []
    assert fault_of(client, "GetReceiver", ReceiverToken=token) == UNKNOWN_TOKEN


def test_auto_created_receiver_with_empty_uri(nvr: Nvr, loop: LoopThread) -> None:
    info = loop.call(nvr.receivers.create(ReceiverConfig(), auto_created=True))
    client = nvr.client()
    got = checked(client, "GetReceiver", ReceiverToken=info.token)
    assert got.Configuration.MediaUri in ("", None)
    raw = etree.fromstring(client.last_response)
    assert raw.findtext(".//tt:MediaUri", namespaces=NS) in ("", None)
    state = checked(client, "GetReceiverState", ReceiverToken=info.token)
    assert (state.State, state.AutoCreated) == ("NotConnected", True)
    uri = "rtsp://192.0.2.12/auto"
    checked(client, "ConfigureReceiver", ReceiverToken=info.token, Configuration=configuration(uri))
    assert checked(client, "GetReceiver", ReceiverToken=info.token).Configuration.MediaUri == uri


def test_unknown_token_faults(nvr: Nvr) -> None:
    client = nvr.client()
    for operation, extra in (
        ("GetReceiver", {}),
        ("GetReceiverState", {}),
        ("DeleteReceiver", {}),
        ("SetReceiverMode", {"Mode": "AlwaysConnect"}),
        ("ConfigureReceiver", {"Configuration": configuration()}),
    ):
        assert fault_of(client, operation, ReceiverToken="NOPE", **extra) == UNKNOWN_TOKEN


def test_bad_configuration_faults(nvr: Nvr) -> None:
    client = nvr.client()
    too_long = "rtsp://192.0.2.10/" + "a" * nvr.receivers.max_uri_length
    for bad in (
        configuration(too_long),
        configuration(stream="RTP-Multicast"),
        configuration("rtsp://192.0.2.10/x", mode="Unknown"),
        configuration("", mode="AlwaysConnect"),
        configuration("ftp://192.0.2.10/x", mode="AlwaysConnect"),
    ):
        assert fault_of(client, "CreateReceiver", Configuration=bad) == BAD_CONFIGURATION
    token = checked(client, "CreateReceiver", Configuration=configuration()).Token
    assert (
        fault_of(
            client, "ConfigureReceiver", ReceiverToken=token, Configuration=configuration(too_long)
        )
        == BAD_CONFIGURATION
    )
    # a 128-octet URI must be accepted (receiver.md §4)
    uri = "rtsp://192.0.2.10/" + "b" * (128 - len("rtsp://192.0.2.10/"))
    assert len(uri) == 128
    checked(client, "ConfigureReceiver", ReceiverToken=token, Configuration=configuration(uri))


def test_max_receivers_and_cannot_delete_in_use(nvr: Nvr, loop: LoopThread) -> None:
    client = nvr.client()
    tokens = [
        checked(client, "CreateReceiver", Configuration=configuration()).Token
        for _ in range(MAX_RECEIVERS)
    ]
    assert fault_of(client, "CreateReceiver", Configuration=configuration()) == [
        "Receiver",
        "Action",
        "MaxReceivers",
    ]
    loop.call(nvr.receivers.attach(tokens[0], "job", lambda session: {}))
    assert fault_of(client, "DeleteReceiver", ReceiverToken=tokens[0]) == [
        "Receiver",
        "Action",
        "CannotDeleteReceiver",
    ]
    loop.call(nvr.receivers.detach(tokens[0], "job"))
    checked(client, "DeleteReceiver", ReceiverToken=tokens[0])


def test_access_classes_and_credentials(nvr: Nvr) -> None:
    uri = "rtsp://cam:secret@192.0.2.10/stream"
    token = checked(nvr.client(), "CreateReceiver", Configuration=configuration(uri)).Token
    viewer = nvr.client(USER)
    assert checked(viewer, "GetReceiver", ReceiverToken=token).Configuration.MediaUri == (
        "rtsp://192.0.2.10/stream"
    )
    assert checked(nvr.client(ADMIN), "GetReceivers")[0].Configuration.MediaUri == uri
    assert checked(viewer, "GetReceiverState", ReceiverToken=token).State == "NotConnected"
    assert fault_of(viewer, "CreateReceiver", Configuration=configuration()) == [
        "Sender",
        "NotAuthorized",
    ]
    assert fault_of(viewer, "SetReceiverMode", ReceiverToken=token, Mode="AutoConnect") == [
        "Sender",
        "NotAuthorized",
    ]
    assert fault_of(nvr.client(None), "GetReceivers") == ["Sender", "NotAuthorized"]


def test_receivers_survive_a_rebuild(loop: LoopThread, engine: Engine, tmp_path: Path) -> None:
    with running_nvr(loop, engine, tmp_path / "data") as first:
        client = first.client()
        token = checked(client, "CreateReceiver", Configuration=configuration()).Token
        checked(client, "SetReceiverMode", ReceiverToken=token, Mode="AutoConnect")
    with running_nvr(loop, engine, tmp_path / "data") as second:
        (receiver,) = checked(second.client(), "GetReceivers")
        assert receiver.Token == token
        assert receiver.Configuration.Mode == "AutoConnect"
        assert receiver.Configuration.MediaUri == "rtsp://192.0.2.10/onvif/profile1"


def test_the_daemon_seals_camera_passwords(
    loop: LoopThread, engine: Engine, tmp_path: Path
) -> None:
    """Through the whole daemon (``Daemon.start``): the receivers table never holds the
    camera's password, and a restarted daemon hands the exact URI back."""
    uri = "rtsp://cam:s%40cret-42@192.0.2.10/onvif/profile1"
    with live_nvr(loop, engine, tmp_path / "data") as first:
        nvr = Nvr(first.daemon, first.daemon.ingest.receivers, first.port)  # type: ignore[union-attr]
        token = checked(nvr.client(), "CreateReceiver", Configuration=configuration(uri)).Token
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(text("SELECT * FROM receivers"))]
    assert rows and "cret-42" not in repr(rows)
    with live_nvr(loop, engine, tmp_path / "data") as second:
        nvr = Nvr(second.daemon, second.daemon.ingest.receivers, second.port)  # type: ignore[union-attr]
        (receiver,) = checked(nvr.client(ADMIN), "GetReceivers")
        assert receiver.Token == token
        assert receiver.Configuration.MediaUri == uri


# ---- a real camera -------------------------------------------------------------------------


def test_always_connect_reaches_connected_and_wrong_password_does_not(nvr: Nvr) -> None:
    client = nvr.client()
    with gst_camera(user="cam", password="secret") as camera:
        good = configuration(camera.url("cam:secret"), "AlwaysConnect")
        token = checked(client, "CreateReceiver", Configuration=good).Token
        bad = configuration(camera.url("cam:wrong"), "AlwaysConnect")
        wrong = checked(client, "CreateReceiver", Configuration=bad).Token

        state = wait_state(client, token, lambda s: s.State == "Connected", 20)
        assert (state.State, state.AutoCreated) == ("Connected", False)
        deadline = time.monotonic() + 15
        while nvr.receivers.status(wrong).auth_failures == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert nvr.receivers.status(wrong).auth_failures >= 1
        assert checked(client, "GetReceiverState", ReceiverToken=wrong).State == "NotConnected"

        checked(client, "SetReceiverMode", ReceiverToken=token, Mode="NeverConnect")
        state = wait_state(client, token, lambda s: s.State == "NotConnected", 10)
        assert state.State == "NotConnected"
