"""``nvr export`` and ``nvr verify``: end to end over a data folder and the database under test."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nvr.cli import main, parse_time
from nvr.config import load
from nvr.db.engine import make_engine
from nvr.db.migrate import upgrade
from nvr.store import Store
from tests.export.conftest import T0
from tests.export.media import audio_clip, metadata_schedule, schedule, video_clip, write_track

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
