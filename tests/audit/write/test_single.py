"""The write service: atomicity, append-only storage, transient-error retries, 503."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from audit.api.serializers import AUDIT_SERIALIZERS
from audit.models import AUDIT_MODELS, AuditKind
from audit.write.single import audit_record_create
from kubernaut_storage.database.errors import with_db_retries
from kubernaut_storage.http.exceptions import ServiceUnavailable
from testutils.audit_rows import post_audit, table_counts
from testutils.factories import VALID_BODIES

KIND = AuditKind.REMEDIATION


def _validated(body):
    serializer = AUDIT_SERIALIZERS[KIND](data=body)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


@pytest.mark.django_db
def test_embedding_insert_failure_leaves_no_audit_row():
    # A real failure inside PostgreSQL, after the audit row was inserted in the same transaction.
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION test_fail_embedding() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN RAISE EXCEPTION 'forced embedding insert failure'; END $$;"
            "CREATE TRIGGER test_fail_embedding BEFORE INSERT ON incident_embeddings"
            " FOR EACH ROW EXECUTE FUNCTION test_fail_embedding();"
        )
    body = VALID_BODIES[KIND]()
    before = table_counts()

    with pytest.raises(DatabaseError, match="forced embedding insert failure"):
        audit_record_create(kind=KIND, data=_validated(body), payload=body, actor="test", request_id="r1")

    assert table_counts() == before
    assert not AUDIT_MODELS[KIND].objects.filter(correlation_id=body["correlationId"]).exists()


@pytest.mark.django_db
def test_audit_rows_cannot_be_updated_or_deleted(api):
    created = post_audit(api, KIND, VALID_BODIES[KIND]()).json()
    for statement in (
        "UPDATE audit_remediation SET phase = 'Failed' WHERE id = %s",
        "DELETE FROM audit_remediation WHERE id = %s",
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement, [created["id"]])
    assert AUDIT_MODELS[KIND].objects.get(id=created["id"]).phase == "Completed"


@pytest.mark.django_db(transaction=True)
def test_connection_lost_is_retried_on_a_fresh_connection():
    attempts = []

    def operation():
        attempts.append(1)
        with connection.cursor() as cursor:
            if len(attempts) == 1:
                # The server ends our own session: a real lost connection.
                cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")
            cursor.execute("SELECT 1")
            return cursor.fetchone()[0]

    assert with_db_retries(operation, sleep=lambda _: None) == 1
    assert len(attempts) == 2


@pytest.fixture
def database_unreachable():
    """Point the connection at a socket directory where no server listens."""
    original = connection.settings_dict["HOST"]
    connection.close()
    connection.settings_dict["HOST"] = "/nonexistent-socket-dir"
    connection.close_pool()  # a pool keeps the address it was made with
    yield
    connection.close()
    connection.settings_dict["HOST"] = original
    connection.close_pool()


@pytest.mark.django_db(transaction=True)
def test_database_that_stays_down_is_503_with_retry_after(api, database_unreachable, monkeypatch):
    monkeypatch.setattr("kubernaut_storage.database.errors.DB_BACKOFF_S", 0.001)
    response = post_audit(api, KIND, VALID_BODIES[KIND]())
    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
    assert int(response["Retry-After"]) > 0
    assert response.json()["type"].endswith("/database-unavailable")


@pytest.mark.django_db(transaction=True)
def test_statement_timeout_is_503_at_once_not_retried():
    attempts = []

    def operation():
        attempts.append(1)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL statement_timeout = '50ms'")
            cursor.execute("SELECT pg_sleep(2)")

    with pytest.raises(ServiceUnavailable) as raised:
        with_db_retries(operation, sleep=lambda _: None)
    assert len(attempts) == 1
    assert "in time" in str(raised.value.detail)
