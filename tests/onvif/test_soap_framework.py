"""The SOAP gate: envelopes, versions, faults, HTTP statuses, WSDL publishing, threading."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
import zeep
from lxml import etree

from nvr.onvif.faults import OnvifFault, SoapVersion, render_fault
from nvr.onvif.publish import REGENERATE, WSDL_DIR, generate
from tests.onvif.conftest import ADMIN, OnvifServer
from tests.onvif.raw import (
    NS,
    SOAP11,
    assert_fault,
    call,
    env,
    envelope,
    fault_chain,
    post,
    ter,
)
from tests.onvif.schemas import assert_valid

GET_TIME = "<tds:GetSystemDateAndTime/>"


def test_soap12_answer_is_well_formed_and_valid(server: OnvifServer) -> None:
    response = call(server.xaddr, GET_TIME)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/soap+xml; charset=utf-8"
    root = assert_valid(response.content)
    body = root.find("env:Body", NS)
    assert body[0].tag == f"{{{NS['tds']}}}GetSystemDateAndTimeResponse"
    # wrapper children in tds:, fields of tt: types in tt:
    assert body[0][0].tag == f"{{{NS['tds']}}}SystemDateAndTime"
    assert body[0][0][0].tag == f"{{{NS['tt']}}}DateTimeType"


def test_soap11_is_accepted(server: OnvifServer) -> None:
    response = post(server.xaddr, envelope(GET_TIME, version=11), content_type="text/xml")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    root = etree.fromstring(response.content)
    assert root.tag == f"{{{SOAP11}}}Envelope"
    fault = post(server.xaddr, envelope("<tds:GetUsers/>", version=11), content_type="text/xml")
    assert fault.status_code == 401
    code = etree.fromstring(fault.content).find(f"{{{SOAP11}}}Body/{{{SOAP11}}}Fault/faultcode")
    prefix, _, value = code.text.partition(":")
    assert (code.nsmap[prefix], value) == (SOAP11, "Client.NotAuthorized")


@pytest.mark.parametrize(
    ("data", "status", "chain"),
    [
        (b"<s:Envelope", 400, ["Sender", "WellFormed"]),
        (b"not xml at all", 400, ["Sender", "WellFormed"]),
        (
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]>'
            + envelope("<tds:GetSystemDateAndTime/>").split(b"?>", 1)[1],
            400,
            ["Sender", "WellFormed"],
        ),
        (b'<e:Envelope xmlns:e="urn:not-soap"><e:Body/></e:Envelope>', 500, ["VersionMismatch"]),
        (envelope(""), 400, ["Sender", "Tag"]),
        (envelope("<tds:NoSuchOperation/>"), 500, ["Receiver", "ActionNotSupported"]),
        (envelope("<x:GetUsers xmlns:x='urn:other'/>"), 500, ["Receiver", "ActionNotSupported"]),
    ],
)
def test_unusable_messages_get_the_generic_faults(
    server: OnvifServer, data: bytes, status: int, chain: list[str]
) -> None:
    response = post(server.xaddr, data)
    assert_fault(response, status, chain[0], *chain[1:])
    assert_valid(response.content)


def test_must_understand_headers_we_do_not_know(server: OnvifServer) -> None:
    header = '<x:Secret xmlns:x="urn:vendor" s:mustUnderstand="true">1</x:Secret>'
    response = call(server.xaddr, GET_TIME, header)
    assert_fault(response, 500, "MustUnderstand")
    relaxed = call(server.xaddr, GET_TIME, '<x:Hint xmlns:x="urn:vendor">1</x:Hint>')
    assert relaxed.status_code == 200


def test_fault_from_a_handler_has_the_full_subcode_chain(server: OnvifServer) -> None:
    response = call(
        server.xaddr,
        "<tds:RemoveScopes><tds:ScopeItem>onvif://www.onvif.org/none</tds:ScopeItem>"
        "</tds:RemoveScopes>",
        auth=httpx.DigestAuth(*ADMIN),
    )
    assert_fault(response, 400, "Sender", "InvalidArgVal", "NoScope")
    root = assert_valid(response.content)
    text = root.find("env:Body/env:Fault/env:Reason/env:Text", NS)
    assert text.get("{http://www.w3.org/XML/1998/namespace}lang") == "en"
    assert "ter" in root.find("env:Body/env:Fault", NS).nsmap


def test_invalid_arguments(server: OnvifServer) -> None:
    missing = call(server.xaddr, "<tds:GetServices/>")
    assert_fault(missing, 400, "Sender", "InvalidArgs")
    wrong_value = call(
        server.xaddr,
        "<tds:SetDiscoveryMode><tds:DiscoveryMode>Hidden</tds:DiscoveryMode></tds:SetDiscoveryMode>",
        auth=httpx.DigestAuth(*ADMIN),
    )
    assert_fault(wrong_value, 400, "Sender", "InvalidArgs")


def test_internal_errors_do_not_leak(server: OnvifServer, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> str:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(server.context.settings, "discovery_mode", broken)
    response = call(server.xaddr, "<tds:GetDiscoveryMode/>", auth=httpx.DigestAuth(*ADMIN))
    assert_fault(response, 500, "Receiver", "Action")
    assert "secret" not in response.text


def test_http_level_errors(server: OnvifServer) -> None:
    assert httpx.get(server.xaddr, timeout=5).status_code == 405
    assert httpx.put(server.xaddr, content=b"x", timeout=5).status_code == 405
    assert post(server.xaddr, envelope(GET_TIME), content_type="image/png").status_code == 415
    huge = envelope("<tds:GetSystemDateAndTime/>" + " " * (1024 * 1024 + 1))
    assert post(server.xaddr, huge).status_code == 413
    no_type = httpx.post(server.xaddr, content=envelope(GET_TIME), timeout=5)
    assert no_type.status_code == 200


def test_handlers_do_not_block_the_event_loop(
    server: OnvifServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    released = threading.Event()
    original = server.context.settings.discovery_mode

    def slow() -> str:
        released.wait(5)
        return original()

    monkeypatch.setattr(server.context.settings, "discovery_mode", slow)
    result: list[int] = []
    worker = threading.Thread(
        target=lambda: result.append(
            call(server.xaddr, "<tds:GetDiscoveryMode/>", auth=httpx.DigestAuth(*ADMIN)).status_code
        )
    )
    worker.start()
    time.sleep(0.2)
    started = time.monotonic()
    assert call(server.xaddr, GET_TIME).status_code == 200  # served while the other waits
    assert time.monotonic() - started < 2
    released.set()
    worker.join(10)
    assert result == [200]


def test_published_wsdl_is_current_and_usable(server: OnvifServer) -> None:
    for name, content in generate().items():
        stored = WSDL_DIR / name
        assert stored.exists() and stored.read_bytes() == content, (
            f"{stored} is out of date; regenerate it with: {REGENERATE}"
        )
    served = httpx.get(server.xaddr + "?wsdl", timeout=10)
    assert served.status_code == 200
    assert served.headers["content-type"].startswith("text/xml")
    root = etree.fromstring(served.content)
    address = root.find(".//{http://schemas.xmlsoap.org/wsdl/soap12/}address")
    assert address.get("location") == server.xaddr
    action = root.find(".//{http://schemas.xmlsoap.org/wsdl/soap12/}operation")
    assert action.get("soapAction").startswith("http://www.onvif.org/ver10/device/wsdl/")
    # a client generated from our own WSDL can talk to us
    ours = zeep.Client(server.xaddr + "?wsdl")
    assert ours.service.GetSystemDateAndTime().UTCDateTime.Date.Year >= 2024


def test_fault_helper_renders_foreign_subcodes_and_actions() -> None:
    fault = OnvifFault.receiver(
        "{http://docs.oasis-open.org/wsrf/r-2}ResourceUnknownFault",
        "no such subscription",
        action="http://www.w3.org/2005/08/addressing/soap/fault",
    )
    root = etree.fromstring(render_fault(fault, SoapVersion.SOAP12))
    response = httpx.Response(500, content=etree.tostring(root))
    assert fault_chain(response) == [
        env("Receiver"),
        "{http://docs.oasis-open.org/wsrf/r-2}ResourceUnknownFault",
    ]
    action = root.find("env:Header/{http://www.w3.org/2005/08/addressing}Action", NS)
    assert action.text == "http://www.w3.org/2005/08/addressing/soap/fault"
    assert fault.http_status == 500
    assert OnvifFault.sender("InvalidArgVal", "NoRecording", "x").http_status == 400
    chain = fault_chain(
        httpx.Response(
            400,
            content=render_fault(
                OnvifFault.sender("InvalidArgVal", "NoRecording", "no recording 'X'"),
                SoapVersion.SOAP12,
            ),
        )
    )
    assert chain == [env("Sender"), ter("InvalidArgVal"), ter("NoRecording")]
