"""spyne models of the ``tt:`` (onvif.xsd) types the services exchange, in schema order.

Field order, names and occurrence follow onvif.xsd exactly: spyne writes children in
declaration order and in the namespace of the type, which for these is ``tt:``. Only the
parts we send or read are modelled; optional ``Extension`` / ``xs:any`` parts are left out.
Services other than the device service reuse these (and add their own next to them).
"""

from __future__ import annotations

from spyne import AnyUri, Boolean, ComplexModel, Integer32, Unicode, XmlAttribute

from nvr.onvif.namespaces import TT


def _keep_name(kind: type) -> dict[str, str]:
    """customize() turns a named simple type into an anonymous one unless told its name."""
    return {"type_name": kind.get_type_name()} if kind.Attributes._explicit_type_name else {}


def required(kind: type) -> type:
    """Exactly one occurrence, not nil."""
    return kind.customize(min_occurs=1, nillable=False, **_keep_name(kind))


def repeated(kind: type, minimum: int = 0) -> type:
    """``minimum`` to unbounded occurrences."""
    return kind.customize(
        min_occurs=minimum, max_occurs="unbounded", nillable=False, **_keep_name(kind)
    )


Text = Unicode(min_occurs=1)
"""A required string that may be empty: spyne reads an empty element as None, which a
non-nillable string would refuse (clients send ``<tt:Name/>``)."""


def tt_enum(name: str, *values: str) -> type:
    """A named tt: string enumeration (customize() cannot set a namespace, so assign it)."""
    kind = Unicode(values=values, type_name=name)
    kind.__namespace__ = TT
    return kind


SetDateTimeType = tt_enum("SetDateTimeType", "Manual", "NTP")
ScopeDefinition = tt_enum("ScopeDefinition", "Fixed", "Configurable")
UserLevelType = tt_enum("UserLevel", "Administrator", "Operator", "User", "Anonymous", "Extended")
DiscoveryModeType = tt_enum("DiscoveryMode", "Discoverable", "NonDiscoverable")
NetworkProtocolType = tt_enum("NetworkProtocolType", "HTTP", "HTTPS", "RTSP")
IPType = tt_enum("IPType", "IPv4", "IPv6")
NetworkHostType = tt_enum("NetworkHostType", "IPv4", "IPv6", "DNS")
DuplexType = tt_enum("Duplex", "Full", "Half")
TrackType = tt_enum("TrackType", "Video", "Audio", "Metadata", "Extended")
CapabilityCategory = tt_enum(
    "CapabilityCategory", "All", "Analytics", "Device", "Events", "Imaging", "Media", "PTZ"
)


class OnvifVersion(ComplexModel):
    __namespace__ = TT
    Major = required(Integer32)
    Minor = required(Integer32)


# --- date and time ----------------------------------------------------------------------------


class Time(ComplexModel):
    __namespace__ = TT
    Hour = required(Integer32)
    Minute = required(Integer32)
    Second = required(Integer32)


class Date(ComplexModel):
    __namespace__ = TT
    Year = required(Integer32)
    Month = required(Integer32)
    Day = required(Integer32)


class DateTime(ComplexModel):
    """Time *then* Date, as onvif.xsd has it."""

    __namespace__ = TT
    Time = required(Time)
    Date = required(Date)


class TimeZone(ComplexModel):
    __namespace__ = TT
    TZ = required(Unicode)


class SystemDateTime(ComplexModel):
    __namespace__ = TT
    DateTimeType = required(SetDateTimeType)
    DaylightSavings = required(Boolean)
    TimeZone = TimeZone
    UTCDateTime = DateTime
    LocalDateTime = DateTime


# --- scopes and users -------------------------------------------------------------------------


class Scope(ComplexModel):
    __namespace__ = TT
    ScopeDef = required(ScopeDefinition)
    ScopeItem = required(AnyUri)


class User(ComplexModel):
    __namespace__ = TT
    Username = Unicode(min_occurs=1)  # nillable: an empty name deserves UsernameTooShort
    Password = Unicode
    UserLevel = required(UserLevelType)


# --- network ----------------------------------------------------------------------------------


class HostnameInformation(ComplexModel):
    __namespace__ = TT
    FromDHCP = required(Boolean)
    Name = Unicode


class NetworkProtocol(ComplexModel):
    __namespace__ = TT
    Name = required(NetworkProtocolType)
    Enabled = required(Boolean)
    Port = repeated(Integer32, 1)


class IPAddress(ComplexModel):
    __namespace__ = TT
    Type = required(IPType)
    IPv4Address = Unicode
    IPv6Address = Unicode


class NetworkHost(ComplexModel):
    __namespace__ = TT
    Type = required(NetworkHostType)
    IPv4Address = Unicode
    IPv6Address = Unicode
    DNSname = Unicode


class NTPInformation(ComplexModel):
    __namespace__ = TT
    FromDHCP = required(Boolean)
    NTPFromDHCP = repeated(NetworkHost)
    NTPManual = repeated(NetworkHost)


class DNSInformation(ComplexModel):
    __namespace__ = TT
    FromDHCP = required(Boolean)
    SearchDomain = repeated(Unicode)
    DNSFromDHCP = repeated(IPAddress)
    DNSManual = repeated(IPAddress)


class NetworkGateway(ComplexModel):
    __namespace__ = TT
    IPv4Address = repeated(Unicode)
    IPv6Address = repeated(Unicode)


class PrefixedIPv4Address(ComplexModel):
    __namespace__ = TT
    Address = required(Unicode)
    PrefixLength = required(Integer32)


class IPv4Configuration(ComplexModel):
    __namespace__ = TT
    Manual = repeated(PrefixedIPv4Address)
    LinkLocal = PrefixedIPv4Address
    FromDHCP = PrefixedIPv4Address
    DHCP = required(Boolean)


class IPv4NetworkInterface(ComplexModel):
    __namespace__ = TT
    Enabled = required(Boolean)
    Config = required(IPv4Configuration)


class NetworkInterfaceInfo(ComplexModel):
    __namespace__ = TT
    Name = Unicode
    HwAddress = required(Unicode)
    MTU = Integer32


class NetworkInterfaceConnectionSetting(ComplexModel):
    __namespace__ = TT
    AutoNegotiation = required(Boolean)
    Speed = required(Integer32)
    Duplex = required(DuplexType)


class NetworkInterfaceLink(ComplexModel):
    __namespace__ = TT
    AdminSettings = required(NetworkInterfaceConnectionSetting)
    OperSettings = required(NetworkInterfaceConnectionSetting)
    InterfaceType = required(Integer32)
    """IANA ifType (6 = ethernetCsmacd, 24 = softwareLoopback, 71 = ieee80211)."""


class NetworkInterface(ComplexModel):
    __namespace__ = TT
    token = XmlAttribute(Unicode, use="required")
    Enabled = required(Boolean)
    Info = NetworkInterfaceInfo
    Link = NetworkInterfaceLink
    IPv4 = IPv4NetworkInterface


# --- legacy GetCapabilities (tt:Capabilities) -------------------------------------------------


class NetworkCapabilities(ComplexModel):
    __namespace__ = TT
    IPFilter = Boolean
    ZeroConfiguration = Boolean
    IPVersion6 = Boolean
    DynDNS = Boolean


class SystemCapabilities(ComplexModel):
    __namespace__ = TT
    DiscoveryResolve = required(Boolean)
    DiscoveryBye = required(Boolean)
    RemoteDiscovery = required(Boolean)
    SystemBackup = required(Boolean)
    SystemLogging = required(Boolean)
    FirmwareUpgrade = required(Boolean)
    SupportedVersions = repeated(OnvifVersion, 1)


class IOCapabilities(ComplexModel):
    __namespace__ = TT
    InputConnectors = Integer32
    RelayOutputs = Integer32


class SecurityCapabilities(ComplexModel):
    __namespace__ = TT
    TLS1_1 = required(Boolean).customize(sub_name="TLS1.1")
    TLS1_2 = required(Boolean).customize(sub_name="TLS1.2")
    OnboardKeyGeneration = required(Boolean)
    AccessPolicyConfig = required(Boolean)
    X_509Token = required(Boolean).customize(sub_name="X.509Token")
    SAMLToken = required(Boolean)
    KerberosToken = required(Boolean)
    RELToken = required(Boolean)


class DeviceCapabilities(ComplexModel):
    __namespace__ = TT
    XAddr = required(AnyUri)
    Network = NetworkCapabilities
    System = SystemCapabilities
    IO = IOCapabilities
    Security = SecurityCapabilities


class EventCapabilities(ComplexModel):
    __namespace__ = TT
    XAddr = required(AnyUri)
    WSSubscriptionPolicySupport = required(Boolean)
    WSPullPointSupport = required(Boolean)
    WSPausableSubscriptionManagerInterfaceSupport = required(Boolean)


class RecordingCapabilities(ComplexModel):
    __namespace__ = TT
    XAddr = required(AnyUri)
    ReceiverSource = required(Boolean)
    MediaProfileSource = required(Boolean)
    DynamicRecordings = required(Boolean)
    DynamicTracks = required(Boolean)
    MaxStringLength = required(Integer32)


class SearchCapabilities(ComplexModel):
    __namespace__ = TT
    XAddr = required(AnyUri)
    MetadataSearch = required(Boolean)


class ReplayCapabilities(ComplexModel):
    __namespace__ = TT
    XAddr = required(AnyUri)


class ReceiverCapabilities(ComplexModel):
    __namespace__ = TT
    XAddr = required(AnyUri)
    RTP_Multicast = required(Boolean)
    RTP_TCP = required(Boolean)
    RTP_RTSP_TCP = required(Boolean)
    SupportedReceivers = required(Integer32)
    MaximumRTSPURILength = required(Integer32)


class CapabilitiesExtension(ComplexModel):
    """The NVR part of tt:CapabilitiesExtension (DeviceIO/Display/AnalyticsDevice omitted)."""

    __namespace__ = TT
    Recording = RecordingCapabilities
    Search = SearchCapabilities
    Replay = ReplayCapabilities
    Receiver = ReceiverCapabilities


class Capabilities(ComplexModel):
    """tt:Capabilities with the parts an NVR has (Analytics/Imaging/Media/PTZ omitted)."""

    __namespace__ = TT
    Device = DeviceCapabilities
    Events = EventCapabilities
    Extension = CapabilitiesExtension


# ---- recordings (the Recording and Search services share these) ------------------------------


class RecordingSourceInformation(ComplexModel):
    """Read in CreateRecording (empty strings allowed), written in GetRecordings and Search."""

    __namespace__ = TT
    SourceId = AnyUri(min_occurs=1)
    Name = Text
    Location = Text
    Description = Text
    Address = AnyUri(min_occurs=1)
