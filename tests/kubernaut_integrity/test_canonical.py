"""The canonical row form: written by PostgreSQL exactly as documented, identified, timestamped."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from django.db import connection

from audit.integrity.sealed_rows import canonical_settings
from kubernaut_integrity.canonical import FormError, canonical_sql, line_identity, row_hash, timestamp_canonical


@pytest.mark.django_db
def test_canonical_form_is_exact() -> None:
    """The form as docs/INTEGRITY.md states it, byte for byte, whatever the session's time zone."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL TimeZone = 'America/New_York'")
        cursor.execute(
            "INSERT INTO incident_embeddings (audit_type, audit_id, audit_recorded_at, remediation_request_id,"
            " namespace, target_type, target_name, signal_type, root_cause, model, dimensions, input_sha256,"
            " embedding, recorded_at) VALUES ('remediation', 3, '2026-12-02T10:00:00.5Z', 'rr', 'ns', '', '',"
            " '', %s, 'm', 2, %s, '[0.5,-1]', '2026-12-02T11:00:00+01:00') RETURNING id",
            ['é "quoted"\n', "0" * 64],
        )
        row_id = cursor.fetchone()[0]
        canonical_settings(cursor)
        cursor.execute(
            f"SELECT {canonical_sql('incident_embeddings')} FROM incident_embeddings p WHERE id = %s", [row_id]
        )
        line = cursor.fetchone()[0]
    assert line == (
        f'{{"form" : 1, "table" : "incident_embeddings", "id" : {row_id}, "audit_type" : "remediation",'
        ' "audit_id" : 3, "audit_recorded_at" : "2026-12-02T10:00:00.500000Z", "remediation_request_id" : "rr",'
        ' "namespace" : "ns", "target_type" : "", "target_name" : "", "signal_type" : "",'
        ' "root_cause" : "é \\"quoted\\"\\n", "model" : "m", "dimensions" : 2, "input_sha256" : "'
        + "0" * 64
        + '", "embedding" : "[0.5,-1]", "recorded_at" : "2026-12-02T10:00:00.000000Z"}'
    )
    assert line_identity(line) == (row_id, "2026-12-02T10:00:00.000000Z")
    assert row_hash(line) == hashlib.sha256(line.encode()).digest()


def test_a_line_of_another_form_is_refused() -> None:
    with pytest.raises(FormError):
        line_identity('{"form" : 2, "id" : 1, "recorded_at" : "2026-12-02T10:00:00.000000Z"}')


def test_timestamps() -> None:
    moment = dt.datetime(2026, 12, 2, 15, 0, tzinfo=dt.timezone(dt.timedelta(hours=-2)))
    assert timestamp_canonical(moment) == "2026-12-02T17:00:00.000000Z"
    with pytest.raises(FormError):
        timestamp_canonical(dt.datetime(2026, 12, 2))


@pytest.mark.django_db
def test_an_audit_event_line_is_form_2_with_its_payload_as_jsonb_text() -> None:
    """Form 2 adds `audit_events`; the lines of the form 1 tables stay as they were."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL TimeZone = 'Asia/Tokyo'")
        cursor.execute(
            "INSERT INTO audit_events (event_id, recorded_at, version, event_type, event_timestamp, event_category,"
            " event_action, event_outcome, correlation_id, parent_event_id, event_data, actor, request_id,"
            " content_sha256, duration_ms, is_sensitive) VALUES ('0190a0b0-0000-7000-8000-000000000001',"
            " '2026-12-02T10:00:01.25Z',"
            " '1.0', 'gateway.crd.created', '2026-12-02T10:00:00Z', 'gateway', 'created', 'success', 'rr-1',"
            " NULL, %s::jsonb, 'sa', 'req', %s, 12, true) RETURNING id",
            ['{"event_type": "gateway.crd.created", "n": 1.10, "b": [true, null]}', "0" * 64],
        )
        row_id = cursor.fetchone()[0]
        canonical_settings(cursor)
        cursor.execute(f"SELECT {canonical_sql('audit_events')} FROM audit_events p WHERE id = %s", [row_id])
        line = cursor.fetchone()[0]
    recorded = "2026-12-02T10:00:01.250000Z"
    assert line == (
        f'{{"form" : 2, "table" : "audit_events", "id" : {row_id}, "event_id" : "0190a0b0-0000-7000-8000-000000000001",'
        f' "recorded_at" : "{recorded}", "version" : "1.0", "event_type" : "gateway.crd.created",'
        ' "event_timestamp" : "2026-12-02T10:00:00.000000Z", "event_category" : "gateway", "event_action" : "created",'
        ' "event_outcome" : "success", "actor_type" : null, "actor_id" : null, "actor_ip" : null,'
        ' "resource_type" : null, "resource_id" : null, "correlation_id" : "rr-1", "parent_event_id" : null,'
        ' "parent_event_date" : null, "namespace" : null, "cluster_id" : null, "severity" : null,'
        ' "duration_ms" : 12, "error_code" : null, "error_message" : null, "retention_days" : null,'
        ' "is_sensitive" : true, "event_data" : {"b": [true, null], "n": 1.10, "event_type": "gateway.crd.created"},'
        ' "extra_fields" : null, "actor" : "sa", "request_id" : "req", "content_sha256" : "' + "0" * 64 + '"}'
    )
    assert line_identity(line) == (row_id, recorded)


def test_a_line_naming_the_wrong_form_for_its_table_is_refused() -> None:
    for form, table in ((1, "audit_events"), (2, "audit_remediation")):
        with pytest.raises(FormError):
            line_identity(
                f'{{"form" : {form}, "table" : "{table}", "id" : 1, "recorded_at" : "2026-12-02T10:00:00.000000Z"}}'
            )
