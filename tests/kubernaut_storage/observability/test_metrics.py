"""Counters the write path keeps in-process (the cross-worker sums: test_metrics_gunicorn.py)."""

from __future__ import annotations

import pytest
from django.db import connection
from prometheus_client import REGISTRY

from audit.models import AuditKind
from kubernaut_storage.database.errors import with_db_retries
from testutils.audit_rows import post_audit
from testutils.factories import VALID_BODIES


def counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.django_db(transaction=True)
def test_a_retried_transaction_is_counted():
    before = counter("kubernaut_db_retries_total")
    attempts = []

    def operation():
        attempts.append(1)
        with connection.cursor() as cursor:
            if len(attempts) == 1:
                cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")  # a real lost connection
            cursor.execute("SELECT 1")
            return cursor.fetchone()[0]

    assert with_db_retries(operation, sleep=lambda _: None) == 1
    assert counter("kubernaut_db_retries_total") - before == 1


@pytest.mark.django_db
def test_created_and_replayed_writes_are_told_apart(api):
    labels = {"kind": "execution"}
    created = counter("kubernaut_audit_writes_total", outcome="created", **labels)
    replayed = counter("kubernaut_audit_writes_total", outcome="replayed", **labels)
    body = VALID_BODIES[AuditKind.EXECUTION]()

    for _ in range(3):
        assert post_audit(api, AuditKind.EXECUTION, body, **{"Idempotency-Key": "k-1"}).status_code == 201

    assert counter("kubernaut_audit_writes_total", outcome="created", **labels) - created == 1
    assert counter("kubernaut_audit_writes_total", outcome="replayed", **labels) - replayed == 2
