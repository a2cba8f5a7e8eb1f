"""The ``nvr`` command: serve, demo, migrate, fsck, user, export, verify, sign, keystore."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Sequence
from typing import Any

from nvr import __version__
from nvr.config import Config, ConfigError, load
from nvr.db.engine import DatabaseUrlError, make_engine, make_sessionmaker
from nvr.db.health import DatabaseUnavailable, check
from nvr.logging_setup import setup_logging

EXIT_USAGE = 2
EXIT_PROBLEMS = 1


class CliError(Exception):
    """A failure to report as one line on stderr, with an exit status."""

    def __init__(self, message: str, status: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.status = status


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="TOML configuration file")
    p.add_argument("--data-dir", metavar="DIR", help="data folder (default ./nvr-data)")
    p.add_argument("--database-url", metavar="URL", help="database (default SQLite in data dir)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nvr", description="ONVIF network video recorder")
    parser.add_argument("--version", action="version", version=f"nvr {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the daemon")
    demo = sub.add_parser(
        "demo", help="run the daemon recording the simulated camera (serve --demo)"
    )
    for p in (serve, demo):
        _common(p)
        p.add_argument("--http-port", metavar="N", help="HTTP port (default 8080)")
        p.add_argument("--rtsp-port", metavar="N", help="RTSP port (default 8554)")
    serve.add_argument(
        "--demo",
        action="store_const",
        const=True,
        help="serve the built-in simulated camera at rtsp://host:port/demo and record it",
    )
    demo.set_defaults(demo=True)

    migrate = sub.add_parser("migrate", help="bring the database schema up to date")
    _common(migrate)

    fsck = sub.add_parser("fsck", help="check media files against the index")
    _common(fsck)
    fsck.add_argument("--hash", action="store_true", help="verify checksums (reads all data)")

    user = sub.add_parser("user", help="manage ONVIF users")
    user_sub = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    add = user_sub.add_parser("add", help="create a user")
    _common(add)
    add.add_argument("name")
    add.add_argument("--level", required=True, help="administrator, operator or user")
    add.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    lst = user_sub.add_parser("list", help="list users")
    _common(lst)
    delete = user_sub.add_parser("delete", help="delete a user")
    _common(delete)
    delete.add_argument("name")

    export = sub.add_parser("export", help="export a recording as a signed ONVIF export file")
    _common(export)
    export.add_argument("--recording", required=True, metavar="TOKEN")
    export.add_argument("--from", dest="start", metavar="TIME", help="ISO 8601 UTC start")
    export.add_argument("--to", dest="end", metavar="TIME", help="ISO 8601 UTC end")
    export.add_argument(
        "--tracks", metavar="TOKENS", help="comma-separated track tokens (default: all)"
    )
    export.add_argument("-o", "--output", required=True, metavar="FILE")
    export.add_argument("--operator", help="operator name recorded in the file (default: you)")
    export.add_argument("--location", metavar="LAT,LON[,ALT]", help="camera view location")
    export.add_argument("--overwrite", action="store_true", help="replace an existing FILE")

    verify = sub.add_parser("verify", help="check an export file's structure and signatures")
    _common(verify)
    verify.add_argument("file", metavar="FILE")
    verify.add_argument(
        "--trust",
        action="append",
        default=[],
        metavar="PEM",
        help="trust anchor certificates (and intermediates) for signers with a CA chain",
    )
    from nvr.uplink.keystore_cli import add_parser as add_keystore_parser

    add_keystore_parser(sub, _common)
    from nvr.export.sign_cli import add_parser as add_sign_parser

    add_sign_parser(sub, _common)
    return parser


def _config(args: argparse.Namespace) -> Config:
    flags: dict[str, Any] = {
        "data_dir": args.data_dir,
        "database_url": args.database_url,
        "http.port": getattr(args, "http_port", None),
        "rtsp.port": getattr(args, "rtsp_port", None),
        "demo": getattr(args, "demo", None),
    }
    return load(config_file=args.config, flags=flags)


def _engine(config: Config):  # type: ignore[no-untyped-def]
    engine = make_engine(config.database_url)
    check(engine)
    return engine


def cmd_serve(config: Config) -> int:
    from nvr.app import run

    return run(config)


def cmd_migrate(config: Config) -> int:
    from nvr.db.migrate import upgrade

    config.data_dir.mkdir(parents=True, exist_ok=True)
    engine = _engine(config)
    before, after = upgrade(engine)
    if before == after:
        print(f"database is up to date (revision {after})")
    else:
        print(f"database migrated from {before or 'empty'} to revision {after}")
    return 0


def cmd_fsck(config: Config, full_hash: bool) -> int:
    from nvr.app import open_store_offline
    from nvr.store.fsck import check as fsck_check

    store = open_store_offline(config, _engine(config))
    try:
        report = fsck_check(store, hash=full_hash)
    finally:
        store.close()
    print(report)
    return EXIT_PROBLEMS if report.problems else 0


def _users(config: Config):  # type: ignore[no-untyped-def]
    from nvr.db.migrate import upgrade
    from nvr.secretbox import SecretBox
    from nvr.users import UserDirectory

    config.data_dir.mkdir(parents=True, exist_ok=True)
    engine = _engine(config)
    upgrade(engine)
    return UserDirectory(make_sessionmaker(engine), SecretBox.from_file(config.key_file))


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
        if not password:
            raise CliError("no password on standard input")
        return password
    if not sys.stdin.isatty():
        raise CliError("no terminal to ask for a password: use --password-stdin")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Repeat password: "):
        raise CliError("the passwords do not match")
    return first


def cmd_user(config: Config, args: argparse.Namespace) -> int:
    from nvr.users import UserLevel

    if args.user_command == "add":
        level = UserLevel.parse(args.level)
        password = _read_password(args.password_stdin)
        _users(config).add(args.name, level, password)
        print(f"user {args.name} added ({level.value})")
    elif args.user_command == "list":
        for info in _users(config).list():
            print(f"{info.name}\t{info.level.value}")
    else:
        _users(config).delete(args.name)
        print(f"user {args.name} deleted")
    return 0


def parse_time(text: str) -> int:
    """ISO 8601 to Unix microseconds, exactly; a time without offset is UTC."""
    from nvr.search.timefmt import parse_us

    try:
        return parse_us(text)
    except ValueError:
        raise CliError(f"bad time {text!r}: use ISO 8601, e.g. 2025-06-15T15:06:40Z") from None


def cmd_export(config: Config, args: argparse.Namespace) -> int:
    from pathlib import Path

    from nvr.app import open_store_offline
    from nvr.export.boxes import Location
    from nvr.export.device_identity import device_identity
    from nvr.export.job import ExportCancelled, ExportError, ExportJob, ExportRequest
    from nvr.export.progress import ProgressPrinter
    from nvr.export.unit import local_unit
    from nvr.export.verify import iso

    location = None
    if args.location:
        try:
            location = Location.from_degrees(*args.location.split(","))
        except (TypeError, ValueError) as exc:
            raise CliError(f"bad --location {args.location!r}: {exc}") from None
    request = ExportRequest(
        recording=args.recording,
        start_us=parse_time(args.start) if args.start else None,
        end_us=parse_time(args.end) if args.end else None,
        output=Path(args.output).resolve(),
        tracks=tuple(t for t in (args.tracks or "").split(",") if t),
        operator=args.operator if args.operator is not None else getpass.getuser(),
        location=location,
        overwrite=args.overwrite,
    )
    identity = device_identity(config)
    store = open_store_offline(config, _engine(config))
    printer = ProgressPrinter(sys.stderr)
    job = ExportJob(store, request, identity, local_unit(config), on_progress=printer)
    try:
        result = job.run()
    except ExportCancelled as exc:
        raise CliError(str(exc), EXIT_PROBLEMS) from None
    except ExportError as exc:
        printer.done()
        raise CliError(f"export failed: {exc}", EXIT_PROBLEMS) from None
    finally:
        store.close()
    printer.done()
    print(f"wrote {result.path} ({result.size} bytes)")
    print(f"range: {iso(result.start_us)} to {iso(result.end_us)}")
    for t in result.tracks:
        print(f"track {t.track_id}: {t.token} {'/'.join(t.codecs)}, {t.samples} samples")
    for token in result.skipped:
        print(f"track {token}: no data in the range, left out")
    print(f"signed by certificate SHA-256 {result.fingerprint}")
    return 0


def _own_fingerprint(config: Config) -> str | None:
    """SHA-256 fingerprint of this device's export certificate, if it has one."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    from nvr.export.device_identity import IdentityError, identity_paths

    try:
        _, cert_path, _ = identity_paths(config)
        own = x509.load_pem_x509_certificates(cert_path.read_bytes())[0]
    except (OSError, ValueError, IdentityError):
        return None
    return own.fingerprint(hashes.SHA256()).hex()


def cmd_verify(config: Config, args: argparse.Namespace) -> int:
    from pathlib import Path

    from nvr.export.verify import load_trust, verify_file

    try:
        trust = load_trust(args.trust)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    report = verify_file(Path(args.file), trust=trust)
    for line in report.lines():
        print(line)
    mine = _own_fingerprint(config)
    for s in report.signers:
        if mine and s.certificate is not None and s.certificate.fingerprint == mine:
            print(f"signature {s.number} was made with this device's certificate")
    if not report.ok:
        print(f"nvr: {args.file}: verification failed: {report.reason}", file=sys.stderr)
        return EXIT_PROBLEMS
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from nvr.export.device_identity import IdentityError
    from nvr.secretbox import SecretBoxError
    from nvr.uplink.keystore import KeystoreError
    from nvr.users import UserError

    args = build_parser().parse_args(argv)
    try:
        config = _config(args)
        setup_logging(config["log_level"])
        if args.command in ("serve", "demo"):
            return cmd_serve(config)
        if args.command == "migrate":
            return cmd_migrate(config)
        if args.command == "fsck":
            return cmd_fsck(config, args.hash)
        if args.command == "export":
            return cmd_export(config, args)
        if args.command == "verify":
            return cmd_verify(config, args)
        if args.command == "sign":
            from nvr.export.sign_cli import run as cmd_sign

            return cmd_sign(config, args)
        if args.command == "keystore":
            from nvr.uplink.keystore_cli import run as cmd_keystore

            return cmd_keystore(config, args)
        return cmd_user(config, args)
    except CliError as exc:
        print(f"nvr: {exc}", file=sys.stderr)
        return exc.status
    except (
        ConfigError,
        DatabaseUrlError,
        DatabaseUnavailable,
        UserError,
        SecretBoxError,
        IdentityError,
        KeystoreError,
    ) as exc:
        print(f"nvr: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
