"""Settings: a TOML file, then NVR_* environment variables, then command-line flags.

Every field is declared once in ``FIELDS`` with its type, default, allowed values and help:
the loader, the validator, the error messages and the README's configuration reference all come
from that table. A bad value stops the start with a message naming the field, the value, where
it came from and what is allowed.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nvr.store.settings import StorageDirSettings, StoreSettings


class ConfigError(ValueError):
    """A configuration value is missing, malformed or out of range."""


@dataclass(frozen=True)
class Field:
    key: str
    """Dotted name: section.key in the TOML file, NVR_SECTION_KEY in the environment."""
    kind: str
    """int, float, bool, str, path, choice, size or dirs."""
    default: Any
    help: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    flag: str | None = None

    @property
    def env(self) -> str:
        return "NVR_" + self.key.replace(".", "_").upper()

    def allowed(self) -> str:
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        if self.kind in ("int", "float", "size"):
            unit = " bytes (or a number with K, M, G, T)" if self.kind == "size" else ""
            what = "an integer" if self.kind in ("int", "size") else "a number"
            if self.low is not None and self.high is not None:
                return f"{what} from {self._num(self.low)} to {self._num(self.high)}{unit}"
            if self.low is not None:
                return f"{what} >= {self._num(self.low)}{unit}"
            return what + unit
        if self.kind == "bool":
            return "true or false"
        if self.kind == "dirs":
            return "a list of tables with path, max_bytes and min_free_bytes"
        return "a string" if self.kind == "str" else "a path"

    @staticmethod
    def _num(v: float) -> str:
        return str(int(v)) if float(v).is_integer() else str(v)


FIELDS: tuple[Field, ...] = (
    Field(
        "data_dir",
        "path",
        "./nvr-data",
        "Data folder: database (SQLite), keys, media.",
        flag="--data-dir",
    ),
    Field(
        "database_url",
        "str",
        "",
        "SQLAlchemy URL; empty = SQLite file nvr.db in data_dir. "
        "PostgreSQL: postgresql://user@host:5432/nvr",
        flag="--database-url",
    ),
    Field(
        "log_level",
        "choice",
        "info",
        "Log level on stderr.",
        choices=("debug", "info", "warning", "error"),
    ),
    Field(
        "demo", "bool", False, "Start the built-in simulated camera and record it.", flag="--demo"
    ),
    Field("http.host", "str", "0.0.0.0", "HTTP listen address (ONVIF SOAP, /healthz, API)."),
    Field("http.port", "int", 8080, "HTTP port.", low=1, high=65535, flag="--http-port"),
    Field(
        "http.max_soap_request_bytes",
        "size",
        1024**2,
        "Largest ONVIF SOAP request body accepted; a longer one is answered HTTP 413 "
        "without being parsed.",
        low=4096,
        high=64 * 1024**2,
    ),
    Field("rtsp.host", "str", "0.0.0.0", "RTSP listen address (replay)."),
    Field("rtsp.port", "int", 8554, "RTSP port.", low=1, high=65535, flag="--rtsp-port"),
    Field(
        "replay.session_timeout_seconds",
        "int",
        60,
        "RTSP replay session timeout (Session: …;timeout=) until a VMS sets the ONVIF "
        "SessionTimeout; the bounds are the SessionTimeoutRange the Replay service advertises.",
        low=10,
        high=3600,
    ),
    Field(
        "storage.dirs",
        "dirs",
        (),
        "Media directories; empty = data_dir/media. Each: "
        "path, max_bytes (size cap, optional), min_free_bytes (free-space floor).",
    ),
    Field(
        "storage.min_free_bytes",
        "size",
        512 * 1024**2,
        "Default free-space floor of a media directory.",
        low=0,
    ),
    Field(
        "storage.segment_seconds",
        "float",
        60.0,
        "Target segment length (cut at the next key frame).",
        low=1,
        high=3600,
    ),
    Field(
        "storage.checkpoint_seconds",
        "float",
        2.0,
        "Longest time between fsync + index commit: the most a crash can lose.",
        low=0.05,
        high=2,
    ),
    Field(
        "storage.retention_interval_seconds",
        "float",
        10.0,
        "How often retention runs.",
        low=0.1,
        high=3600,
    ),
    Field(
        "export.key_file",
        "path",
        "",
        "RSA key (PEM, >= 2048 bits) that signs exports; empty = data_dir/export/signing.key "
        "(RSA-3072, created on first start with a self-signed certificate, mode 0600).",
    ),
    Field(
        "export.certificate_file",
        "path",
        "",
        "Certificate of export.key_file (PEM: the signing certificate, then its "
        "intermediates); empty = data_dir/export/signing.crt. Set both or neither.",
    ),
    Field(
        "export.max_parallel",
        "int",
        2,
        "Exports that run at once (the scheduler's export thread pool); more wait their turn.",
        low=1,
        high=16,
    ),
    Field(
        "security.key_file",
        "path",
        "",
        "Key that encrypts stored passwords; empty = "
        "data_dir/secret.key (created on first start, mode 0600).",
    ),
    Field(
        "security.digest_algorithms",
        "choice",
        "sha-256,md5",
        "HTTP Digest challenges the SOAP services offer, in preference order.",
        choices=("sha-256,md5", "md5,sha-256", "sha-256", "md5"),
    ),
    Field(
        "security.wsse_window_seconds",
        "float",
        300.0,
        "WS-UsernameToken: how far Created may be from our clock (nonces are remembered as long).",
        low=1,
        high=86400,
    ),
    Field(
        "security.wsse_password_text",
        "choice",
        "tls",
        "WS-UsernameToken with a clear-text password: accept never, over HTTPS only, or always.",
        choices=("never", "tls", "always"),
    ),
    Field(
        "security.login_failures",
        "int",
        5,
        "Failed logins a client address may make within security.login_window_seconds "
        "before it is locked out.",
        low=1,
        high=10000,
    ),
    Field(
        "security.login_window_seconds",
        "float",
        60.0,
        "Window in which failed logins are counted.",
        low=1,
        high=86400,
    ),
    Field(
        "security.lockout_max_seconds",
        "float",
        300.0,
        "Longest lockout; it starts at 2 s and doubles with every further failure.",
        low=1,
        high=86400,
    ),
    Field(
        "device.name",
        "str",
        "",
        "Device name in the ONVIF name scope; empty = the host name.",
    ),
    Field("device.manufacturer", "str", "nvr", "ONVIF GetDeviceInformation Manufacturer."),
    Field(
        "device.model",
        "str",
        "nvr",
        "ONVIF GetDeviceInformation Model; also the ONVIF hardware scope.",
    ),
    Field(
        "device.serial_number",
        "str",
        "",
        "ONVIF GetDeviceInformation SerialNumber; empty = the device's endpoint UUID.",
    ),
    Field(
        "device.hardware_id",
        "str",
        "",
        "ONVIF GetDeviceInformation HardwareId; empty = the model.",
    ),
    Field(
        "events.max_pull_points",
        "int",
        64,
        "ONVIF event pull points that may exist at once (MaxPullPoints).",
        low=2,
        high=1024,
    ),
    Field(
        "events.queue_limit",
        "int",
        1000,
        "Messages a pull point keeps for a client that does not pull; older ones are dropped.",
        low=10,
        high=100000,
    ),
    Field(
        "search.max_sessions",
        "int",
        16,
        "ONVIF searches (Find*) that may run at once; one more is refused (ResourceProblem).",
        low=1,
        high=1024,
    ),
    Field(
        "search.max_keepalive_seconds",
        "float",
        300.0,
        "Longest KeepAliveTime a search gets (longer requests are clamped).",
        low=10,
        high=86400,
    ),
    Field(
        "search.max_wait_seconds",
        "float",
        10.0,
        "Longest a Get*SearchResults request waits for results (WaitTime is clamped).",
        low=0,
        high=60,
    ),
    Field(
        "search.max_results",
        "int",
        1000,
        "Most results one Get*SearchResults response carries (MaxResults is clamped).",
        low=1,
        high=100000,
    ),
    Field(
        "search.index_interval_seconds",
        "float",
        1.0,
        "How often recorded events and metadata documents are indexed for search.",
        low=0.05,
        high=60,
    ),
    Field(
        "search.settle_seconds",
        "float",
        5.0,
        "How far behind the clock a search with a future EndPoint stays, so events still "
        "being indexed are not skipped.",
        low=0,
        high=600,
    ),
    Field(
        "discovery.enabled",
        "bool",
        True,
        "Answer WS-Discovery probes and send Hello/Bye (unless the ONVIF discovery mode is "
        "NonDiscoverable).",
    ),
    Field(
        "discovery.group",
        "str",
        "239.255.255.250",
        "WS-Discovery IPv4 multicast group (joined; Hello and Bye are sent to it).",
    ),
    Field("discovery.port", "int", 3702, "WS-Discovery UDP port.", low=1, high=65535),
    Field(
        "discovery.interface",
        "str",
        "",
        "IPv4 address of the interface for WS-Discovery; empty = http.host if it is an "
        "address, else every interface with an IPv4 address.",
    ),
    Field(
        "uplink.max_uplinks",
        "int",
        8,
        "ONVIF uplink configurations that may exist (MaxUplinks); each is kept connected.",
        low=0,
        high=64,
    ),
    Field(
        "uplink.keystore_dir",
        "path",
        "",
        "Client certificates, trust anchors and OAuth2 servers for uplinks "
        "(managed with nvr keystore); empty = data_dir/keystore.",
    ),
)
FIELDS_BY_KEY = {f.key: f for f in FIELDS}

_SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


@dataclass(frozen=True)
class Config:
    values: Mapping[str, Any]
    sources: Mapping[str, str] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    @property
    def data_dir(self) -> Path:
        return Path(self.values["data_dir"]).resolve()

    @property
    def database_url(self) -> str:
        url = self.values["database_url"]
        return url or f"sqlite:///{self.data_dir / 'nvr.db'}"

    @property
    def key_file(self) -> Path:
        path = self.values["security.key_file"]
        return Path(path).resolve() if path else self.data_dir / "secret.key"

    def store_settings(self) -> StoreSettings:
        floor = self.values["storage.min_free_bytes"]
        dirs = self.values["storage.dirs"] or (
            {"path": str(self.data_dir / "media"), "min_free_bytes": floor},
        )
        return StoreSettings(
            dirs=tuple(
                StorageDirSettings(
                    path=Path(d["path"]).resolve(),
                    max_bytes=d.get("max_bytes"),
                    min_free_bytes=d.get("min_free_bytes", floor),
                )
                for d in dirs
            ),
            segment_seconds=self.values["storage.segment_seconds"],
            checkpoint_seconds=self.values["storage.checkpoint_seconds"],
            retention_interval_seconds=self.values["storage.retention_interval_seconds"],
        )


def load(
    *,
    config_file: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> Config:
    """Merge defaults < TOML file < environment < flags and validate everything."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {f.key: f.default for f in FIELDS}
    sources: dict[str, str] = {f.key: "default" for f in FIELDS}
    config_file = config_file or env.get("NVR_CONFIG") or None
    if config_file:
        for key, raw in _read_toml(Path(config_file)).items():
            values[key] = _convert(FIELDS_BY_KEY[key], raw, f"{config_file}")
            sources[key] = str(config_file)
    for f in FIELDS:
        if f.env in env and f.kind != "dirs":
            values[f.key] = _convert(f, env[f.env], f"environment {f.env}")
            sources[f.key] = f.env
    for key, raw in (flags or {}).items():
        if raw is None:
            continue
        f = FIELDS_BY_KEY[key]
        values[key] = _convert(f, raw, f"flag {f.flag}")
        sources[key] = f.flag or key
    return Config(values, sources)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    flat: dict[str, Any] = {}
    _flatten(doc, "", flat, path)
    return flat


def _flatten(doc: Mapping[str, Any], prefix: str, out: dict[str, Any], path: Path) -> None:
    for name, value in doc.items():
        key = prefix + name
        if key in FIELDS_BY_KEY:
            out[key] = value
        elif isinstance(value, Mapping):
            _flatten(value, key + ".", out, path)
        else:
            known = ", ".join(f.key for f in FIELDS)
            raise ConfigError(f"{path}: unknown setting {key!r}; known settings: {known}")


def _fail(f: Field, raw: Any, origin: str, why: str = "") -> ConfigError:
    extra = f" ({why})" if why else ""
    return ConfigError(f"invalid {f.key} = {raw!r} from {origin}{extra}: must be {f.allowed()}")


def _convert(f: Field, raw: Any, origin: str) -> Any:
    converters: dict[str, Callable[[Field, Any, str], Any]] = {
        "int": _to_int,
        "size": _to_size,
        "float": _to_float,
        "bool": _to_bool,
        "str": _to_str,
        "path": _to_str,
        "choice": _to_choice,
        "dirs": _to_dirs,
    }
    return converters[f.kind](f, raw, origin)


def _check_range(f: Field, value: float, raw: Any, origin: str) -> None:
    if (f.low is not None and value < f.low) or (f.high is not None and value > f.high):
        raise _fail(f, raw, origin, "out of range")


def _to_int(f: Field, raw: Any, origin: str) -> int:
    if isinstance(raw, bool):
        raise _fail(f, raw, origin)
    try:
        value = int(raw.strip()) if isinstance(raw, str) else int(raw)
    except (TypeError, ValueError):
        raise _fail(f, raw, origin) from None
    if isinstance(raw, float) and not raw.is_integer():
        raise _fail(f, raw, origin)
    _check_range(f, value, raw, origin)
    return value


def _to_size(f: Field, raw: Any, origin: str) -> int:
    if isinstance(raw, str):
        text = raw.strip().upper().removesuffix("B").removesuffix("I")
        unit = text[-1:] if text[-1:] in _SIZE_UNITS else ""
        number = text[: len(text) - len(unit)].strip()
        try:
            value = int(float(number) * _SIZE_UNITS[unit]) if number else -1
        except ValueError:
            raise _fail(f, raw, origin) from None
        if value < 0:
            raise _fail(f, raw, origin)
        _check_range(f, value, raw, origin)
        return value
    return _to_int(f, raw, origin)


def _to_float(f: Field, raw: Any, origin: str) -> float:
    if isinstance(raw, bool):
        raise _fail(f, raw, origin)
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise _fail(f, raw, origin) from None
    if value != value:  # NaN
        raise _fail(f, raw, origin)
    _check_range(f, value, raw, origin)
    return value


def _to_bool(f: Field, raw: Any, origin: str) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise _fail(f, raw, origin)


def _to_str(f: Field, raw: Any, origin: str) -> str:
    if not isinstance(raw, str | Path):
        raise _fail(f, raw, origin)
    return str(raw)


def _to_choice(f: Field, raw: Any, origin: str) -> str:
    value = str(raw).strip().lower()
    if value not in f.choices:
        raise _fail(f, raw, origin)
    return value


def _to_dirs(f: Field, raw: Any, origin: str) -> tuple[dict[str, Any], ...]:
    if not isinstance(raw, list | tuple):
        raise _fail(f, raw, origin)
    out = []
    size_field = FIELDS_BY_KEY["storage.min_free_bytes"]
    for i, item in enumerate(raw):
        where = f"{origin}, storage.dirs[{i}]"
        if not isinstance(item, Mapping) or not isinstance(item.get("path"), str):
            raise _fail(f, item, where, "each entry needs a path")
        unknown = set(item) - {"path", "max_bytes", "min_free_bytes"}
        if unknown:
            raise _fail(f, item, where, f"unknown keys {sorted(unknown)}")
        entry: dict[str, Any] = {"path": item["path"]}
        for key in ("max_bytes", "min_free_bytes"):
            if key in item:
                entry[key] = _to_size(size_field, item[key], f"{where}.{key}")
        out.append(entry)
    return tuple(out)


def reference_markdown() -> str:
    """The configuration reference table of the README, generated from FIELDS."""
    rows = [
        "| setting (TOML) | environment | flag | default | allowed | meaning |",
        "|---|---|---|---|---|---|",
    ]
    for f in FIELDS:
        default = "" if f.default in ("", ()) else f.default
        env = f.env if f.kind != "dirs" else "(TOML only)"
        rows.append(
            f"| `{f.key}` | `{env}` | {f'`{f.flag}`' if f.flag else ''} | "
            f"{f'`{default}`' if default != '' else ''} | {f.allowed()} | {f.help} |"
        )
    return "\n".join(rows)
