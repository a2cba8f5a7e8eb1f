"""The key and certificate that sign exports.

By default the device makes its own on first start: an RSA-3072 key (file mode 0600) and a
self-signed X.509 certificate naming the device, both in the data folder. A verifier then
trusts an export by the certificate's fingerprint. An operator who runs a PKI configures
``export.key_file`` and ``export.certificate_file`` (PEM: the signing certificate first, then
its intermediates); those are validated on load and never generated or overwritten.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from nvr.durable import write_atomic
from nvr.export.algorithms import DEFAULT, SignatureAlgorithm

if TYPE_CHECKING:
    from nvr.config import Config

log = logging.getLogger(__name__)

DEFAULT_KEY_BITS = 3072
MIN_KEY_BITS = 2048
CERT_YEARS = 30
"""Exports must stay verifiable for as long as evidence is kept."""


class IdentityError(Exception):
    """The signing key or certificate is missing, unreadable or does not fit together."""


@dataclass(frozen=True)
class SigningIdentity:
    """A private key with its certificate (and the certificate's issuers, if any)."""

    key: rsa.RSAPrivateKey
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()
    algorithm: SignatureAlgorithm = DEFAULT

    @property
    def certificate_der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def signature_size(self) -> int:
        return self.algorithm.signature_size(self.key)

    @property
    def fingerprint(self) -> str:
        return self.certificate.fingerprint(hashes.SHA256()).hex()

    def sign(self, digest: bytes) -> bytes:
        signature = self.algorithm.sign(self.key, digest)
        if len(signature) != self.signature_size:
            raise IdentityError(
                f"signature of {len(signature)} bytes, {self.signature_size} reserved"
            )
        return signature


def identity_paths(config: Config) -> tuple[Path, Path, bool]:
    """Key path, certificate path, and whether they were configured (else: generated defaults)."""
    key, cert = config["export.key_file"], config["export.certificate_file"]
    if bool(key) != bool(cert):
        raise IdentityError("set both export.key_file and export.certificate_file, or neither")
    if key:
        return Path(key).resolve(), Path(cert).resolve(), True
    folder = config.data_dir / "export"
    return folder / "signing.key", folder / "signing.crt", False


def device_identity(config: Config, *, common_name: str | None = None) -> SigningIdentity:
    """The identity that signs this device's exports; generated on first use unless the
    operator configured one (then it must exist and be valid)."""
    key_path, cert_path, configured = identity_paths(config)
    if configured:
        return load_identity(key_path, cert_path)
    name = common_name or config.values.get("device.name") or os.uname().nodename
    return ensure_identity(key_path, cert_path, common_name=name)


def ensure_identity(
    key_path: Path, cert_path: Path, *, common_name: str, key_bits: int = DEFAULT_KEY_BITS
) -> SigningIdentity:
    """Load the key and certificate, or create both if neither exists yet."""
    have_key, have_cert = key_path.exists(), cert_path.exists()
    if have_key and have_cert:
        return load_identity(key_path, cert_path)
    if have_key or have_cert:
        present, missing = (key_path, cert_path) if have_key else (cert_path, key_path)
        raise IdentityError(
            f"{present} exists but {missing} is missing: restore it, or remove both to make "
            "a new signing identity (earlier exports keep verifying with the old certificate)"
        )
    identity = generate_identity(common_name, key_bits=key_bits)
    write_identity(identity, key_path, cert_path)
    log.info(
        "created the export signing key %s and certificate %s (SHA-256 fingerprint %s)",
        key_path,
        cert_path,
        identity.fingerprint,
    )
    return identity


def generate_identity(
    common_name: str, *, organization: str = "nvr", key_bits: int = DEFAULT_KEY_BITS
) -> SigningIdentity:
    """A fresh RSA key and a self-signed certificate for signing (not for TLS, not a CA)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_bits)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64] or "nvr"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization[:64] or "nvr"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "evidence export signing"),
        ]
    )
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(int.from_bytes(secrets.token_bytes(16), "big") >> 1)
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now.replace(year=now.year + CERT_YEARS, day=min(now.day, 28)))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return SigningIdentity(key, cert)


def write_identity(identity: SigningIdentity, key_path: Path, cert_path: Path) -> None:
    """Key as unencrypted PKCS#8 PEM with mode 0600, certificate chain as PEM."""
    key_pem = identity.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_atomic(key_path, key_pem, 0o600)
    certs = (identity.certificate, *identity.chain)
    write_atomic(
        cert_path, b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs), 0o644
    )


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise IdentityError(f"cannot read the export {what} {path}: {exc.strerror}") from None


def load_identity(key_path: Path, cert_path: Path) -> SigningIdentity:
    """Load and validate: RSA >= 2048 bits, the certificate belongs to the key, each further
    certificate issued the one before, the signing certificate is currently valid and may sign."""
    raw_key = _read(key_path, "signing key")
    try:
        key = serialization.load_pem_private_key(raw_key, password=None)
    except TypeError:
        raise IdentityError(f"{key_path}: encrypted keys are not supported") from None
    except ValueError as exc:
        raise IdentityError(f"{key_path}: not a PEM private key ({exc})") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise IdentityError(
            f"{key_path}: export signing needs an RSA key, not {type(key).__name__}"
        )
    if key.key_size < MIN_KEY_BITS:
        raise IdentityError(f"{key_path}: RSA key of {key.key_size} bits; at least {MIN_KEY_BITS}")
    if os.stat(key_path).st_mode & 0o077:
        log.warning("export signing key %s is readable by group or others", key_path)
    certs = _load_certificates(cert_path)
    leaf = certs[0]
    if leaf.public_key().public_numbers() != key.public_key().public_numbers():
        raise IdentityError(f"{cert_path}: the first certificate is not for the key in {key_path}")
    for n, (child, issuer) in enumerate(pairwise(certs), start=1):
        try:
            child.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise IdentityError(
                f"{cert_path}: certificate {n + 1} did not issue certificate {n} ({exc})"
            ) from None
    now = dt.datetime.now(dt.UTC)
    if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
        raise IdentityError(
            f"{cert_path}: the signing certificate is valid from {leaf.not_valid_before_utc} "
            f"to {leaf.not_valid_after_utc}, not now"
        )
    try:
        usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
        if not (usage.digital_signature or usage.content_commitment):
            raise IdentityError(f"{cert_path}: the certificate's key usage does not allow signing")
    except x509.ExtensionNotFound:
        pass
    return SigningIdentity(key, leaf, tuple(certs[1:]))


def _load_certificates(path: Path) -> list[x509.Certificate]:
    raw = _read(path, "certificate")
    try:
        if b"-----BEGIN" in raw:
            certs = x509.load_pem_x509_certificates(raw)
        else:
            certs = [x509.load_der_x509_certificate(raw)]
    except ValueError as exc:
        raise IdentityError(f"{path}: not a PEM or DER certificate ({exc})") from None
    if not certs:
        raise IdentityError(f"{path}: no certificate")
    return certs
