"""The WSDLs we publish (spyne's ``?wsdl``), also kept in the repository under ``wsdl/``.

``python -m nvr.onvif.publish`` regenerates ``wsdl/*.wsdl``; a test fails when a file differs
from what the code generates, so interface changes show up in review. The files carry a
fixed example address; a running daemon answers ``?wsdl`` with its real one.
``python -m nvr.onvif.publish --operations FILE.wsdl`` prints the operation list of an
official WSDL in the form the service modules keep it (see device_policy.py).
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Final

from nvr.onvif.device import DEVICE_PATH, device_service
from nvr.onvif.events_service import EVENTS_PATH, events_service
from nvr.onvif.operations import wsdl_operations
from nvr.onvif.receiver import RECEIVER_PATH, receiver_service
from nvr.onvif.recording import RECORDING_PATH, recording_service
from nvr.onvif.replay import REPLAY_PATH, replay_service
from nvr.onvif.soap import SoapService
from nvr.onvif.uplink import UPLINK_PATH, uplink_service
from nvr.search.service import SEARCH_PATH, search_service

EXAMPLE_BASE_URL: Final = "http://localhost:8080"
WSDL_DIR: Final = Path(__file__).resolve().parents[2] / "wsdl"
REGENERATE: Final = ".venv/bin/python -m nvr.onvif.publish"

# file name → (service definition, endpoint path); later services add themselves here.
PUBLISHED: Final[dict[str, tuple[Callable[[], SoapService], str]]] = {
    "device.wsdl": (device_service, DEVICE_PATH),
    "events.wsdl": (events_service, EVENTS_PATH),
    "receiver.wsdl": (receiver_service, RECEIVER_PATH),
    "recording.wsdl": (recording_service, RECORDING_PATH),
    "replay.wsdl": (replay_service, REPLAY_PATH),
    "search.wsdl": (search_service, SEARCH_PATH),
    "uplink.wsdl": (uplink_service, UPLINK_PATH),
}


def generate() -> dict[str, bytes]:
    return {
        name: service().wsdl(EXAMPLE_BASE_URL + path) for name, (service, path) in PUBLISHED.items()
    }


def print_operations(wsdl: str) -> None:
    print('_OFFICIAL: Final = """')
    print(textwrap.fill(" ".join(wsdl_operations(wsdl)), 99))
    print('"""')


def main(argv: list[str]) -> int:
    if argv[:1] == ["--operations"] and len(argv) == 2:
        print_operations(argv[1])
        return 0
    if argv:
        print(f"usage: {REGENERATE} [--operations FILE.wsdl]", file=sys.stderr)
        return 2
    WSDL_DIR.mkdir(exist_ok=True)
    for name, content in generate().items():
        (WSDL_DIR / name).write_bytes(content)
        print(f"wrote {WSDL_DIR / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
