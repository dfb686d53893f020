"""Each endpoint stores one audit row and one embedding row, atomically, and answers 201."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest

from audit.models import AUDIT_MODELS, AuditKind
from embeddings.models import IncidentEmbedding
from tests.factories import VALID_BODIES
from tests.support.audit_rows import post_audit, table_counts

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
    from audit.services import canonical_json

    body = VALID_BODIES[AuditKind.REMEDIATION]()
    created = post_audit(api, AuditKind.REMEDIATION, body).json()
    record = AUDIT_MODELS[AuditKind.REMEDIATION].objects.get(id=created["id"])
    expected = hashlib.sha256(
        canonical_json({"payload": body, "recordedAt": record.recorded_at.isoformat(), "actor": record.actor})
    ).hexdigest()
    assert record.content_sha256 == expected


def test_non_ascii_text_is_stored_verbatim(api):
    body = VALID_BODIES[AuditKind.REMEDIATION](message="Mémoire épuisée — 内存不足 🚨\n\ttab ok")
    created = post_audit(api, AuditKind.REMEDIATION, body).json()
    record = AUDIT_MODELS[AuditKind.REMEDIATION].objects.get(id=created["id"])
    assert record.message == body["message"]
