"""/readyz tells the truth about the database, and SIGTERM fails readiness before draining.

These tests stop and start a PostgreSQL server, so they use their own embedded server in a
temporary data directory (the shared test database is never disturbed), migrated like a real
deployment, behind a real gunicorn started with the repo's config.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest

from audit.models import AuditKind
from testutils.factories import VALID_BODIES
from testutils.gunicorn import Gunicorn, running_gunicorn
from testutils.temporary_postgres import TemporaryPostgres, temporary_postgres

DRAIN_DELAY_S = 3.0


@pytest.fixture(scope="module")
def postgres() -> Iterator[TemporaryPostgres]:
    with temporary_postgres(database="readyz") as server:
        yield server


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
