"""The TLS context and the access token of one uplink (uplink.md A.2 phase 1, A.4).

The device is the TLS client: TLS 1.2 or later, the cloud's certificate checked against the
trust anchors of the configured certification path validation policy (the system's when none
is configured: the spec leaves that case to the vendor) and its host name per RFC 6125. In mTLS
mode the configured keystore certificate is presented; in AccessToken mode a bearer token is
fetched with the OAuth2 client-credentials grant (RFC 6749 §4.4) before each connection.
Both functions block (files, HTTP): callers run them in a worker thread.
"""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from nvr.uplink.settings import AuthorizationServer, Keystore, UplinkConfiguration

__all__ = ["CredentialError", "access_token", "tls_context"]


class CredentialError(Exception):
    """The configuration names key material or a server the device cannot use."""


def tls_context(config: UplinkConfiguration, keystore: Keystore | None) -> ssl.SSLContext:
    """A client context for ``config``: validation policy, host-name check, client cert."""
    cafile = None
    if config.cert_path_validation_policy_id:
        if keystore is not None:
            cafile = keystore.trust_anchors(config.cert_path_validation_policy_id)
        if cafile is None:
            policy = config.cert_path_validation_policy_id
            raise CredentialError(f"unknown CertPathValidationPolicyID {policy!r}")
    context = _client_context(cafile)
    if config.certificate_id:
        entry = keystore.certificate(config.certificate_id) if keystore is not None else None
        if entry is None:
            raise CredentialError(f"unknown CertificateID {config.certificate_id!r}")
        try:
            context.load_cert_chain(entry.cert_file, entry.key_file)
        except (OSError, ssl.SSLError) as exc:
            raise CredentialError(f"certificate {config.certificate_id!r}: {exc}") from None
    return context


def access_token(
    config: UplinkConfiguration, keystore: Keystore | None, timeout: float = 15.0
) -> str | None:
    """The bearer token for ``config`` (AccessToken mode), None in mTLS mode."""
    if not config.authorization_server:
        return None
    server = keystore.authorization_server(config.authorization_server) if keystore else None
    if server is None:
        raise CredentialError(f"unknown AuthorizationServer {config.authorization_server!r}")
    return request_token(server, timeout)


def request_token(server: AuthorizationServer, timeout: float = 15.0) -> str:
    """Client-credentials grant; the client authenticates with HTTP Basic (RFC 6749 §2.3.1)."""
    form = {"grant_type": "client_credentials"}
    if server.scope:
        form["scope"] = server.scope
    secret = f"{_form(server.client_id)}:{_form(server.client_secret)}".encode()
    request = urllib.request.Request(
        server.token_url,
        data=urllib.parse.urlencode(form).encode(),
        headers={
            "Authorization": "Basic " + base64.b64encode(secret).decode(),
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        },
        method="POST",
    )
    https = server.token_url.lower().startswith("https:")
    context = _client_context(server.ca_file) if https else None
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            answer = json.loads(response.read(64 * 1024))
    except urllib.error.HTTPError as exc:
        raise CredentialError(f"token request refused: HTTP {exc.code}") from None
    except (OSError, ValueError) as exc:
        raise CredentialError(f"token request failed: {exc}") from None
    token = answer.get("access_token") if isinstance(answer, dict) else None
    if not isinstance(token, str) or not token or not token.isprintable():
        raise CredentialError("token response has no access_token")
    return token


def _client_context(cafile: Path | None) -> ssl.SSLContext:
    """TLS 1.2 or later, the server's certificate and host name checked (the defaults of
    ``create_default_context``) against ``cafile``, or the system's anchors without one."""
    context = ssl.create_default_context(cafile=str(cafile) if cafile is not None else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _form(value: str) -> str:
    """RFC 6749 §2.3.1: client id and secret are form-encoded before Basic."""
    return urllib.parse.quote_plus(value)
