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
