"""Camera passwords at rest: the receivers table keeps the media URI without its password and
the password, as written in the URI, sealed with the daemon's secret box (nvr.secretbox), so
a database dump alone reveals no camera password. In memory the URI is whole again: the
RTSP client needs the password, and GetReceivers shows the URI as the client configured it.

Rows written before passwords were sealed (migration 0005 only adds the column, as it cannot
reach the key file) still hold the password in ``media_uri``; :meth:`ReceiverSecrets.rewrap`
tells the receiver manager which rows to seal when it loads them.
"""

from __future__ import annotations

import logging

from nvr.protocol.rtsp_auth import AuthError, insert_uri_password, split_uri_password
from nvr.secretbox import SecretBox, SecretBoxError

__all__ = ["ReceiverSecrets"]

log = logging.getLogger("nvr.ingest.receivers")


def _purpose(token: str) -> bytes:
    """Binds a sealed password to its receiver: rows cannot be swapped."""
    return b"receiver-password:" + token.encode()


class ReceiverSecrets:
    """Seals and opens the password of a receiver's media URI.

    Without a box (tools and tests that have no key file) URIs are stored as given.
    """

    def __init__(self, box: SecretBox | None) -> None:
        self._box = box

    def seal(self, token: str, uri: str) -> tuple[str, bytes | None]:
        """(URI to store, sealed password or None) for a receiver's full URI."""
        if self._box is None:
            return uri, None
        kept, password = split_uri_password(uri)
        if password is None:
            return uri, None
        return kept, self._box.seal(password.encode(), _purpose(token))

    def open(self, token: str, stored_uri: str, sealed: bytes | None) -> str:
        """The full URI of a stored row. A password that cannot be opened (no box, another
        key file) is left out and logged: the camera then refuses the credentials, which the
        receiver's status shows, and reconfiguring the receiver stores a new one."""
        if sealed is None:
            return stored_uri
        try:
            if self._box is None:
                raise SecretBoxError("no key file to open it with")
            password = self._box.open(sealed, _purpose(token)).decode()
            return insert_uri_password(stored_uri, password)
        except (SecretBoxError, UnicodeDecodeError, AuthError) as exc:
            log.error("receiver %s: cannot open its camera password: %s", token, exc)
            return stored_uri

    def rewrap(self, stored_uri: str, sealed: bytes | None) -> bool:
        """Whether a stored row still holds its password in plaintext and can be sealed."""
        return (
            self._box is not None
            and sealed is None
            and split_uri_password(stored_uri)[1] is not None
        )
