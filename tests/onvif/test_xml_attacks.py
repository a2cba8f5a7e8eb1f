"""Hostile XML against every SOAP endpoint the app mounts (device, events and its pull points,
search, replay, recording, receiver, and whatever is added later: the endpoints are found by
walking the app's routes).

Each attack is sent as an administrator's request whose body would change something (create a
user, a recording or a receiver) if it were obeyed. Every one must be answered with a SOAP
fault or an HTTP 4xx — within the client's ordinary timeout, no timing is asserted — and must
change nothing: no user, recording or receiver appears, the secret file behind an external
entity never shows up in an answer, and the HTTP server an entity points at is never asked.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from lxml import etree

from nvr.onvif.namespaces import SOAP11, TDS, TRC, TRV, TT
from tests.onvif import raw
from tests.onvif.conftest import ADMIN
from tests.onvif.live import LiveNvr, SoapMount, live_nvr
from tests.playback.helpers import LoopThread
from tests.playback.replay_footage import loop

__all__ = ["loop"]

pytestmark = pytest.mark.timeout(300)

MARK = "@@ATTACK@@"
"""Where an attack puts its payload inside an operation's request element."""
SECRET = "s3cr3t-xxe-canary-7f1d"
LIMIT = 1536 * 1024
"""http.max_soap_request_bytes of the daemon under attack (not the default: it is honoured;
large enough that every other attack reaches the parser)."""

# A request per service namespace that would change state if obeyed (MARK inside it).
_MUTATING = {
    TDS: (
        '<tds:CreateUsers xmlns:tds="{ns}"><tds:User><tt:Username>{m}</tt:Username>'
        "<tt:Password>attack-pass-1</tt:Password><tt:UserLevel>Administrator</tt:UserLevel>"
        "</tds:User></tds:CreateUsers>"
    ),
    TRC: (
        '<trc:CreateRecording xmlns:trc="{ns}"><trc:RecordingConfiguration><tt:Source>'
        "<tt:SourceId>urn:x</tt:SourceId><tt:Name>{m}</tt:Name><tt:Location>l</tt:Location>"
        "<tt:Description>d</tt:Description><tt:Address>urn:a</tt:Address></tt:Source>"
        "<tt:Content>c</tt:Content><tt:MaximumRetentionTime>PT0S</tt:MaximumRetentionTime>"
        "</trc:RecordingConfiguration></trc:CreateRecording>"
    ),
    TRV: (
        '<trv:CreateReceiver xmlns:trv="{ns}"><trv:Configuration><tt:Mode>NeverConnect</tt:Mode>'
        "<tt:MediaUri>rtsp://192.0.2.1/{m}</tt:MediaUri><tt:StreamSetup>"
        "<tt:Stream>RTP-Unicast</tt:Stream><tt:Transport><tt:Protocol>RTSP</tt:Protocol>"
        "</tt:Transport></tt:StreamSetup></trv:Configuration></trv:CreateReceiver>"
    ),
}


def operation(namespace: str) -> str:
    """The request element sent to a service of ``namespace``, MARK inside."""
    template = _MUTATING.get(
        namespace, '<x:GetServiceCapabilities xmlns:x="{ns}">{m}</x:GetServiceCapabilities>'
    )
    return template.format(ns=namespace, m=MARK)


def document(
    payload: str, *, prolog: str = "", envelope_ns: str = raw.SOAP12, extra: str = ""
) -> bytes:
    head = '<?xml version="1.0" encoding="utf-8"?>' + prolog
    return (
        f'{head}<s:Envelope xmlns:s="{envelope_ns}" xmlns:tt="{TT}"{extra}>'
        f"<s:Body>{payload}</s:Body></s:Envelope>"
    ).encode()


@dataclass(frozen=True)
class Peer:
    """What an attack may point at: a secret file and an HTTP server that logs requests."""

    secret_file: Path
    url: str


@dataclass(frozen=True)
class Attack:
    name: str
    build: Callable[[str, Peer], bytes]
    """(operation element with MARK, peer) -> request body."""
    expect: str | int | None
    """A fault subcode chain ("Sender/WellFormed"), an HTTP status without SOAP body, or None:
    any answer will do (the attack is inert, e.g. XInclude, which nothing ever expands)."""
    content_type: str = "application/soap+xml; charset=utf-8"


def _dtd(internal: str) -> str:
    return f"<!DOCTYPE s:Envelope [{internal}]>"


def _laughs(op: str, peer: Peer) -> bytes:
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)
    ]
    return document(op.replace(MARK, "&lol9;"), prolog=_dtd("".join(entities)))


def _quadratic(op: str, peer: Peer) -> bytes:
    big = "A" * 20_000
    return document(op.replace(MARK, "&a;" * 5_000), prolog=_dtd(f'<!ENTITY a "{big}">'))


def _deep(op: str, peer: Peer) -> bytes:
    depth = 100_000
    return document(op.replace(MARK, "<d>" * depth + "x" + "</d>" * depth))


def _many_namespaces(op: str, peer: Peer) -> bytes:
    extra = "".join(f' xmlns:n{i}="urn:n:{i}"' for i in range(20_000))
    return document(op.replace(MARK, "many-ns"), extra=extra)


def _many_attributes(op: str, peer: Peer) -> bytes:
    attributes = "".join(f' a{i}="{i}"' for i in range(20_000))
    return document(op.replace(MARK, f"<tt:x{attributes}/>"))


def _not_utf8(op: str, peer: Peer) -> bytes:
    return document(op).replace(MARK.encode(), b"\xff\xfe\xc3\x28")


def _encoding_lie(op: str, peer: Peer) -> bytes:
    text = document(op.replace(MARK, "caf\u00e9")).replace(
        b'encoding="utf-8"', b'encoding="UTF-16"'
    )
    return text


def _entity(reference: str, prolog: Callable[[Peer], str]) -> Callable[[str, Peer], bytes]:
    """An attack that puts ``reference`` in the request and ``prolog(peer)`` before it."""
    return lambda op, peer: document(op.replace(MARK, reference), prolog=prolog(peer))


WELL_FORMED = "Sender/WellFormed"

ATTACKS = [
    Attack(
        "xxe-file",
        _entity("&xxe;", lambda p: _dtd(f'<!ENTITY xxe SYSTEM "file://{p.secret_file}">')),
        WELL_FORMED,
    ),
    Attack(
        "xxe-http",
        _entity("&xxe;", lambda p: _dtd(f'<!ENTITY xxe SYSTEM "{p.url}/entity">')),
        WELL_FORMED,
    ),
    Attack(
        "parameter-entity",
        _entity("&e;", lambda p: _dtd(f'<!ENTITY % p SYSTEM "{p.url}/parameter.dtd"> %p;')),
        WELL_FORMED,
    ),
    Attack(
        "external-dtd",
        _entity("&e;", lambda p: f'<!DOCTYPE s:Envelope SYSTEM "{p.url}/external.dtd">'),
        WELL_FORMED,
    ),
    Attack(
        "xinclude",
        lambda op, p: document(
            op.replace(
                MARK,
                f'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="{p.secret_file}" '
                'parse="text"/>',
            )
        ),
        None,
    ),
    Attack("billion-laughs", _laughs, WELL_FORMED),
    Attack("quadratic-blowup", _quadratic, WELL_FORMED),
    Attack("deep-nesting", _deep, WELL_FORMED),
    Attack(
        "huge-element-name",
        lambda op, p: document(op.replace(MARK, f"<{'e' * 120_000}/>")),
        WELL_FORMED,
    ),
    Attack(
        "huge-attribute-name",
        lambda op, p: document(op.replace(MARK, f'<tt:x {"a" * 120_000}="1"/>')),
        WELL_FORMED,
    ),
    Attack("many-namespaces", _many_namespaces, WELL_FORMED),
    Attack("many-attributes", _many_attributes, WELL_FORMED),
    Attack("not-utf8", _not_utf8, WELL_FORMED),
    Attack("encoding-lie", _encoding_lie, WELL_FORMED),
    Attack("truncated", lambda op, p: document(op)[:-40], WELL_FORMED),
    Attack("empty-body", lambda op, p: b"", WELL_FORMED),
    Attack("not-xml", lambda op, p: b'{"CreateUsers": "attacker"}', WELL_FORMED),
    Attack(
        "unknown-envelope-version",
        lambda op, p: document(op, envelope_ns="http://example.com/not-soap"),
        "VersionMismatch",
    ),
    Attack(
        "soap11-with-dtd",
        lambda op, p: document(
            op.replace(MARK, "&xxe;"),
            prolog=_dtd(f'<!ENTITY xxe SYSTEM "file://{p.secret_file}">'),
            envelope_ns=SOAP11,
        ),
        "Client.WellFormed",
        content_type="text/xml; charset=utf-8",
    ),
    Attack(
        "over-the-size-limit",
        lambda op, p: document(op.replace(MARK, "A" * (LIMIT + 1))),
        413,
    ),
    Attack("json-content-type", lambda op, p: document(op), 415, "application/json"),
    Attack(
        "form-content-type", lambda op, p: document(op), 415, "application/x-www-form-urlencoded"
    ),
    Attack("multipart-content-type", lambda op, p: document(op), 415, "multipart/related; type=x"),
]


# ---- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Peer, list[str]]]:
    """The secret file and a logging HTTP server (the list of paths it was asked for)."""
    secret = tmp_path_factory.mktemp("xxe") / "secret.txt"
    secret.write_text(SECRET)
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            body = f'<!ENTITY e "{SECRET}">'.encode()
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Peer(secret, f"http://127.0.0.1:{server.server_address[1]}"), hits
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def nvr(
    loop: LoopThread, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveNvr]:
    data = tmp_path_factory.mktemp("attacked")
    settings: dict[str, object] = {"http.max_soap_request_bytes": LIMIT}
    with live_nvr(loop, database_url, data, settings=settings) as handle:
        yield handle


def state(nvr: LiveNvr) -> tuple[object, ...]:
    """Everything an attack might have changed."""
    daemon = nvr.daemon
    assert daemon.store is not None and daemon.ingest is not None
    return (
        sorted(u.name for u in nvr.app.state.onvif.users.list()),
        sorted(r.token for r in daemon.store.recordings()),
        sorted(r.token for r in daemon.ingest.receivers.list()),
    )


def _chain(response: httpx.Response) -> str:
    """WELL_FORMED for SOAP 1.2, the faultcode's local part for SOAP 1.1."""
    root = etree.fromstring(response.content)
    if etree.QName(root).namespace == SOAP11:
        code = root.find(f"{{{SOAP11}}}Body/{{{SOAP11}}}Fault/faultcode")
        assert code is not None, response.text
        return (code.text or "").partition(":")[2]
    return "/".join(name.rpartition("}")[2] for name in raw.fault_chain(response))


def send(nvr: LiveNvr, mount: SoapMount, attack: Attack, peer: Peer) -> httpx.Response:
    body = attack.build(operation(mount.namespace), peer)
    auth = httpx.DigestAuth(*ADMIN)
    return raw.post(nvr.base_url + mount.path, body, content_type=attack.content_type, auth=auth)


# ---- tests --------------------------------------------------------------------------------------


def test_every_mounted_service_is_attacked(nvr: LiveNvr) -> None:
    namespaces = {m.namespace for m in nvr.soap_mounts()}
    registered = {e.namespace for e in nvr.app.state.onvif.registry.entries()}
    assert registered <= namespaces
    assert {TDS, TRC, TRV} <= namespaces


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda a: a.name)
def test_attack_is_refused_and_changes_nothing(
    nvr: LiveNvr, peer: tuple[Peer, list[str]], attack: Attack
) -> None:
    target, hits = peer
    before = state(nvr)
    for mount in nvr.soap_mounts():
        response = send(nvr, mount, attack, target)
        where = f"{attack.name} at {mount.path}"
        assert SECRET not in response.text, where
        if attack.expect is None:
            pass
        elif isinstance(attack.expect, int):
            assert response.status_code == attack.expect, f"{where}: {response.text[:300]}"
        else:
            assert 400 <= response.status_code < 600, where
            assert _chain(response) == attack.expect, f"{where}: {response.text[:300]}"
            if attack.expect != "VersionMismatch":
                assert response.status_code == 400, where
    assert hits == []
    after = state(nvr)
    if attack.expect is None:  # obeyed without the inert part: the file never got in
        assert SECRET not in repr(after) + repr(nvr.daemon.store.recordings())
    else:
        assert after == before


def test_the_same_request_without_the_attack_is_obeyed(nvr: LiveNvr) -> None:
    """The attack bodies are real requests: stripped of the attack they change state."""
    before = state(nvr)
    by_ns = {m.namespace: m for m in nvr.soap_mounts()}
    for n, namespace in enumerate((TDS, TRC, TRV)):
        body = document(operation(namespace).replace(MARK, f"benign{n}"))
        response = raw.post(
            nvr.base_url + by_ns[namespace].path, body, auth=httpx.DigestAuth(*ADMIN)
        )
        assert response.status_code == 200, response.text
    after = state(nvr)
    assert all(len(a) == len(b) + 1 for a, b in zip(after, before, strict=True))


def _chunked(port: int, path: str, total: int) -> bytes:
    """POST ``total`` bytes with chunked transfer encoding and no content-length; the reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Content-Type: application/soap+xml; charset=utf-8\r\n"
            "Transfer-Encoding: chunked\r\n\r\n"
        )
        sock.sendall(head.encode())
        chunk = b"<" + b"a" * 65_535
        sent = 0
        try:
            while sent < total:
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                sent += len(chunk)
            sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed early: fine, read its answer
        reply = b""
        try:
            while b"\r\n\r\n" not in reply:
                data = sock.recv(65_536)
                if not data:
                    break
                reply += data
        except ConnectionResetError:
            pass
        return reply


def test_chunked_body_over_the_limit(nvr: LiveNvr) -> None:
    before = state(nvr)
    for mount in nvr.soap_mounts():
        reply = _chunked(nvr.port, mount.path, 4 * LIMIT)
        assert reply.startswith(b"HTTP/1.1 413"), (mount.path, reply[:200])
    assert state(nvr) == before


def test_limit_is_the_configured_one(nvr: LiveNvr) -> None:
    assert {m.endpoint.max_request_bytes for m in nvr.soap_mounts()} == {LIMIT}
