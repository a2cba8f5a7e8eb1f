"""End to end through ``nvr serve``: the operator fills the keystore, a VMS on the LAN sets an
uplink with SetUplink, the daemon dials the test cloud, and the cloud manages the device
through the tunnel: GetUplinks shows the uplink Connected, DeleteUplink ends the tunnel."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from nvr.onvif.namespaces import TUP
from nvr.onvif.uplink import UPLINK_PATH
from nvr.uplink.keystore import FileKeystore
from tests.daemon import Daemon, run_nvr
from tests.onvif.raw import envelope
from tests.uplink.cloud import Cloud, make_pki

pytestmark = pytest.mark.timeout(120)

ADMIN = ("admin", "admin-pass-1")
SOAP = {"content-type": "application/soap+xml; charset=utf-8"}


@pytest.fixture
def serve(tmp_path: Path, database_url: str) -> Iterator[tuple[Daemon, Cloud]]:
    pki = make_pki(tmp_path / "pki")
    data = tmp_path / "data"
    keystore = FileKeystore(data / "keystore")
    keystore.add_certificate("device", pki.device[0].read_bytes(), pki.device[1].read_bytes())
    keystore.add_trust("cloud-ca", pki.ca_file.read_bytes())
    common = ("--data-dir", str(data), "--database-url", database_url)
    added = run_nvr(
        "user",
        "add",
        ADMIN[0],
        "--level",
        "administrator",
        "--password-stdin",
        *common,
        stdin=ADMIN[1] + "\n",
    )
    assert added.returncode == 0, added.stderr
    cloud = Cloud(pki)
    daemon = Daemon(data, database_url)
    try:
        daemon.wait_ready()
        yield daemon, cloud
    finally:
        assert daemon.stop() == 0, daemon.log()
        cloud.close()


def test_set_uplink_on_the_lan_then_managed_from_the_cloud(serve: tuple[Daemon, Cloud]) -> None:
    daemon, cloud = serve
    address = cloud.url()
    body = (
        f'<tup:SetUplink xmlns:tup="{TUP}"><tup:Configuration>'
        f"<tup:RemoteAddress>{address}</tup:RemoteAddress>"
        "<tup:CertificateID>device</tup:CertificateID>"
        "<tup:UserLevel>Administrator</tup:UserLevel>"
        "<tup:CertPathValidationPolicyID>cloud-ca</tup:CertPathValidationPolicyID>"
        "</tup:Configuration></tup:SetUplink>"
    )
    answer = httpx.post(
        daemon.base_url + UPLINK_PATH,
        content=envelope(body),
        headers=SOAP,
        auth=httpx.DigestAuth(*ADMIN),
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    conn = cloud.next_connection()
    get = f'<tup:GetUplinks xmlns:tup="{TUP}"/>'
    reply = cloud.call(conn.request("POST", UPLINK_PATH, SOAP.items(), envelope(get)))
    assert reply.status == 200, reply.body
    text = reply.body.decode()
    assert re.search(r"<tup:Status>Connected</tup:Status>", text), text
    assert address in text
    delete = (
        f'<tup:DeleteUplink xmlns:tup="{TUP}">'
        f"<tup:RemoteAddress>{address}</tup:RemoteAddress></tup:DeleteUplink>"
    )
    reply = cloud.call(conn.request("POST", UPLINK_PATH, SOAP.items(), envelope(delete)))
    assert reply.status == 200, reply.body
    assert cloud.call(conn.closed.wait())  # the device hung up the uplink it no longer has
