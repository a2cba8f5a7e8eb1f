"""FileKeystore and ``nvr keystore``: real certificates and keys, files on disk."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from nvr.cli import main
from nvr.config import load
from nvr.uplink.keystore import FileKeystore, KeystoreError
from tests.uplink.keystore_material import Issued, client, issue

BAD_IDS = ["", "../escape", "a/b", ".hidden", "x" * 65, "sp ace", "ümlaut"]


@pytest.fixture(scope="module")
def ca() -> Issued:
    return issue("Test CA", ca=True)


@pytest.fixture(scope="module")
def device(ca: Issued) -> Issued:
    return client("nvr-device-1", ca)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_certificate_round_trip(tmp_path: Path, ca: Issued, device: Issued) -> None:
    store = FileKeystore(tmp_path / "ks")
    assert store.certificate("dev") is None
    chain = device.cert_pem + ca.cert_pem
    leaf = store.add_certificate("dev", chain, device.key_pem)
    assert leaf == device.cert
    entry = store.certificate("dev")
    assert entry is not None and entry.certificate_id == "dev"
    assert entry.cert_file.read_bytes() == chain
    assert entry.key_file.read_bytes() == device.key_pem
    assert mode(entry.key_file) == 0o600
    assert entry.cert_file.parent == tmp_path / "ks" / "certificates"
    other = client("nvr-device-2", ca)
    store.add_certificate("dev", other.cert_pem, other.key_pem)  # replaced
    assert store.certificate("dev").cert_file.read_bytes() == other.cert_pem  # type: ignore[union-attr]


def test_certificate_refusals_name_the_field(tmp_path: Path, ca: Issued, device: Issued) -> None:
    store = FileKeystore(tmp_path)
    other = client("someone-else", ca)
    server_only = issue("server", ca, usages=[ExtendedKeyUsageOID.SERVER_AUTH])
    encrypted = device.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    cases = [
        (device.cert_pem, other.key_pem, "cert", "not the key's"),
        (b"garbage", device.key_pem, "cert", "not a PEM certificate"),
        (device.cert_pem, b"garbage", "key", "not a PEM private key"),
        (device.cert_pem, encrypted, "key", "encrypted"),
        (server_only.cert_pem, server_only.key_pem, "cert", "extended key usage"),
    ]
    for cert, key, field, text in cases:
        with pytest.raises(KeystoreError, match=text) as info:
            store.add_certificate("dev", cert, key)
        assert info.value.field == field
    assert store.certificate("dev") is None and not (tmp_path / "certificates").exists()
    no_usage = issue("plain", ca)  # no extended key usage at all: any use
    store.add_certificate("plain", no_usage.cert_pem, no_usage.key_pem)
    assert store.certificate("plain") is not None


def test_ids_cannot_leave_their_folder(tmp_path: Path, ca: Issued, device: Issued) -> None:
    store = FileKeystore(tmp_path / "ks")
    (tmp_path / "escape.pem").write_bytes(ca.cert_pem)
    (tmp_path / "escape.key").write_bytes(device.key_pem)
    for bad in BAD_IDS:
        with pytest.raises(KeystoreError, match="invalid ID"):
            store.add_certificate(bad, device.cert_pem, device.key_pem)
        with pytest.raises(KeystoreError, match="invalid ID"):
            store.add_trust(bad, ca.cert_pem)
        with pytest.raises(KeystoreError, match="invalid ID"):
            store.add_authorization_server(bad, "https://auth.example.com/token", "c", "s")
        assert store.certificate(bad) is None
        assert store.trust_anchors(bad) is None
        assert store.authorization_server(bad) is None
    assert not (tmp_path / "ks").exists()


def test_trust_anchors(tmp_path: Path, ca: Issued, device: Issued) -> None:
    store = FileKeystore(tmp_path)
    assert store.trust_anchors("cloud") is None
    assert len(store.add_trust("cloud", ca.cert_pem + device.cert_pem)) == 2
    path = store.trust_anchors("cloud")
    assert path is not None and path.read_bytes() == ca.cert_pem + device.cert_pem
    with pytest.raises(KeystoreError) as info:
        store.add_trust("other", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    assert info.value.field == "ca"


def test_authorization_server_round_trip(tmp_path: Path, ca: Issued) -> None:
    store = FileKeystore(tmp_path)
    secret = 'q"uo\\te\nnew\tline \x7f ümlaut 🎥'
    server = store.add_authorization_server(
        "oauth", "https://auth.example.com/token", "device-1", secret, "uplink", ca.cert_pem
    )
    assert server.client_secret == secret and server.scope == "uplink"
    assert server.token_url == "https://auth.example.com/token" and server.client_id == "device-1"
    assert server.ca_file is not None and server.ca_file.read_bytes() == ca.cert_pem
    assert mode(tmp_path / "authorization_servers" / "oauth.toml") == 0o600
    assert store.authorization_server("oauth") == server
    again = store.add_authorization_server("oauth", "https://a.example/t", "d", "s")
    assert again.ca_file is None and again.scope is None  # the old CA went with the old entry
    assert store.authorization_server("missing") is None
    for url, field in (("http://auth.example.com/token", "url"), ("https:///x", "url")):
        with pytest.raises(KeystoreError) as info:
            store.add_authorization_server("o2", url, "c", "s")
        assert info.value.field == field
    with pytest.raises(KeystoreError) as info:
        store.add_authorization_server("o2", "https://a.example/t", "", "s")
    assert info.value.field == "client-id"
    (tmp_path / "authorization_servers" / "broken.toml").write_text('token_url = "https://x"\n')
    with pytest.raises(KeystoreError, match="client_id is missing"):
        store.authorization_server("broken")


def test_list_and_remove(tmp_path: Path, ca: Issued, device: Issued) -> None:
    store = FileKeystore(tmp_path)
    store.add_certificate("b-dev", device.cert_pem, device.key_pem)
    store.add_certificate("a-dev", device.cert_pem, device.key_pem)
    store.add_trust("cloud", ca.cert_pem)
    store.add_authorization_server("oauth", "https://a.example/t", "c", "s", ca_pem=ca.cert_pem)
    listing = store.list()
    assert listing.certificates == ("a-dev", "b-dev")
    assert listing.trust == ("cloud",) and listing.authorization_servers == ("oauth",)
    assert store.remove("certificates", "a-dev") is True
    assert store.remove("certificates", "a-dev") is False
    assert store.remove("authorization_servers", "oauth") is True
    assert not list((tmp_path / "authorization_servers").iterdir())  # CA file gone too
    assert store.list().certificates == ("b-dev",)


def test_keystore_dir_setting(tmp_path: Path) -> None:
    default = load(env={}, flags={"data_dir": str(tmp_path / "data")})
    assert FileKeystore.for_config(default).root == (tmp_path / "data" / "keystore").resolve()
    env = {"NVR_UPLINK_KEYSTORE_DIR": str(tmp_path / "elsewhere")}
    configured = load(env=env, flags={"data_dir": str(tmp_path / "data")})
    assert FileKeystore.for_config(configured).root == tmp_path / "elsewhere"


def test_cli(
    tmp_path: Path, ca: Issued, device: Issued, capsys: pytest.CaptureFixture[str]
) -> None:
    data = ["--data-dir", str(tmp_path / "data")]
    files = {}
    for name, content in (("dev.crt", device.cert_pem), ("dev.key", device.key_pem)):
        files[name] = tmp_path / name
        files[name].write_bytes(content)
    (tmp_path / "ca.pem").write_bytes(ca.cert_pem)
    (tmp_path / "other.key").write_bytes(client("x", ca).key_pem)

    def run(*args: str) -> tuple[int, str, str]:
        status = main(["keystore", *args, *data])
        out, err = capsys.readouterr()
        return status, out, err

    status, out, _ = run(
        "add-certificate", "dev", "--cert", str(files["dev.crt"]), "--key", str(files["dev.key"])
    )
    assert status == 0 and "certificate dev added (CN=nvr-device-1)" in out
    assert run("add-trust", "cloud", "--ca", str(tmp_path / "ca.pem"))[0] == 0
    status, _, _ = run(
        "add-authorization-server", "oauth", "--url", "https://auth.example.com/token",
        "--client-id", "dev-1", "--client-secret", "s3cret", "--scope", "uplink",
    )  # fmt: skip
    assert status == 0
    status, out, _ = run("list")
    assert out.splitlines() == ["certificate\tdev", "trust\tcloud", "authorization-server\toauth"]
    store = FileKeystore((tmp_path / "data" / "keystore").resolve())
    assert store.authorization_server("oauth").client_secret == "s3cret"  # type: ignore[union-attr]

    status, _, err = run(
        "add-certificate",
        "x",
        "--cert",
        str(files["dev.crt"]),
        "--key",
        str(tmp_path / "other.key"),
    )
    assert status == 2 and err.startswith("nvr: --cert: ") and "not the key's" in err
    status, _, err = run("add-certificate", "x", "--cert", str(tmp_path / "nope"), "--key", "k")
    assert status == 2 and err.startswith(f"nvr: --cert {tmp_path / 'nope'}: ")
    status, _, err = run("add-trust", "../up", "--ca", str(tmp_path / "ca.pem"))
    assert status == 2 and err.startswith("nvr: ID: invalid ID")

    assert run("remove", "certificate", "dev")[0] == 0
    status, _, err = run("remove", "certificate", "dev")
    assert status == 2 and "no certificate 'dev'" in err
    assert run("list")[1].splitlines() == ["trust\tcloud", "authorization-server\toauth"]
