"""Idempotency-Key: replay, misuse, and two concurrent requests with the same key."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from django.db import connection
from django.test import Client

from audit.models import AUDIT_MODELS, AuditKind
from testutils.audit_rows import assert_problem, post_audit, table_counts
from testutils.factories import VALID_BODIES
from testutils.metrics import MetricDelta

KIND = AuditKind.WORKFLOW


@pytest.mark.django_db
def test_same_key_same_body_replays_the_original_201_and_writes_nothing(api):
    body = VALID_BODIES[KIND]()
    first = post_audit(api, KIND, body, **{"Idempotency-Key": "key-1"})
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first
    after_first = table_counts()

    again = post_audit(api, KIND, body, **{"Idempotency-Key": "key-1"})

    assert again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert table_counts() == after_first


@pytest.mark.django_db
def test_same_key_different_body_is_422(api):
    body = VALID_BODIES[KIND]()
    assert post_audit(api, KIND, body, **{"Idempotency-Key": "key-2"}).status_code == 201
    before = table_counts()
    assert_problem(post_audit(api, KIND, {**body, "phase": "Failed"}, **{"Idempotency-Key": "key-2"}), 422)
    assert table_counts() == before


@pytest.mark.django_db
def test_key_is_scoped_to_the_endpoint(api):
    assert post_audit(api, KIND, VALID_BODIES[KIND](), **{"Idempotency-Key": "shared"}).status_code == 201
    other = post_audit(api, AuditKind.EXECUTION, VALID_BODIES[AuditKind.EXECUTION](), **{"Idempotency-Key": "shared"})
    assert other.status_code == 201
    assert "Idempotent-Replayed" not in other


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_key_store_exactly_one_row():
    body = VALID_BODIES[KIND]()
    barrier = threading.Barrier(4)
    responses = []

    def send():
        barrier.wait()
        try:
            responses.append(post_audit(Client(), KIND, body, **{"Idempotency-Key": "race"}))
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert AUDIT_MODELS[KIND].objects.filter(correlation_id=body["correlationId"]).count() == 1
    statuses = sorted(response.status_code for response in responses)
    assert set(statuses) <= {201, 409}
    created = [response.json() for response in responses if response.status_code == 201]
    assert len({item["id"] for item in created}) == 1
    assert sum(1 for r in responses if r.status_code == 201 and "Idempotent-Replayed" not in r) == 1


@pytest.mark.django_db(transaction=True)
def test_a_key_planted_while_the_write_is_in_flight_does_not_suppress_it():
    """The key is free when the request looks it up; a row planted under it commits while the
    request's claim waits for it: the request is stored anyway, without the key, and counted."""
    body = VALID_BODIES[KIND]()
    settings = connection.settings_dict
    planter = psycopg.connect(host=settings["HOST"], user=settings["USER"], dbname=settings["NAME"])
    planter.execute(
        "INSERT INTO audit_idempotency_keys (actor, kind, key, request_sha256, response_body, created_at)"
        " VALUES ('local:unauthenticated', %s, 'raced', %s, '{\"id\": 1}', now())",
        [KIND.value, "0" * 64],
    )

    def commit_once_the_claim_waits() -> None:
        with psycopg.connect(host=settings["HOST"], user=settings["USER"], dbname=settings["NAME"]) as watcher:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                waiting = watcher.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
                ).fetchone()
                watcher.rollback()
                if waiting and waiting[0]:
                    break
                time.sleep(0.02)
        planter.commit()

    committer = threading.Thread(target=commit_once_the_claim_waits)
    committer.start()
    anomalies = MetricDelta(("kubernaut_idempotency_key_anomalies_total", {}))
    try:
        response = post_audit(Client(), KIND, body, **{"Idempotency-Key": "raced"})
    finally:
        committer.join()
        planter.close()

    assert response.status_code == 201, response.content
    assert "Idempotent-Replayed" not in response
    assert AUDIT_MODELS[KIND].objects.filter(id=response.json()["id"], correlation_id=body["correlationId"]).exists()
    assert anomalies.of("kubernaut_idempotency_key_anomalies_total") == 1
