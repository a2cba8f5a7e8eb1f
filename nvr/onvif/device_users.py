"""GetUsers/CreateUsers/DeleteUsers/SetUser on the user directory, all or nothing.

Every request is checked completely before anything changes, with the faults of Core §8.4
(UsernameClash, PasswordTooLong, Password (too weak), AnonymousNotAllowed, TooManyUsers,
UsernameMissing, FixedUser…); the changes then run through one :class:`UserDirectory` whose
sessions join a single database transaction, so a failure half-way leaves nothing changed.
The last administrator is the one "fixed user": it can be neither deleted nor demoted, so
the device can never lock its owner out. Passwords are never returned.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final, ParamSpec

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from nvr.onvif import types_tt as tt
from nvr.onvif.device_capabilities import MAX_PASSWORD_LENGTH, MAX_USERNAME_LENGTH, MAX_USERS
from nvr.onvif.faults import OnvifFault
from nvr.users import MIN_PASSWORD, NAME_RE, UserDirectory, UserLevel

if TYPE_CHECKING:
    from nvr.onvif.context import OnvifContext

_lock = threading.Lock()
P = ParamSpec("P")
_ADMIN: Final = UserLevel.ADMINISTRATOR


def _prohibited(subcode: str, reason: str) -> OnvifFault:
    return OnvifFault.sender("OperationProhibited", subcode, reason)


def _invalid(subcode: str, reason: str) -> OnvifFault:
    return OnvifFault.sender("InvalidArgVal", subcode, reason)


def list_users(context: OnvifContext) -> list[tt.User]:
    return [tt.User(Username=u.name, UserLevel=u.level.value) for u in context.users.list()]


def _level(value: str | None) -> UserLevel:
    if value == "Anonymous":
        raise _prohibited("AnonymousNotAllowed", "users cannot be created as Anonymous")
    try:
        return UserLevel(value or "")
    except ValueError:
        raise OnvifFault.sender(
            "InvalidArgVal", f"user level {value!r} is not supported (no user roles)"
        ) from None


def _check_name(name: str) -> None:
    if not name:
        raise _prohibited("UsernameTooShort", "the user name is empty")
    if len(name) > MAX_USERNAME_LENGTH:
        raise _prohibited("UsernameTooLong", f"at most {MAX_USERNAME_LENGTH} characters")
    if not NAME_RE.match(name):
        raise OnvifFault.sender(
            "InvalidArgVal", "user names may contain letters, digits and . _ @ - only"
        )


def _check_password(password: str | None, too_weak: str) -> str:
    if password is None or len(password) < MIN_PASSWORD or any(ord(c) < 32 for c in password):
        raise _prohibited(too_weak, f"passwords need at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise _prohibited("PasswordTooLong", f"at most {MAX_PASSWORD_LENGTH} characters")
    return password


def _serialized(function: Callable[P, None]) -> Callable[P, None]:
    """One user change at a time in this process: checks and changes see the same state."""

    @functools.wraps(function)
    def serialized(*args: P.args, **kwargs: P.kwargs) -> None:
        with _lock:
            function(*args, **kwargs)

    return serialized


@contextmanager
def _transaction(context: OnvifContext) -> Iterator[UserDirectory]:
    """A directory whose every change lands in one transaction (rolled back on error)."""
    with context.engine.connect() as connection, connection.begin():
        yield UserDirectory(sessionmaker(connection, expire_on_commit=False), context.box)


@_serialized
def create_users(context: OnvifContext, users: Sequence[Any]) -> None:
    existing = {u.name for u in context.users.list()}
    planned: list[tuple[str, UserLevel, str]] = []
    for user in users:
        name = user.Username or ""
        _check_name(name)
        level = _level(user.UserLevel)
        password = _check_password(user.Password, "Password")
        if name in existing or any(name == p[0] for p in planned):
            raise _prohibited("UsernameClash", f"user {name!r} already exists")
        planned.append((name, level, password))
    if len(existing) + len(planned) > MAX_USERS:
        raise OnvifFault.receiver("Action", "TooManyUsers", f"at most {MAX_USERS} users")
    try:
        with _transaction(context) as directory:
            for name, level, password in planned:
                directory.add(name, level, password)
    except IntegrityError:  # created concurrently by another process
        raise _prohibited("UsernameClash", "a user of that name already exists") from None


def _keeps_an_admin(context: OnvifContext, after: dict[str, UserLevel]) -> None:
    had_admin = any(u.level is _ADMIN for u in context.users.list())
    if had_admin and _ADMIN not in after.values():
        raise _invalid("FixedUser", "the last administrator cannot be removed or demoted")


@_serialized
def delete_users(context: OnvifContext, names: Sequence[str | None]) -> None:
    levels = {u.name: u.level for u in context.users.list()}
    wanted = list(dict.fromkeys(n or "" for n in names))
    for name in wanted:
        if name not in levels:
            raise _invalid("UsernameMissing", f"no user {name[:64]!r}")
    _keeps_an_admin(context, {n: lv for n, lv in levels.items() if n not in wanted})
    with _transaction(context) as directory:
        for name in wanted:
            directory.delete(name)


@_serialized
def set_users(context: OnvifContext, users: Sequence[Any]) -> None:
    levels = {u.name: u.level for u in context.users.list()}
    planned: dict[str, tuple[UserLevel, str]] = {}
    for user in users:
        name = user.Username or ""
        if name not in levels:
            raise _invalid("UsernameMissing", f"no user {name[:64]!r}")
        level = _level(user.UserLevel)
        planned[name] = (level, _check_password(user.Password, "PasswordTooWeak"))
    _keeps_an_admin(context, {**levels, **{n: p[0] for n, p in planned.items()}})
    with _transaction(context) as directory:
        for name, (level, password) in planned.items():
            directory.set(name, level=level, password=password)
