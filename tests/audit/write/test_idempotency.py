"""Idempotency-Key: replay, misuse, and two concurrent requests with the same key."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.test import Client

from audit.models import AUDIT_MODELS, AuditKind
from testutils.audit_rows import assert_problem, post_audit, table_counts
from testutils.factories import VALID_BODIES

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
