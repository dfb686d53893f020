"""gunicorn configuration (`gunicorn -c kubernaut_storage/gunicorn_config.py kubernaut_storage.wsgi`).

Workers: gthread, 3 processes x 24 threads by default. A write waits on the embedding provider
(an HTTP call, or the local ONNX model which releases the GIL while it computes) and on
PostgreSQL, so threads overlap those waits: sync workers serve one call each (2 sync workers:
16 writes/s against a 100 ms embedding API). One process more than the 2 cores keeps the cores
busy while a process's threads queue for its GIL (3x8 did a median 90 writes/s against 69 for
2x8, docs/OPERATIONS.md). Threads: Little's law. 300 writes/s that each wait ~200 ms for the
embedding API are 60 in flight, so 3 x 24; 3 x 8 capped the remote benchmark near 200 writes/s
with its CPU idle (docs/PERFORMANCE.md). Threads hold no database connection while they wait:
each process shares a pool of DATABASE_POOL_SIZE connections.

The master also: owns the embedded PostgreSQL when DATABASE_URL is unset; refuses to run
without authentication on a non-loopback address; serves /metrics on port 9090 for all workers
(prometheus_client multiprocess mode); and on SIGTERM fails readiness before it drains.
Hook bodies live in kubernaut_storage/serving/hooks.py.
"""

from __future__ import annotations

import os
import signal
import tempfile
from typing import Any

from kubernaut_storage.serving import hooks


def _flag(value: str) -> bool:
    return value.lower() in ("1", "true", "yes")


# Everything this file takes from the environment, read here once (gunicorn loads this file
# before Django's settings exist; the README's configuration table lists every variable).
_env = os.environ
_bind = _env.get("GUNICORN_BIND", "0.0.0.0:8080")
_workers = int(_env.get("GUNICORN_WORKERS", "3"))
_threads = int(_env.get("GUNICORN_THREADS", "24"))
_timeout_s = int(_env.get("GUNICORN_TIMEOUT", "30"))
_graceful_timeout_s = int(_env.get("GUNICORN_GRACEFUL_TIMEOUT", "25"))
_reuse_port = _flag(_env.get("GUNICORN_REUSE_PORT", "true"))
_worker_tmp_dir = _env.get("GUNICORN_WORKER_TMP_DIR") or None
_metrics_bind = _env.get("METRICS_BIND", "0.0.0.0:9090")
_metrics_token = _env.get("METRICS_TOKEN") or None
# Seconds between SIGTERM (readiness fails) and closing the listeners.
_drain_delay_s = float(_env.get("GUNICORN_DRAIN_DELAY_SECONDS") or 5.0)
_log_level = _env.get("LOG_LEVEL", "INFO")
# A connection's time to deliver a request head (and a body up to 1 MiB) before it is closed.
_request_read_timeout_s = float(_env.get("GUNICORN_REQUEST_READ_TIMEOUT_SECONDS") or 10.0)
# Open connections per worker; at the bound the longest-idle one is closed for each new one.
_worker_connections = int(_env.get("GUNICORN_WORKER_CONNECTIONS") or 1000)
# Peers whose X-Forwarded-* / SCRIPT_NAME headers gunicorn believes: none unless configured
# (gunicorn's default trusts loopback, so any sidecar could rewrite the admin's URLs).
_forwarded_allow_ips = _env.get("GUNICORN_FORWARDED_ALLOW_IPS", "")

# Process-wide state shared by the master and its workers, created before any worker forks:
# the per-process metric files and the drain flag. Set in the environment because workers
# inherit it and prometheus_client reads PROMETHEUS_MULTIPROC_DIR when it is first imported.
_created_runtime_dir = "KUBERNAUT_RUNTIME_DIR" not in _env
_runtime_dir = _env.setdefault(
    "KUBERNAUT_RUNTIME_DIR",
    # /tmp is an emptyDir in the pod (read-only root filesystem); see k8s/base/deployment.yaml.
    tempfile.mkdtemp(prefix="kubernaut-storage-") if _created_runtime_dir else "",
)
_multiproc_dir = _env.setdefault("PROMETHEUS_MULTIPROC_DIR", os.path.join(_runtime_dir, "metrics"))
_drain_file = _env.setdefault("KUBERNAUT_DRAIN_FILE", os.path.join(_runtime_dir, "draining"))
# The same settings module for the master (auth guard, embedded database) and the workers.
_env.setdefault("DJANGO_SETTINGS_MODULE", "kubernaut_storage.settings.local")

bind = [_bind]
# gthread, but every read of a request ends by a deadline, and a request is read in the event
# loop until a thread can serve it from memory: slow clients cannot hold the threads, and idle
# connections beyond the bound make room for new ones (kubernaut_storage/serving/worker.py).
worker_class = "kubernaut_storage.serving.worker.DeadlineThreadWorker"
workers = _workers
threads = _threads
# An idle connection costs a worker a few KB and no thread; beyond this many a new one closes the
# one idle longest, so a flood of idle connections never keeps a probe or a writer waiting.
worker_connections = _worker_connections
# The embedding call plus the transaction stay well under this; a stuck worker is restarted.
timeout = _timeout_s
# In-flight requests get this long after the listeners close (k8s: fits in
# terminationGracePeriodSeconds together with the drain delay; docs/OPERATIONS.md).
graceful_timeout = _graceful_timeout_s
# An idle kept-alive connection is closed after this; its next request gets the same read
# deadline as a new connection's.
keepalive = 5
forwarded_allow_ips = _forwarded_allow_ips
# Each worker listens on its own SO_REUSEPORT socket, so the kernel spreads connections over
# the workers. With one shared socket, whichever worker wins the accept race keeps the
# connection for its keep-alive life: under wrk's 16 connections one worker of three got all
# 16 and the others none (docs/PERFORMANCE.md). Cost: a worker that exits drops the
# connections still waiting in its own accept queue.
reuse_port = _reuse_port
max_requests = 0
# Heartbeat files on tmpfs: on a disk-backed /tmp a slow fsync can look like a hung worker.
worker_tmp_dir = _worker_tmp_dir
# No `gunicornc` control socket: nothing uses it, and its default path ($HOME/.gunicorn) is
# shared by every gunicorn of the user and not writable with a read-only root filesystem.
control_socket_disable = True
accesslog = None  # one JSON line per request comes from RequestLogMiddleware
logconfig_dict = hooks.logging_config_for_gunicorn(level=_log_level)


def on_starting(server: Any) -> None:
    """Master, before listening: settings, the embedded database, auth guard, metrics dir, the
    OpenAPI document.

    Without DATABASE_URL the embedded PostgreSQL is started here, in the master, which then
    holds it for its whole life: workers come and go without stopping it. (A worker that
    started it on its first connection would stop it when it exits.)
    """
    import django
    from django.conf import settings
    from django.db import connections

    from kubernaut_storage.database.base import embedded_host_ensure

    # Before django.setup(): importing the apps creates the label-less metrics, whose
    # multiprocess value files must have their directory already.
    hooks.multiproc_dir_prepare(_multiproc_dir)
    django.setup(set_prefix=False)
    embedded_host_ensure(connections["default"].settings_dict)
    try:
        hooks.auth_guard(auth_mode=settings.AUTH_MODE, addresses=server.cfg.address, log=server.log)
    except hooks.UnsafeBindError:
        if _created_runtime_dir:  # on_exit does not run for a refused start
            hooks.runtime_dir_remove(_runtime_dir)
        raise
    hooks.drain_flag_clear(_drain_file)
    # Once for every worker, before any exists: generated per request it cost ~50 ms of CPU,
    # and concurrent generations on a fresh worker raced into 500s.
    from kubernaut_storage.http.openapi import openapi_document_prepare  # needs the apps loaded

    openapi_document_prepare()
    # State lives on the arbiter: a SIGHUP reload re-executes this file, the arbiter stays.
    server.kubernaut_runtime_dir = _runtime_dir if _created_runtime_dir else None
    server.kubernaut_metrics = None


def when_ready(server: Any) -> None:
    """Master, listening: serve the pod's metrics on 9090 and make SIGTERM drain first."""
    from kubernaut_storage.serving.metrics_server import MetricsServer

    host, _, port = _metrics_bind.rpartition(":")
    server.kubernaut_metrics = MetricsServer(
        host=host.strip("[]"), port=int(port), multiproc_dir=_multiproc_dir, token=_metrics_token
    )
    server.kubernaut_metrics.start()
    server.log.info(
        "metrics on http://%s/metrics (%s)", _metrics_bind, "bearer token required" if _metrics_token else "no auth"
    )
    hooks.drain_on_sigterm(
        drain_file=_drain_file,
        delay_s=_drain_delay_s,
        stop=lambda: server.signal(signal.SIGTERM, None),
        log=server.log,
    )


def post_fork(server: Any, worker: Any) -> None:
    worker.read_timeout_s = _request_read_timeout_s
    # The worker inherited the master's metrics socket; only the master may hold it.
    if server.kubernaut_metrics is not None:
        server.kubernaut_metrics.close_inherited()


def child_exit(server: Any, worker: Any) -> None:
    hooks.worker_mark_dead(worker.pid)


def on_exit(server: Any) -> None:
    if server.kubernaut_metrics is not None:
        server.kubernaut_metrics.close()
    hooks.drain_flag_clear(_drain_file)
    if server.kubernaut_runtime_dir:
        hooks.runtime_dir_remove(server.kubernaut_runtime_dir)
