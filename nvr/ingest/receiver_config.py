"""Receiver configuration values, their validation, and the errors the SOAP layer maps to
ONVIF faults (receiver.md §2-4). Pure values: nothing here connects or touches the database."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

from nvr.ingest.rtsp_client import Quirks
from nvr.protocol.rtsp_auth import split_uri_credentials

__all__ = [
    "ALWAYS_CONNECT",
    "AUTO_CONNECT",
    "CONNECTED",
    "CONNECTING",
    "MAX_URI_LENGTH",
    "MIN_URI_LENGTH",
    "MODES",
    "NEVER_CONNECT",
    "NOT_CONNECTED",
    "PROTOCOLS",
    "STATES",
    "UNICAST",
    "BadReceiverConfiguration",
    "MaxReceiversReached",
    "ReceiverConfig",
    "ReceiverError",
    "ReceiverInUse",
    "ReceiverInfo",
    "UnknownReceiver",
    "check_options",
    "public_uri",
    "quirks_from_options",
    "validate_config",
]

AUTO_CONNECT: Final = "AutoConnect"
ALWAYS_CONNECT: Final = "AlwaysConnect"
NEVER_CONNECT: Final = "NeverConnect"
MODES: Final = (AUTO_CONNECT, ALWAYS_CONNECT, NEVER_CONNECT)
NOT_CONNECTED: Final = "NotConnected"
CONNECTING: Final = "Connecting"
CONNECTED: Final = "Connected"
STATES: Final = (NOT_CONNECTED, CONNECTING, CONNECTED, "Unknown")
PROTOCOLS: Final = {"RTSP": "tcp", "TCP": "tcp", "UDP": "udp", "HTTP": "http"}
"""tt:StreamSetup Transport.Protocol -> RtspClient transport."""
UNICAST: Final = "RTP-Unicast"
MIN_URI_LENGTH: Final = 128
MAX_URI_LENGTH: Final = 2048
"""The receivers.media_uri column's size."""

# --- errors (the SOAP layer maps each to its ONVIF fault) -------------------------------------


class ReceiverError(Exception):
    """Base of the receiver engine's errors."""


class UnknownReceiver(ReceiverError, LookupError):
    """No receiver has this token (ter:InvalidArgVal/ter:UnknownToken)."""


class BadReceiverConfiguration(ReceiverError, ValueError):
    """The configuration is invalid or unsupported (ter:InvalidArgVal/ter:BadConfiguration)."""


class MaxReceiversReached(ReceiverError):
    """No more receivers can be created (ter:Action/ter:MaxReceivers)."""


class ReceiverInUse(ReceiverError):
    """The receiver is used by a consumer (ter:Action/ter:CannotDeleteReceiver)."""


# --- values ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReceiverConfig:
    """tt:ReceiverConfiguration: Mode, MediaUri, StreamSetup (Stream, Transport.Protocol)."""

    mode: str = NEVER_CONNECT
    media_uri: str = ""
    stream: str = UNICAST
    protocol: str = "RTSP"


@dataclass(frozen=True, slots=True)
class ReceiverInfo:
    """A receiver as GetReceiver(s) and GetReceiverState report it."""

    token: str
    config: ReceiverConfig
    auto_created: bool
    state: str
    options: Mapping[str, Any] = field(default_factory=dict)


# --- validation -----------------------------------------------------------------------------


def validate_config(
    config: ReceiverConfig, *, max_uri_length: int, allow_empty_uri: bool = False
) -> ReceiverConfig:
    """Check a configuration a client sent; BadReceiverConfiguration names what is wrong.

    The URI is kept exactly as given (receiver.md: never rewrite the host); credentials may be
    in its userinfo.
    """
    if config.mode not in MODES:
        raise BadReceiverConfiguration(f"Mode {config.mode!r} is not one of {', '.join(MODES)}")
    if config.stream != UNICAST:
        raise BadReceiverConfiguration(f"Stream {config.stream!r} is not supported ({UNICAST})")
    if config.protocol not in PROTOCOLS:
        raise BadReceiverConfiguration(
            f"Transport Protocol {config.protocol!r} is not one of {', '.join(PROTOCOLS)}"
        )
    uri = config.media_uri
    if not uri:
        if allow_empty_uri or config.mode == NEVER_CONNECT:
            return config
        raise BadReceiverConfiguration(f"MediaUri is empty but Mode is {config.mode}")
    if len(uri.encode("utf-8")) > max_uri_length:
        raise BadReceiverConfiguration(
            f"MediaUri is {len(uri.encode('utf-8'))} octets; the limit is {max_uri_length}"
        )
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in uri):
        raise BadReceiverConfiguration("MediaUri contains white space or control characters")
    try:
        bare, _ = split_uri_credentials(uri)
        parts = urlsplit(bare)
        port = parts.port
    except ValueError as exc:
        raise BadReceiverConfiguration(f"MediaUri is not a valid URI: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("rtsp", "rtsph", "http"):
        raise BadReceiverConfiguration(f"MediaUri scheme {parts.scheme!r} is not rtsp")
    if scheme != "rtsp" and config.protocol != "HTTP":
        raise BadReceiverConfiguration(f"a {scheme}:// MediaUri needs Transport Protocol HTTP")
    if not parts.hostname:
        raise BadReceiverConfiguration("MediaUri has no host")
    if port == 0:
        raise BadReceiverConfiguration("MediaUri port 0")
    return config


def quirks_from_options(options: Mapping[str, Any]) -> Quirks:
    """The client's quirk policies from a receiver's ``options`` (``{"quirks": {...}}``)."""
    return Quirks(**dict(options.get("quirks") or {}))


def check_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Validate ``options``: quirk names must be fields of :class:`Quirks`."""
    known = {f.name for f in dataclasses.fields(Quirks)}
    quirks = dict(options.get("quirks") or {})
    unknown = sorted(set(quirks) - known)
    if unknown:
        raise BadReceiverConfiguration(f"unknown quirk(s): {', '.join(unknown)}")
    try:
        Quirks(**quirks)
    except TypeError as exc:
        raise BadReceiverConfiguration(str(exc)) from None
    return {**options, "quirks": quirks} if quirks else dict(options)


def public_uri(uri: str) -> str:
    """The URI without credentials, for events and logs."""
    try:
        return split_uri_credentials(uri)[0]
    except ValueError:
        return ""
