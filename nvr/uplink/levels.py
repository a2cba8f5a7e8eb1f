"""What a request through an uplink may do: the configured ``UserLevel`` as a principal.

``tup:Configuration/UserLevel`` is a ``tt:StringList``: a user level, or role names where the
device supports roles (it does not: MaxUserRoles is 0). The first item that names a level is
taken; a list naming none grants nothing, so tunnelled requests are treated as anonymous and
only PRE_AUTH operations pass (SetUplink refuses such lists in the first place).
"""

from __future__ import annotations

from collections.abc import Iterable

from nvr.onvif.access import Level
from nvr.onvif.request import Principal

__all__ = ["granted_principal"]

_LEVELS = {level.value.lower(): level for level in Level if level is not Level.ANONYMOUS}


def granted_principal(remote_address: str, user_level: Iterable[str]) -> Principal:
    """The principal every request through the uplink to ``remote_address`` acts as."""
    for item in user_level:
        level = _LEVELS.get(item.strip().lower())
        if level is not None:
            return Principal(f"uplink:{remote_address}", level)
    return Principal(f"uplink:{remote_address}", Level.ANONYMOUS)
