"""The ``nvr`` command: serve, migrate, fsck, user."""

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
    _common(serve)
    serve.add_argument("--http-port", metavar="N", help="HTTP port (default 8080)")
    serve.add_argument("--rtsp-port", metavar="N", help="RTSP port (default 8554)")
    serve.add_argument(
        "--demo", action="store_const", const=True, help="record the built-in simulated camera"
    )

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


def main(argv: Sequence[str] | None = None) -> int:
    from nvr.secretbox import SecretBoxError
    from nvr.users import UserError

    args = build_parser().parse_args(argv)
    try:
        config = _config(args)
        setup_logging(config["log_level"])
        if args.command == "serve":
            return cmd_serve(config)
        if args.command == "migrate":
            return cmd_migrate(config)
        if args.command == "fsck":
            return cmd_fsck(config, args.hash)
        return cmd_user(config, args)
    except CliError as exc:
        print(f"nvr: {exc}", file=sys.stderr)
        return exc.status
    except (ConfigError, DatabaseUrlError, DatabaseUnavailable, UserError, SecretBoxError) as exc:
        print(f"nvr: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
