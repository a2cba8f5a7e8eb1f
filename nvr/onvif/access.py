"""ONVIF user levels, access classes and the default access policy (Core §5.9.4).

Every SOAP operation belongs to one access class; a user level may call the operations of the
classes the default policy grants it. Services declare their operations' classes in a table
(``{qualified operation name: AccessClass}``) that the request gate consults before dispatch.
"""

from __future__ import annotations

from enum import Enum, StrEnum
from typing import TYPE_CHECKING, Final

from nvr.users import UserLevel

if TYPE_CHECKING:
    from nvr.onvif.request import Principal


class Level(StrEnum):
    """tt:UserLevel of a request's sender; ``Anonymous`` when it sent no credentials."""

    ADMINISTRATOR = "Administrator"
    OPERATOR = "Operator"
    USER = "User"
    ANONYMOUS = "Anonymous"

    @classmethod
    def of(cls, level: UserLevel) -> Level:
        return cls(level.value)


class AccessClass(Enum):
    PRE_AUTH = "PRE_AUTH"
    READ_SYSTEM = "READ_SYSTEM"
    READ_SYSTEM_SENSITIVE = "READ_SYSTEM_SENSITIVE"
    READ_SYSTEM_SECRET = "READ_SYSTEM_SECRET"
    WRITE_SYSTEM = "WRITE_SYSTEM"
    UNRECOVERABLE = "UNRECOVERABLE"
    READ_MEDIA = "READ_MEDIA"
    ACTUATE = "ACTUATE"


_A, _O, _U, _N = Level.ADMINISTRATOR, Level.OPERATOR, Level.USER, Level.ANONYMOUS

DEFAULT_POLICY: Final[dict[AccessClass, frozenset[Level]]] = {
    AccessClass.PRE_AUTH: frozenset({_A, _O, _U, _N}),
    AccessClass.READ_SYSTEM: frozenset({_A, _O, _U}),
    AccessClass.READ_SYSTEM_SENSITIVE: frozenset({_A, _O}),
    AccessClass.READ_SYSTEM_SECRET: frozenset({_A}),
    AccessClass.WRITE_SYSTEM: frozenset({_A}),
    AccessClass.UNRECOVERABLE: frozenset({_A}),
    AccessClass.READ_MEDIA: frozenset({_A, _O, _U}),
    AccessClass.ACTUATE: frozenset({_A, _O}),
}

# Least privileged first: when a request carries two identities, the weaker one counts.
RANK: Final = {_N: 0, _U: 1, _O: 2, _A: 3}


def allowed(level: Level, access: AccessClass) -> bool:
    return level in DEFAULT_POLICY[access]


def may_read_media(principal: Principal) -> bool:
    """Whether a principal a carrier vouches for may have RTSP (READ_MEDIA, as a Digest user
    needs): the uplink's RTSP tunnel and RTSP over WebSocket both ask."""
    return allowed(principal.level, AccessClass.READ_MEDIA)


def weakest(*levels: Level) -> Level:
    return min(levels, key=RANK.__getitem__)
