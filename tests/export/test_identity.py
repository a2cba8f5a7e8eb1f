"""The signing identity: generated on first use (key mode 0600), reloaded unchanged after;
an operator's key and chain validated with clear errors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import Engine

from nvr.config import load
from nvr.export.device_identity import (
    IdentityError,
    SigningIdentity,
    device_identity,
    ensure_identity,
    load_identity,
)
from nvr.export.verify import verify_file
from tests.export.conftest import Exported, open_store


def test_first_use_generates_then_reloads(tmp_path: Path) -> None:
    config = load(env={}, flags={"data_dir": str(tmp_path)})
    first = device_identity(config, common_name="nvr-7")
    key = tmp_path / "export" / "signing.key"
    cert = tmp_path / "export" / "signing.crt"
    assert key.stat().st_mode & 0o777 == 0o600
    assert first.key.key_size == 3072 and first.signature_size == 384
    subject = first.certificate.subject
    assert subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "nvr-7"
    assert first.certificate.issuer == subject  # self-signed
    basic = first.certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.value.ca is False
    again = device_identity(config)
    assert again.fingerprint == first.fingerprint
    cert.unlink()
    with pytest.raises(IdentityError, match="is missing: restore it, or remove both"):
        device_identity(config)


def _ca(name: str) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _leaf(
    ca_key: rsa.RSAPrivateKey,
    ca: x509.Certificate,
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    *,
    days: int = 365,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "nvr operator")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(now - dt.timedelta(days=2))
        .not_valid_after(now + dt.timedelta(days=days))
        .sign(ca_key, hashes.SHA256())
    )


def _write(path: Path, *items: object) -> Path:
    out = b""
    for item in items:
        if isinstance(item, x509.Certificate):
            out += item.public_bytes(serialization.Encoding.PEM)
        else:
            out += item.private_bytes(  # type: ignore[attr-defined]
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
    path.write_bytes(out)
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def pki() -> tuple[rsa.RSAPrivateKey, x509.Certificate, rsa.RSAPrivateKey]:
    ca_key, ca = _ca("Evidence Root CA")
    return ca_key, ca, rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_operator_chain_signs_and_verifies_against_the_anchor(
    tmp_path: Path, pki: tuple, camera_export: Exported, identity: SigningIdentity
) -> None:
    """A countersignature by an operator key with a CA chain: with anchors given, every
    signer must chain to one (the export's device certificate is pinned as its own)."""
    from nvr.export.signing import add_signature

    ca_key, ca, key = pki
    key_file = _write(tmp_path / "op.key", key)
    cert_file = _write(tmp_path / "op.pem", _leaf(ca_key, ca, key), ca)
    config = load(
        env={
            "NVR_EXPORT_KEY_FILE": str(key_file),
            "NVR_EXPORT_CERTIFICATE_FILE": str(cert_file),
            "NVR_DATA_DIR": str(tmp_path / "d"),
        }
    )
    operator = device_identity(config)
    assert operator.chain == (ca,)
    assert not (tmp_path / "d" / "export").exists()  # nothing generated
    signed = tmp_path / "signed.mp4"
    add_signature(camera_export.path, operator, output=signed, durable=False)
    report = verify_file(signed)
    assert not report.ok and "give its issuer as a trust anchor" in report.reason
    report = verify_file(signed, trust=[ca])
    assert not report.ok and report.reason.startswith("signature 1: no trust anchor issued")
    report = verify_file(signed, trust=[ca, identity.certificate])
    assert report.ok, report.lines()
    assert report.signers[1].trust == "chains to trust anchor CN=Evidence Root CA"
    _, other_ca = _ca("Evidence Root CA")  # same name, different key
    assert not verify_file(signed, trust=[other_ca, identity.certificate]).ok


@pytest.mark.parametrize(
    "case", ["mismatch", "small key", "ec key", "expired", "wrong issuer", "garbage", "one only"]
)
def test_operator_identity_errors_are_clear(tmp_path: Path, pki: tuple, case: str) -> None:
    ca_key, ca, key = pki
    key_file, cert_file = tmp_path / "k.pem", tmp_path / "c.pem"
    _write(key_file, key)
    _write(cert_file, _leaf(ca_key, ca, key), ca)
    expect = {
        "mismatch": "is not for the key",
        "small key": "at least 2048",
        "ec key": "needs an RSA key",
        "expired": "not now",
        "wrong issuer": "did not issue certificate 1",
        "garbage": "not a PEM private key",
        "one only": "set both",
    }[case]
    if case == "mismatch":
        _write(key_file, rsa.generate_private_key(public_exponent=65537, key_size=2048))
    elif case == "small key":
        _write(key_file, rsa.generate_private_key(public_exponent=65537, key_size=1024))
    elif case == "ec key":
        _write(key_file, ec.generate_private_key(ec.SECP256R1()))
    elif case == "expired":
        _write(cert_file, _leaf(ca_key, ca, key, days=-1))
    elif case == "wrong issuer":
        _write(cert_file, _leaf(ca_key, ca, key), _ca("Other CA")[1])
    elif case == "garbage":
        key_file.write_bytes(b"not a key")
    env = {"NVR_EXPORT_KEY_FILE": str(key_file), "NVR_DATA_DIR": str(tmp_path)}
    if case != "one only":
        env["NVR_EXPORT_CERTIFICATE_FILE"] = str(cert_file)
    with pytest.raises(IdentityError, match=expect):
        device_identity(load(env=env))


def test_ensure_identity_never_overwrites(tmp_path: Path) -> None:
    key, cert = tmp_path / "a.key", tmp_path / "a.crt"
    made = ensure_identity(key, cert, common_name="x", key_bits=2048)
    before = key.read_bytes(), cert.read_bytes()
    assert ensure_identity(key, cert, common_name="y").fingerprint == made.fingerprint
    assert (key.read_bytes(), cert.read_bytes()) == before
    assert load_identity(key, cert).certificate == made.certificate


def test_daemon_makes_the_identity_on_first_start(tmp_path: Path, engine: Engine) -> None:
    from nvr.app import Daemon

    config = load(env={}, flags={"data_dir": str(tmp_path)})
    store = open_store(engine, tmp_path)
    try:
        manager = Daemon(config, engine)._export_manager(store)
        manager.shutdown()
    finally:
        store.close()
    assert (tmp_path / "export" / "signing.key").stat().st_mode & 0o777 == 0o600
    assert manager.identity.fingerprint == device_identity(config).fingerprint
    assert manager.unit.url.endswith(":8080/onvif/device_service")
