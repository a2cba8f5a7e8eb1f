"""The uplink end to end against a test cloud (tests/uplink/cloud.py: ssl + h2 + websockets):
the device dials out, the cloud drives SOAP and RTSP replay through the reversed HTTP/2
tunnel, and what comes back is compared with the same calls made locally. The daemon's pieces
are the real ones (``build_app``, ``start_playback`` on recorded footage) on one loop, as in
``nvr serve``; the cloud runs on a loop of its own. Failure cases: the cloud drops the
connection, falls silent, presents a wrong certificate, refuses a token."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from nvr.app import Daemon
from nvr.onvif.device_capabilities import DEVICE_PATH
from nvr.playback.tunnel import TUNNEL_CONTENT_TYPE
from nvr.playback.websocket import SUBPROTOCOL, WEBSOCKET_PATH
from nvr.protocol.onvif_replay import ReplayExtension
from nvr.protocol.rtp import parse_rtp
from nvr.protocol.rtsp_auth import ClientAuthenticator
from nvr.search.service import SEARCH_PATH
from nvr.store import Store
from nvr.uplink.manager import Timers, UplinkManager
from nvr.uplink.settings import (
    AuthorizationServer,
    ClientCertificate,
    UplinkConfiguration,
    UplinkState,
    UplinkStatus,
)
from tests.onvif.conftest import ADMIN
from tests.onvif.live import playback_nvr
from tests.onvif.raw import envelope
from tests.playback import helpers
from tests.playback.helpers import LoopThread, RtspTestClient
from tests.playback.replay_footage import (
    T0,
    clock,
    footage_store,
    loop,
    read_until_terminal,
    record,
)
from tests.uplink.cloud import (
    CLIENT_ID,
    CLIENT_SECRET,
    Cloud,
    CloudConnection,
    Pki,
    TunnelRtspClient,
    TunnelWsRtspClient,
    make_pki,
)

__all__ = ["loop"]  # fixture

pytestmark = pytest.mark.timeout(120)

FAST = Timers(silence=30.0, ping_idle=10.0, backoff_first=0.05, backoff_cap=0.5)
TSE = "http://www.onvif.org/ver10/search/wsdl"
TOKEN = "REC_UPLINK"


@dataclass
class StubKeystore:
    """The keystore protocol over plain dicts (the file keystore is tested on its own)."""

    certificates: dict[str, ClientCertificate] = field(default_factory=dict)
    policies: dict[str, Path] = field(default_factory=dict)
    servers: dict[str, AuthorizationServer] = field(default_factory=dict)

    def certificate(self, certificate_id: str) -> ClientCertificate | None:
        return self.certificates.get(certificate_id)

    def trust_anchors(self, policy_id: str) -> Path | None:
        return self.policies.get(policy_id)

    def authorization_server(self, token: str) -> AuthorizationServer | None:
        return self.servers.get(token)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def keystore(pki: Pki) -> StubKeystore:
    return StubKeystore(
        certificates={"device": ClientCertificate("device", *pki.device)},
        policies={"cloud-ca": pki.ca_file},
    )


@pytest.fixture
def cloud(pki: Pki) -> Iterator[Cloud]:
    c = Cloud(pki)
    yield c
    c.close()


@dataclass
class Nvr:
    loop: LoopThread
    daemon: Daemon
    store: Store
    http_port: int
    keystore: StubKeystore
    managers: list[UplinkManager] = field(default_factory=list)

    @property
    def rtsp_port(self) -> int:
        return int(self.daemon.playback.server.port)  # type: ignore[attr-defined]

    def manager(self, timers: Timers = FAST) -> UplinkManager:
        async def make() -> UplinkManager:
            manager = UplinkManager(
                self.daemon.app,  # type: ignore[attr-defined]
                self.keystore,
                lambda: self.daemon.playback.server,  # type: ignore[attr-defined]
                device="test-device",
                timers=timers,
            )
            await manager.start()
            return manager

        manager = self.loop.call(make())
        self.managers.append(manager)
        return manager


@pytest.fixture
def nvr(loop: LoopThread, engine: Engine, tmp_path: Path, keystore: StubKeystore) -> Iterator[Nvr]:
    """The daemon's pieces without ``Daemon.start``: store with footage, app, uvicorn, RTSP."""
    with footage_store(engine, tmp_path / "media") as store:
        record(store, TOKEN, runs=((T0, 50),))
        with playback_nvr(loop, engine, store, tmp_path / "data") as (daemon, app, port):
            daemon.app = app  # type: ignore[attr-defined]
            handle = Nvr(loop, daemon, store, port, keystore)
            try:
                yield handle
            finally:
                for manager in handle.managers:
                    loop.call(manager.close())


def uplink(address: str, level: str = "Administrator", **kw: Any) -> UplinkConfiguration:
    options: dict[str, Any] = {
        "certificate_id": "device",
        "cert_path_validation_policy_id": "cloud-ca",
    }
    options.update(kw)
    return UplinkConfiguration(address, (level,), **options)


wait_until = functools.partial(helpers.wait_until, timeout=20.0)
"""Longer than the default: a reconnection waits out the uplink's back-off."""


def connected(manager: UplinkManager, address: str) -> bool:
    return manager.state(address).status is UplinkStatus.CONNECTED


# -- SOAP ---------------------------------------------------------------------------------------

SOAP = [("content-type", "application/soap+xml; charset=utf-8")]


def soap_local(nvr: Nvr, path: str, body: str) -> bytes:
    response = httpx.post(
        f"http://127.0.0.1:{nvr.http_port}{path}",
        content=envelope(body),
        headers=dict(SOAP),
        auth=httpx.DigestAuth(*ADMIN),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.content


def soap_tunnel(cloud: Cloud, conn: CloudConnection, path: str, body: str) -> bytes:
    reply = cloud.call(conn.request("POST", path, SOAP, envelope(body)))
    assert reply.status == 200, reply.body
    assert "authorization" not in {k.lower() for k in reply.headers}
    return reply.body


def normalised(xml: bytes, base: str) -> bytes:
    """The answer with the address the caller used (XAddrs) and search tokens neutralised."""
    text = xml.decode().replace(base, "BASE")
    return re.sub(r"<tse:SearchToken>[^<]*<", "<tse:SearchToken>TOKEN<", text).encode()


def test_soap_through_the_tunnel_answers_like_locally(nvr: Nvr, cloud: Cloud) -> None:
    manager = nvr.manager()
    address = cloud.url()
    manager.update([uplink(address)])
    conn = cloud.next_connection()
    # Phase 1/2 as the spec draws them: mTLS with the device certificate, then the upgrade.
    subject = dict(x[0] for x in conn.peer_cert["subject"])
    assert subject["commonName"] == "nvr-device-0001"
    assert conn.upgrade.uri == "/uplink"
    assert conn.upgrade.headers["Upgrade"] == "h2c-reverse"
    assert conn.upgrade.headers["Connection"] == "Upgrade"
    assert conn.upgrade.headers.get("Authorization") is None
    assert conn.h2.remote_settings.enable_connect_protocol == 1
    assert wait_until(lambda: connected(manager, address))

    local_base = f"http://127.0.0.1:{nvr.http_port}"
    tunnel_base = "https://cloud-side.example:443"
    services = (
        "<tds:GetServices><tds:IncludeCapability>true</tds:IncludeCapability></tds:GetServices>"
    )
    local = soap_local(nvr, DEVICE_PATH, services)
    tunnelled = soap_tunnel(cloud, conn, DEVICE_PATH, services)
    assert tunnel_base.encode() + b"/onvif/search_service" in tunnelled  # XAddrs: :authority
    assert normalised(tunnelled, tunnel_base) == normalised(local, local_base)

    find = (
        f'<tse:FindRecordings xmlns:tse="{TSE}"><tse:Scope/>'
        "<tse:KeepAliveTime>PT10S</tse:KeepAliveTime></tse:FindRecordings>"
    )
    local = soap_local(nvr, SEARCH_PATH, find)
    tunnelled = soap_tunnel(cloud, conn, SEARCH_PATH, find)
    assert normalised(tunnelled, tunnel_base) == normalised(local, local_base)

    def results(xml: bytes, call: Callable[[str], bytes]) -> bytes:
        token = re.search(rb"<tse:SearchToken>([^<]*)<", xml)
        assert token is not None
        body = (
            f'<tse:GetRecordingSearchResults xmlns:tse="{TSE}">'
            f"<tse:SearchToken>{token.group(1).decode()}</tse:SearchToken>"
            "<tse:WaitTime>PT5S</tse:WaitTime></tse:GetRecordingSearchResults>"
        )
        return call(body)

    local_results = results(local, lambda b: soap_local(nvr, SEARCH_PATH, b))
    tunnel_results = results(tunnelled, lambda b: soap_tunnel(cloud, conn, SEARCH_PATH, b))
    assert TOKEN.encode() in tunnel_results
    assert normalised(tunnel_results, tunnel_base) == normalised(local_results, local_base)


def test_plain_http_get_through_the_tunnel(nvr: Nvr, cloud: Cloud) -> None:
    """Not only SOAP: any route of the app, here a GET without a body (END_STREAM on HEADERS)."""
    _, _, conn, _ = dial(nvr, cloud)
    local = httpx.get(f"http://127.0.0.1:{nvr.http_port}/openapi.json", timeout=10)
    reply = cloud.call(conn.request("GET", "/openapi.json"))
    assert reply.status == 200 and reply.headers["content-type"] == "application/json"
    assert reply.body == local.content
    assert "connection" not in reply.headers and "transfer-encoding" not in reply.headers
    assert cloud.call(conn.request("GET", "/no/such/page")).status == 404


def test_granted_level_is_enforced_per_operation(nvr: Nvr, cloud: Cloud) -> None:
    manager = nvr.manager()
    viewer, nobody = cloud.url(path="/viewer"), cloud.url(path="/nobody")
    manager.update([uplink(viewer, "User"), uplink(nobody, "Guest")])
    conns = {c.upgrade.uri: c for c in (cloud.next_connection(), cloud.next_connection())}
    users = "<tds:GetUsers/>"  # READ_SYSTEM_SECRET: Administrator only
    info = "<tds:GetDeviceInformation/>"  # READ_SYSTEM
    for path, body, allowed in (
        ("/viewer", info, True),
        ("/viewer", users, False),
        ("/nobody", info, False),
    ):
        reply = cloud.call(conns[path].request("POST", DEVICE_PATH, SOAP, envelope(body)))
        assert (reply.status == 200) is allowed, (path, body, reply.body[:300])
        if not allowed:
            assert b"NotAuthorized" in reply.body
    # No READ_MEDIA without a known level: the RTSP tunnel is refused outright.
    get = cloud.call(
        conns["/nobody"].open(
            "GET",
            f"/recordings/{TOKEN}",
            [("accept", TUNNEL_CONTENT_TYPE), ("x-sessioncookie", "c1")],
            end_stream=True,
        )
    )
    assert cloud.call(get.head)[":status"] == "403"
    # ... and so is RTSP over WebSocket (extended CONNECT), before any Digest exchange.
    ws = cloud.call(
        conns["/nobody"].open(
            "CONNECT",
            WEBSOCKET_PATH,
            [
                (":protocol", "websocket"),
                ("sec-websocket-protocol", SUBPROTOCOL),
                ("sec-websocket-version", "13"),
            ],
        )
    )
    assert cloud.call(ws.head)[":status"] == "403"


# -- RTSP replay --------------------------------------------------------------------------------


def media(client: RtspTestClient) -> list[tuple[object, ...]]:
    """What a replay delivered, independent of the session's random SSRC/sequence/timestamp
    bases and of the PLAY's CSeq: per RTP packet its channel, payload, marker and replay
    extension (capture time and flags)."""
    out: list[tuple[object, ...]] = []
    for _, frame in client.frames:
        if frame.channel % 2 == 0:
            rtp = parse_rtp(frame.payload)
            ext = ReplayExtension.from_packet(rtp)
            if ext is not None:
                ext = replace(ext, cseq=0)
            out.append((frame.channel, bytes(rtp.payload), rtp.marker, ext))
    return out


def replay(
    client: RtspTestClient, url: str, auth: Callable[[str, str], list[tuple[str, str]]]
) -> list[tuple[object, ...]]:
    """DESCRIBE, SETUP ×3 (interleaved), PLAY the whole recording as fast as possible."""
    described = client.request(
        "DESCRIBE", url, [("Require", "onvif-replay"), *auth("DESCRIBE", url)]
    )
    assert described.status == 200, described
    for n, control in enumerate(("track1", "track2", "track3")):
        track = f"{url}/{control}"
        transport = ("Transport", f"RTP/AVP/TCP;unicast;interleaved={2 * n}-{2 * n + 1}")
        assert client.request("SETUP", track, [transport, *auth("SETUP", track)]).status == 200
    play = [("Range", f"clock={clock(T0)}-"), ("Rate-Control", "no"), ("Require", "onvif-replay")]
    assert client.request("PLAY", url + "/", [*play, *auth("PLAY", url + "/")]).status == 200
    units = read_until_terminal(client)
    assert units[0].flags == "C" and units[-1].flags == "ET"
    assert client.request("TEARDOWN", url + "/", auth("TEARDOWN", url + "/")).status == 200
    return media(client)


def digest(client: RtspTestClient, url: str) -> Callable[[str, str], list[tuple[str, str]]]:
    challenge = client.request("OPTIONS", url)
    assert challenge.status == 401
    authenticator = ClientAuthenticator(*ADMIN)
    assert authenticator.handle_challenges(challenge.headers.get_all("WWW-Authenticate"))
    return lambda method, uri: [("Authorization", authenticator.authorization(method, uri) or "")]


def direct_replay(nvr: Nvr) -> list[tuple[object, ...]]:
    with RtspTestClient(nvr.rtsp_port) as direct:
        url = direct.url(f"/recordings/{TOKEN}")
        return replay(direct, url, digest(direct, url))


def no_auth(method: str, uri: str) -> list[tuple[str, str]]:
    return []


def test_rtsp_over_http_through_the_tunnel_matches_direct_rtsp(nvr: Nvr, cloud: Cloud) -> None:
    manager = nvr.manager()
    manager.update([uplink(cloud.url(), "User")])
    conn = cloud.next_connection()
    base = "rtsp://cloud-side.example"
    client = TunnelRtspClient(cloud, conn, f"/recordings/{TOKEN}", base)
    assert client.get_head[":status"] == "200"
    assert client.get_head["content-type"] == "application/x-rtsp-tunnelled"
    assert "connection" not in client.get_head
    tunnelled = replay(client, f"{base}/recordings/{TOKEN}", no_auth)  # no Digest: granted
    direct = direct_replay(nvr)
    assert len(tunnelled) > 150
    assert tunnelled == direct
    # The client gives its POST up and opens another with the same cookie (streaming.md §4.1).
    client.sock.close()
    client.sock = client.open_post()  # type: ignore[assignment]
    assert client.request("OPTIONS", f"{base}/recordings/{TOKEN}").status == 200
    client.close()
    assert wait_until(lambda: not nvr.daemon.playback.server.sessions)  # type: ignore[attr-defined]


def test_rtsp_over_websocket_by_extended_connect(nvr: Nvr, cloud: Cloud) -> None:
    manager = nvr.manager()
    manager.update([uplink(cloud.url())])
    conn = cloud.next_connection()
    base = "rtsp://cloud-side.example"
    client = TunnelWsRtspClient(cloud, conn, base)
    assert client.head[":status"] == "200"
    assert client.head["sec-websocket-protocol"] == SUBPROTOCOL
    url = f"{base}/recordings/{TOKEN}"
    tunnelled = replay(client, url, no_auth)  # no Digest: the uplink's level is granted
    assert tunnelled == direct_replay(nvr)
    assert all(m[:1] == b"$" or m.startswith(b"RTSP/1.0") for m in client.messages)
    client.close()


def test_wss_variant(nvr: Nvr, cloud: Cloud) -> None:
    manager = nvr.manager()
    address = cloud.url("wss")
    manager.update([uplink(address)])
    conn = cloud.next_connection()
    assert conn.websocket is not None
    assert conn.upgrade.headers["Sec-WebSocket-Protocol"] == "h2c-reverse"
    assert wait_until(lambda: connected(manager, address))
    body = soap_tunnel(cloud, conn, DEVICE_PATH, "<tds:GetDeviceInformation/>")
    assert b"GetDeviceInformationResponse" in body
    client = TunnelRtspClient(cloud, conn, f"/recordings/{TOKEN}", "rtsp://c")
    assert replay(client, f"rtsp://c/recordings/{TOKEN}", no_auth) == direct_replay(nvr)


# -- connection management ----------------------------------------------------------------------


def dial(
    nvr: Nvr, cloud: Cloud, timers: Timers = FAST
) -> tuple[UplinkManager, str, CloudConnection, list[UplinkState]]:
    """One uplink to ``cloud``, connected; also every state it reports from the start."""
    manager = nvr.manager(timers)
    states: list[UplinkState] = []
    manager.listeners.append(lambda address, state: states.append(state))
    address = cloud.url()
    manager.update([uplink(address)])
    conn = cloud.next_connection()
    assert wait_until(lambda: connected(manager, address))
    return manager, address, conn, states


def still_served(cloud: Cloud, conn: CloudConnection) -> bool:
    info = envelope("<tds:GetDeviceInformation/>")
    return cloud.call(conn.request("POST", DEVICE_PATH, SOAP, info)).status == 200


def statuses(states: list[UplinkState]) -> list[UplinkStatus]:
    """The status changes (repeats of one status folded)."""
    out: list[UplinkStatus] = []
    for state in states:
        if not out or out[-1] is not state.status:
            out.append(state.status)
    return out


def test_reconnects_after_the_cloud_drops_the_connection(nvr: Nvr, cloud: Cloud) -> None:
    manager, address, first, states = dial(nvr, cloud)
    cloud.drop(first)
    second = cloud.next_connection()
    assert second is not first
    assert wait_until(lambda: connected(manager, address))
    assert statuses(states)[:4] == [
        UplinkStatus.CONNECTING,
        UplinkStatus.CONNECTED,
        UplinkStatus.CONNECTING,
        UplinkStatus.CONNECTED,
    ]
    assert still_served(cloud, second)


def test_silent_cloud_is_given_up_and_redialled(nvr: Nvr, cloud: Cloud) -> None:
    manager, address, first, states = dial(nvr, cloud, replace(FAST, silence=1.0, ping_idle=0.3))
    first.silent = True  # reads on, answers nothing (not even PING)
    second = cloud.next_connection()
    assert cloud.call(first.closed.wait())  # the device closed the dead one
    assert wait_until(lambda: connected(manager, address))
    assert "no frame from the cloud for 1 s" in [s.error for s in states]
    assert still_served(cloud, second)


def test_idle_tunnel_is_kept_alive_by_ping(nvr: Nvr, cloud: Cloud) -> None:
    manager, address, conn, _ = dial(nvr, cloud, replace(FAST, silence=1.0, ping_idle=0.2))
    # Eight PINGs take longer than the silence limit: only their answers keep the tunnel up.
    assert wait_until(lambda: conn.pings >= 8)
    assert not conn.closed.is_set()
    assert manager.client(address).connections == 1  # type: ignore[union-attr]
    assert still_served(cloud, conn)


def test_wrong_server_certificate_is_refused_then_recovers(nvr: Nvr, pki: Pki) -> None:
    rogue = Cloud(pki, rogue=True)
    try:
        manager = nvr.manager()
        address = rogue.url()
        manager.update([uplink(address)])
        assert wait_until(lambda: manager.state(address).error is not None)
        state = manager.state(address)
        assert state.status is UplinkStatus.CONNECTING
        assert "certificate" in (state.error or "")
        assert not rogue.accepted
        # The operator trusts the CA after all: the next attempt succeeds, no restart.
        bundle = pki.ca_file.parent / "both.pem"
        bundle.write_bytes(pki.ca_file.read_bytes() + pki.rogue_ca_file.read_bytes())
        nvr.keystore.policies["cloud-ca"] = bundle
        rogue.next_connection()
        assert wait_until(lambda: connected(manager, address))
        assert manager.state(address).error is None
    finally:
        rogue.close()


def test_access_token_mode(nvr: Nvr, pki: Pki) -> None:
    cloud = Cloud(pki, mode="AccessToken")
    try:
        nvr.keystore.servers["as1"] = AuthorizationServer(
            "as1", cloud.token_url, CLIENT_ID, CLIENT_SECRET, ca_file=pki.ca_file
        )
        nvr.keystore.servers["bad"] = AuthorizationServer(
            "bad", cloud.token_url, CLIENT_ID, "wrong", ca_file=pki.ca_file
        )
        manager = nvr.manager()
        good, bad = cloud.url(path="/good"), cloud.url(path="/bad")
        token_mode = {"certificate_id": None, "authorization_server": "as1"}
        manager.update(
            [
                uplink(good, **token_mode),
                uplink(bad, **{**token_mode, "authorization_server": "bad"}),
            ]
        )
        conn = cloud.next_connection()
        assert conn.upgrade.uri == "/good"
        assert conn.peer_cert is None  # no client certificate in this mode
        scheme, _, token = conn.upgrade.headers["Authorization"].partition(" ")
        assert scheme == "Bearer" and token in cloud.tokens
        assert wait_until(lambda: connected(manager, good))
        assert wait_until(lambda: manager.state(bad).error is not None)
        assert "HTTP 401" in (manager.state(bad).error or "")
        body = soap_tunnel(cloud, conn, DEVICE_PATH, "<tds:GetDeviceInformation/>")
        assert b"GetDeviceInformationResponse" in body
    finally:
        cloud.close()


def test_several_uplinks_in_parallel_and_reconciled(nvr: Nvr, cloud: Cloud) -> None:
    manager = nvr.manager()
    addresses = [cloud.url(path=f"/u{n}") for n in range(3)]
    manager.update([uplink(a) for a in addresses])
    conns = {c.upgrade.uri: c for c in (cloud.next_connection() for _ in addresses)}
    assert sorted(conns) == ["/u0", "/u1", "/u2"]
    assert wait_until(lambda: all(connected(manager, a) for a in addresses))
    # From another thread, as the Uplink service would: drop one, change one, keep one.
    manager.update([uplink(addresses[0]), uplink(addresses[1], "Operator")])
    assert cloud.call(conns["/u2"].closed.wait())
    assert cloud.call(conns["/u1"].closed.wait())  # restarted with the new level
    again = cloud.next_connection()
    assert again.upgrade.uri == "/u1"
    assert wait_until(lambda: connected(manager, addresses[1]))
    assert manager.state(addresses[2]) == UplinkState(UplinkStatus.OFFLINE)
    assert not conns["/u0"].closed.is_set()
