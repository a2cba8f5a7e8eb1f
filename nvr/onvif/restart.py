"""SystemReboot for a service: end the process so that systemd starts it again.

The unit says ``Restart=on-failure``, so a restart is a graceful shutdown followed by a
non-zero exit status (:data:`EXIT_RESTART`). The daemon does that through its
``request_restart()`` when it has one; otherwise we ask for a graceful stop with SIGTERM and
replace the final exit status at interpreter exit.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import Any, Final

log = logging.getLogger("nvr.onvif")

EXIT_RESTART: Final = 75
"""EX_TEMPFAIL: "try again"; any non-zero status makes systemd's Restart=on-failure act."""
RESTART_DELAY: Final = 0.5
"""Seconds between the SystemReboot response and the shutdown (lets the socket drain)."""


def _exit_for_restart() -> None:
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(EXIT_RESTART)


def _terminate_self() -> None:
    atexit.register(_exit_for_restart)
    os.kill(os.getpid(), signal.SIGTERM)


def restart_hook(daemon: Any) -> Callable[[], None]:
    """The default ``OnvifContext.reboot``: runs on the event loop after the response."""
    restart = getattr(daemon, "request_restart", None) or _terminate_self

    def reboot() -> None:
        log.warning("SystemReboot: restarting the nvr service")
        asyncio.get_running_loop().call_later(RESTART_DELAY, restart)

    return reboot
