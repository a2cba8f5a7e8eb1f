"""WS-Discovery, on loopback only: the responder is bound to 127.0.0.1 and announces to a
listener on 127.0.0.1 — nothing in these tests is ever multicast or leaves the host."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from sqlalchemy.orm import Session, sessionmaker

from nvr.config import Config, load
from nvr.onvif.device_scopes import add_scopes
from nvr.onvif.discovery import DiscoveryResponder, DiscoverySettings, load_state, start_discovery
from nvr.onvif.discovery_messages import RFC3986, STRCMP0, scope_matches
from nvr.onvif.discovery_network import Network, network, xaddrs
from tests.daemon import free_port

SOAP = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
D = "http://schemas.xmlsoap.org/ws/2005/04/discovery"
NS = {"s": SOAP, "a": WSA, "d": D}
URLS = ("http://127.0.0.1:8080/onvif/device_service",)
PROFILE_G = "onvif://www.onvif.org/Profile/G"


def config(tmp_path: Path, **settings: object) -> Config:
    env = {"NVR_" + k.upper(): str(v) for k, v in settings.items()}
    return load(env=env, flags={"data_dir": str(tmp_path)})


def probe_message(
    types: str = "tds:Device", scopes: str = "", match_by: str = ""
) -> tuple[str, bytes]:
    """A Probe as a client writes it (independently of nvr's own message code)."""
    message_id = f"urn:uuid:{uuid.uuid4()}"
    rule = f' MatchBy="{match_by}"' if match_by else ""
    body = f"<d:Types>{types}</d:Types>" if types else ""
    body += f"<d:Scopes{rule}>{scopes}</d:Scopes>" if scopes else ""
    xml = (
        f'<s:Envelope xmlns:s="{SOAP}" xmlns:a="{WSA}" xmlns:d="{D}"'
        ' xmlns:tds="http://www.onvif.org/ver10/device/wsdl"'
        ' xmlns:dn="http://www.onvif.org/ver10/network/wsdl">'
        f'<s:Header><a:Action s:mustUnderstand="1">{D}/Probe</a:Action>'
        f"<a:MessageID>{message_id}</a:MessageID>"
        '<a:To s:mustUnderstand="1">urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To>'
        f"</s:Header><s:Body><d:Probe>{body}</d:Probe></s:Body></s:Envelope>"
    )
    return message_id, xml.encode()


def resolve_message(address: str) -> tuple[str, bytes]:
    message_id = f"urn:uuid:{uuid.uuid4()}"
    xml = (
        f'<s:Envelope xmlns:s="{SOAP}" xmlns:a="{WSA}" xmlns:d="{D}"><s:Header>'
        f"<a:Action>{D}/Resolve</a:Action><a:MessageID>{message_id}</a:MessageID>"
        "<a:To>urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To></s:Header><s:Body>"
        f"<d:Resolve><a:EndpointReference><a:Address>{address}</a:Address>"
        "</a:EndpointReference></d:Resolve></s:Body></s:Envelope>"
    )
    return message_id, xml.encode()


class Listener(asyncio.DatagramProtocol):
    """A loopback UDP socket that keeps what it receives."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[etree._Element] = asyncio.Queue()
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.queue.put_nowait(etree.fromstring(data))

    @property
    def address(self) -> tuple[str, int]:
        return self.transport.get_extra_info("sockname")[:2]

    async def next(self, timeout: float = 3.0) -> etree._Element:
        return await asyncio.wait_for(self.queue.get(), timeout)

    async def silent(self, timeout: float = 0.4) -> bool:
        try:
            await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return True
        return False


async def listener() -> Listener:
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_datagram_endpoint(Listener, local_addr=("127.0.0.1", 0))
    return protocol


def action(message: etree._Element) -> str:
    return message.findtext("s:Header/a:Action", namespaces=NS).rpartition("/")[2]


def described(message: etree._Element, what: str) -> dict[str, Any]:
    """Address, Types, Scopes, XAddrs and MetadataVersion of a Hello/ProbeMatch/…"""
    node = message.find(f"s:Body/{what}", NS)
    assert node is not None, etree.tostring(message)
    types = (node.findtext("d:Types", namespaces=NS) or "").split()
    return {
        "address": node.findtext("a:EndpointReference/a:Address", namespaces=NS),
        "types": {
            (node.find("d:Types", NS).nsmap[t.partition(":")[0]], t.partition(":")[2])
            for t in types
        },
        "scopes": (node.findtext("d:Scopes", namespaces=NS) or "").split(),
        "xaddrs": (node.findtext("d:XAddrs", namespaces=NS) or "").split(),
        "version": int(node.findtext("d:MetadataVersion", namespaces=NS)),
    }


Scenario = Callable[[DiscoveryResponder, Listener, Listener, DiscoverySettings], Awaitable[None]]


def run(tmp_path: Path, sessions: sessionmaker[Session], scenario: Scenario) -> None:
    cfg = config(tmp_path)
    settings = DiscoverySettings(sessions)

    async def main() -> None:
        announced, client = await listener(), await listener()
        responder = DiscoveryResponder(
            lambda: load_state(cfg, settings, URLS),
            Network(bind=("127.0.0.1", 0), announce=(announced.address,)),
            max_delay=0,
            refresh=0.1,
        )
        await responder.start()
        try:
            await scenario(responder, announced, client, settings)
        finally:
            await responder.stop()

    asyncio.run(main())


def test_hello_probe_match_and_bye(tmp_path: Path, sessions: sessionmaker[Session]) -> None:
    async def scenario(
        responder: DiscoveryResponder, announced: Listener, client: Listener, settings: Any
    ) -> None:
        hello = await announced.next()
        assert action(hello) == "Hello"
        assert hello.findtext("s:Header/a:To", namespaces=NS) == (
            "urn:schemas-xmlsoap-org:ws:2005:04:discovery"
        )
        sequence = hello.find("s:Header/d:AppSequence", NS)
        assert int(sequence.get("MessageNumber")) == 1 and int(sequence.get("InstanceId")) > 0
        info = described(hello, "d:Hello")
        address = "urn:uuid:" + await asyncio.to_thread(settings.endpoint_uuid)
        assert info["address"] == address
        assert info["types"] == {
            ("http://www.onvif.org/ver10/device/wsdl", "Device"),
            ("http://www.onvif.org/ver10/network/wsdl", "NetworkVideoTransmitter"),
        }
        assert PROFILE_G in info["scopes"]
        assert any(s.startswith("onvif://www.onvif.org/name/") for s in info["scopes"])
        assert info["xaddrs"] == list(URLS) and info["version"] == 1
        for types in ("tds:Device", "dn:NetworkVideoTransmitter", ""):
            message_id, probe = probe_message(types)
            client.transport.sendto(probe, responder.address)
            match = await client.next()
            assert action(match) == "ProbeMatches"
            assert match.findtext("s:Header/a:RelatesTo", namespaces=NS) == message_id
            assert match.findtext("s:Header/a:To", namespaces=NS).endswith("role/anonymous")
            assert described(match, "d:ProbeMatches/d:ProbeMatch") == info
        _, probe = probe_message("dn:NetworkVideoDisplay")
        client.transport.sendto(probe, responder.address)
        assert await client.silent()
        message_id, resolve = resolve_message(address)
        client.transport.sendto(resolve, responder.address)
        resolved = await client.next()
        assert action(resolved) == "ResolveMatches"
        assert resolved.findtext("s:Header/a:RelatesTo", namespaces=NS) == message_id
        client.transport.sendto(resolve_message("urn:uuid:someone-else")[1], responder.address)
        client.transport.sendto(b"<not xml", responder.address)
        assert await client.silent()
        await responder.stop()
        bye = await announced.next()
        assert action(bye) == "Bye"
        assert described(bye, "d:Bye")["address"] == address

    run(tmp_path, sessions, scenario)


def test_scope_matching_in_probes(tmp_path: Path, sessions: sessionmaker[Session]) -> None:
    async def scenario(
        responder: DiscoveryResponder, announced: Listener, client: Listener, settings: Any
    ) -> None:
        await announced.next()  # Hello
        cases = [
            ("onvif://www.onvif.org/Profile/G", "", True),
            ("onvif://www.onvif.org", "", True),
            ("ONVIF://WWW.ONVIF.ORG/Profile", RFC3986, True),
            ("onvif://www.onvif.org/Profile/G onvif://www.onvif.org/type", "", True),
            ("onvif://www.onvif.org/Profile/S", "", False),
            ("onvif://www.onvif.org/Prof", "", False),
            ("onvif://www.onvif.org/Profile/G onvif://www.onvif.org/location/x", "", False),
            (PROFILE_G, STRCMP0, True),
            ("onvif://www.onvif.org/Profile", STRCMP0, False),
            (PROFILE_G, "http://example.com/my-own-rule", False),
        ]
        for scopes, rule, answered in cases:
            _, probe = probe_message("tds:Device", scopes, rule)
            client.transport.sendto(probe, responder.address)
            if answered:
                assert action(await client.next()) == "ProbeMatches", scopes
            else:
                assert await client.silent(0.3), scopes

    run(tmp_path, sessions, scenario)


def test_scope_rule_rfc3986() -> None:
    hardware = "onvif://www.onvif.org/hardware/D1-566"
    assert not scope_matches("onvif://www.onvif.org/hardware/D1", hardware, RFC3986)
    assert scope_matches("onvif://www.onvif.org/hardware/D1-566/", hardware, RFC3986)
    assert scope_matches("onvif://www.onvif.org/", hardware, RFC3986)
    assert not scope_matches("http://www.onvif.org/hardware", hardware, RFC3986)


def test_mode_and_scope_changes_are_announced(
    tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    cfg = config(tmp_path)

    async def scenario(
        responder: DiscoveryResponder, announced: Listener, client: Listener, settings: Any
    ) -> None:
        first = described(await announced.next(), "d:Hello")
        await asyncio.to_thread(settings.set_discovery_mode, "NonDiscoverable")
        bye = await announced.next()
        assert action(bye) == "Bye"
        _, probe = probe_message()
        client.transport.sendto(probe, responder.address)
        assert await client.silent()
        await asyncio.to_thread(settings.set_discovery_mode, "Discoverable")
        assert described(await announced.next(), "d:Hello")["version"] == first["version"]
        city = "onvif://www.onvif.org/location/city/berlin"
        await asyncio.to_thread(add_scopes, cfg, settings, [city])
        changed = described(await announced.next(), "d:Hello")
        assert city in changed["scopes"] and changed["version"] == first["version"] + 1
        _, probe = probe_message("", "onvif://www.onvif.org/location")
        client.transport.sendto(probe, responder.address)
        assert described(await client.next(), "d:ProbeMatches/d:ProbeMatch") == changed
        assert await announced.silent(0.3)  # nothing changed since: no further Hello

    run(tmp_path, sessions, scenario)
    settings = DiscoverySettings(sessions)
    assert settings.metadata()[0] == 2  # kept across restarts
    assert load_state(cfg, settings, URLS).target.metadata_version == 2


def test_replies_are_rate_limited(tmp_path: Path, sessions: sessionmaker[Session]) -> None:
    async def scenario(
        responder: DiscoveryResponder, announced: Listener, client: Listener, settings: Any
    ) -> None:
        for _ in range(80):
            client.transport.sendto(probe_message()[1], responder.address)
        await asyncio.sleep(0.5)
        assert 40 <= client.queue.qsize() < 70

    run(tmp_path, sessions, scenario)


def test_where_discovery_listens(tmp_path: Path) -> None:
    loopback = config(tmp_path, http_host="127.0.0.1", http_port=8081)
    assert network(loopback) == Network(bind=("127.0.0.1", 3702))  # no multicast at all
    assert xaddrs(loopback) == ("http://127.0.0.1:8081/onvif/device_service",)
    one = config(tmp_path, discovery_interface="10.1.2.3", discovery_port=3799)
    assert network(one) == Network(
        bind=("", 3799), group="239.255.255.250", interfaces=("10.1.2.3",)
    )
    assert xaddrs(config(tmp_path, http_host="10.9.8.7")) == (
        "http://10.9.8.7:8080/onvif/device_service",
    )


def test_daemon_start_on_loopback(tmp_path: Path, sessions: sessionmaker[Session]) -> None:
    off = config(tmp_path, discovery_enabled="false")
    port = free_port()
    cfg = config(tmp_path, http_host="127.0.0.1", discovery_port=port)

    async def main() -> None:
        assert await start_discovery(off, sessions) is None
        responder = await start_discovery(cfg, sessions)
        assert responder is not None and responder.address == ("127.0.0.1", port)
        try:
            client = await listener()
            await asyncio.sleep(0.6)  # the reply to a probe is delayed up to 0.5 s
            client.transport.sendto(probe_message()[1], ("127.0.0.1", port))
            match = described(await client.next(), "d:ProbeMatches/d:ProbeMatch")
            assert match["xaddrs"] == ["http://127.0.0.1:8080/onvif/device_service"]
        finally:
            await responder.stop()

    asyncio.run(main())


@pytest.fixture(autouse=True)
def _no_real_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Belt and braces: fail if anything here tries to multicast."""
    import nvr.onvif.discovery as discovery

    original = discovery.open_socket

    def checked(net: Network) -> Any:
        assert net.group is None and net.bind[0] == "127.0.0.1", net
        return original(net)

    monkeypatch.setattr(discovery, "open_socket", checked)
