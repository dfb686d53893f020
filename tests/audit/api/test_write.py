"""Each endpoint stores one audit row and one embedding row, atomically, and answers 201."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AUDIT_MODELS, AuditKind
from embeddings.models import IncidentEmbedding
from testutils.audit_rows import assert_problem, post_audit, table_counts
from testutils.factories import VALID_BODIES

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("kind", list(AuditKind))
def test_valid_body_stores_one_audit_row_and_one_embedding(api, kind):
    body = VALID_BODIES[kind]()
    before = table_counts()

    response = post_audit(api, kind, body)

    assert response.status_code == 201, response.content
    created = response.json()
    assert set(created) == {"id", "embeddingId", "embeddingStatus", "correlationId", "recordedAt"}
    assert created["embeddingStatus"] == "stored"
    assert created["correlationId"] == body["correlationId"]
    assert response["X-Correlation-ID"] == body["correlationId"]
    assert response["X-Request-ID"]

    after = table_counts()
    assert after[kind.value] == before[kind.value] + 1
    assert after["embeddings"] == before["embeddings"] + 1
    assert {k: v for k, v in after.items() if k not in (kind.value, "embeddings")} == {
        k: v for k, v in before.items() if k not in (kind.value, "embeddings")
    }

    record = AUDIT_MODELS[kind].objects.get(id=created["id"])
    assert record.payload == body
    assert record.correlation_id == body["correlationId"]
    assert record.actor == "local:unauthenticated"
    assert record.request_id == response["X-Request-ID"]
    assert dt.datetime.fromisoformat(created["recordedAt"]) == record.recorded_at
    assert len(record.content_sha256) == 64

    embedding = IncidentEmbedding.objects.get(id=created["embeddingId"])
    assert (embedding.audit_type, embedding.audit_id) == (kind.value, record.id)
    assert embedding.audit_recorded_at == record.recorded_at
    assert embedding.model == "all-MiniLM-L6-v2"
    assert embedding.dimensions == 384 == len(embedding.embedding)
    assert embedding.namespace == body["namespace"]
    assert len(embedding.input_sha256) == 64


def test_type_specific_columns_are_filled_from_the_body(api):
    body = VALID_BODIES[AuditKind.AI_ANALYSIS]()
    created = post_audit(api, AuditKind.AI_ANALYSIS, body).json()
    record = AUDIT_MODELS[AuditKind.AI_ANALYSIS].objects.get(id=created["id"])
    assert record.remediation_request_ref == body["remediationRequestRef"]
    assert record.root_cause == body["rootCause"]
    assert record.confidence == pytest.approx(body["confidence"])
    assert record.requires_approval is False
    embedding = IncidentEmbedding.objects.get(id=created["embeddingId"])
    assert embedding.remediation_request_id == body["remediationRequestRef"]
    assert embedding.root_cause == body["rootCause"]


def test_content_hash_covers_payload_time_and_actor(api):
    from audit.write.statements import fingerprint_json

    body = VALID_BODIES[AuditKind.REMEDIATION]()
    created = post_audit(api, AuditKind.REMEDIATION, body).json()
    record = AUDIT_MODELS[AuditKind.REMEDIATION].objects.get(id=created["id"])
    expected = hashlib.sha256(
        fingerprint_json({"payload": body, "recordedAt": record.recorded_at.isoformat(), "actor": record.actor})
    ).hexdigest()
    assert record.content_sha256 == expected


def test_non_ascii_text_is_stored_verbatim(api):
    body = VALID_BODIES[AuditKind.REMEDIATION](message="Mémoire épuisée — 内存不足 🚨\n\ttab ok")
    created = post_audit(api, AuditKind.REMEDIATION, body).json()
    record = AUDIT_MODELS[AuditKind.REMEDIATION].objects.get(id=created["id"])
    assert record.message == body["message"]


@pytest.mark.django_db(transaction=True)
def test_a_write_without_an_idempotency_key_is_one_statement(api):
    # The audit row and its embedding row travel as one statement, which commits on its own:
    # no BEGIN, no second INSERT, no COMMIT.
    assert post_audit(api, AuditKind.REMEDIATION, VALID_BODIES[AuditKind.REMEDIATION]()).status_code == 201
    with CaptureQueriesContext(connection) as queries:
        response = post_audit(api, AuditKind.WORKFLOW, VALID_BODIES[AuditKind.WORKFLOW]())
    assert response.status_code == 201
    assert len(queries.captured_queries) == 1
    assert queries.captured_queries[0]["sql"].startswith("WITH audit AS (INSERT INTO")
    assert IncidentEmbedding.objects.filter(id=response.json()["embeddingId"]).exists()


@pytest.mark.django_db(transaction=True)
def test_a_connection_the_server_closed_while_idle_is_replaced_without_failing_the_write(api):
    # The write path does without Django's per-request health check (a round trip per
    # request): a persistent connection that died while idle fails the statement before it
    # reaches the server, and the write is retried on a new connection.
    assert post_audit(api, AuditKind.REMEDIATION, VALID_BODIES[AuditKind.REMEDIATION]()).status_code == 201
    before = table_counts()
    backend = connection.connection.info.backend_pid
    with connection.get_new_connection(connection.get_connection_params()) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [backend])

    response = post_audit(api, AuditKind.REMEDIATION, VALID_BODIES[AuditKind.REMEDIATION]())

    assert response.status_code == 201, response.content
    assert connection.connection.info.backend_pid != backend
    after = table_counts()
    assert (after["remediation"], after["embeddings"]) == (before["remediation"] + 1, before["embeddings"] + 1)


def test_a_rejected_body_leaves_nothing_behind_for_the_next_one(api):
    # Validation reuses one serializer per thread and kind: each body is judged on its own.
    kind = AuditKind.WORKFLOW
    bad = VALID_BODIES[kind](workflowName=7, stepStatuses=[{"name": "increase-memory", "phase": "Nope"}])
    first = assert_problem(post_audit(api, kind, bad), 400)
    assert {error["field"] for error in first["errors"]} == {"workflowName", "stepStatuses[0].phase"}

    good = VALID_BODIES[kind]()
    created = post_audit(api, kind, good)
    assert created.status_code == 201, created.content
    assert AUDIT_MODELS[kind].objects.get(id=created.json()["id"]).payload == good

    # Fields valid, their combination not: the cross-field rules run, and only their errors show.
    third = assert_problem(post_audit(api, kind, VALID_BODIES[kind](stepCount=1)), 400)
    assert {error["field"] for error in third["errors"]} == {"currentStep", "completedCount", "stepStatuses"}


def test_the_write_statement_is_prepared_on_its_connection(api):
    # psycopg prepares a statement on its fifth use on a connection (DATABASE_PREPARED_STATEMENTS).
    for _ in range(6):
        assert post_audit(api, AuditKind.EXECUTION, VALID_BODIES[AuditKind.EXECUTION]()).status_code == 201
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert [statement for statement in prepared if statement.startswith('WITH audit AS (INSERT INTO "audit_execution"')]
