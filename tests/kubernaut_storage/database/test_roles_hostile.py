"""What a compromised API pod can do with the runtime role, done with its own SQL.

k8s/sql/roles.sql is applied with psql (fixture from tests/kubernaut_storage/database/test_roles.py); Django then
connects as the runtime role, and the statements below are what an attacker with its password
would type into psql.
"""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from audit.models import AUDIT_MODELS, AuditKind
from audit.write.idempotency import request_sha256
from audit.write.statements import fingerprint_json
from tests.kubernaut_storage.database.test_roles import (  # noqa: F401 - fixtures
    ADMIN,
    RUNTIME,
    _write,
    database_roles,
    runtime_connection,
)
from testutils.admin_rows import bulk_remediations
from testutils.factories import VALID_BODIES
from testutils.metrics import sample

ACTOR = "system:serviceaccount:kubernaut-system:test"
ANOMALIES = "kubernaut_idempotency_key_anomalies_total"


def _refused(statement: str) -> str:
    with pytest.raises(DatabaseError) as raised, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement)
    return str(raised.value)


def test_the_api_role_cannot_read_sign_in_data_or_create_temporary_tables(runtime_connection):  # noqa: F811
    for table in ("auth_user", "django_session", "auth_user_groups"):
        assert f"permission denied for table {table}" in _refused(f"SELECT * FROM {table}")
    assert "permission denied to create temporary tables" in _refused("CREATE TEMP TABLE planted (id int)")


def test_the_admin_role_reads_sign_in_data_and_writes_no_audit_data(runtime_connection):  # noqa: F811
    settings = connection.settings_dict
    with psycopg.connect(host=settings["HOST"], user=ADMIN, dbname=settings["NAME"], autocommit=True) as admin:
        assert admin.execute("SELECT current_user").fetchone() == (ADMIN,)
        admin.execute("SELECT count(*) FROM auth_user").fetchone()
        privileges = admin.execute(
            "SELECT has_table_privilege('django_session', 'INSERT, UPDATE, DELETE'),"
            " has_table_privilege('audit_remediation', 'INSERT'),"
            " has_table_privilege('audit_idempotency_keys', 'INSERT')"
        ).fetchone()
    assert privileges == (True, False, False)


@pytest.mark.parametrize("offset", [dt.timedelta(minutes=10), -dt.timedelta(hours=1)])
def test_the_database_refuses_a_recorded_at_away_from_its_clock(runtime_connection, offset):  # noqa: F811
    at = timezone.now() + offset
    with pytest.raises(DatabaseError, match="is not within 120 s of the database clock"), transaction.atomic():
        bulk_remediations(count=1, recorded_from=at, recorded_to=at + dt.timedelta(seconds=1))
    now = timezone.now()
    bulk_remediations(count=1, recorded_from=now, recorded_to=now + dt.timedelta(seconds=1))  # the present is fine
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        assert cursor.fetchone()[0] == RUNTIME


@pytest.mark.parametrize("same_body", [True, False])
def test_a_planted_idempotency_key_does_not_suppress_the_write(runtime_connection, same_body):  # noqa: F811
    body = VALID_BODIES[AuditKind.REMEDIATION]()
    planted_hash = request_sha256(body) if same_body else "0" * 64
    forged_answer = {"id": 999_999, "recordedAt": timezone.now().isoformat(), "embeddingStatus": "stored"}
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO audit_idempotency_keys (actor, kind, key, request_sha256, response_body, created_at)"
            " VALUES (%s, 'remediation', 'planted', %s, %s, now())",
            [ACTOR, planted_hash, fingerprint_json(forged_answer).decode()],
        )
    anomalies_before = sample(ANOMALIES)

    written = _write(AuditKind.REMEDIATION, "planted", body)

    assert written != 999_999
    assert AUDIT_MODELS[AuditKind.REMEDIATION].objects.filter(id=written, actor=ACTOR).exists()
    assert sample(ANOMALIES) - anomalies_before == 1


def test_a_genuine_key_still_replays(runtime_connection):  # noqa: F811
    body = VALID_BODIES[AuditKind.REMEDIATION]()
    first = _write(AuditKind.REMEDIATION, "genuine", body)
    anomalies_before = sample(ANOMALIES)
    assert _write(AuditKind.REMEDIATION, "genuine", body) == first
    assert AUDIT_MODELS[AuditKind.REMEDIATION].objects.count() == 1
    assert sample(ANOMALIES) == anomalies_before
