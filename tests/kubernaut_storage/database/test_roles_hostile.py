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

from audit.api.batch_serializers import audit_batch_envelope, audit_batch_validated
from audit.models import AUDIT_MODELS, AuditKind
from audit.write.batch import audit_batch_create
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


def _plant_key(*, scope: str, key: str, request_hash: str, answer: dict) -> None:
    """A key row as the runtime role can write one: everything but an HMAC it cannot compute."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO audit_idempotency_keys (actor, kind, key, request_sha256, response_body, created_at)"
            " VALUES (%s, %s, %s, %s, %s, now())",
            [ACTOR, scope, key, request_hash, fingerprint_json(answer).decode()],
        )


def _forge_remediation(body: dict) -> tuple[int, dt.datetime]:
    """A remediation row the caller never wrote, under the caller's name, carrying its body."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO audit_remediation (recorded_at, name, namespace, phase, message, created_at,"
            " correlation_id, labels, actor, request_id, content_sha256, payload, signal_type, signal_name,"
            " signal_namespace, target_type, target_name, target_namespace, environment, priority, fingerprint)"
            " VALUES (now(), 'forged', 'ns', 'Completed', '', now(), %s, '{}', %s, 'forged', %s, %s,"
            " 'prometheus', 'X', 'ns', 'deployment', 'web', 'ns', '', '', '') RETURNING id, recorded_at",
            [body["correlationId"], ACTOR, "0" * 64, fingerprint_json(body).decode()],
        )
        forged_id, recorded_at = cursor.fetchone()
    return forged_id, recorded_at


def _answer(record_id: int, recorded_at: dt.datetime, correlation_id: str) -> dict:
    return {
        "id": record_id,
        "embeddingId": None,
        "embeddingStatus": "pending",
        "correlationId": correlation_id,
        "recordedAt": recorded_at.isoformat().replace("+00:00", "Z"),
    }


def test_a_key_planted_for_a_real_row_does_not_turn_the_real_write_into_a_422(runtime_connection):  # noqa: F811
    """Planted under the caller's next key, naming one of its real rows, with another body's hash:
    the caller's real request must be stored, not refused as a reused key."""
    earlier = AUDIT_MODELS[AuditKind.REMEDIATION].objects.get(id=_write(AuditKind.REMEDIATION, "earlier"))
    _plant_key(
        scope="remediation",
        key="next",
        request_hash="0" * 64,
        answer=_answer(earlier.id, earlier.recorded_at, earlier.correlation_id),
    )
    anomalies_before = sample(ANOMALIES)

    written = _write(AuditKind.REMEDIATION, "next")

    assert written != earlier.id
    assert AUDIT_MODELS[AuditKind.REMEDIATION].objects.filter(id=written, actor=ACTOR).exists()
    assert sample(ANOMALIES) - anomalies_before == 1


def test_a_forged_row_and_its_key_are_not_replayed_for_the_real_record(runtime_connection):  # noqa: F811
    body = VALID_BODIES[AuditKind.REMEDIATION]()
    forged_id, recorded_at = _forge_remediation(body)
    _plant_key(
        scope="remediation",
        key="forged",
        request_hash=request_sha256(body),
        answer=_answer(forged_id, recorded_at, body["correlationId"]),
    )

    written = _write(AuditKind.REMEDIATION, "forged", body)

    assert written != forged_id
    stored = AUDIT_MODELS[AuditKind.REMEDIATION].objects.get(id=written)
    assert (stored.actor, stored.payload, stored.request_id) == (ACTOR, body, "roles-test")


def test_a_forged_row_and_its_key_are_not_replayed_for_a_real_batch(runtime_connection):  # noqa: F811
    records = [VALID_BODIES[AuditKind.REMEDIATION]() for _ in range(2)]
    batch = {"records": [{"kind": "remediation", "record": record} for record in records]}
    with transaction.atomic():  # one now(): the rows of a batch share their recorded_at
        forged = [_forge_remediation(record) for record in records]
    _plant_key(
        scope="batch",
        key="forged-batch",
        request_hash=request_sha256(batch),
        answer={
            "results": [
                _answer(forged_id, recorded_at, record["correlationId"])
                for (forged_id, recorded_at), record in zip(forged, records, strict=True)
            ]
        },
    )
    anomalies_before = sample(ANOMALIES)

    write = audit_batch_create(
        records=audit_batch_validated(envelope=audit_batch_envelope(data=batch, max_records=10)),
        payload=batch,
        actor=ACTOR,
        request_id="roles-test",
        idempotency_key="forged-batch",
    )

    assert not write.replayed
    written = [result["id"] for result in write.body["results"]]
    assert not set(written) & {forged_id for forged_id, _ in forged}
    assert AUDIT_MODELS[AuditKind.REMEDIATION].objects.filter(id__in=written, request_id="roles-test").count() == 2
    assert sample(ANOMALIES) - anomalies_before == 1


@pytest.fixture
def write_lag_bound(runtime_connection):  # noqa: F811
    """The database's write-lag bound at 10 s, as `migrate` sets it in production (the test
    settings turn it off), put back afterwards."""
    settings = connection.settings_dict
    with psycopg.connect(host=settings["HOST"], user="postgres", dbname=settings["NAME"], autocommit=True) as owner:
        owner.execute("UPDATE audit_write_limits SET max_write_lag = interval '10 seconds'")
        try:
            yield
        finally:
            owner.execute("UPDATE audit_write_limits SET max_write_lag = NULL")


def test_the_runtime_role_cannot_switch_the_write_lag_bound_off(write_lag_bound):
    """A row 30 s behind its INSERT (within the clock bound of 120 s) could enter a window the
    sealing job already settled: refused, even after the runtime role's own SET."""
    late = timezone.now() - dt.timedelta(seconds=30)
    with connection.cursor() as cursor:
        for off in ("SET kubernaut.audit_max_write_lag = ''", "SET kubernaut.audit_max_write_lag = '1h'"):
            cursor.execute(off)
            with pytest.raises(DatabaseError, match="behind the statement"), transaction.atomic():
                bulk_remediations(count=1, recorded_from=late, recorded_to=late + dt.timedelta(seconds=1))
        cursor.execute("SELECT has_table_privilege('audit_write_limits', 'UPDATE, INSERT, DELETE, TRUNCATE')")
        assert cursor.fetchone() == (False,)
    now = timezone.now()
    bulk_remediations(count=1, recorded_from=now, recorded_to=now + dt.timedelta(seconds=1))  # the present is fine
