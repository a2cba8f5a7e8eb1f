"""spyne models of the ``tds:`` types of devicemgmt.wsdl (children in the tds namespace)."""

from __future__ import annotations

from spyne import AnyUri, AnyXml, Boolean, ComplexModel, Integer32, Unicode, XmlAttribute

from nvr.onvif.namespaces import TDS
from nvr.onvif.types_tt import OnvifVersion


class Service(ComplexModel):
    """tds:Service; ``Capabilities`` wraps the service's own ``<xxx:Capabilities>`` element."""

    __namespace__ = TDS
    Namespace = AnyUri(min_occurs=1, nillable=False)
    XAddr = AnyUri(min_occurs=1, nillable=False)
    Capabilities = AnyXml
    Version = OnvifVersion.customize(min_occurs=1, nillable=False)


class NetworkCapabilities(ComplexModel):
    __namespace__ = TDS
    IPFilter = XmlAttribute(Boolean)
    ZeroConfiguration = XmlAttribute(Boolean)
    IPVersion6 = XmlAttribute(Boolean)
    DynDNS = XmlAttribute(Boolean)
    Dot11Configuration = XmlAttribute(Boolean)
    Dot1XConfigurations = XmlAttribute(Integer32)
    HostnameFromDHCP = XmlAttribute(Boolean)
    NTP = XmlAttribute(Integer32)
    DHCPv6 = XmlAttribute(Boolean)


class SecurityCapabilities(ComplexModel):
    __namespace__ = TDS
    TLS1_0 = XmlAttribute(Boolean(sub_name="TLS1.0"))
    TLS1_1 = XmlAttribute(Boolean(sub_name="TLS1.1"))
    TLS1_2 = XmlAttribute(Boolean(sub_name="TLS1.2"))
    OnboardKeyGeneration = XmlAttribute(Boolean)
    AccessPolicyConfig = XmlAttribute(Boolean)
    DefaultAccessPolicy = XmlAttribute(Boolean)
    Dot1X = XmlAttribute(Boolean)
    RemoteUserHandling = XmlAttribute(Boolean)
    X_509Token = XmlAttribute(Boolean(sub_name="X.509Token"))
    SAMLToken = XmlAttribute(Boolean)
    KerberosToken = XmlAttribute(Boolean)
    UsernameToken = XmlAttribute(Boolean)
    HttpDigest = XmlAttribute(Boolean)
    RELToken = XmlAttribute(Boolean)
    JsonWebToken = XmlAttribute(Boolean)
    MaxUsers = XmlAttribute(Integer32)
    MaxUserNameLength = XmlAttribute(Integer32)
    MaxPasswordLength = XmlAttribute(Integer32)
    HashingAlgorithms = XmlAttribute(Unicode)


class SystemCapabilities(ComplexModel):
    __namespace__ = TDS
    DiscoveryResolve = XmlAttribute(Boolean)
    DiscoveryBye = XmlAttribute(Boolean)
    RemoteDiscovery = XmlAttribute(Boolean)
    SystemBackup = XmlAttribute(Boolean)
    SystemLogging = XmlAttribute(Boolean)
    HttpFirmwareUpgrade = XmlAttribute(Boolean)
    HttpSystemBackup = XmlAttribute(Boolean)
    HttpSystemLogging = XmlAttribute(Boolean)
    HttpSupportInformation = XmlAttribute(Boolean)
    StorageConfiguration = XmlAttribute(Boolean)
    DiscoveryNotSupported = XmlAttribute(Boolean)
    NetworkConfigNotSupported = XmlAttribute(Boolean)
    UserConfigNotSupported = XmlAttribute(Boolean)


class DeviceServiceCapabilities(ComplexModel):
    __namespace__ = TDS
    Network = NetworkCapabilities.customize(min_occurs=1, nillable=False)
    Security = SecurityCapabilities.customize(min_occurs=1, nillable=False)
    System = SystemCapabilities.customize(min_occurs=1, nillable=False)
