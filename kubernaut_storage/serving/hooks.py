"""What gunicorn's hooks do (kubernaut_storage/gunicorn_config.py only wires them).

Kept out of the config file so the pieces can be imported and tested without importing the
config, which sets process-wide environment (PROMETHEUS_MULTIPROC_DIR) as a side effect.

* `auth_guard`: authentication off (AUTH_MODE=none) is allowed on loopback only, and said loudly.
* `multiproc_dir_prepare` / `worker_mark_dead`: prometheus_client's multiprocess mode, so
  counters add up across workers and across worker restarts.
* `drain_on_sigterm`: on SIGTERM readiness fails first; only after a delay does gunicorn stop
  accepting and let in-flight requests finish (its graceful_timeout).
"""

from __future__ import annotations

import ipaddress
import logging
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import FrameType
from typing import Any

Address = str | tuple[str, int] | tuple[str, int, int, int]

logger = logging.getLogger(__name__)


class UnsafeBindError(RuntimeError):
    """gunicorn turns a RuntimeError raised while starting into "Error: ..." and exit status 1."""


def is_loopback(address: Address | Any) -> bool:
    """True for 127.0.0.0/8, ::1, localhost and Unix sockets: reachable from this host only."""
    if isinstance(address, str):  # gunicorn passes Unix socket paths as plain strings
        return True
    host = str(address[0]).strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def format_address(address: Address | Any) -> str:
    if isinstance(address, str):
        return f"unix:{address}"
    host = str(address[0])
    return f"[{host}]:{address[1]}" if ":" in host else f"{host}:{address[1]}"


def auth_guard(*, auth_mode: str, addresses: Iterable[Address], log: Any) -> None:
    """Refuse to serve without authentication on anything but loopback; warn loudly on loopback."""
    if auth_mode != "none":
        return
    exposed = [format_address(address) for address in addresses if not is_loopback(address)]
    if exposed:
        message = (
            f"refusing to start: authentication is off (AUTH_MODE=none) and gunicorn would listen on "
            f"{', '.join(exposed)}. Bind to 127.0.0.1 (GUNICORN_BIND) or set AUTH_MODE=tokenreview."
        )
        log.error(message)
        raise UnsafeBindError(message)
    log.warning(
        "AUTHENTICATION IS OFF (AUTH_MODE=none): anyone who can reach %s can write audit records "
        "as %r. Local development only.",
        ", ".join(format_address(address) for address in addresses),
        "local:unauthenticated",
    )


def multiproc_dir_prepare(path: str) -> None:
    """Start from an empty PROMETHEUS_MULTIPROC_DIR, before any worker exists.

    Files left by a previous run would be summed into this run's counters (prometheus_client
    requires the directory to be wiped between runs).
    """
    directory = Path(path)
    if directory.exists():
        for stale in directory.glob("*.db"):
            stale.unlink()
    directory.mkdir(parents=True, exist_ok=True)


def worker_mark_dead(pid: int) -> None:
    """child_exit: drop a dead worker's live gauges; its counters stay in the pod's totals."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)


def runtime_dir_remove(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)


def drain_flag_clear(drain_file: str) -> None:
    Path(drain_file).unlink(missing_ok=True)


def drain_on_sigterm(*, drain_file: str, delay_s: float, stop: Callable[[], None], log: Any) -> None:
    """Install the master's SIGTERM handler: fail readiness now, stop gracefully `delay_s` later.

    `stop` must start gunicorn's own graceful shutdown (its queued SIGTERM handling): close
    the listeners, then give workers graceful_timeout to finish in-flight requests. A second
    SIGTERM during the delay stops at once; SIGINT and SIGQUIT keep their quick-stop meaning.
    Call from the master's main thread (signal handlers can only be set there).
    """
    previous = signal.getsignal(signal.SIGTERM)

    def handle(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, previous)  # the next SIGTERM goes straight to gunicorn
        # Workers answer /readyz with 503 "draining" from the moment this file exists.
        Path(drain_file).touch()
        threading.Thread(target=wait_then_stop, name="drain", daemon=True).start()

    def wait_then_stop() -> None:
        # Logging here, not in the signal handler: the handler may interrupt a log call.
        log.info("SIGTERM: readiness now fails (draining); stopping in %.1f s", delay_s)
        time.sleep(delay_s)
        stop()

    if delay_s > 0:
        signal.signal(signal.SIGTERM, handle)


def logging_config_for_gunicorn(*, level: str) -> dict[str, Any]:
    """gunicorn's logconfig_dict: the master's own lines in the same JSON shape as Django's."""
    from kubernaut_storage.observability.logs import logging_config

    return logging_config(level=level)
