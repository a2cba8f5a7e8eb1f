"""Encryption of secrets the daemon must be able to read back (user passwords: HTTP Digest and
WS-Security PasswordDigest both need the plain password on the server side).

AES-256-GCM with a random 12-byte nonce; the key lives in a file outside the database (mode
0600), so a stolen database dump alone reveals no password. The associated data binds each
ciphertext to its purpose (e.g. the user name), so rows cannot be swapped between users.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
NONCE_BYTES = 12
VERSION = b"\x01"


class SecretBoxError(RuntimeError):
    """The key file is unusable, or a ciphertext does not decrypt with it."""


class SecretBox:
    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise SecretBoxError(f"key must be {KEY_BYTES} bytes, got {len(key)}")
        self._aead = AESGCM(key)

    @classmethod
    def from_file(cls, path: Path, *, create: bool = True) -> SecretBox:
        """Load the key, creating it (0600, atomically) on first start."""
        try:
            key = path.read_bytes()
        except FileNotFoundError:
            if not create:
                raise SecretBoxError(f"key file {path} does not exist") from None
            key = _create_key_file(path)
        except OSError as exc:
            raise SecretBoxError(f"cannot read key file {path}: {exc}") from None
        if len(key) != KEY_BYTES:
            raise SecretBoxError(f"key file {path} holds {len(key)} bytes, not {KEY_BYTES}")
        return cls(key)

    def seal(self, plaintext: bytes, purpose: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return VERSION + nonce + self._aead.encrypt(nonce, plaintext, purpose)

    def open(self, sealed: bytes, purpose: bytes) -> bytes:
        if len(sealed) < 1 + NONCE_BYTES + 16 or sealed[:1] != VERSION:
            raise SecretBoxError("sealed value is malformed")
        nonce = sealed[1 : 1 + NONCE_BYTES]
        try:
            return self._aead.decrypt(nonce, sealed[1 + NONCE_BYTES :], purpose)
        except InvalidTag:
            raise SecretBoxError(
                "cannot decrypt: the key file does not match the one the value was sealed with"
            ) from None


def _create_key_file(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    key = os.urandom(KEY_BYTES)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, key)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # fails if another process created the key meanwhile
    except FileExistsError:
        os.unlink(tmp)
        return path.read_bytes()
    os.unlink(tmp)
    return key
