"""``nvr export``, ``nvr verify`` and ``nvr sign``: end to end over a data folder and the database
under test."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from nvr.cli import main, parse_time
from nvr.config import load
from nvr.db.engine import make_engine
from nvr.db.migrate import upgrade
from nvr.export.device_identity import SigningIdentity, write_identity
from nvr.export.verify import verify_file
from nvr.store import Store
from tests.export.conftest import T0
from tests.export.media import audio_clip, metadata_schedule, schedule, video_clip, write_track
from tests.export.test_identity import _ca, _leaf, _write

START = "2025-06-15T15:06:41.300Z"  # T0 + 1.3 s
END = "2025-06-15T15:06:44+00:00"  # T0 + 4 s


@pytest.fixture
def data(tmp_path: Path, database_url: str) -> list[str]:
    """A data folder whose store holds recording REC; returns the common CLI options."""
    common = ["--data-dir", str(tmp_path / "d"), "--database-url", database_url]
    config = load(env={}, flags={"data_dir": str(tmp_path / "d"), "database_url": database_url})
    engine = make_engine(database_url)
    upgrade(engine)
    store = Store(engine, config.store_settings())
    store.open()
    store.create_recording("REC", source_name="Lobby")
    write_track(store, "REC", "VIDEO001", schedule(video_clip(), T0, count=125))
    write_track(store, "REC", "AUDIO001", schedule(audio_clip("AAC"), T0, seconds=5))
    write_track(store, "REC", "META001", metadata_schedule(T0, 5))
    store.close()
    engine.dispose()
    return common


def test_parse_time_is_exact() -> None:
    assert parse_time(START) == T0 + 1_300_000
    assert parse_time("2025-06-15T15:06:40.000001") == T0 + 1  # no offset: UTC


def test_export_then_verify(
    data: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "evidence.mp4"
    args = ["export", *data, "--recording", "REC", "--from", START, "--to", END]
    status = main([*args, "--tracks", "VIDEO001,AUDIO001", "-o", str(out), "--operator", "PC 49"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert captured.err.splitlines()[-1] == "export: 100%"  # plain lines: stderr is no TTY
    assert f"wrote {out}" in captured.out
    assert "range: 2025-06-15T15:06:41.200Z to 2025-06-15T15:06:44.032Z" in captured.out
    assert "track 1: VIDEO001 avc3, 70 samples" in captured.out
    key = tmp_path / "d" / "export" / "signing.key"
    assert key.stat().st_mode & 0o777 == 0o600  # generated on first use

    assert main(["verify", *data, str(out)]) == 0
    text = capsys.readouterr().out
    assert "RESULT: OK" in text
    assert "signature 1 was made with this device's certificate" in text
    assert "operator: PC 49" in text and "from 'Lobby'" in text

    assert main([*args, "-o", str(out)]) == 1
    assert "already exists" in capsys.readouterr().err
    assert main(["export", *data, "--recording", "REC", "--from", "yesterday", "-o", "x"]) == 2
    assert "bad time 'yesterday'" in capsys.readouterr().err

    data_bytes = bytearray(out.read_bytes())
    data_bytes[len(data_bytes) // 2] ^= 0x20
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(bytes(data_bytes))
    assert main(["verify", str(bad)]) == 1
    captured = capsys.readouterr()
    assert "RESULT: FAILED" in captured.out
    assert "verification failed: signature 1: the signature does not match" in captured.err

    # the installed command, as an operator would run it
    proc = subprocess.run(
        [sys.executable, "-m", "nvr.cli", "verify", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0 and "RESULT: OK" in proc.stdout
    proc = subprocess.run(
        [sys.executable, "-m", "nvr.cli", "verify", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1 and "verification failed" in proc.stderr


def test_progress_printer_bar_and_lines() -> None:
    import io

    from nvr.export.progress import ProgressPrinter

    plain = io.StringIO()
    printer = ProgressPrinter(plain, tty=False)
    for i in range(0, 1001):
        printer(i / 1000)
    printer.done()
    assert plain.getvalue().splitlines() == [f"export: {p}%" for p in range(0, 101, 10)]
    bar = io.StringIO()
    printer = ProgressPrinter(bar, tty=True)
    printer(0.5)
    printer(1.0)
    printer.done()
    assert bar.getvalue().startswith("\rexport [###############...............]  50.0%")
    assert (
        "[##############################] 100.0%" in bar.getvalue() and bar.getvalue()[-1] == "\n"
    )


def test_sign_adds_a_signature_that_verify_reports(
    data: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    other_identity: SigningIdentity,
) -> None:
    out = tmp_path / "evidence.mp4"
    args = ["export", *data, "--recording", "REC", "--from", START, "--to", END, "-o", str(out)]
    assert main(args) == 0
    key, cert = tmp_path / "court.key", tmp_path / "court.crt"
    write_identity(other_identity, key, cert)
    exported = out.read_bytes()
    stamped = tmp_path / "stamped.mp4"
    sign = ["sign", *data, str(out), "--key", str(key), "--cert", str(cert)]
    capsys.readouterr()
    assert main([*sign, "--note", "received 2025-06-16 by the registry", "-o", str(stamped)]) == 0
    text = capsys.readouterr().out
    assert f"added signature 2 to {stamped}" in text
    assert other_identity.fingerprint in text
    assert out.read_bytes() == exported  # -o: the original is left as it was

    assert main(["verify", *data, str(stamped)]) == 0
    text = capsys.readouterr().out
    assert "signature 1 was made with this device's certificate" in text
    assert "signature 2: RSASSA-PSS" in text and "note: received 2025-06-16 by the registry" in text
    assert f"certificate SHA-256: {other_identity.fingerprint}" in text
    assert text.count("signature covers") == 2 and "RESULT: OK" in text

    # the device signs again in place (its own key by default): three signers
    assert main(["sign", *data, str(stamped)]) == 0
    assert "added signature 3" in capsys.readouterr().out
    assert verify_file(stamped).ok and len(verify_file(stamped).signers) == 3

    tampered = bytearray(stamped.read_bytes())
    tampered[len(tampered) * 2 // 3] ^= 0x01
    stamped.write_bytes(bytes(tampered))
    assert main(["verify", str(stamped)]) == 1
    assert "RESULT: FAILED" in capsys.readouterr().out
    assert main(sign) == 0  # the untouched original can still be signed
    assert main(["sign", *data, str(stamped), "--key", str(key), "--cert", str(cert)]) == 1
    assert "does not verify, not signed" in capsys.readouterr().err
    assert stamped.read_bytes() == bytes(tampered)  # a damaged file is never sealed again
    assert main(["sign", *data, str(out), "--key", str(key)]) == 2


def test_sign_after_a_ca_issued_signer_needs_its_trust_anchor(
    data: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before signing, the file is verified as ``nvr verify`` would, with the same anchors."""
    out = tmp_path / "evidence.mp4"
    args = ["export", *data, "--recording", "REC", "--from", START, "--to", END, "-o", str(out)]
    assert main(args) == 0
    ca_key, ca = _ca("Court Root CA")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    court_key = _write(tmp_path / "court.key", key)
    court_cert = _write(tmp_path / "court.crt", _leaf(ca_key, ca, key))
    assert main(["sign", *data, str(out), "--key", str(court_key), "--cert", str(court_cert)]) == 0
    capsys.readouterr()
    assert main(["sign", *data, str(out)]) == 1  # signature 2 cannot be checked without the CA
    assert "give its issuer as a trust anchor" in capsys.readouterr().err
    device = tmp_path / "d" / "export" / "signing.crt"
    anchors = ["--trust", str(_write(tmp_path / "ca.pem", ca)), "--trust", str(device)]
    assert main(["sign", *data, str(out), *anchors]) == 0
    assert "added signature 3" in capsys.readouterr().out
    assert main(["verify", *data, str(out), *anchors]) == 0
    text = capsys.readouterr().out
    assert "chains to trust anchor CN=Court Root CA" in text and "RESULT: OK" in text
    assert main(["sign", *data, str(out), "--trust", str(tmp_path / "missing.pem")]) == 2
    assert "cannot load trust anchors" in capsys.readouterr().err
