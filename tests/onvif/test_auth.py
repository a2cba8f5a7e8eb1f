"""Authentication and authorization: HTTP Digest, WS-UsernameToken, levels, throttling."""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from zeep.exceptions import Fault

from nvr.onvif.access import DEFAULT_POLICY, AccessClass, Level
from nvr.onvif.device_policy import DEVICE_ACCESS
from nvr.onvif.throttle import LoginThrottle
from nvr.onvif.wssecurity import NonceCache
from nvr.protocol.rtsp_auth import DigestChallenge, parse_challenges
from tests.onvif.conftest import ADMIN, OPERATOR, USER, OnvifServer, StartServer
from tests.onvif.raw import assert_fault, call, envelope, post, username_token
from tests.onvif.schemas import assert_valid
from tests.onvif.zeep_client import OnvifClient

PROTECTED = "<tds:GetDeviceInformation/>"
PRE_AUTH = [
    "<tds:GetSystemDateAndTime/>",
    "<tds:GetServices><tds:IncludeCapability>true</tds:IncludeCapability></tds:GetServices>",
    "<tds:GetServiceCapabilities/>",
    "<tds:GetCapabilities/>",
    "<tds:GetHostname/>",
    "<tds:GetEndpointReference/>",
    "<tds:GetWsdlUrl/>",
]


def _digest_header(challenge: DigestChallenge, user: str, password: str, uri: str) -> str:
    """RFC 7616 by hand (hashlib), independent of nvr's digest code."""
    algorithm = challenge.algorithm or "MD5"
    h = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}[algorithm]

    def digest(*parts: str) -> str:
        return h(":".join(parts).encode()).hexdigest()

    cnonce, nc = secrets.token_hex(8), "00000001"
    ha1 = digest(user, challenge.realm, password)
    ha2 = digest("POST", uri)
    response = digest(ha1, challenge.nonce, nc, cnonce, "auth", ha2)
    return (
        f'Digest username="{user}", realm="{challenge.realm}", nonce="{challenge.nonce}", '
        f'uri="{uri}", algorithm={algorithm}, qop=auth, nc={nc}, cnonce="{cnonce}", '
        f'response="{response}"'
    )


def _challenges(response: httpx.Response) -> list[DigestChallenge]:
    values = response.headers.get_list("www-authenticate")
    found = parse_challenges(values)
    assert all(isinstance(c, DigestChallenge) for c in found)
    return found  # type: ignore[return-value]


def test_default_access_policy_table() -> None:
    admin_only = {
        AccessClass.READ_SYSTEM_SECRET,
        AccessClass.WRITE_SYSTEM,
        AccessClass.UNRECOVERABLE,
    }
    for access, levels in DEFAULT_POLICY.items():
        assert Level.ADMINISTRATOR in levels
        assert (Level.ANONYMOUS in levels) == (access is AccessClass.PRE_AUTH)
        assert (Level.OPERATOR in levels) == (access not in admin_only)
    assert DEVICE_ACCESS["GetSystemDateAndTime"] is AccessClass.PRE_AUTH
    assert DEVICE_ACCESS["GetUsers"] is AccessClass.READ_SYSTEM_SECRET
    assert DEVICE_ACCESS["CreateUsers"] is AccessClass.WRITE_SYSTEM
    assert DEVICE_ACCESS["SystemReboot"] is AccessClass.UNRECOVERABLE
    assert DEVICE_ACCESS["GetStorageConfigurations"] is AccessClass.READ_MEDIA


def test_no_credentials_gets_401_with_digest_challenges(server: OnvifServer) -> None:
    response = call(server.xaddr, PROTECTED)
    assert_fault(response, 401, "Sender", "NotAuthorized")
    assert_valid(response.content)
    challenges = _challenges(response)
    assert [c.algorithm for c in challenges] == ["SHA-256", "MD5"]
    assert all(c.qop == ("auth",) and c.realm == "nvr" for c in challenges)


@pytest.mark.parametrize("body", PRE_AUTH)
def test_pre_auth_operations_need_no_credentials(server: OnvifServer, body: str) -> None:
    response = call(server.xaddr, body)
    assert response.status_code == 200, response.text
    assert_valid(response.content)


def test_pre_auth_ignores_stale_tokens(server: OnvifServer) -> None:
    old = (datetime.now(UTC) - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    header = username_token(*ADMIN, created=old)
    assert call(server.xaddr, PRE_AUTH[0], header).status_code == 200


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_digest_md5_and_sha256(server: OnvifServer, algorithm: str) -> None:
    path = "/onvif/device_service"
    first = call(server.xaddr, PROTECTED)
    (challenge,) = [c for c in _challenges(first) if c.algorithm == algorithm]
    good = call(
        server.xaddr,
        PROTECTED,
        headers={"authorization": _digest_header(challenge, *USER, path)},
    )
    assert good.status_code == 200, good.text
    wrong = call(
        server.xaddr,
        PROTECTED,
        headers={"authorization": _digest_header(challenge, USER[0], "wrong-pass", path)},
    )
    assert_fault(wrong, 401, "Sender", "NotAuthorized")
    assert wrong.headers.get_list("www-authenticate")


def test_digest_through_client_libraries(start_server: StartServer) -> None:
    server = start_server(security_digest_algorithms="sha-256")
    server.add_standard_users()
    response = call(server.xaddr, PROTECTED, auth=httpx.DigestAuth(*OPERATOR))
    assert response.status_code == 200
    assert [c.algorithm for c in _challenges(call(server.xaddr, PROTECTED))] == ["SHA-256"]
    info = OnvifClient(server.xaddr, digest=OPERATOR).service.GetDeviceInformation()
    assert info.Model == "nvr"
    with pytest.raises(Fault):
        OnvifClient(server.xaddr, digest=(OPERATOR[0], "nope-nope")).service.GetDeviceInformation()


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_digest_through_curl(start_server: StartServer, tmp_path: Path) -> None:
    """libcurl does Digest by first POSTing without the body (Content-Length: 0) and without
    credentials: that probe must get the 401 challenge, not a fault for the empty envelope."""
    server = start_server()
    server.add_standard_users()
    probe = post(server.xaddr, b"")
    assert_fault(probe, 401, "Sender", "NotAuthorized")
    assert _challenges(probe)
    body = tmp_path / "request.xml"
    body.write_bytes(envelope(PROTECTED))
    result = subprocess.run(
        ["curl", "-sS", "--digest", "-u", ":".join(OPERATOR), "-w", "\n%{http_code}",
         "-H", "content-type: application/soap+xml", "--data-binary", f"@{body}", server.xaddr],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    answer, _, status = result.stdout.rpartition("\n")
    assert status == "200", answer
    assert "<tds:Model>nvr</tds:Model>" in answer or ">nvr</" in answer
    # with credentials, an empty body is still a malformed request
    empty = post(server.xaddr, b"", auth=httpx.DigestAuth(*OPERATOR))
    assert_fault(empty, 400, "Sender", "WellFormed")


def test_basic_auth_is_refused(server: OnvifServer) -> None:
    response = call(server.xaddr, PROTECTED, auth=httpx.BasicAuth(*ADMIN))
    assert response.status_code == 401


def test_ws_username_token(server: OnvifServer) -> None:
    client = OnvifClient(server.xaddr, wsse=USER)
    assert client.service.GetDeviceInformation().Manufacturer == "nvr"
    assert_valid(client.last_response)
    with pytest.raises(Fault) as info:
        OnvifClient(server.xaddr, wsse=(USER[0], "wrong-pass")).service.GetDeviceInformation()
    assert [q.localname for q in info.value.subcodes] == ["NotAuthorized"]


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(lambda: username_token(USER[0], "wrong-password"), id="bad-digest"),
        pytest.param(lambda: username_token("nobody", USER[1]), id="unknown-user"),
        pytest.param(
            lambda: username_token(
                *USER,
                created=(datetime.now(UTC) - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            ),
            id="stale-created",
        ),
        pytest.param(
            lambda: username_token(
                *USER,
                created=(datetime.now(UTC) + timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            ),
            id="future-created",
        ),
        pytest.param(lambda: username_token(*USER, with_nonce=False), id="no-nonce"),
        pytest.param(lambda: username_token(*USER, with_created=False), id="no-created"),
        pytest.param(lambda: username_token(*USER, digest=False), id="password-text-over-http"),
    ],
)
def test_bad_ws_tokens_are_400_not_authorized(server: OnvifServer, token: object) -> None:
    response = call(server.xaddr, PROTECTED, token())  # type: ignore[operator]
    assert_fault(response, 400, "Sender", "NotAuthorized")
    assert_valid(response.content)


def test_replayed_nonce_is_refused(server: OnvifServer) -> None:
    header = username_token(*USER, nonce=os.urandom(16))
    assert call(server.xaddr, PROTECTED, header).status_code == 200
    assert_fault(call(server.xaddr, PROTECTED, header), 400, "Sender", "NotAuthorized")
    # zeep with a fixed nonce: the second request is a replay
    client = OnvifClient(server.xaddr, wsse=USER, nonce="fixed-nonce-1234")
    client.service.GetDeviceInformation()
    with pytest.raises(Fault):
        client.service.GetDeviceInformation()


def test_password_text_when_allowed(start_server: StartServer) -> None:
    server = start_server(security_wsse_password_text="always")
    server.add_standard_users()
    assert call(server.xaddr, PROTECTED, username_token(*USER, digest=False)).status_code == 200


def _authorization(server: OnvifServer, user: str, password: str) -> dict[str, str]:
    """An Authorization header answering a fresh SHA-256 challenge."""
    (challenge, _) = _challenges(call(server.xaddr, PROTECTED))
    return {"authorization": _digest_header(challenge, user, password, "/onvif/device_service")}


def test_both_levels_digest_first_then_ws(server: OnvifServer) -> None:
    good_ws, bad_ws = username_token(*USER), username_token(USER[0], "wrong-password")
    both = call(server.xaddr, PROTECTED, good_ws, headers=_authorization(server, *ADMIN))
    assert both.status_code == 200
    response = call(server.xaddr, PROTECTED, bad_ws, headers=_authorization(server, *ADMIN))
    assert_fault(response, 400, "Sender", "NotAuthorized")
    bad_digest = _authorization(server, ADMIN[0], "wrong-password")
    response = call(server.xaddr, PROTECTED, username_token(*USER), headers=bad_digest)
    assert_fault(response, 401, "Sender", "NotAuthorized")
    # both valid: the weaker of the two identities decides
    weaker = call(
        server.xaddr,
        "<tds:GetUsers/>",
        username_token(*USER),
        headers=_authorization(server, *ADMIN),
    )
    assert_fault(weaker, 400, "Sender", "NotAuthorized")


@pytest.mark.parametrize(
    ("who", "body", "allowed"),
    [
        (USER, "<tds:GetDeviceInformation/>", True),
        (USER, "<tds:GetUsers/>", False),
        (
            USER,
            "<tds:CreateUsers><tds:User><tt:Username>x1</tt:Username><tt:Password>"
            "secret-pw-1</tt:Password><tt:UserLevel>User</tt:UserLevel></tds:User>"
            "</tds:CreateUsers>",
            False,
        ),
        (OPERATOR, "<tds:GetUsers/>", False),
        (OPERATOR, "<tds:SystemReboot/>", False),
        (OPERATOR, "<tds:GetStorageConfigurations/>", True),
        (ADMIN, "<tds:GetUsers/>", True),
    ],
)
def test_user_levels_against_access_classes(
    server: OnvifServer, who: tuple[str, str], body: str, allowed: bool
) -> None:
    response = call(server.xaddr, body, username_token(*who))
    if allowed:
        assert response.status_code in (200, 500), response.text  # 500: ActionNotSupported
        assert "NotAuthorized" not in response.text
    else:
        assert_fault(response, 400, "Sender", "NotAuthorized")
    assert not server.reboots


def test_failed_logins_lock_the_address_out(start_server: StartServer) -> None:
    server = start_server(security_login_failures=2, security_lockout_max_seconds=60)
    server.add_standard_users()

    def wrong() -> httpx.DigestAuth:  # a fresh one: exactly one failed attempt per call
        return httpx.DigestAuth(ADMIN[0], "wrong-password")

    for _ in range(2):
        assert call(server.xaddr, PROTECTED, auth=wrong()).status_code == 401
    assert call(server.xaddr, PROTECTED, auth=wrong()).status_code == 401  # third: locks out
    locked = call(server.xaddr, PROTECTED, auth=httpx.DigestAuth(*ADMIN))
    assert_fault(locked, 429, "Sender", "NotAuthorized")
    assert int(locked.headers["retry-after"]) >= 1
    ws = call(server.xaddr, PROTECTED, username_token(*ADMIN))
    assert ws.status_code == 429
    assert call(server.xaddr, PRE_AUTH[0]).status_code == 200  # anonymous operations still work
    # the lockout doubles with every further failure, up to the cap
    throttle = server.context.auth.throttle
    assert throttle.failure("203.0.113.9") == 0
    assert throttle.failure("203.0.113.9") == 0
    assert [throttle.failure("203.0.113.9") for _ in range(8)] == [2, 4, 8, 16, 32, 60, 60, 60]


def test_without_users_nothing_authenticated_works(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="nvr.onvif"):
        server = start_server()
    assert "nvr user add NAME --level administrator --password-stdin" in caplog.text
    assert call(server.xaddr, PROTECTED, auth=httpx.DigestAuth("admin", "admin")).status_code == 401
    assert call(server.xaddr, PROTECTED, username_token("admin", "admin")).status_code == 400
    assert call(server.xaddr, PRE_AUTH[0]).status_code == 200


def test_replay_cache_and_throttle_memory_are_bounded() -> None:
    cache = NonceCache(window=300, capacity=3)
    for i in range(10):
        assert cache.add(bytes([i]), now=1000.0)
    assert len(cache) == 3
    assert not cache.add(bytes([9]), now=1000.0)  # still remembered: a replay
    assert cache.add(bytes([9]), now=1000.0 + 601)  # forgotten after two windows
    throttle = LoginThrottle(max_failures=1, capacity=2, clock=lambda: 50.0)
    for address in ("a", "b", "c"):
        throttle.failure(address)
        throttle.failure(address)
    assert throttle.locked_for("a") == 0  # forgotten (least recently seen)
    assert throttle.locked_for("c") == 2.0
