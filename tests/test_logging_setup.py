"""The daemon's log handler follows ``sys.stderr`` instead of holding the stream it saw first."""

from __future__ import annotations

import io
import logging

import pytest

from nvr.logging_setup import setup_logging


def test_log_lines_go_to_the_current_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    first, second = io.StringIO(), io.StringIO()
    try:
        monkeypatch.setattr("sys.stderr", first)
        setup_logging("info")
        logging.getLogger("nvr.test").warning("before the swap")
        first.close()  # e.g. a test's captured stderr, closed while a worker thread still logs
        monkeypatch.setattr("sys.stderr", second)
        logging.getLogger("nvr.test").warning("after the swap")
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    assert "WARNING nvr.test: after the swap" in second.getvalue()
