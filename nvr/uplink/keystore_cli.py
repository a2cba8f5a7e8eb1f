"""``nvr keystore``: the operator fills the uplink keystore the ONVIF Uplink service refers to.

``add-certificate ID --cert PEM --key PEM``, ``add-trust POLICY --ca PEM``,
``add-authorization-server TOKEN --url URL --client-id ID (--client-secret S |
--client-secret-stdin) [--scope S] [--ca PEM]``, ``list``, ``remove KIND ID``. Errors name
the option at fault.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final

from nvr.uplink.keystore import (
    AUTHORIZATION_SERVERS,
    CERTIFICATES,
    TRUST,
    FileKeystore,
    KeystoreError,
)

if TYPE_CHECKING:
    from nvr.config import Config

_KINDS: Final = {
    "certificate": CERTIFICATES,
    "trust": TRUST,
    "authorization-server": AUTHORIZATION_SERVERS,
}
_FLAGS: Final = {
    "cert": "--cert",
    "key": "--key",
    "ca": "--ca",
    "url": "--url",
    "client-id": "--client-id",
    "id": "ID",
    "token": "TOKEN",
}


def add_parser(
    sub: argparse._SubParsersAction, common: Callable[[argparse.ArgumentParser], None]
) -> None:  # type: ignore[type-arg]
    """Register ``keystore`` and its actions; ``common`` adds --config/--data-dir/…"""
    keystore = sub.add_parser(
        "keystore", help="manage the uplink keystore (certificates, CAs, OAuth2)"
    )
    actions = keystore.add_subparsers(dest="keystore_command", required=True, metavar="ACTION")

    cert = actions.add_parser("add-certificate", help="add a client certificate for mTLS")
    cert.add_argument("id", metavar="ID", help="the CertificateID uplinks refer to")
    cert.add_argument("--cert", required=True, metavar="PEM", help="certificate chain, leaf first")
    cert.add_argument("--key", required=True, metavar="PEM", help="its unencrypted private key")

    trust = actions.add_parser("add-trust", help="add the CAs of a certificate validation policy")
    trust.add_argument("id", metavar="POLICY", help="the CertPathValidationPolicyID")
    trust.add_argument("--ca", required=True, metavar="PEM", help="trusted CA certificates")

    server = actions.add_parser(
        "add-authorization-server", help="add an OAuth2 server for AccessToken uplinks"
    )
    server.add_argument("id", metavar="TOKEN", help="the AuthorizationServer token")
    server.add_argument("--url", required=True, help="token endpoint (https://…)")
    server.add_argument("--client-id", required=True)
    secret = server.add_mutually_exclusive_group(required=True)
    secret.add_argument("--client-secret", metavar="SECRET")
    secret.add_argument(
        "--client-secret-stdin", action="store_true", help="read the secret from standard input"
    )
    server.add_argument("--scope")
    server.add_argument("--ca", metavar="PEM", help="CAs of the token endpoint (default: system)")

    listing = actions.add_parser("list", help="list the keystore's entries")

    remove = actions.add_parser("remove", help="remove an entry")
    remove.add_argument("kind", choices=sorted(_KINDS))
    remove.add_argument("id", metavar="ID")
    for p in (cert, trust, server, listing, remove):
        common(p)


def _read(path: str, flag: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise KeystoreError(f"{flag} {path}: {exc.strerror}") from None


def _secret(args: argparse.Namespace) -> str:
    if not args.client_secret_stdin:
        return str(args.client_secret)
    line = sys.stdin.readline()
    return line[:-1] if line.endswith("\n") else line


def _run(store: FileKeystore, args: argparse.Namespace) -> int:
    command = args.keystore_command
    if command == "add-certificate":
        leaf = store.add_certificate(args.id, _read(args.cert, "--cert"), _read(args.key, "--key"))
        print(f"certificate {args.id} added ({leaf.subject.rfc4514_string()})")
    elif command == "add-trust":
        certs = store.add_trust(args.id, _read(args.ca, "--ca"))
        print(f"trust policy {args.id} added ({len(certs)} certificate(s))")
    elif command == "add-authorization-server":
        ca = _read(args.ca, "--ca") if args.ca else None
        store.add_authorization_server(
            args.id, args.url, args.client_id, _secret(args), args.scope, ca
        )
        print(f"authorization server {args.id} added")
    elif command == "list":
        listing = store.list()
        for kind, names in (
            ("certificate", listing.certificates),
            ("trust", listing.trust),
            ("authorization-server", listing.authorization_servers),
        ):
            for name in names:
                print(f"{kind}\t{name}")
    else:
        if not store.remove(_KINDS[args.kind], args.id):
            raise KeystoreError(f"no {args.kind} {args.id!r} in {store.root}")
        print(f"{args.kind} {args.id} removed")
    return 0


def run(config: Config, args: argparse.Namespace) -> int:
    """Carry out one ``nvr keystore`` action; KeystoreError says what is wrong and where."""
    try:
        return _run(FileKeystore.for_config(config), args)
    except KeystoreError as exc:
        if exc.field is None:
            raise
        raise KeystoreError(f"{_FLAGS.get(exc.field, exc.field)}: {exc}") from None


__all__ = ["add_parser", "run"]
