"""Fuzz entry point for RTSP/HTTP authentication (``nvr.protocol.rtsp_auth``).

Feeds the data to the challenge and credentials parsers (checking that what parses serialises
and parses back equal), to the URI userinfo splitter, and to the server's verifier, which must
answer every input with a result rather than an exception.
Run with atheris: ``python tests/fuzz/fuzz_rtsp_auth.py [corpus_dir]``.
"""

from __future__ import annotations

from nvr.protocol import rtsp_auth as a
from nvr.protocol.errors import ProtocolError

try:
    from tests.fuzz.harness import header_value, main
except ImportError:  # run as a script
    from harness import header_value, main  # type: ignore[no-redef]

_SERVER = a.ServerAuthenticator("nvr", b"fuzz-secret", allow_basic=True)


def _challenges(text: str) -> None:
    try:
        challenges = a.parse_www_authenticate(text)
    except ProtocolError:
        return
    again = [c for c in challenges for c in a.parse_www_authenticate(a.format_challenge(c))]
    assert again == challenges, (text, challenges, again)


def _credentials(text: str) -> None:
    try:
        credentials = a.parse_authorization(text)
    except ProtocolError:
        return
    assert a.parse_authorization(a.format_authorization(credentials)) == credentials


def _uri(text: str) -> None:
    try:
        bare, credentials = a.split_uri_credentials(text)
        joined = a.join_uri_credentials(bare, credentials)
    except ProtocolError:
        return
    assert a.split_uri_credentials(joined)[1] == credentials


def fuzz_one_input(data: bytes) -> None:
    """Run every auth parser over the data; only ProtocolError may escape them."""
    text = header_value(data)
    _challenges(text)
    _credentials(text)
    _uri(data.decode("utf-8", "surrogateescape"))
    result = _SERVER.verify(text, method="DESCRIBE", uri="rtsp://h/x", password_for=lambda u: "pw")
    assert isinstance(result, a.AuthResult)


if __name__ == "__main__":
    main(fuzz_one_input)
