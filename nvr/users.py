"""ONVIF users: names, levels and passwords (sealed with the secret box, see secretbox.py)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from nvr.db.models import User
from nvr.secretbox import SecretBox


class UserLevel(StrEnum):
    """tt:UserLevel values a user can be given."""

    ADMINISTRATOR = "Administrator"
    OPERATOR = "Operator"
    USER = "User"

    @classmethod
    def parse(cls, text: str) -> UserLevel:
        for level in cls:
            if level.value.lower() == text.strip().lower():
                return level
        allowed = ", ".join(level.value.lower() for level in cls)
        raise UserError(f"invalid user level {text!r}: must be one of {allowed}")


class UserError(ValueError):
    """A user operation was refused: bad name, bad password, duplicate, unknown user."""


NAME_RE = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
MIN_PASSWORD = 6
MAX_PASSWORD = 128


@dataclass(frozen=True, slots=True)
class UserInfo:
    name: str
    level: UserLevel


def _purpose(name: str) -> bytes:
    return b"user-password:" + name.encode()


def validate_name(name: str) -> None:
    if not NAME_RE.match(name):
        raise UserError(
            f"invalid user name {name!r}: 1-64 characters of letters, digits and . _ @ -"
        )


def validate_password(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise UserError(
            f"invalid password: must be {MIN_PASSWORD} to {MAX_PASSWORD} characters long"
        )
    if any(ord(c) < 32 for c in password):
        raise UserError("invalid password: control characters are not allowed")


class UserDirectory:
    """Users in the database; every method opens its own short transaction."""

    def __init__(self, sessions: sessionmaker[Session], box: SecretBox) -> None:
        self._sessions = sessions
        self._box = box

    def add(self, name: str, level: UserLevel, password: str) -> None:
        validate_name(name)
        validate_password(password)
        with self._sessions.begin() as s:
            if s.scalar(select(User.id).where(User.name == name)) is not None:
                raise UserError(f"user {name!r} already exists")
            s.add(
                User(
                    name=name,
                    level=level.value,
                    password_enc=self._box.seal(password.encode(), _purpose(name)),
                    created_us=time.time_ns() // 1000,
                )
            )

    def set(
        self, name: str, *, level: UserLevel | None = None, password: str | None = None
    ) -> None:
        with self._sessions.begin() as s:
            user = s.scalar(select(User).where(User.name == name))
            if user is None:
                raise UserError(f"no user named {name!r}")
            if level is not None:
                user.level = level.value
            if password is not None:
                validate_password(password)
                user.password_enc = self._box.seal(password.encode(), _purpose(name))

    def delete(self, name: str) -> None:
        with self._sessions.begin() as s:
            user = s.scalar(select(User).where(User.name == name))
            if user is None:
                raise UserError(f"no user named {name!r}")
            s.delete(user)

    def list(self) -> list[UserInfo]:
        with self._sessions() as s:
            rows = s.execute(select(User.name, User.level).order_by(User.name)).all()
        return [UserInfo(name, UserLevel(level)) for name, level in rows]

    def get(self, name: str) -> UserInfo | None:
        with self._sessions() as s:
            level = s.scalar(select(User.level).where(User.name == name))
        return None if level is None else UserInfo(name, UserLevel(level))

    def password(self, name: str) -> str | None:
        """The plain password, for computing digests; None for an unknown user."""
        with self._sessions() as s:
            sealed = s.scalar(select(User.password_enc).where(User.name == name))
        if sealed is None:
            return None
        return self._box.open(sealed, _purpose(name)).decode()

    def count(self) -> int:
        return len(self.list())
