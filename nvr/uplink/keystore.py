"""The uplink keystore: client certificates, trust anchors and OAuth2 servers as files.

Layout under the keystore directory (``uplink.keystore_dir``, default ``<data_dir>/keystore``)::

    certificates/<id>.pem               client certificate chain (leaf first)
    certificates/<id>.key               its private key, PEM, mode 0600
    trust/<policy-id>.pem               CAs of a certification path validation policy
    authorization_servers/<token>.toml  token_url, client_id, client_secret, scope (0600)
    authorization_servers/<token>.ca.pem  trust anchors of that token endpoint (optional)

The ONVIF Uplink service only checks that the IDs a configuration names exist here; the
operator fills the keystore with ``nvr keystore …`` (ONVIF's Advanced Security keystore
operations are not offered). IDs are restricted to a file-name-safe alphabet, so no ID can
reach outside its folder. Files are replaced atomically; a certificate and its key are two
files, written key first.

The export signing identity (``nvr.export.device_identity``) is deliberately not offered as a
default client certificate: its key is for evidence signatures (non-repudiation key usage)
and one key per purpose keeps a TLS compromise from forging exports. An operator who wants it
anyway can add its two files with ``nvr keystore add-certificate``, which refuses it only
if its extended key usage excludes TLS clients.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from nvr.durable import write_atomic
from nvr.uplink.settings import AuthorizationServer, ClientCertificate

if TYPE_CHECKING:
    from nvr.config import Config

ID_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
"""Keystore IDs: 1–64 characters, letters, digits, ``.``, ``_``, ``-``; no leading dot."""

CERTIFICATES: Final = "certificates"
TRUST: Final = "trust"
AUTHORIZATION_SERVERS: Final = "authorization_servers"
KINDS: Final = (CERTIFICATES, TRUST, AUTHORIZATION_SERVERS)


class KeystoreError(ValueError):
    """Material refused or unreadable; ``field`` names the input at fault (``cert``, ``key``…)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def valid_id(text: str) -> bool:
    return bool(ID_RE.match(text))


def _check_id(text: str, field: str = "id") -> str:
    if not valid_id(text):
        raise KeystoreError(
            f"invalid ID {text[:80]!r}: use 1-64 letters, digits, '.', '_' or '-' "
            "(not starting with '.')",
            field,
        )
    return text


def _certificates(pem: bytes, field: str) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise KeystoreError(f"not a PEM certificate ({exc})", field) from None
    return certs


def _spki(key: object) -> bytes:
    return key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def check_client_certificate(cert_pem: bytes, key_pem: bytes) -> x509.Certificate:
    """The leaf certificate, after checking it parses, fits the key and may do TLS client auth."""
    certs = _certificates(cert_pem, "cert")
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        raise KeystoreError("encrypted private keys are not supported", "key") from None
    except ValueError as exc:
        raise KeystoreError(f"not a PEM private key ({exc})", "key") from None
    leaf = certs[0]
    if _spki(leaf.public_key()) != _spki(key.public_key()):
        raise KeystoreError("the (first) certificate is not the key's", "cert")
    try:
        usages = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return leaf
    if ExtendedKeyUsageOID.CLIENT_AUTH not in usages:
        raise KeystoreError("the certificate's extended key usage excludes TLS clients", "cert")
    return leaf


def _toml_string(text: str) -> str:
    """A TOML basic string (JSON escapes are TOML escapes; DEL must be escaped too)."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007F")


@dataclass(frozen=True, slots=True)
class KeystoreListing:
    certificates: tuple[str, ...]
    trust: tuple[str, ...]
    authorization_servers: tuple[str, ...]


class FileKeystore:
    """:class:`~nvr.uplink.settings.Keystore` on files, plus the operator's management."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def for_config(cls, config: Config) -> FileKeystore:
        configured = config["uplink.keystore_dir"]
        return cls(Path(configured).resolve() if configured else config.data_dir / "keystore")

    def _path(self, kind: str, name: str) -> Path:
        return self.root / kind / name

    # ---- Keystore protocol (what the connection manager and the service read) -------------

    def certificate(self, certificate_id: str) -> ClientCertificate | None:
        if not valid_id(certificate_id):
            return None
        cert = self._path(CERTIFICATES, f"{certificate_id}.pem")
        key = self._path(CERTIFICATES, f"{certificate_id}.key")
        if not (cert.is_file() and key.is_file()):
            return None
        return ClientCertificate(certificate_id, cert, key)

    def trust_anchors(self, policy_id: str) -> Path | None:
        if not valid_id(policy_id):
            return None
        path = self._path(TRUST, f"{policy_id}.pem")
        return path if path.is_file() else None

    def authorization_server(self, token: str) -> AuthorizationServer | None:
        if not valid_id(token):
            return None
        path = self._path(AUTHORIZATION_SERVERS, f"{token}.toml")
        try:
            doc = tomllib.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise KeystoreError(f"{path}: unreadable ({exc})") from None
        try:
            ca = self._path(AUTHORIZATION_SERVERS, f"{token}.ca.pem")
            return AuthorizationServer(
                token=token,
                token_url=str(doc["token_url"]),
                client_id=str(doc["client_id"]),
                client_secret=str(doc["client_secret"]),
                scope=str(doc["scope"]) if doc.get("scope") else None,
                ca_file=ca if ca.is_file() else None,
            )
        except KeyError as exc:
            raise KeystoreError(f"{path}: {exc.args[0]} is missing") from None

    # ---- management (``nvr keystore``) -------------------------------------------------------

    def add_certificate(
        self, certificate_id: str, cert_pem: bytes, key_pem: bytes
    ) -> x509.Certificate:
        """Store a client certificate chain and its key (replacing one of the same ID)."""
        _check_id(certificate_id)
        leaf = check_client_certificate(cert_pem, key_pem)
        write_atomic(self._path(CERTIFICATES, f"{certificate_id}.key"), key_pem, 0o600)
        write_atomic(self._path(CERTIFICATES, f"{certificate_id}.pem"), cert_pem, 0o644)
        return leaf

    def add_trust(self, policy_id: str, ca_pem: bytes) -> list[x509.Certificate]:
        """Store the trust anchors of a certification path validation policy."""
        _check_id(policy_id)
        certs = _certificates(ca_pem, "ca")
        write_atomic(self._path(TRUST, f"{policy_id}.pem"), ca_pem, 0o644)
        return certs

    def add_authorization_server(
        self,
        token: str,
        token_url: str,
        client_id: str,
        client_secret: str,
        scope: str | None = None,
        ca_pem: bytes | None = None,
    ) -> AuthorizationServer:
        """Store an OAuth2 client-credentials server (the secret file is mode 0600)."""
        _check_id(token, "token")
        parts = urlsplit(token_url)
        if parts.scheme != "https" or not parts.hostname:
            raise KeystoreError(f"{token_url[:200]!r} is not an https:// URL", "url")
        if not client_id:
            raise KeystoreError("the client ID is empty", "client-id")
        if ca_pem is not None:
            _certificates(ca_pem, "ca")
        lines = [
            f"token_url = {_toml_string(token_url)}",
            f"client_id = {_toml_string(client_id)}",
            f"client_secret = {_toml_string(client_secret)}",
        ]
        if scope:
            lines.append(f"scope = {_toml_string(scope)}")
        ca_path = self._path(AUTHORIZATION_SERVERS, f"{token}.ca.pem")
        if ca_pem is not None:
            write_atomic(ca_path, ca_pem, 0o644)
        else:
            ca_path.unlink(missing_ok=True)
        doc = ("\n".join(lines) + "\n").encode()
        write_atomic(self._path(AUTHORIZATION_SERVERS, f"{token}.toml"), doc, 0o600)
        server = self.authorization_server(token)
        assert server is not None
        return server

    def list(self) -> KeystoreListing:
        def ids(kind: str, suffix: str) -> tuple[str, ...]:
            folder = self.root / kind
            if not folder.is_dir():
                return ()
            names = (p.name.removesuffix(suffix) for p in folder.glob(f"*{suffix}"))
            return tuple(sorted(n for n in names if valid_id(n)))

        certs = tuple(c for c in ids(CERTIFICATES, ".pem") if self.certificate(c) is not None)
        servers = ids(AUTHORIZATION_SERVERS, ".toml")
        return KeystoreListing(certs, ids(TRUST, ".pem"), servers)

    def remove(self, kind: str, name: str) -> bool:
        """Delete an entry of ``kind`` (one of :data:`KINDS`); False if there was none."""
        _check_id(name)
        suffixes = {
            CERTIFICATES: (".pem", ".key"),
            TRUST: (".pem",),
            AUTHORIZATION_SERVERS: (".toml", ".ca.pem"),
        }[kind]
        found = False
        for suffix in suffixes:
            path = self._path(kind, name + suffix)
            if path.exists():
                path.unlink()
                found = True
        return found


__all__ = [
    "FileKeystore",
    "KeystoreError",
    "KeystoreListing",
    "check_client_certificate",
    "valid_id",
]
