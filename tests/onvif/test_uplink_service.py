"""The Uplink service through zeep built from the official uplink.wsdl, on the real app
(``build_app``) with a keystore of real certificates; every response (faults too) is validated
against the official schemas. The connection manager's place (``daemon.uplinks``) is held by
the real UplinkManager (dialling a closed port), by a state board the tests drive (states the
manager reaches only with a cloud peer, and exactly what it is handed), or left empty (every
uplink then reports Offline)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from sqlalchemy import Engine

from nvr.app import Daemon
from nvr.config import load
from nvr.onvif.namespaces import TUP
from nvr.onvif.operations import wsdl_operations
from nvr.onvif.uplink import UPLINK_PATH
from nvr.onvif.uplink_policy import UPLINK_OPERATIONS
from nvr.uplink.keystore import FileKeystore
from nvr.uplink.manager import UplinkManager
from nvr.uplink.session import Timers
from nvr.uplink.settings import UplinkConfiguration, UplinkState, UplinkStatus
from nvr.web.app import build_app
from tests.conftest import database_url
from tests.daemon import free_port
from tests.onvif.conftest import ADMIN, OPERATOR, USER, add_standard_users
from tests.onvif.schemas import DEVICE_WSDL, WSDL_DIR, assert_valid
from tests.onvif.zeep_client import OnvifClient, checked, fault_of
from tests.playback.helpers import LoopThread
from tests.playback.replay_footage import loop
from tests.playback.ws_client import http_server
from tests.uplink.keystore_material import client, issue

__all__ = ["database_url", "loop"]  # fixtures

pytestmark = pytest.mark.timeout(60)

UPLINK_WSDL = "ver10/uplink/wsdl/uplink.wsdl"
UPLINK_BINDING = f"{{{TUP}}}UplinkBinding"
CLOUD = "https://cloud.example.com/uplink"
VMS = "wss://vms.example.net:8443/h2c-reverse"


def mtls(address: str = CLOUD, **extra: Any) -> dict[str, Any]:
    return {"RemoteAddress": address, "CertificateID": "dev", "UserLevel": ["Operator"], **extra}


def access_token(address: str = VMS, **extra: Any) -> dict[str, Any]:
    return {
        "RemoteAddress": address,
        "AuthorizationServer": "oauth",
        "UserLevel": ["User"],
        **extra,
    }


@dataclass
class StateBoard:
    """Where the connection manager goes: keeps the lists it is handed, reports set states."""

    updates: list[list[UplinkConfiguration]] = field(default_factory=list)
    states: dict[str, UplinkState] = field(default_factory=dict)

    def update(self, configs: list[UplinkConfiguration]) -> None:
        self.updates.append(list(configs))

    def state(self, remote_address: str) -> UplinkState:
        return self.states.get(remote_address, UplinkState())


@dataclass
class Nvr:
    daemon: Daemon
    http_port: int
    app: Any
    loop: LoopThread

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def client(self, user: tuple[str, str] | None = ADMIN) -> OnvifClient:
        return OnvifClient(
            self.base_url + UPLINK_PATH, digest=user, wsdl=UPLINK_WSDL, binding=UPLINK_BINDING
        )


@pytest.fixture(scope="module")
def keystore_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A keystore with certificate ``dev``, trust policy ``cloud-ca``, OAuth2 server ``oauth``."""
    root = tmp_path_factory.mktemp("keystore")
    store = FileKeystore(root)
    ca = issue("Uplink test CA", ca=True)
    device = client("nvr-device", ca)
    store.add_certificate("dev", device.cert_pem, device.key_pem)
    store.add_trust("cloud-ca", ca.cert_pem)
    store.add_authorization_server("oauth", "https://auth.example.com/token", "nvr", "secret")
    return root


@contextmanager
def running_nvr(
    loop: LoopThread, engine: Engine, data: Path, keystore: Path, **settings: Any
) -> Iterator[Nvr]:
    data.mkdir(exist_ok=True)
    env = {"NVR_UPLINK_KEYSTORE_DIR": str(keystore)}
    env |= {"NVR_" + k.upper(): str(v) for k, v in settings.items()}
    url = engine.url.render_as_string(hide_password=False)
    daemon = Daemon(load(env=env, flags={"data_dir": str(data), "database_url": url}), engine)
    app = build_app(daemon)
    add_standard_users(app.state.onvif.users)
    with http_server(loop, app) as port:
        yield Nvr(daemon, port, app, loop)


@pytest.fixture
def nvr(loop: LoopThread, engine: Engine, tmp_path: Path, keystore_dir: Path) -> Iterator[Nvr]:
    with running_nvr(loop, engine, tmp_path / "data", keystore_dir) as handle:
        yield handle


def summary(configs: list[Any]) -> list[tuple[Any, ...]]:
    return [
        (
            c.RemoteAddress,
            c.CertificateID,
            list(c.UserLevel),
            c.Status,
            c.CertPathValidationPolicyID,
            c.AuthorizationServer,
            c.Error,
        )
        for c in configs
    ]


def test_operation_list_is_the_official_one() -> None:
    assert wsdl_operations(WSDL_DIR / UPLINK_WSDL) == list(UPLINK_OPERATIONS)


def test_get_service_capabilities_and_get_services(
    loop: LoopThread, engine: Engine, tmp_path: Path, keystore_dir: Path
) -> None:
    with running_nvr(loop, engine, tmp_path / "d", keystore_dir, uplink_max_uplinks=3) as nvr:
        caps = checked(nvr.client(None), "GetServiceCapabilities")  # PRE_AUTH
        assert caps.MaxUplinks == 3 and caps.StreamingOverUplink is True
        assert list(caps.Protocols) == ["https", "wss"]
        assert list(caps.AuthorizationModes) == ["mTLS", "AccessToken"]

        device = OnvifClient(nvr.base_url + "/onvif/device_service")
        services = device.service.GetServices(IncludeCapability=True)
        assert_valid(device.last_response, DEVICE_WSDL, UPLINK_WSDL)  # tup:Capabilities too
        (uplink,) = [s for s in services if s.Namespace == TUP]
        assert uplink.XAddr == nvr.base_url + UPLINK_PATH
        assert (uplink.Version.Major, uplink.Version.Minor) == (26, 6)
        (element,) = etree.fromstring(device.last_response).iter(f"{{{TUP}}}Capabilities")
        assert element.get("MaxUplinks") == "3" and element.get("Protocols") == "https wss"


def test_set_get_delete_round_trip(nvr: Nvr) -> None:
    admin, viewer = nvr.client(ADMIN), nvr.client(USER)
    assert checked(viewer, "GetUplinks") == []
    checked(admin, "SetUplink", Configuration=mtls(CertPathValidationPolicyID="cloud-ca"))
    checked(admin, "SetUplink", Configuration=access_token(Status="Connected", Error="ignored"))
    expected = [
        (CLOUD, "dev", ["Operator"], "Offline", "cloud-ca", None, None),
        (VMS, None, ["User"], "Offline", None, "oauth", None),
    ]
    assert summary(checked(viewer, "GetUplinks")) == expected  # READ_SYSTEM: any user

    # SetUplink on a known address replaces it, mode and all
    checked(admin, "SetUplink", Configuration=access_token(CLOUD, UserLevel=["Administrator"]))
    expected[0] = (CLOUD, None, ["Administrator"], "Offline", None, "oauth", None)
    assert summary(checked(viewer, "GetUplinks")) == expected

    checked(admin, "DeleteUplink", RemoteAddress=CLOUD)
    assert summary(checked(viewer, "GetUplinks")) == expected[1:]
    checked(admin, "DeleteUplink", RemoteAddress=VMS)
    assert checked(viewer, "GetUplinks") == []


def test_set_uplink_faults(nvr: Nvr) -> None:
    admin = nvr.client(ADMIN)
    not_supported = ["Sender", "InvalidArgs", "ProtocolNotSupported"]
    cases = [
        (mtls("http://cloud.example.com/uplink"), not_supported),
        (mtls("ws://cloud.example.com/uplink"), not_supported),
        (mtls("ftp://cloud.example.com/"), not_supported),
        (mtls("cloud.example.com/uplink"), not_supported),
        (mtls("https://"), not_supported),
        (mtls("https://cloud.example.com:99999/"), not_supported),
        (mtls("https://cloud example.com/"), not_supported),
        (mtls(""), not_supported),
        (
            {"RemoteAddress": CLOUD, "UserLevel": ["User"]},
            ["Sender", "InvalidArgs", "MissingAuthentication"],
        ),
        (mtls(AuthorizationServer="oauth"), ["Sender", "InvalidArgs", "AmbiguousAuthentication"]),
        (mtls(CertificateID="nope"), ["Sender", "InvalidArgVal", "CertificateID"]),
        (mtls(CertificateID="../dev"), ["Sender", "InvalidArgVal", "CertificateID"]),
        (
            access_token(AuthorizationServer="nope"),
            ["Sender", "InvalidArgVal", "AuthorizationServerConfigurationToken"],
        ),
        (
            mtls(CertPathValidationPolicyID="nope"),
            ["Sender", "InvalidArgVal", "CertPathValidationPolicyID"],
        ),
        (mtls(UserLevel=["Superuser"]), ["Sender", "InvalidArgVal", "UserLevel"]),
        (mtls(UserLevel=["Operator", "Anonymous"]), ["Sender", "InvalidArgVal", "UserLevel"]),
        (mtls(UserLevel=[]), ["Sender", "InvalidArgVal", "UserLevel"]),
        (mtls("https://h/" + "a" * 1100), ["Sender", "InvalidArgVal", "Address"]),
    ]
    for configuration, expected in cases:
        assert fault_of(admin, "SetUplink", Configuration=configuration) == expected, configuration
    assert checked(admin, "GetUplinks") == []  # nothing was stored
    checked(admin, "SetUplink", Configuration=mtls("HTTPS://Cloud.Example.com"))  # scheme case


def test_max_uplinks(loop: LoopThread, engine: Engine, tmp_path: Path, keystore_dir: Path) -> None:
    with running_nvr(loop, engine, tmp_path / "d", keystore_dir, uplink_max_uplinks=2) as nvr:
        admin = nvr.client(ADMIN)
        checked(admin, "SetUplink", Configuration=mtls("https://a.example.com"))
        checked(admin, "SetUplink", Configuration=mtls("https://b.example.com"))
        third = mtls("https://c.example.com")
        assert fault_of(admin, "SetUplink", Configuration=third) == [
            "Receiver",
            "Action",
            "MaxUplinks",
        ]
        checked(admin, "SetUplink", Configuration=access_token("https://a.example.com"))
        checked(admin, "DeleteUplink", RemoteAddress="https://b.example.com")
        checked(admin, "SetUplink", Configuration=third)
        addresses = [c.RemoteAddress for c in checked(admin, "GetUplinks")]
        assert addresses == ["https://a.example.com", "https://c.example.com"]


def test_delete_unknown_address(nvr: Nvr) -> None:
    admin = nvr.client(ADMIN)
    checked(admin, "SetUplink", Configuration=mtls())
    for address in (VMS, CLOUD + "/", ""):
        assert fault_of(admin, "DeleteUplink", RemoteAddress=address) == [
            "Sender",
            "InvalidArgVal",
            "Address",
        ]
    assert len(checked(admin, "GetUplinks")) == 1


def test_access_classes(nvr: Nvr) -> None:
    checked(nvr.client(ADMIN), "SetUplink", Configuration=mtls())
    not_authorized = ["Sender", "NotAuthorized"]
    for user in (OPERATOR, USER):
        low = nvr.client(user)
        assert fault_of(low, "SetUplink", Configuration=access_token()) == not_authorized
        assert fault_of(low, "DeleteUplink", RemoteAddress=CLOUD) == not_authorized
        assert len(checked(low, "GetUplinks")) == 1
    anonymous = nvr.client(None)
    assert fault_of(anonymous, "GetUplinks") == not_authorized
    assert fault_of(anonymous, "SetUplink", Configuration=access_token()) == not_authorized
    assert fault_of(anonymous, "DeleteUplink", RemoteAddress=CLOUD) == not_authorized
    assert [c.RemoteAddress for c in checked(nvr.client(USER), "GetUplinks")] == [CLOUD]


def test_live_status_and_manager_updates(nvr: Nvr) -> None:
    board = StateBoard()
    nvr.daemon.uplinks = board  # type: ignore[attr-defined]
    admin = nvr.client(ADMIN)
    checked(admin, "SetUplink", Configuration=mtls())
    checked(admin, "SetUplink", Configuration=access_token())
    board.states[CLOUD] = UplinkState(UplinkStatus.CONNECTED)
    board.states[VMS] = UplinkState(UplinkStatus.CONNECTING, "TLS: certificate verify failed")
    got = {c.RemoteAddress: (c.Status, c.Error) for c in checked(admin, "GetUplinks")}
    assert got == {
        CLOUD: ("Connected", None),
        VMS: ("Connecting", "TLS: certificate verify failed"),
    }
    checked(admin, "DeleteUplink", RemoteAddress=CLOUD)
    fault_of(admin, "DeleteUplink", RemoteAddress=CLOUD)  # a failed change hands nothing over
    fault_of(admin, "SetUplink", Configuration=mtls(CertificateID="nope"))
    cloud = UplinkConfiguration(CLOUD, ("Operator",), certificate_id="dev")
    vms = UplinkConfiguration(VMS, ("User",), authorization_server="oauth")
    assert board.updates == [[cloud], [cloud, vms], [vms]]


def test_configurations_persist_across_restart(
    loop: LoopThread, engine: Engine, tmp_path: Path, keystore_dir: Path
) -> None:
    with running_nvr(loop, engine, tmp_path / "one", keystore_dir) as first:
        checked(
            first.client(), "SetUplink", Configuration=mtls(CertPathValidationPolicyID="cloud-ca")
        )
        checked(first.client(), "SetUplink", Configuration=access_token())
    with running_nvr(loop, engine, tmp_path / "one", keystore_dir) as second:
        assert summary(checked(second.client(USER), "GetUplinks")) == [
            (CLOUD, "dev", ["Operator"], "Offline", "cloud-ca", None, None),
            (VMS, None, ["User"], "Offline", None, "oauth", None),
        ]


def test_status_and_error_from_the_real_manager(nvr: Nvr, keystore_dir: Path) -> None:
    """The daemon's UplinkManager dials what SetUplink configured (here a closed port, so it
    keeps Connecting with the refusal as Error) and forgets what DeleteUplink removed."""

    async def started() -> UplinkManager:
        manager = UplinkManager(
            nvr.app,
            FileKeystore(keystore_dir),
            lambda: None,
            device="uplink-service-test",
            timers=Timers(backoff_first=0.05, backoff_cap=0.5),
        )
        await manager.start()
        return manager

    manager = nvr.loop.call(started())
    nvr.daemon.uplinks = manager  # type: ignore[attr-defined]
    admin = nvr.client(ADMIN)
    closed = f"https://127.0.0.1:{free_port()}/uplink"
    try:
        checked(admin, "SetUplink", Configuration=mtls(closed))
        deadline = time.monotonic() + 20
        while True:
            (uplink,) = checked(admin, "GetUplinks")
            if uplink.Error or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert uplink.Status == "Connecting"
        assert uplink.Error and "refused" in uplink.Error.lower()
        checked(admin, "DeleteUplink", RemoteAddress=closed)
        assert checked(admin, "GetUplinks") == []
        assert manager.client(closed) is None
    finally:
        nvr.loop.call(manager.close())
