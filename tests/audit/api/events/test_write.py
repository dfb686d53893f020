"""POST /api/v1/audit/events and /events/batch: stored as received, answered as upstream's
document says, all or nothing, and never an answer a retrying client turns into a loss."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid

import pytest
from django.db import connection

from audit.models import AuditEvent
from audit.write.records_in_flight import records_in_flight
from testutils.audit_rows import assert_problem
from testutils.events import (
    EVENTS_PATH,
    event_batch,
    event_body_full,
    post_events,
)
from testutils.metrics import MetricDelta

pytestmark = pytest.mark.django_db

PROBLEMS = "https://kubernaut.ai/problems/"


def _stored_event_data(event_id: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT event_data::text FROM audit_events WHERE event_id = %s", [event_id])
        return str(cursor.fetchone()[0])


def _as_jsonb_text(raw: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::jsonb::text", [raw])
        return str(cursor.fetchone()[0])


def test_one_event_is_stored_and_answered_with_its_id_and_timestamp(api):
    body = event_body_full("gateway.signal.received", cluster_name="prod-eu-2", rollout="canary")
    body["cluster_id"] = None  # then cluster_name is the cluster, as v1.5 clients send it

    response = post_events(api, body, path=EVENTS_PATH)

    assert response.status_code == 201, response.content
    assert response["Content-Type"] == "application/json"
    answer = response.json()
    assert set(answer) == {"event_id", "event_timestamp", "message"}
    row = AuditEvent.objects.get(event_id=answer["event_id"])
    assert dt.datetime.fromisoformat(answer["event_timestamp"]) == row.event_timestamp
    assert row.event_timestamp == dt.datetime.fromisoformat(body["event_timestamp"])
    assert (row.cluster_id, row.extra_fields) == ("prod-eu-2", {"rollout": "canary"})
    assert (row.severity, row.duration_ms, row.retention_days, row.is_sensitive) == ("critical", 42, 2555, False)
    assert (row.error_code, row.actor_ip, row.actor) == (None, "10.0.0.17", "local:unauthenticated")
    assert row.request_id == response["X-Request-ID"]
    assert row.event_data == body["event_data"]


def test_a_batch_is_stored_and_answered_in_input_order(api):
    types = ["gateway.signal.received", "aiagent.llm.request", "notification.message.sent"] * 3
    body = event_batch(types)
    body[4]["event_data"]["amount"] = "AMOUNT"
    raw = json.dumps(body).replace('"AMOUNT"', "1.10")  # kept as sent: 1.10, not 1.1

    labels = {"kind": "events", "outcome": "created"}
    metrics = MetricDelta(("kubernaut_audit_writes_total", labels))
    response = post_events(api, raw.encode())

    assert response.status_code == 201, response.content
    answer = response.json()
    assert answer["message"] == "9 audit events created successfully"
    ids = answer["event_ids"]
    assert [str(uuid.UUID(event_id)) for event_id in ids] == ids
    rows = {str(row.event_id): row for row in AuditEvent.objects.filter(event_id__in=ids)}
    assert len(rows) == 9
    for event_id, event in zip(ids, body, strict=True):
        row = rows[event_id]
        assert (row.event_type, row.correlation_id) == (event["event_type"], event["correlation_id"])
    # The insertion sequence follows the input order.
    assert [rows[event_id].id for event_id in ids] == sorted(rows[event_id].id for event_id in ids)
    assert '"amount": 1.10' in _stored_event_data(ids[4])
    assert metrics.of("kubernaut_audit_writes_total", **labels) == 9


def test_a_batch_of_1000_with_one_bad_event_names_it_and_stores_nothing(api):
    body = event_batch(["gateway.signal.received"] * 1000)
    body[537]["event_data"]["event_type"] = "gateway.signal.dropped"
    before = AuditEvent.objects.count()

    problem = assert_problem(post_events(api, body), 400)

    assert problem["type"] == PROBLEMS + "validation-error"
    assert problem["title"] == "Validation Error"
    assert [error["field"] for error in problem["errors"]] == ["[537].event_data.event_type"]
    assert list(problem["field_errors"]) == ["[537].event_data.event_type"]
    assert problem["errors_total"] == 1
    assert problem["instance"] == "/api/v1/audit/events/batch"
    assert AuditEvent.objects.count() == before


def test_an_empty_or_oversized_batch_is_batch_size_exceeded(api, settings):
    settings.AUDIT_EVENTS_BATCH_MAX = 3
    assert assert_problem(post_events(api, []), 400)["type"] == PROBLEMS + "batch-size-exceeded"
    problem = assert_problem(post_events(api, event_batch(["gateway.crd.created"] * 4)), 400)
    assert problem["type"] == PROBLEMS + "batch-size-exceeded"
    assert post_events(api, event_batch(["gateway.crd.created"] * 3)).status_code == 201


def test_1000_events_are_accepted_by_default(api):
    response = post_events(api, event_batch(["gateway.signal.received"] * 1000))
    assert response.status_code == 201, response.content[:500]
    assert len(response.json()["event_ids"]) == 1000
    assert AuditEvent.objects.filter(event_id__in=response.json()["event_ids"]).count() == 1000


def test_malformed_json_is_bad_request_and_a_body_over_the_limit_413(api, settings):
    problem = assert_problem(post_events(api, b'[{"version": "1.0",'), 400)
    assert problem["type"] == PROBLEMS + "bad-request"
    settings.AUDIT_EVENTS_MAX_BODY_BYTES = 100
    assert_problem(post_events(api, event_batch(["gateway.signal.received"])), 413)


def test_a_full_records_budget_is_503_with_retry_after_and_nothing_stored(api, settings):
    settings.AUDIT_RECORDS_IN_FLIGHT = 10
    settings.AUDIT_EVENTS_ADMISSION_WAIT_SECONDS = 0.2
    before = AuditEvent.objects.count()
    with records_in_flight().admitted(10):
        response = post_events(api, event_batch(["gateway.signal.received"] * 2))
    problem = assert_problem(response, 503)
    assert problem["type"] == PROBLEMS + "service-unavailable"
    assert int(response["Retry-After"]) >= 1
    assert AuditEvent.objects.count() == before


@pytest.mark.real_clock
def test_a_batch_waits_for_room_in_the_records_budget_instead_of_a_503(api, settings):
    # Upstream's client retries a 503 only twice: a batch arriving while the worker holds
    # another is stored once that one is, not refused.
    settings.AUDIT_RECORDS_IN_FLIGHT = 10
    settings.AUDIT_EVENTS_ADMISSION_WAIT_SECONDS = 5
    held, release = threading.Event(), threading.Event()

    def other_batch() -> None:
        with records_in_flight().admitted(10):
            held.set()
            release.wait(5)

    holder = threading.Thread(target=other_batch)
    holder.start()
    held.wait(5)
    threading.Timer(0.3, release.set).start()
    started = time.monotonic()
    response = post_events(api, event_batch(["gateway.signal.received"] * 20))
    holder.join()

    assert response.status_code == 201, response.content
    assert time.monotonic() - started >= 0.25
    assert records_in_flight().held == 0
