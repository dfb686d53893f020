"""PostgreSQL stopped while upstream-shaped batches arrive: every answer is 201 or 503 with
Retry-After, and once the database is back and the client has sent every 503'd batch again as
it was (what upstream's client does), every event is stored exactly once.

A real gunicorn on a PostgreSQL server of this module's own, which the test stops and starts
(`pg_ctl stop -m fast`: the server ends every session, a batch's COMMIT included).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from testutils.events import EVENTS_BATCH_PATH, event_batch
from testutils.gunicorn import Gunicorn, Response, running_gunicorn
from testutils.temporary_postgres import TemporaryPostgres, temporary_postgres

THREADS = 4
EVENTS_PER_BATCH = 50
TYPES = ["gateway.signal.received", "aiagent.llm.request", "workflowexecution.workflow.started"]


@pytest.fixture(scope="module")
def postgres() -> Iterator[TemporaryPostgres]:
    with temporary_postgres(database="events_outage") as server:
        yield server


@pytest.fixture(scope="module")
def gunicorn(postgres: TemporaryPostgres) -> Iterator[Gunicorn]:
    with running_gunicorn(
        DATABASE_URL=postgres.url, DATABASE_POOL_SIZE=str(THREADS), GUNICORN_WORKERS="1", GUNICORN_THREADS=str(THREADS)
    ) as server:
        yield server


def _post(gunicorn: Gunicorn, batch: list[dict[str, Any]]) -> Response:
    return gunicorn.request("POST", EVENTS_BATCH_PATH, body=batch)


def _stored_correlation_ids(postgres: TemporaryPostgres) -> list[str]:
    with psycopg.connect(host=str(postgres.socket_dir), user="postgres", dbname=postgres.database) as db:
        return [row[0] for row in db.execute("SELECT correlation_id FROM audit_events").fetchall()]


@pytest.mark.real_clock
def test_a_database_outage_gives_only_503s_and_every_event_is_stored_once(gunicorn, postgres):
    gunicorn.wait_until("/readyz", 200)
    sent: list[tuple[list[dict[str, Any]], Response]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            batch = event_batch(TYPES * (EVENTS_PER_BATCH // len(TYPES)))
            answer = _post(gunicorn, batch)
            with lock:
                sent.append((batch, answer))

    threads = [threading.Thread(target=client) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(2)
        postgres.stop()
        time.sleep(4)
    finally:
        postgres.start()
        time.sleep(2)
        stop.set()
        for thread in threads:
            thread.join()

    statuses = {answer.status for _, answer in sent}
    assert statuses == {201, 503}, statuses
    refused = [(batch, answer) for batch, answer in sent if answer.status == 503]
    assert all(answer.headers["retry-after"].isdigit() for _, answer in refused)
    assert all(answer.headers["content-type"] == "application/problem+json" for _, answer in refused)
    # The client sends each refused batch again, as it was, until it is answered 201.
    for batch, _ in refused:
        for _ in range(20):
            if _post(gunicorn, batch).status == 201:
                break
            time.sleep(0.5)
        else:
            raise AssertionError("a batch was never stored after the database came back")

    expected = sorted(event["correlation_id"] for batch, _ in sent for event in batch)
    assert sorted(_stored_correlation_ids(postgres)) == expected  # each event exactly once
    acknowledged = [event_id for _, answer in sent if answer.status == 201 for event_id in answer.json()["event_ids"]]
    assert len(acknowledged) == len(set(acknowledged)) > 0
