"""Failed RTSP logins are throttled per client address, with the same budget as SOAP logins.

Run against a real ``nvr serve``: password guessing on the RTSP port (or the SOAP services, or
both) locks the address out of both front doors, and the lockout is answered without any
password check (503 with Retry-After on RTSP, 429 on SOAP).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from nvr.protocol.rtsp_auth import ClientAuthenticator
from tests.daemon import Daemon, run_nvr
from tests.playback.helpers import RtspTestClient

ADMIN = ("admin", "right-password-1")
GUESSES = 5  # LoginThrottle.max_failures: the sixth failure starts the lockout


@pytest.fixture
def nvr(tmp_path: Path, database_url: str) -> Iterator[Daemon]:
    data = tmp_path / "data"
    added = run_nvr(
        "user", "add", ADMIN[0], "--level", "administrator", "--password-stdin",
        "--data-dir", str(data), "--database-url", database_url,
        stdin=ADMIN[1] + "\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    daemon = Daemon(data, database_url)
    try:
        daemon.wait_ready()
        yield daemon
    finally:
        daemon.stop()


def describe(client: RtspTestClient, url: str, password: str) -> tuple[int, str | None]:
    """DESCRIBE answered with Digest for ``password``: (status, Retry-After)."""
    first = client.request("DESCRIBE", url)
    if first.status != 401:
        return first.status, first.headers.get("Retry-After")
    auth = ClientAuthenticator(ADMIN[0], password)
    assert auth.handle_challenges(first.headers.get_all("WWW-Authenticate"))
    header = auth.authorization("DESCRIBE", url)
    assert header is not None
    response = client.request("DESCRIBE", url, [("Authorization", header)])
    return response.status, response.headers.get("Retry-After")


def soap_login(nvr: Daemon, password: str) -> int:
    body = (
        '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>'
        '<GetUsers xmlns="http://www.onvif.org/ver10/device/wsdl"/></s:Body></s:Envelope>'
    )
    response = httpx.post(
        nvr.base_url + "/onvif/device_service",
        content=body,
        headers={"content-type": "application/soap+xml"},
        auth=httpx.DigestAuth(ADMIN[0], password),
        timeout=10,
    )
    return response.status_code


def test_rtsp_guessing_is_locked_out(nvr: Daemon) -> None:
    url = f"rtsp://127.0.0.1:{nvr.rtsp_port}/recordings/no-such-recording"
    with RtspTestClient(nvr.rtsp_port) as client:
        for _ in range(GUESSES):
            assert describe(client, url, "wrong")[0] == 401
        status, retry = describe(client, url, "wrong")
        assert status == 401  # this failure starts the lockout...
        status, retry = describe(client, url, ADMIN[1])
        assert status == 503 and retry is not None and int(retry) >= 1  # ...even the right one
    # one budget per address: the SOAP services refuse it too, before any password check
    assert soap_login(nvr, ADMIN[1]) == 429


def test_soap_guessing_locks_the_rtsp_port_too(nvr: Daemon) -> None:
    url = f"rtsp://127.0.0.1:{nvr.rtsp_port}/recordings/no-such-recording"
    with RtspTestClient(nvr.rtsp_port) as client:
        assert describe(client, url, ADMIN[1])[0] == 404  # authenticated: no such recording
        for _ in range(GUESSES + 1):
            assert soap_login(nvr, "wrong") in (400, 401)
        status, retry = describe(client, url, ADMIN[1])
        assert status == 503 and retry is not None
