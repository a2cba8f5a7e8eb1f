"""The ``nvr`` command line, run as a real subprocess."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.daemon import Daemon, get_json, run_nvr


def test_user_add_list_delete(tmp_path: Path, database_url: str) -> None:
    common = ["--data-dir", str(tmp_path / "d"), "--database-url", database_url]
    added = run_nvr(
        "user",
        "add",
        "alice",
        "--level",
        "operator",
        "--password-stdin",
        *common,
        stdin="correct horse\n",
    )
    assert added.returncode == 0, added.stderr
    assert "alice added (Operator)" in added.stdout
    listed = run_nvr("user", "list", *common)
    assert listed.stdout.splitlines() == ["alice\tOperator"]
    dup = run_nvr(
        "user", "add", "alice", "--level", "user", "--password-stdin", *common, stdin="whatever1\n"
    )
    assert dup.returncode == 2 and "already exists" in dup.stderr
    bad = run_nvr(
        "user", "add", "bob", "--level", "root", "--password-stdin", *common, stdin="whatever1\n"
    )
    assert bad.returncode == 2
    assert "invalid user level 'root': must be one of administrator, operator, user" in bad.stderr
    assert run_nvr("user", "delete", "alice", *common).returncode == 0
    assert run_nvr("user", "list", *common).stdout == ""
    assert (tmp_path / "d" / "secret.key").stat().st_mode & 0o777 == 0o600


def test_migrate_reports_revisions(tmp_path: Path, database_url: str) -> None:
    first = run_nvr("migrate", "--data-dir", str(tmp_path), "--database-url", database_url)
    assert first.returncode == 0, first.stderr
    assert "migrated from empty" in first.stdout
    again = run_nvr("migrate", "--data-dir", str(tmp_path), "--database-url", database_url)
    assert "up to date" in again.stdout


def test_bad_flag_value_names_field(tmp_path: Path) -> None:
    res = run_nvr("serve", "--data-dir", str(tmp_path), "--http-port", "http")
    assert res.returncode == 2
    assert "invalid http.port = 'http' from flag --http-port" in res.stderr
    assert "must be an integer from 1 to 65535" in res.stderr


def test_unreachable_database_fails_clearly(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql://postgres:pw@127.0.0.1:{port}/nvr"
    res = run_nvr("serve", "--data-dir", str(tmp_path), "--database-url", url)
    assert res.returncode == 2
    assert (
        f"cannot reach the database postgresql+psycopg://postgres:***@127.0.0.1:{port}/nvr"
        in res.stderr
    )
    assert "pw@" not in res.stderr


def test_serve_healthz_and_systemd_notify(tmp_path: Path, database_url: str) -> None:
    sock_path = tmp_path / "notify.sock"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(sock_path))
    notify.settimeout(60)
    daemon = Daemon(tmp_path / "data", database_url, env={"NOTIFY_SOCKET": str(sock_path)})
    try:
        assert notify.recv(4096).decode().splitlines()[0] == "READY=1"
        status, body = get_json(daemon.base_url + "/healthz")
        assert status == 200
        assert body["status"] == "ready"
        assert body["database"]["reachable"] is True
        assert body["storage"][0]["path"] == str((tmp_path / "data" / "media").resolve())
    finally:
        code = daemon.stop()
    assert code == 0, daemon.log()
    assert "STOPPING=1" in notify.recv(4096).decode()
    notify.close()
    assert (tmp_path / "data" / "media" / ".nvr-storage.json").exists()
    assert "ready" in daemon.log()
