"""The device capabilities tell the truth about WS-Discovery: the responder
(:mod:`nvr.onvif.discovery`, exercised in test_discovery.py) answers Resolve and sends Bye, so
both flags are true while discovery is on; switched off in the configuration, the device
announces no discovery at all."""

from __future__ import annotations

import pytest
from lxml import etree

from tests.onvif.conftest import StartServer
from tests.onvif.raw import NS
from tests.onvif.schemas import assert_valid
from tests.onvif.zeep_client import OnvifClient


@pytest.mark.parametrize("enabled", [True, False])
def test_discovery_flags_follow_the_configuration(start_server: StartServer, enabled: bool) -> None:
    server = start_server(discovery_enabled=str(enabled).lower())
    client = OnvifClient(server.xaddr)
    system = client.service.GetServiceCapabilities().System
    assert_valid(client.last_response)
    assert (system.DiscoveryResolve, system.DiscoveryBye) == (enabled, enabled)
    assert system.DiscoveryNotSupported is (not enabled)
    client.service.GetCapabilities(Category=["Device"])
    legacy = etree.fromstring(client.last_response)
    assert_valid(legacy)
    flags = legacy.find(".//tt:Device/tt:System", NS)
    assert flags is not None
    expected = str(enabled).lower()
    assert flags.findtext("tt:DiscoveryResolve", namespaces=NS) == expected
    assert flags.findtext("tt:DiscoveryBye", namespaces=NS) == expected
