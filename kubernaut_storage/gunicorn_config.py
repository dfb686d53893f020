"""gunicorn configuration (`gunicorn -c kubernaut_storage/gunicorn_config.py kubernaut_storage.wsgi`).

gthread workers: a write spends most of its time waiting on the embedding provider and on
PostgreSQL, so a few processes with several threads each keep both cores busy without one
process (and one ONNX model copy) per concurrent request.
"""

from __future__ import annotations

import os
from typing import Any

bind = [os.environ.get("GUNICORN_BIND", "0.0.0.0:8080")]
worker_class = "gthread"
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
# The embedding call plus the transaction stay well under this; a stuck worker is restarted.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "25"))
keepalive = 5
# Each worker listens on its own SO_REUSEPORT socket, so the kernel spreads connections over
# the workers. With one shared socket, whichever worker wins the accept race keeps the
# connection for its keep-alive life: under wrk's 16 connections one worker of three got all
# 16 and the others none (docs/PERFORMANCE.md). Cost: a worker that exits drops the
# connections still waiting in its own accept queue.
reuse_port = os.environ.get("GUNICORN_REUSE_PORT", "true").lower() in ("1", "true", "yes")
accesslog = None  # one JSON line per request comes from the application's own logging
max_requests = 0


def on_starting(server: Any) -> None:
    """Start the embedded PostgreSQL in the master when DATABASE_URL is unset.

    The master then holds it for its whole life: workers come and go (restarts, reloads)
    without stopping the database, and it stops when gunicorn exits.
    """
    if os.environ.get("DATABASE_URL"):
        return
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kubernaut_storage.settings.local")
    django.setup(set_prefix=False)
