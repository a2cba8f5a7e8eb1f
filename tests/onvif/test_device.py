"""The device service through zeep built from the official devicemgmt.wsdl; every response is
validated against the official schemas."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import zeep.exceptions
from lxml import etree

from nvr import __version__
from nvr.onvif.device_policy import DEVICE_OPERATIONS
from nvr.onvif.namespaces import TDS, TEV, TRP, TRV, TUP
from nvr.onvif.operations import wsdl_operations
from nvr.onvif.restart import EXIT_RESTART
from tests.daemon import Daemon, run_nvr
from tests.onvif.conftest import ADMIN, OPERATOR, USER, OnvifServer, StartServer
from tests.onvif.raw import NS, assert_fault, call, envelope
from tests.onvif.schemas import DEVICE_WSDL, WSDL_DIR, assert_valid
from tests.onvif.zeep_client import OnvifClient

TER = "http://www.onvif.org/ver10/error"


def admin(server: OnvifServer, **kw: Any) -> OnvifClient:
    return OnvifClient(server.xaddr, digest=ADMIN, **kw)


def checked(client: OnvifClient, operation: str, **kwargs: Any) -> Any:
    """Call through zeep, then validate the raw response against the official schemas."""
    result = getattr(client.service, operation)(**kwargs)
    assert_valid(client.last_response)
    return result


def fault_of(client: OnvifClient, operation: str, **kwargs: Any) -> tuple[str, list[str]]:
    with pytest.raises(zeep.exceptions.Fault) as info:
        getattr(client.service, operation)(**kwargs)
    assert_valid(client.last_response)
    fault = info.value
    assert all(q.namespace == TER for q in fault.subcodes), fault.subcodes
    return fault.code.partition(":")[2], [q.localname for q in fault.subcodes]


def test_operation_list_is_the_official_one() -> None:
    official = wsdl_operations(WSDL_DIR / DEVICE_WSDL)
    assert official == list(DEVICE_OPERATIONS), (
        "nvr/onvif/device_policy.py is out of date; print the new list with: "
        f".venv/bin/python -m nvr.onvif.publish --operations {WSDL_DIR / DEVICE_WSDL}"
    )


def test_every_unimplemented_operation_is_action_not_supported(server: OnvifServer) -> None:
    implemented = _implemented()
    assert len(implemented) == 25
    headers = {"content-type": "application/soap+xml; charset=utf-8"}
    with httpx.Client(auth=httpx.DigestAuth(*ADMIN), timeout=10, headers=headers) as client:
        for operation in DEVICE_OPERATIONS:
            if operation in implemented:
                continue
            response = client.post(server.xaddr, content=envelope(f"<tds:{operation}/>"))
            assert_fault(response, 500, "Receiver", "ActionNotSupported")
            assert_valid(response.content)


def _implemented() -> set[str]:
    from nvr.onvif.device import DeviceMethods
    from nvr.onvif.operations import rpc_methods

    return set(rpc_methods(DeviceMethods))


def test_get_services_follow_the_host_the_client_used(server: OnvifServer) -> None:
    services = checked(OnvifClient(server.xaddr), "GetServices", IncludeCapability=False)
    assert [(s.Namespace, s.XAddr) for s in services] == [
        (TDS, server.xaddr),
        (TEV, server.base_url + "/onvif/events_service"),
        ("http://www.onvif.org/ver10/search/wsdl", server.base_url + "/onvif/search_service"),
        (TRP, server.base_url + "/onvif/replay_service"),
        ("http://www.onvif.org/ver10/recording/wsdl", server.base_url + "/onvif/recording_service"),
        (TRV, server.base_url + "/onvif/receiver_service"),
        (TUP, server.base_url + "/onvif/uplink_service"),
    ]
    assert services[0].Capabilities is None
    assert (services[0].Version.Major, services[0].Version.Minor) == (26, 6)
    aliased = call(
        server.xaddr,
        "<tds:GetServices><tds:IncludeCapability>false</tds:IncludeCapability></tds:GetServices>",
        headers={"host": "10.1.2.3:8080"},
    )
    assert "<tds:XAddr>http://10.1.2.3:8080/onvif/device_service</tds:XAddr>" in aliased.text


def test_get_services_with_capabilities_and_registered_services(server: OnvifServer) -> None:
    events = server.base_url + "/onvif/events_service"  # the event service registers itself
    client = OnvifClient(server.xaddr)
    services = checked(client, "GetServices", IncludeCapability=True)
    search = server.base_url + "/onvif/search_service"
    replay = server.base_url + "/onvif/replay_service"
    recording = server.base_url + "/onvif/recording_service"
    receiver = server.base_url + "/onvif/receiver_service"
    assert [s.XAddr for s in services] == [
        server.xaddr,
        events,
        search,
        replay,
        recording,
        receiver,
        server.base_url + "/onvif/uplink_service",
    ]
    raw = etree.fromstring(client.last_response)
    (tev,) = raw.findall(f".//tds:Service/tds:Capabilities/{{{TEV}}}Capabilities", NS)
    assert tev.get("MaxPullPoints") == "64"
    (security,) = raw.findall(".//tds:Service/tds:Capabilities/tds:Capabilities/tds:Security", NS)
    assert security.get("HttpDigest") == "true" and security.get("UsernameToken") == "true"
    assert security.get("HashingAlgorithms") == "SHA-256 MD5"
    legacy = checked(OnvifClient(server.xaddr), "GetCapabilities", Category=["Events"])
    assert legacy.Events.XAddr == events
    assert legacy.Device is None
    client = OnvifClient(server.xaddr)
    everything = checked(client, "GetCapabilities", Category=["All"])
    assert everything.Device.XAddr == server.xaddr
    assert everything.Events.WSPullPointSupport is True
    # zeep files tt:Extension/tt:Recording under the preceding ##other wildcard, so read XML
    raw = etree.fromstring(client.last_response)
    xaddr = raw.find(".//tds:Capabilities/tt:Extension/tt:Recording/tt:XAddr", NS)
    assert xaddr.text == server.base_url + "/onvif/recording_service"


def test_service_capabilities(server: OnvifServer) -> None:
    caps = checked(OnvifClient(server.xaddr), "GetServiceCapabilities")
    assert caps.Security.DefaultAccessPolicy is True
    assert caps.Security.MaxUsers == 32
    assert caps.System.NetworkConfigNotSupported is True


def test_legacy_capabilities(server: OnvifServer) -> None:
    client = OnvifClient(server.xaddr)
    caps = checked(client, "GetCapabilities")
    assert caps.Device.XAddr == server.xaddr
    # of the mounted services recording, search, replay and receiver have a tt:Extension part
    # (zeep misfiles it)
    raw = etree.fromstring(client.last_response)
    (extension,) = raw.findall(".//tds:Capabilities/tt:Extension", NS)
    assert [etree.QName(e).localname for e in extension] == [
        "Recording",
        "Search",
        "Replay",
        "Receiver",
    ]
    assert checked(client, "GetCapabilities", Category=["Device"]).Device.XAddr == server.xaddr
    assert fault_of(client, "GetCapabilities", Category=["PTZ"]) == (
        "Receiver",
        ["ActionNotSupported", "NoSuchService"],
    )


def test_device_information(start_server: StartServer) -> None:
    server = start_server(device_manufacturer="Acme", device_model="NVR-16")
    server.add_standard_users()
    info = checked(OnvifClient(server.xaddr, digest=USER), "GetDeviceInformation")
    assert (info.Manufacturer, info.Model, info.FirmwareVersion) == ("Acme", "NVR-16", __version__)
    guid = checked(OnvifClient(server.xaddr), "GetEndpointReference")
    assert "urn:uuid:" + info.SerialNumber == guid.GUID
    assert info.HardwareId == "NVR-16"


def test_system_date_and_time(server: OnvifServer) -> None:
    client = admin(server)
    before = datetime.now(UTC).replace(microsecond=0)
    got = checked(OnvifClient(server.xaddr), "GetSystemDateAndTime")
    utc = got.UTCDateTime
    reported = datetime(
        utc.Date.Year,
        utc.Date.Month,
        utc.Date.Day,
        utc.Time.Hour,
        utc.Time.Minute,
        utc.Time.Second,
        tzinfo=UTC,
    )
    assert before - timedelta(seconds=2) <= reported <= datetime.now(UTC) + timedelta(seconds=1)
    assert got.DateTimeType == "NTP" and got.TimeZone.TZ == "UTC0"

    checked(
        client,
        "SetSystemDateAndTime",
        DateTimeType="NTP",
        DaylightSavings=True,
        TimeZone={"TZ": "CET-1CEST,M3.5.0,M10.5.0/3"},
    )
    got = checked(client, "GetSystemDateAndTime")
    assert got.TimeZone.TZ == "CET-1CEST,M3.5.0,M10.5.0/3" and got.DaylightSavings is True
    local, utc = got.LocalDateTime, got.UTCDateTime
    offset = (local.Time.Hour - utc.Time.Hour) % 24
    assert offset in (1, 2)

    now = datetime.now(UTC)
    manual = {
        "Time": {"Hour": now.hour, "Minute": now.minute, "Second": now.second},
        "Date": {"Year": now.year, "Month": now.month, "Day": now.day},
    }
    checked(
        client,
        "SetSystemDateAndTime",
        DateTimeType="Manual",
        DaylightSavings=False,
        UTCDateTime=manual,
    )
    assert checked(client, "GetSystemDateAndTime").DateTimeType == "Manual"

    def fault(**kwargs: Any) -> tuple[str, list[str]]:
        return fault_of(client, "SetSystemDateAndTime", DaylightSavings=False, **kwargs)

    assert fault(DateTimeType="NTP", TimeZone={"TZ": "Europe/Berlin"}) == (
        "Sender",
        ["InvalidArgVal", "InvalidTimeZone"],
    )
    bad_date = {**manual, "Date": {"Year": now.year, "Month": 13, "Day": 1}}
    assert fault(DateTimeType="Manual", UTCDateTime=bad_date) == (
        "Sender",
        ["InvalidArgVal", "InvalidDateTime"],
    )
    assert fault(DateTimeType="Manual") == ("Sender", ["InvalidArgVal", "InvalidDateTime"])
    past = {**manual, "Date": {"Year": 2001, "Month": 1, "Day": 1}}
    assert fault(DateTimeType="Manual", UTCDateTime=past) == ("Receiver", ["ActionNotSupported"])
    assert checked(client, "GetSystemDateAndTime").TimeZone.TZ == "CET-1CEST,M3.5.0,M10.5.0/3"


def test_scopes(start_server: StartServer, database_url: str) -> None:
    server = start_server(device_name="Front Gate", device_model="NVR-16")
    server.add_standard_users()
    client = admin(server)
    scopes = checked(client, "GetScopes")
    fixed = [s.ScopeItem for s in scopes if s.ScopeDef == "Fixed"]
    assert fixed == [
        "onvif://www.onvif.org/Profile/G",
        "onvif://www.onvif.org/type/Network_Video_Storage",
        "onvif://www.onvif.org/hardware/NVR-16",
        "onvif://www.onvif.org/name/Front%20Gate",
    ]
    loc = "onvif://www.onvif.org/location/building/hq"
    checked(client, "SetScopes", Scopes=[loc, "onvif://www.onvif.org/location/floor/1"])
    checked(client, "AddScopes", ScopeItem=["http://example.com/custom", loc])
    configurable = [s.ScopeItem for s in checked(client, "GetScopes") if s.ScopeDef != "Fixed"]
    assert configurable == [
        loc,
        "onvif://www.onvif.org/location/floor/1",
        "http://example.com/custom",
    ]
    assert checked(client, "RemoveScopes", ScopeItem=[loc]) == [loc]
    assert fault_of(client, "RemoveScopes", ScopeItem=[loc]) == (
        "Sender",
        ["InvalidArgVal", "NoScope"],
    )
    assert fault_of(client, "RemoveScopes", ScopeItem=[fixed[0]]) == (
        "Sender",
        ["OperationProhibited", "FixedScope"],
    )
    assert fault_of(client, "SetScopes", Scopes=[fixed[2]]) == (
        "Sender",
        ["OperationProhibited", "ScopeOverwrite"],
    )
    many = [f"onvif://www.onvif.org/location/n{i}" for i in range(40)]
    assert fault_of(client, "AddScopes", ScopeItem=many) == (
        "Receiver",
        ["Action", "TooManyScopes"],
    )
    # persisted: a second daemon on the same database sees the same scopes
    again = start_server()
    again.add_user("admin2", server.context.users.get(ADMIN[0]).level, "admin2-pass")
    other = OnvifClient(again.xaddr, digest=("admin2", "admin2-pass"))
    assert [s.ScopeItem for s in checked(other, "GetScopes") if s.ScopeDef != "Fixed"] == [
        "onvif://www.onvif.org/location/floor/1",
        "http://example.com/custom",
    ]


def test_discovery_mode(server: OnvifServer) -> None:
    client = admin(server)
    assert checked(client, "GetDiscoveryMode") == "Discoverable"
    checked(client, "SetDiscoveryMode", DiscoveryMode="NonDiscoverable")
    assert checked(OnvifClient(server.xaddr, digest=USER), "GetDiscoveryMode") == "NonDiscoverable"


def test_network_read_only(server: OnvifServer) -> None:
    client = OnvifClient(server.xaddr, digest=OPERATOR)
    host = checked(OnvifClient(server.xaddr), "GetHostname")
    assert host.FromDHCP is False and host.Name
    interfaces = checked(client, "GetNetworkInterfaces")
    names = {p.name for p in Path("/sys/class/net").iterdir()}
    assert interfaces and {i.token for i in interfaces} <= names
    protocols = checked(client, "GetNetworkProtocols")
    ports = {p.Name: p.Port for p in protocols}
    config = server.context.config
    assert ports == {"HTTP": [config["http.port"]], "RTSP": [config["rtsp.port"]]}
    assert checked(client, "GetNTP").FromDHCP is False
    assert checked(client, "GetDNS").FromDHCP is False
    checked(client, "GetNetworkDefaultGateway")


def test_users_never_return_passwords(server: OnvifServer) -> None:
    users = checked(admin(server), "GetUsers")
    assert {(u.Username, u.UserLevel) for u in users} == {
        (ADMIN[0], "Administrator"),
        (OPERATOR[0], "Operator"),
        (USER[0], "User"),
    }
    assert all(u.Password is None for u in users)
    raw = call(server.xaddr, "<tds:GetUsers/>", auth=httpx.DigestAuth(*ADMIN))
    assert "Password" not in raw.text and ADMIN[1] not in raw.text


def _user(name: str, level: str = "User", password: str | None = "good-pass-1") -> dict[str, Any]:
    user: dict[str, Any] = {"Username": name, "UserLevel": level}
    if password is not None:
        user["Password"] = password
    return user


def test_create_users_and_their_faults(server: OnvifServer) -> None:
    client = admin(server)
    checked(client, "CreateUsers", User=[_user("alice"), _user("bob", "Operator")])
    assert checked(OnvifClient(server.xaddr, digest=("bob", "good-pass-1")), "GetDiscoveryMode")

    def fault(*users: dict[str, Any]) -> tuple[str, list[str]]:
        return fault_of(client, "CreateUsers", User=list(users))

    prohibited = "Sender", "OperationProhibited"
    assert fault(_user("alice")) == (prohibited[0], [prohibited[1], "UsernameClash"])
    assert fault(_user("carol"), _user("carol")) == (
        prohibited[0],
        [prohibited[1], "UsernameClash"],
    )
    assert fault(_user("x" * 65)) == (prohibited[0], [prohibited[1], "UsernameTooLong"])
    assert fault(_user("")) == (prohibited[0], [prohibited[1], "UsernameTooShort"])
    assert fault(_user("dave", password=None)) == (prohibited[0], [prohibited[1], "Password"])
    assert fault(_user("dave", password="123")) == (prohibited[0], [prohibited[1], "Password"])
    assert fault(_user("dave", password="p" * 129)) == (
        prohibited[0],
        [prohibited[1], "PasswordTooLong"],
    )
    assert fault(_user("dave", "Anonymous")) == (
        prohibited[0],
        [prohibited[1], "AnonymousNotAllowed"],
    )
    # all or nothing: the valid first user of a failing request is not created
    assert fault(_user("erin"), _user("alice"))[1][-1] == "UsernameClash"
    assert "erin" not in {u.Username for u in checked(client, "GetUsers")}
    many = [_user(f"user{i}") for i in range(40)]
    assert fault(*many) == ("Receiver", ["Action", "TooManyUsers"])
    assert len(checked(client, "GetUsers")) == 5


def test_delete_users(server: OnvifServer) -> None:
    client = admin(server)
    checked(client, "CreateUsers", User=[_user("alice"), _user("bob")])
    assert fault_of(client, "DeleteUsers", Username=["alice", "nobody"]) == (
        "Sender",
        ["InvalidArgVal", "UsernameMissing"],
    )
    assert "alice" in {u.Username for u in checked(client, "GetUsers")}
    checked(client, "DeleteUsers", Username=["alice", "bob"])
    assert {u.Username for u in checked(client, "GetUsers")} == {ADMIN[0], OPERATOR[0], USER[0]}
    assert fault_of(client, "DeleteUsers", Username=[ADMIN[0]]) == (
        "Sender",
        ["InvalidArgVal", "FixedUser"],
    )


def test_set_user(server: OnvifServer) -> None:
    client = admin(server)
    checked(client, "SetUser", User=[_user(USER[0], "Operator", "changed-pass-1")])
    viewer = OnvifClient(server.xaddr, digest=(USER[0], "changed-pass-1"))
    assert checked(viewer, "GetDiscoveryMode") == "Discoverable"
    levels = {u.Username: u.UserLevel for u in checked(client, "GetUsers")}
    assert levels[USER[0]] == "Operator"

    def fault(*users: dict[str, Any]) -> tuple[str, list[str]]:
        return fault_of(client, "SetUser", User=list(users))

    assert fault(_user("nobody")) == ("Sender", ["InvalidArgVal", "UsernameMissing"])
    assert fault(_user(USER[0], password=None)) == (
        "Sender",
        ["OperationProhibited", "PasswordTooWeak"],
    )
    assert fault(_user(USER[0], password="p" * 129)) == (
        "Sender",
        ["OperationProhibited", "PasswordTooLong"],
    )
    assert fault(_user(USER[0], "Anonymous")) == (
        "Sender",
        ["OperationProhibited", "AnonymousNotAllowed"],
    )
    assert fault(_user(ADMIN[0], "User", ADMIN[1])) == ("Sender", ["InvalidArgVal", "FixedUser"])


def test_system_reboot_restarts_after_the_response(server: OnvifServer) -> None:
    sent = time.monotonic()
    message = checked(admin(server), "SystemReboot")
    assert "restart" in message
    deadline = time.monotonic() + 5
    while not server.reboots and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(server.reboots) == 1 and server.reboots[0] >= sent


def test_wsdl_url(server: OnvifServer) -> None:
    url = checked(OnvifClient(server.xaddr), "GetWsdlUrl")
    assert url == server.xaddr + "?wsdl"
    document = httpx.get(url, timeout=10)
    assert document.status_code == 200 and b"GetServices" in document.content


def test_endpoint_reference_survives_restarts(start_server: StartServer) -> None:
    first = checked(OnvifClient(start_server().xaddr), "GetEndpointReference").GUID
    second = checked(OnvifClient(start_server().xaddr), "GetEndpointReference").GUID
    assert first == second and first.startswith("urn:uuid:")


def test_operator_and_user_levels_through_zeep(server: OnvifServer) -> None:
    assert fault_of(OnvifClient(server.xaddr, digest=USER), "CreateUsers", User=[_user("z")]) == (
        "Sender",
        ["NotAuthorized"],
    )
    assert fault_of(OnvifClient(server.xaddr, digest=OPERATOR), "GetUsers") == (
        "Sender",
        ["NotAuthorized"],
    )


def test_system_reboot_ends_the_daemon_with_the_restart_status(
    tmp_path: Path, database_url: str
) -> None:
    """The real ``nvr serve``: SystemReboot answers, then the process exits with
    EXIT_RESTART after a graceful stop, which systemd's Restart=on-failure restarts."""
    common = ("--data-dir", str(tmp_path / "data"), "--database-url", database_url)
    added = run_nvr(
        "user",
        "add",
        "reboot-admin",
        "--level",
        "administrator",
        "--password-stdin",
        *common,
        stdin="reboot-pass-1\n",
    )
    assert added.returncode == 0, added.stderr
    daemon = Daemon(tmp_path / "data", database_url)
    try:
        daemon.wait_ready()
        client = OnvifClient(
            daemon.base_url + "/onvif/device_service", digest=("reboot-admin", "reboot-pass-1")
        )
        assert "restart" in checked(client, "SystemReboot")
        status = daemon.proc.wait(30)
    finally:
        daemon.stop()
    assert status == EXIT_RESTART, daemon.log()
    assert "SystemReboot: restarting the nvr service" in daemon.log()
    assert "nvr stopped" in daemon.log()


def test_user_changes_are_one_transaction(
    server: OnvifServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure half-way through (here: the database refusing the second insert) leaves
    nothing behind: the directory's sessions share one transaction."""
    from nvr.users import UserDirectory

    original = UserDirectory.add
    calls: list[str] = []

    def flaky(self: UserDirectory, name: str, *args: Any) -> None:
        calls.append(name)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        original(self, name, *args)

    monkeypatch.setattr(UserDirectory, "add", flaky)
    client = admin(server)
    assert fault_of(client, "CreateUsers", User=[_user("first"), _user("second")]) == (
        "Receiver",
        ["Action"],
    )
    assert calls == ["first", "second"]
    assert "first" not in {u.Username for u in checked(client, "GetUsers")}


def test_posix_time_zones() -> None:
    from nvr.onvif.posix_tz import InvalidTimeZone, parse

    berlin = parse("CET-1CEST,M3.5.0,M10.5.0/3")
    assert berlin.utc_offset(datetime(2025, 1, 15, tzinfo=UTC)) == timedelta(hours=1)
    assert berlin.utc_offset(datetime(2025, 7, 1, tzinfo=UTC)) == timedelta(hours=2)
    assert berlin.utc_offset(datetime(2025, 7, 1, tzinfo=UTC), False) == timedelta(hours=1)
    # the switch happens at 01:00 UTC on the last Sunday of March and October
    assert berlin.utc_offset(datetime(2025, 3, 30, 0, 59, tzinfo=UTC)) == timedelta(hours=1)
    assert berlin.utc_offset(datetime(2025, 3, 30, 1, 0, tzinfo=UTC)) == timedelta(hours=2)
    assert berlin.utc_offset(datetime(2025, 10, 26, 1, 0, tzinfo=UTC)) == timedelta(hours=1)
    sydney = parse("AEST-10AEDT,M10.1.0,M4.1.0/3")  # southern hemisphere: DST spans new year
    assert sydney.utc_offset(datetime(2025, 1, 15, tzinfo=UTC)) == timedelta(hours=11)
    assert sydney.utc_offset(datetime(2025, 7, 1, tzinfo=UTC)) == timedelta(hours=10)
    assert parse("<+0530>-5:30").utc_offset(datetime(2025, 1, 1)) == timedelta(hours=5.5)
    assert parse("UTC0").utc_offset(datetime(2025, 1, 1)) == timedelta(0)
    for bad in ("UTC", "Europe/Berlin", "CET-25", "EST5EDT,M13.1.0,M11.1.0", "", "A1"):
        with pytest.raises(InvalidTimeZone):
            parse(bad)
