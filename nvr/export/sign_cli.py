"""``nvr sign FILE``: a further signature on an export file (repeated signing, export.md B.7).

A later holder of the evidence (a court registry, an archive) seals the file as it received
it: a new ``sinf`` after the existing ones, over the whole file with every earlier signature
in it (:func:`nvr.export.signing.add_signature`). The file must verify before it is signed
again, so a damaged or altered file is never sealed a second time. ``nvr verify`` then
reports every signer.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from nvr.export.device_identity import device_identity, load_identity
from nvr.export.signing import SigningError, add_signature
from nvr.export.verify import load_trust, verify_file

if TYPE_CHECKING:
    from nvr.config import Config

EXIT_PROBLEMS = 1
EXIT_USAGE = 2


def add_parser(
    sub: argparse._SubParsersAction,  # type: ignore[type-arg]
    common: Callable[[argparse.ArgumentParser], None],
) -> None:
    """Register ``sign``; ``common`` adds --config/--data-dir/... (for the device key)."""
    sign = sub.add_parser(
        "sign", help="add a further signature (e.g. a receiving stamp) to an export file"
    )
    common(sign)
    sign.add_argument("file", metavar="FILE")
    sign.add_argument(
        "--key", metavar="PEM", help="the signer's RSA key (default: this device's export key)"
    )
    sign.add_argument(
        "--cert", metavar="PEM", help="the signer's certificate (PEM, then its intermediates)"
    )
    sign.add_argument(
        "--note", metavar="TEXT", help="user information sealed with the signature (auib)"
    )
    sign.add_argument(
        "-o", "--output", metavar="FILE", help="write the signed file here (default: replace FILE)"
    )
    sign.add_argument(
        "--trust",
        action="append",
        default=[],
        metavar="PEM",
        help="trust anchors for the earlier signers' CA chains (as for nvr verify)",
    )


def run(config: Config, args: argparse.Namespace) -> int:
    if bool(args.key) != bool(args.cert):
        print("nvr: sign: give both --key and --cert, or neither", file=sys.stderr)
        return EXIT_USAGE
    path = Path(args.file)
    if not path.is_file():
        print(f"nvr: sign: {path} is not a file", file=sys.stderr)
        return EXIT_USAGE
    identity = (
        load_identity(Path(args.key), Path(args.cert)) if args.key else device_identity(config)
    )
    try:
        trust = load_trust(args.trust)
    except ValueError as exc:
        print(f"nvr: sign: {exc}", file=sys.stderr)
        return EXIT_USAGE
    report = verify_file(path, trust=trust)
    if not report.ok:
        print(f"nvr: {path} does not verify, not signed: {report.reason}", file=sys.stderr)
        return EXIT_PROBLEMS
    output = Path(args.output) if args.output else None
    if output is not None and output.exists():
        print(f"nvr: sign: {output} already exists", file=sys.stderr)
        return EXIT_PROBLEMS
    try:
        done = add_signature(path, identity, output=output, user_info=args.note)
    except (SigningError, OSError) as exc:
        print(f"nvr: sign: {exc}", file=sys.stderr)
        return EXIT_PROBLEMS
    subject = identity.certificate.subject.rfc4514_string()
    print(f"added signature {done.index} to {done.path} ({done.size} bytes)")
    print(f"signer: {subject}, certificate SHA-256 {done.fingerprint}")
    return 0
