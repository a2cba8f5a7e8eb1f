"""Users: sealed passwords, levels, validation."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from nvr.db.models import User
from nvr.secretbox import SecretBox, SecretBoxError
from nvr.users import UserDirectory, UserError, UserLevel


def test_add_list_password_delete(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    box = SecretBox.from_file(tmp_path / "k")
    users = UserDirectory(sessions, box)
    users.add("admin", UserLevel.ADMINISTRATOR, "s3cret-pass")
    users.add("op", UserLevel.parse("operator"), "another-pass")
    assert [(u.name, u.level) for u in users.list()] == [
        ("admin", UserLevel.ADMINISTRATOR),
        ("op", UserLevel.OPERATOR),
    ]
    assert users.password("admin") == "s3cret-pass"
    with sessions() as s:
        stored = s.scalar(select(User.password_enc).where(User.name == "admin"))
    assert b"s3cret-pass" not in stored
    with pytest.raises(UserError, match="already exists"):
        users.add("admin", UserLevel.USER, "whatever1")
    users.delete("op")
    assert users.get("op") is None
    with pytest.raises(UserError, match="no user named 'op'"):
        users.delete("op")


def test_wrong_key_file_is_reported(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    UserDirectory(sessions, SecretBox.from_file(tmp_path / "k1")).add(
        "a", UserLevel.USER, "password1"
    )
    with pytest.raises(SecretBoxError, match="key file does not match"):
        UserDirectory(sessions, SecretBox.from_file(tmp_path / "k2")).password("a")


def test_key_file_mode_and_validation(tmp_path: Path) -> None:
    SecretBox.from_file(tmp_path / "k")
    assert (tmp_path / "k").stat().st_mode & 0o777 == 0o600
    with pytest.raises(UserError, match="invalid user level 'root'"):
        UserLevel.parse("root")
    box = SecretBox.from_file(tmp_path / "k")
    sealed = box.seal(b"x", b"user-password:a")
    with pytest.raises(SecretBoxError):
        box.open(sealed, b"user-password:b")
