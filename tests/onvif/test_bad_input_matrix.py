"""Every operation of every mounted SOAP service against bad input, table-driven.

For each operation of each service (the list comes from the services themselves, so a new
operation without a row fails ``test_every_operation_has_a_row``):

* **wrong user level** — each level the operation's access class refuses (Core §4.4 default
  policy): no credentials → HTTP 401 with a Digest challenge, a valid user of too low a level →
  HTTP 400 ``env:Sender/ter:NotAuthorized``;
* **missing required elements** — the bare request element → ``env:Sender/ter:InvalidArgs``;
* the row's **cases**: unknown tokens and tokens over tt:ReferenceToken's 64 characters (the
  operation's own "no such object" subcode), oversized names and passwords, values of the wrong
  XSD type (``env:Sender/ter:InvalidArgs``, Core's "missing/extra/wrong-typed argument") and
  well-typed but unacceptable values (the subcode the spec digest names);
* operations the device does not offer answer ``env:Receiver/ter:ActionNotSupported``.

Requests are hand-written (a client library would not send them) to a started daemon; each
bad-input case is sent by an administrator, so only the input can be at fault.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from lxml import etree

from nvr.onvif.access import DEFAULT_POLICY, Level
from nvr.onvif.namespaces import TDS, TEV, TRC, TRP, TRV, TSE, TT, TUP, clark
from tests.onvif import raw
from tests.onvif.conftest import ADMIN
from tests.onvif.live import LEVELS, LiveNvr, SoapMount, live_nvr
from tests.playback.helpers import LoopThread
from tests.playback.replay_footage import loop

__all__ = ["loop"]

pytestmark = pytest.mark.timeout(300)

INVALID_ARGS = "Sender/InvalidArgs"
UNSUPPORTED = "Receiver/ActionNotSupported"
LONG_TOKEN = "T" * 65
"""One character over tt:ReferenceToken's maxLength."""


@dataclass(frozen=True)
class Case:
    name: str
    body: str
    expect: str
    """"Code/Subcode/Subcode" of the fault, local names; "OK" where the spec wants the input
    accepted (over-long descriptive strings are truncated, recording.md §3)."""


@dataclass(frozen=True)
class Row:
    body: str = ""
    """A valid request (children of the operation element); placeholders {rec}, {job}, {rcv}
    stand for objects the fixture made."""
    cases: tuple[Case, ...] = ()
    missing: str | None = INVALID_ARGS
    """Fault for the bare request element (only checked when ``body`` is not empty)."""
    unsupported: bool = False


NOT_OFFERED = Row(unsupported=True)


def tokens(body: str, placeholder: str, expect: str) -> tuple[Case, ...]:
    """An unknown and an over-long token in place of ``{placeholder}``."""
    key = "{" + placeholder + "}"
    return (
        Case(f"unknown {placeholder}", body.replace(key, "no-such-token"), expect),
        Case(f"long {placeholder}", body.replace(key, LONG_TOKEN), expect),
    )


def wrong(name: str, body: str, expect: str = INVALID_ARGS) -> Case:
    return Case(name, body, expect)


def unsupported(names: str) -> dict[str, Row]:
    return dict.fromkeys(names.split(), NOT_OFFERED)


# ---- device ------------------------------------------------------------------------------------


def _user(name: str = "matrixuser", password: str = "matrix-pass-1", level: str = "User") -> str:
    return (
        f"<x:User><tt:Username>{name}</tt:Username><tt:Password>{password}</tt:Password>"
        f"<tt:UserLevel>{level}</tt:UserLevel></x:User>"
    )


def _date_time(tz: str = "UTC0", month: str = "6", hour: str = "12") -> str:
    return (
        "<x:DateTimeType>Manual</x:DateTimeType><x:DaylightSavings>false</x:DaylightSavings>"
        f"<x:TimeZone><tt:TZ>{tz}</tt:TZ></x:TimeZone><x:UTCDateTime><tt:Time>"
        f"<tt:Hour>{hour}</tt:Hour><tt:Minute>0</tt:Minute><tt:Second>0</tt:Second></tt:Time>"
        f"<tt:Date><tt:Year>2030</tt:Year><tt:Month>{month}</tt:Month><tt:Day>1</tt:Day>"
        "</tt:Date></x:UTCDateTime>"
    )


_SCOPE = "<x:ScopeItem>onvif://www.onvif.org/location/matrix</x:ScopeItem>"
_TOO_LONG_NAME = "u" * 65
_TOO_LONG_PASSWORD = "p" * 1025
_OPERATION_PROHIBITED = "Sender/OperationProhibited"

DEVICE: dict[str, Row] = {
    "GetServices": Row(
        "<x:IncludeCapability>false</x:IncludeCapability>",
        (wrong("bool", "<x:IncludeCapability>maybe</x:IncludeCapability>"),),
    ),
    "GetServiceCapabilities": Row(),
    "GetCapabilities": Row(
        "<x:Category>All</x:Category>",
        (
            wrong("enum", "<x:Category>Toaster</x:Category>"),
            Case(
                "unsupported category",
                "<x:Category>PTZ</x:Category>",
                "Receiver/ActionNotSupported/NoSuchService",
            ),
        ),
        missing=None,  # no Category means all
    ),
    "GetDeviceInformation": Row(),
    "GetSystemDateAndTime": Row(),
    "SetSystemDateAndTime": Row(
        _date_time(),
        (
            wrong("bool", _date_time().replace(">false<", ">perhaps<")),
            wrong("enum", _date_time().replace(">Manual<", ">Sundial<")),
            wrong("int", _date_time(hour="noon")),
            Case("time zone", _date_time(tz="not a zone!"), "Sender/InvalidArgVal/InvalidTimeZone"),
            Case("date", _date_time(month="13"), "Sender/InvalidArgVal/InvalidDateTime"),
        ),
    ),
    "GetScopes": Row(),
    "SetScopes": Row(
        "<x:Scopes>onvif://www.onvif.org/location/matrix</x:Scopes>",
    ),
    "AddScopes": Row(_SCOPE),
    "RemoveScopes": Row(
        _SCOPE,
        (
            Case("unknown scope", _SCOPE, "Sender/InvalidArgVal/NoScope"),
            Case(
                "fixed scope",
                "<x:ScopeItem>onvif://www.onvif.org/Profile/G</x:ScopeItem>",
                "Sender/OperationProhibited/FixedScope",
            ),
        ),
    ),
    "GetDiscoveryMode": Row(),
    "SetDiscoveryMode": Row(
        "<x:DiscoveryMode>Discoverable</x:DiscoveryMode>",
        (wrong("enum", "<x:DiscoveryMode>Hidden</x:DiscoveryMode>"),),
    ),
    "GetEndpointReference": Row(),
    "GetUsers": Row(),
    "CreateUsers": Row(
        _user(),
        (
            Case("long name", _user(_TOO_LONG_NAME), f"{_OPERATION_PROHIBITED}/UsernameTooLong"),
            Case(
                "long password",
                _user(password=_TOO_LONG_PASSWORD),
                f"{_OPERATION_PROHIBITED}/PasswordTooLong",
            ),
            Case("clash", _user(ADMIN[0]), f"{_OPERATION_PROHIBITED}/UsernameClash"),
            Case(
                "anonymous",
                _user(level="Anonymous"),
                f"{_OPERATION_PROHIBITED}/AnonymousNotAllowed",
            ),
            wrong("enum", _user(level="God")),
        ),
    ),
    "DeleteUsers": Row(
        "<x:Username>{user}</x:Username>",
        tokens("<x:Username>{user}</x:Username>", "user", "Sender/InvalidArgVal/UsernameMissing"),
    ),
    "SetUser": Row(
        _user("{user}"),
        (
            *tokens(_user("{user}"), "user", "Sender/InvalidArgVal/UsernameMissing"),
            Case(
                "long password",
                _user("viewer", password=_TOO_LONG_PASSWORD),
                f"{_OPERATION_PROHIBITED}/PasswordTooLong",
            ),
            wrong("enum", _user("viewer", level="God")),
        ),
    ),
    "GetWsdlUrl": Row(),
    "GetHostname": Row(),
    "GetNetworkInterfaces": Row(),
    "GetNetworkProtocols": Row(),
    "GetNTP": Row(),
    "GetDNS": Row(),
    "GetNetworkDefaultGateway": Row(),
    "SystemReboot": Row(),
}
DEVICE_OFFERED = frozenset(DEVICE)
DEVICE |= unsupported(
    """
    SetSystemFactoryDefault UpgradeSystemFirmware RestoreSystem GetSystemBackup GetSystemLog
    GetSystemSupportInformation GetRemoteDiscoveryMode SetRemoteDiscoveryMode GetDPAddresses
    SetDPAddresses GetUserRoles SetUserRole DeleteUserRole GetRemoteUser SetRemoteUser
    GetPasswordComplexityOptions GetPasswordComplexityConfiguration
    SetPasswordComplexityConfiguration GetPasswordHistoryConfiguration
    SetPasswordHistoryConfiguration GetAuthFailureWarningOptions
    GetAuthFailureWarningConfiguration SetAuthFailureWarningConfiguration SetHostname
    SetHostnameFromDHCP SetDNS SetNTP GetDynamicDNS SetDynamicDNS SetNetworkInterfaces
    SetNetworkProtocols SetNetworkDefaultGateway GetZeroConfiguration SetZeroConfiguration
    GetIPAddressFilter SetIPAddressFilter AddIPAddressFilter RemoveIPAddressFilter
    GetAccessPolicy SetAccessPolicy GetRelayOutputs SetRelayOutputSettings SetRelayOutputState
    SendAuxiliaryCommand GetDot11Capabilities GetDot11Status ScanAvailableDot11Networks
    GetSystemUris StartFirmwareUpgrade UpgradeFirmware StartSystemRestore
    GetStorageConfigurations CreateStorageConfiguration GetStorageConfiguration
    SetStorageConfiguration DeleteStorageConfiguration GetGeoLocation SetGeoLocation
    DeleteGeoLocation SetHashingAlgorithm CreateCertificate GetCertificates
    GetCertificatesStatus SetCertificatesStatus DeleteCertificates GetPkcs10Request
    LoadCertificates GetClientCertificateMode SetClientCertificateMode GetCACertificates
    LoadCertificateWithPrivateKey GetCertificateInformation LoadCACertificates
    CreateDot1XConfiguration SetDot1XConfiguration GetDot1XConfiguration
    GetDot1XConfigurations DeleteDot1XConfiguration
    """
)

# ---- receiver ----------------------------------------------------------------------------------

UNKNOWN_RECEIVER = "Sender/InvalidArgVal/UnknownToken"
BAD_CONFIGURATION = "Sender/InvalidArgVal/BadConfiguration"


def _receiver_config(
    uri: str = "rtsp://192.0.2.10/matrix", mode: str = "NeverConnect", protocol: str = "RTSP"
) -> str:
    return (
        f"<x:Configuration><tt:Mode>{mode}</tt:Mode><tt:MediaUri>{uri}</tt:MediaUri>"
        "<tt:StreamSetup><tt:Stream>RTP-Unicast</tt:Stream><tt:Transport>"
        f"<tt:Protocol>{protocol}</tt:Protocol></tt:Transport></tt:StreamSetup></x:Configuration>"
    )


_RCV = "<x:ReceiverToken>{rcv}</x:ReceiverToken>"
_LONG_URI = "rtsp://192.0.2.10/" + "u" * 4096

RECEIVER: dict[str, Row] = {
    "GetServiceCapabilities": Row(),
    "GetReceivers": Row(),
    "GetReceiver": Row(_RCV, tokens(_RCV, "rcv", UNKNOWN_RECEIVER)),
    "CreateReceiver": Row(
        _receiver_config(),
        (
            Case("long uri", _receiver_config(_LONG_URI), BAD_CONFIGURATION),
            Case("not rtsp", _receiver_config("ftp://192.0.2.10/x"), BAD_CONFIGURATION),
            wrong("mode enum", _receiver_config(mode="Sometimes")),
            wrong("protocol enum", _receiver_config(protocol="Pigeon")),
        ),
    ),
    "DeleteReceiver": Row(_RCV, tokens(_RCV, "rcv", UNKNOWN_RECEIVER)),
    "ConfigureReceiver": Row(
        _RCV + _receiver_config(),
        (
            *tokens(_RCV + _receiver_config(), "rcv", UNKNOWN_RECEIVER),
            Case("long uri", _RCV + _receiver_config(_LONG_URI), BAD_CONFIGURATION),
            wrong("mode enum", _RCV + _receiver_config(mode="Sometimes")),
        ),
    ),
    "SetReceiverMode": Row(
        _RCV + "<x:Mode>NeverConnect</x:Mode>",
        (
            *tokens(_RCV + "<x:Mode>NeverConnect</x:Mode>", "rcv", UNKNOWN_RECEIVER),
            wrong("enum", _RCV + "<x:Mode>Sometimes</x:Mode>"),
        ),
    ),
    "GetReceiverState": Row(_RCV, tokens(_RCV, "rcv", UNKNOWN_RECEIVER)),
}

# ---- recording ---------------------------------------------------------------------------------

NO_RECORDING = "Sender/InvalidArgVal/NoRecording"
NO_TRACK = "Sender/InvalidArgVal/NoTrack"
NO_JOB = "Sender/InvalidArgVal/NoRecordingJob"


def _recording_config(retention: str = "PT1H", name: str = "cam") -> str:
    return (
        "<x:RecordingConfiguration><tt:Source><tt:SourceId>urn:matrix</tt:SourceId>"
        f"<tt:Name>{name}</tt:Name><tt:Location>l</tt:Location><tt:Description>d"
        "</tt:Description><tt:Address>urn:a</tt:Address></tt:Source><tt:Content>c</tt:Content>"
        f"<tt:MaximumRetentionTime>{retention}</tt:MaximumRetentionTime>"
        "</x:RecordingConfiguration>"
    )


def _job_config(recording: str = "{rec}", mode: str = "Idle", priority: str = "1") -> str:
    return (
        f"<x:JobConfiguration><tt:RecordingToken>{recording}</tt:RecordingToken>"
        f"<tt:Mode>{mode}</tt:Mode><tt:Priority>{priority}</tt:Priority>"
        "<tt:Source><tt:AutoCreateReceiver>true</tt:AutoCreateReceiver></tt:Source>"
        "</x:JobConfiguration>"
    )


def _track_config(kind: str = "Video") -> str:
    return (
        f"<x:TrackConfiguration><tt:TrackType>{kind}</tt:TrackType>"
        "<tt:Description>t</tt:Description></x:TrackConfiguration>"
    )


_REC = "<x:RecordingToken>{rec}</x:RecordingToken>"
_TRACK = _REC + "<x:TrackToken>{track}</x:TrackToken>"
_JOB = "<x:JobToken>{job}</x:JobToken>"
_OP = "<x:OperationToken>{op}</x:OperationToken>"


def _export(
    fmt: str = "ONVIF", start: str = "2020-01-01T00:00:00Z", recording: str = "{rec}"
) -> str:
    return (
        f"<x:StartPoint>{start}</x:StartPoint><x:EndPoint>2020-01-01T00:01:00Z</x:EndPoint>"
        f"<x:SearchScope><tt:IncludedRecordings>{recording}</tt:IncludedRecordings>"
        f"</x:SearchScope><x:FileFormat>{fmt}</x:FileFormat><x:StorageDestination>"
        "<tt:StorageToken>local</tt:StorageToken><tt:RelativePath>matrix</tt:RelativePath>"
        "</x:StorageDestination>"
    )


def _both_tracks(body: str) -> tuple[Case, ...]:
    """An unknown recording (NoRecording), and an unknown track of a real one (NoTrack)."""
    return (
        *tokens(body.replace("{track}", "VIDEO001"), "rec", NO_RECORDING),
        *tokens(body, "track", NO_TRACK),
    )


RECORDING: dict[str, Row] = {
    "GetServiceCapabilities": Row(),
    "CreateRecording": Row(
        _recording_config(),
        (
            wrong("duration", _recording_config(retention="forever")),
            Case("negative", _recording_config(retention="-PT1H"), BAD_CONFIGURATION),
            Case("long name", _recording_config(name="n" * 5000), "OK"),
        ),
    ),
    "DeleteRecording": Row(_REC, tokens(_REC, "rec", NO_RECORDING)),
    "GetRecordings": Row(),
    "SetRecordingConfiguration": Row(
        _REC + _recording_config(),
        (
            *tokens(_REC + _recording_config(), "rec", NO_RECORDING),
            wrong("duration", _REC + _recording_config(retention="forever")),
        ),
    ),
    "GetRecordingConfiguration": Row(_REC, tokens(_REC, "rec", NO_RECORDING)),
    "GetRecordingOptions": Row(_REC, tokens(_REC, "rec", NO_RECORDING)),
    "CreateTrack": Row(
        _REC + _track_config(),
        (
            *tokens(_REC + _track_config(), "rec", NO_RECORDING),
            wrong("enum", _REC + _track_config("Smell")),
            Case("extended", _REC + _track_config("Extended"), BAD_CONFIGURATION),
        ),
    ),
    "DeleteTrack": Row(_TRACK, _both_tracks(_TRACK)),
    "GetTrackConfiguration": Row(_TRACK, _both_tracks(_TRACK)),
    "SetTrackConfiguration": Row(_TRACK + _track_config(), _both_tracks(_TRACK + _track_config())),
    "CreateRecordingJob": Row(
        _job_config(),
        (
            *tokens(_job_config(), "rec", NO_RECORDING),
            wrong("int", _job_config(priority="high")),
            Case("mode", _job_config(mode="Busy"), BAD_CONFIGURATION),
        ),
    ),
    "DeleteRecordingJob": Row(_JOB, tokens(_JOB, "job", NO_JOB)),
    "GetRecordingJobs": Row(),
    "SetRecordingJobConfiguration": Row(
        _JOB + _job_config(),
        (
            *tokens(_JOB + _job_config(), "job", NO_JOB),
            Case("moved", _JOB + _job_config(recording="{rec2}"), BAD_CONFIGURATION),
            wrong("int", _JOB + _job_config(priority="high")),
        ),
    ),
    "GetRecordingJobConfiguration": Row(_JOB, tokens(_JOB, "job", NO_JOB)),
    "SetRecordingJobMode": Row(
        _JOB + "<x:Mode>Idle</x:Mode>",
        (
            *tokens(_JOB + "<x:Mode>Idle</x:Mode>", "job", NO_JOB),
            Case("mode", _JOB + "<x:Mode>Busy</x:Mode>", "Sender/InvalidArgVal/BadMode"),
        ),
    ),
    "GetRecordingJobState": Row(_JOB, tokens(_JOB, "job", NO_JOB)),
    "ExportRecordedData": Row(
        _export(),
        (
            Case("format", _export(fmt="AVI"), BAD_CONFIGURATION),
            wrong("dateTime", _export(start="yesterday")),
            *tokens(_export(), "rec", NO_RECORDING),
        ),
    ),
    "StopExportRecordedData": Row(_OP, tokens(_OP, "op", BAD_CONFIGURATION)),
    "GetExportRecordedDataState": Row(_OP, tokens(_OP, "op", BAD_CONFIGURATION)),
} | unsupported(
    "ListRecordedSegments ExportRecordedSegments StopExportRecordedSegments OverrideSegmentDuration"
)

# ---- search, replay, events (cheap rows) -------------------------------------------------------

INVALID_TOKEN = "Sender/InvalidArgVal/InvalidToken"
_SEARCH = "<x:SearchToken>{search}</x:SearchToken>"
_RESULTS = _SEARCH + "<x:WaitTime>PT0S</x:WaitTime>"
_FIND_RECORDINGS = (
    "<x:Scope/><x:MaxMatches>{n}</x:MaxMatches><x:KeepAliveTime>{keep}</x:KeepAliveTime>"
)


def _find_events(start: str = "2020-01-01T00:00:00Z", state: str = "false") -> str:
    return (
        f"<x:StartPoint>{start}</x:StartPoint><x:Scope/><x:SearchFilter/>"
        f"<x:IncludeStartState>{state}</x:IncludeStartState><x:KeepAliveTime>PT10S"
        "</x:KeepAliveTime>"
    )


SEARCH: dict[str, Row] = {
    "GetServiceCapabilities": Row(),
    "GetRecordingSummary": Row(),
    "GetRecordingInformation": Row(_REC, tokens(_REC, "rec", INVALID_TOKEN)),
    "GetMediaAttributes": Row(
        "<x:RecordingTokens>{rec}</x:RecordingTokens><x:Time>2020-01-01T00:00:00Z</x:Time>",
        (
            *tokens(
                "<x:RecordingTokens>{rec}</x:RecordingTokens><x:Time>2020-01-01T00:00:00Z</x:Time>",
                "rec",
                INVALID_TOKEN,
            ),
            wrong("dateTime", "<x:RecordingTokens>{rec}</x:RecordingTokens><x:Time>noon</x:Time>"),
        ),
    ),
    "FindRecordings": Row(
        _FIND_RECORDINGS.format(n=10, keep="PT10S"),
        (
            wrong("int", _FIND_RECORDINGS.format(n="many", keep="PT10S")),
            wrong("duration", _FIND_RECORDINGS.format(n=10, keep="soon")),
        ),
    ),
    "GetRecordingSearchResults": Row(_RESULTS, tokens(_RESULTS, "search", INVALID_TOKEN)),
    "FindEvents": Row(
        _find_events(),
        (wrong("dateTime", _find_events(start="dawn")), wrong("bool", _find_events(state="maybe"))),
    ),
    "GetEventSearchResults": Row(_RESULTS, tokens(_RESULTS, "search", INVALID_TOKEN)),
    "FindPTZPosition": Row(missing=None),
    "GetPTZPositionSearchResults": Row(_RESULTS, tokens(_RESULTS, "search", INVALID_TOKEN)),
    "GetSearchState": Row(_SEARCH, tokens(_SEARCH, "search", INVALID_TOKEN)),
    "EndSearch": Row(_SEARCH, tokens(_SEARCH, "search", INVALID_TOKEN)),
    "FindMetadata": Row(missing=None),
    "GetMetadataSearchResults": Row(_RESULTS, tokens(_RESULTS, "search", INVALID_TOKEN)),
} | unsupported("SearchImageByNL GetNLSearchResults SearchImageByImage GetImageSearchResults")


def _replay_uri(stream: str = "RTP-Unicast") -> str:
    return (
        f"<x:StreamSetup><tt:Stream>{stream}</tt:Stream><tt:Transport><tt:Protocol>RTSP"
        "</tt:Protocol></tt:Transport></x:StreamSetup>" + _REC
    )


def _replay_config(timeout: str = "PT60S") -> str:
    return f"<x:Configuration><tt:SessionTimeout>{timeout}</tt:SessionTimeout></x:Configuration>"


REPLAY: dict[str, Row] = {
    "GetServiceCapabilities": Row(),
    "GetReplayUri": Row(
        _replay_uri(),
        (
            *tokens(_replay_uri(), "rec", NO_RECORDING),
            wrong("enum", _replay_uri("RTP-Pigeon")),
        ),
    ),
    "GetReplayConfiguration": Row(),
    "SetReplayConfiguration": Row(
        _replay_config(),
        (
            wrong("duration", _replay_config("long")),
            Case("range", _replay_config("PT1S"), "Sender/InvalidArgVal/ConfigModify"),
        ),
    ),
}

EVENTS: dict[str, Row] = {
    "GetServiceCapabilities": Row(),
    "CreatePullPointSubscription": Row(missing=None),
    "GetEventProperties": Row(),
    # the pull point operations are checked at a pull point by the events tests
    "PullMessages": Row(
        "<x:Timeout>PT1S</x:Timeout><x:MessageLimit>1</x:MessageLimit>", missing=None
    ),
    "SetSynchronizationPoint": Row(),
    "Unsubscribe": Row(),
    "Renew": Row("<x:TerminationTime>PT60S</x:TerminationTime>", missing=None),
} | unsupported("Seek AddEventBroker DeleteEventBroker GetEventBrokers")


def _uplink(
    address: str = "https://cloud.example/nvr",
    auth: str = "<x:CertificateID>no-such-certificate</x:CertificateID>",
    level: str = "Operator",
) -> str:
    return (
        f"<x:Configuration><x:RemoteAddress>{address}</x:RemoteAddress>{auth}"
        f"<x:UserLevel>{level}</x:UserLevel></x:Configuration>"
    )


UPLINK: dict[str, Row] = {
    "GetServiceCapabilities": Row(),
    "GetUplinks": Row(),
    "SetUplink": Row(
        _uplink(),
        (
            Case("unknown certificate", _uplink(), "Sender/InvalidArgVal/CertificateID"),
            Case(
                "unknown authorization server",
                _uplink(auth="<x:AuthorizationServer>no-such-server</x:AuthorizationServer>"),
                "Sender/InvalidArgVal/AuthorizationServerConfigurationToken",
            ),
            Case("no authentication", _uplink(auth=""), "Sender/InvalidArgs/MissingAuthentication"),
            Case(
                "both authentications",
                _uplink(
                    auth="<x:CertificateID>c</x:CertificateID>"
                    "<x:AuthorizationServer>a</x:AuthorizationServer>"
                ),
                "Sender/InvalidArgs/AmbiguousAuthentication",
            ),
            Case(
                "plain http",
                _uplink("http://cloud.example/"),
                "Sender/InvalidArgs/ProtocolNotSupported",
            ),
            Case("not a URI", _uplink("not a uri"), "Sender/InvalidArgs/ProtocolNotSupported"),
            Case(
                "oversized address",
                _uplink("https://cloud.example/" + "a" * 2000),
                "Sender/InvalidArgVal/Address",
            ),
        ),
    ),
    "DeleteUplink": Row(
        "<x:RemoteAddress>https://cloud.example/nvr</x:RemoteAddress>",
        (
            Case(
                "unknown address",
                "<x:RemoteAddress>https://no-such.example/</x:RemoteAddress>",
                "Sender/InvalidArgVal/Address",
            ),
        ),
    ),
}

MATRIX: dict[str, dict[str, Row]] = {
    TDS: DEVICE,
    TRV: RECEIVER,
    TRC: RECORDING,
    TSE: SEARCH,
    TRP: REPLAY,
    TEV: EVENTS,
    TUP: UPLINK,
}
"""Service namespace → {operation local name → row}."""
OPTIONAL_SERVICES: frozenset[str] = frozenset()
"""Mounted services whose matrix lives elsewhere."""


# ---- plumbing ------------------------------------------------------------------------------------


@dataclass
class Objects:
    """Tokens of things the fixture created, for the placeholders."""

    values: dict[str, str]

    def fill(self, body: str) -> str:
        for key, value in self.values.items():
            body = body.replace("{" + key + "}", value)
        return body


@pytest.fixture(scope="module")
def nvr(
    loop: LoopThread, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveNvr]:
    with live_nvr(loop, database_url, tmp_path_factory.mktemp("matrix")) as handle:
        yield handle


def mount_of(nvr: LiveNvr, namespace: str) -> SoapMount:
    return next(m for m in nvr.soap_mounts() if m.namespace == namespace)


def request(operation: str, children: str) -> bytes:
    """An envelope with ``operation`` (a Clark name) holding ``children`` (x: = its namespace)."""
    namespace, _, local = operation[1:].partition("}")
    return (
        f'<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{raw.SOAP12}" '
        f'xmlns:tt="{TT}" xmlns:x="{namespace}"><s:Body><x:{local}>{children}</x:{local}>'
        "</s:Body></s:Envelope>"
    ).encode()


def send(
    nvr: LiveNvr, namespace: str, operation: str, children: str, user: Any = ADMIN
) -> httpx.Response:
    auth = httpx.DigestAuth(*user) if user else None
    url = nvr.base_url + mount_of(nvr, namespace).path
    return raw.post(url, request(operation, children), auth=auth)


def chain(response: httpx.Response) -> str:
    assert response.headers["content-type"].startswith("application/soap+xml"), response.text
    return "/".join(name.rpartition("}")[2] for name in raw.fault_chain(response))


def answer(response: httpx.Response) -> str:
    """The fault chain, or "OK" for a successful answer."""
    return "OK" if response.status_code == 200 else chain(response)


def _create(nvr: LiveNvr, namespace: str, op: str, children: str, path: str) -> str:
    response = send(nvr, namespace, clark(namespace, op), children)
    assert response.status_code == 200, response.text
    value = etree.fromstring(response.content).findtext(path, namespaces={"x": namespace})
    assert value, response.text
    return value


@pytest.fixture(scope="module")
def objects(nvr: LiveNvr) -> Objects:
    rec = _create(nvr, TRC, "CreateRecording", _recording_config(), ".//x:RecordingToken")
    rec2 = _create(nvr, TRC, "CreateRecording", _recording_config(), ".//x:RecordingToken")
    job = _create(nvr, TRC, "CreateRecordingJob", _job_config(rec), ".//x:JobToken")
    rcv = _create(nvr, TRV, "CreateReceiver", _receiver_config(), ".//" + clark(TT, "Token"))
    return Objects(
        {"rec": rec, "rec2": rec2, "job": job, "rcv": rcv, "track": "VIDEO001", "user": "viewer"}
        | {"op": "no-such-operation", "search": "no-such-search"}
    )


def operations(nvr: LiveNvr, namespace: str) -> list[str]:
    return list(mount_of(nvr, namespace).endpoint.service.operations)


def local(operation: str) -> str:
    return operation.rpartition("}")[2]


CASES = [
    pytest.param(namespace, op, case, id=f"{namespace.split('/')[-2]}-{op}-{case.name}")
    for namespace, rows in MATRIX.items()
    for op, row in rows.items()
    for case in row.cases
]


# ---- tests ---------------------------------------------------------------------------------------


def test_every_operation_has_a_row(nvr: LiveNvr) -> None:
    mounted = {m.namespace for m in nvr.soap_mounts()}
    assert mounted - set(MATRIX) <= OPTIONAL_SERVICES
    for namespace, rows in MATRIX.items():
        assert {local(op) for op in operations(nvr, namespace)} == set(rows), namespace


@pytest.mark.parametrize("namespace", list(MATRIX), ids=lambda n: n.split("/")[-2])
def test_wrong_user_levels_are_refused(nvr: LiveNvr, objects: Objects, namespace: str) -> None:
    service = mount_of(nvr, namespace).endpoint.service
    wrong_levels = 0
    for operation in service.operations:
        access = service.access_by_operation[operation]
        row = MATRIX[namespace][local(operation)]
        for level, user in LEVELS.items():
            if Level(level) in DEFAULT_POLICY[access]:
                continue
            wrong_levels += 1
            response = send(nvr, namespace, operation, objects.fill(row.body), user)
            where = f"{local(operation)} as {level}"
            if user is None:
                assert response.status_code == 401, where
                assert response.headers["www-authenticate"].startswith("Digest"), where
            else:
                assert response.status_code == 400, where
            assert chain(response) == "Sender/NotAuthorized", where
    assert wrong_levels > 0


@pytest.mark.parametrize("namespace", list(MATRIX), ids=lambda n: n.split("/")[-2])
def test_missing_required_elements(nvr: LiveNvr, namespace: str) -> None:
    checked = 0
    for op, row in MATRIX[namespace].items():
        if row.unsupported or not row.body or row.missing is None:
            continue
        checked += 1
        response = send(nvr, namespace, clark(namespace, op), "")
        assert answer(response) == row.missing, f"{op}: {response.text[:400]}"
    assert checked > 0 or namespace in (TEV,)


@pytest.mark.parametrize("namespace", list(MATRIX), ids=lambda n: n.split("/")[-2])
def test_operations_not_offered(nvr: LiveNvr, namespace: str) -> None:
    for op, row in MATRIX[namespace].items():
        if not row.unsupported:
            continue
        response = send(nvr, namespace, clark(namespace, op), "")
        assert response.status_code == 500, op
        assert chain(response).startswith(UNSUPPORTED), op


@pytest.mark.parametrize(("namespace", "op", "case"), CASES)
def test_bad_input(nvr: LiveNvr, objects: Objects, namespace: str, op: str, case: Case) -> None:
    response = send(nvr, namespace, clark(namespace, op), objects.fill(case.body))
    assert answer(response) == case.expect, response.text[:600]
    status = {"OK": 200, "Sender": 400}.get(case.expect.partition("/")[0], 500)
    assert response.status_code == status
