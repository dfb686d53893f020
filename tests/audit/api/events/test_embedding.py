"""Audit events never wait for a model: with AUDIT_EVENTS_EMBEDDING=deferred they are queued in
the embedding backlog in their write's transaction and embedded by embeddings_backfill from a
deterministic text; with `off` they are not."""

from __future__ import annotations

import pytest

from audit.models import EVENT_AUDIT_TYPE, AuditEvent
from audit.write.backfill import embedding_backlog_backfill
from audit.write.events import event_text
from embeddings.models import EmbeddingBacklog, IncidentEmbedding
from embeddings.services import text_sha256
from testutils.events import event_batch, event_body_full, post_events
from testutils.metrics import MetricDelta

pytestmark = pytest.mark.django_db

DEFERRALS = "kubernaut_embedding_deferrals_total"


def _stored(api, events) -> list[AuditEvent]:
    response = post_events(api, events)
    assert response.status_code == 201, response.content
    ids = response.json()["event_ids"]
    rows = {str(row.event_id): row for row in AuditEvent.objects.filter(event_id__in=ids)}
    return [rows[event_id] for event_id in ids]


def test_deferred_events_are_queued_in_their_writes_transaction_and_embedded_by_the_backfill(api, settings):
    settings.AUDIT_EVENTS_EMBEDDING = "deferred"
    metrics = MetricDelta((DEFERRALS, {}))
    events = _stored(api, event_batch(["gateway.signal.received", "aiagent.llm.request", "gateway.crd.created"]))

    queued = EmbeddingBacklog.objects.filter(audit_type=EVENT_AUDIT_TYPE, audit_id__in=[e.id for e in events])
    assert sorted(queued.values_list("audit_id", flat=True)) == sorted(e.id for e in events)
    assert {row.audit_recorded_at for row in queued} == {events[0].recorded_at}
    assert metrics.of(DEFERRALS) == 3

    outcome = embedding_backlog_backfill(batch_size=10)

    assert outcome.total >= 3
    assert not queued.all().exists()  # .all(): a fresh query, not the cached rows
    for event in events:
        row = IncidentEmbedding.objects.get(audit_type=EVENT_AUDIT_TYPE, audit_id=event.id)
        assert row.audit_recorded_at == event.recorded_at
        assert row.input_sha256 == text_sha256(event_text(event))
        assert row.remediation_request_id == event.correlation_id


def test_with_embedding_off_events_are_not_queued(api, settings):
    settings.AUDIT_EVENTS_EMBEDDING = "off"
    events = _stored(api, event_batch(["gateway.signal.received"] * 2))
    assert not EmbeddingBacklog.objects.filter(
        audit_type=EVENT_AUDIT_TYPE, audit_id__in=[e.id for e in events]
    ).exists()


def test_the_text_names_type_outcome_resource_namespace_and_the_payloads_identifying_fields(api):
    body = event_body_full("gateway.signal.received")
    body.update(resource_type="Signal", resource_id="fp-1", namespace="payments")
    body["event_data"] = {
        "event_type": "gateway.signal.received",
        "signal_name": "KubePodCrashLooping",
        "fingerprint": "abc",
        "rr_id": "rr-9",
        "count": 3,
        "note": "free text is left out",
    }
    (event,) = _stored(api, [body])
    assert event_text(event) == (
        "gateway.signal.received success Signal/fp-1 ns=payments fingerprint=abc rr_id=rr-9"
        " signal_name=KubePodCrashLooping"
    )
