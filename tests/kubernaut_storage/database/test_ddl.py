"""DDL on the tables the write path inserts into waits briefly for its lock, never the writes."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from audit.models import AUDIT_MODELS, AuditKind
from kubernaut_storage.database.ddl import DDLLockNotGranted, ddl_with_lock_timeout
from kubernaut_storage.database.partitioning import (
    add_months,
    existing_partitions,
    month_start,
    partition_for,
    partitioned_tables,
    partitions_ensure,
)
from tests.kubernaut_storage.database.test_roles import RUNTIME, _write, database_roles  # noqa: F401 - fixture

#: How long the runtime role holds its read transaction.
HELD_S = 4.0


def _reader() -> psycopg.Connection:
    """The runtime role, as an API pod (or an attacker with its password) connects."""
    settings = connection.settings_dict
    return psycopg.connect(host=settings["HOST"], user=RUNTIME, dbname=settings["NAME"])


@pytest.fixture
def far_month(database_roles):  # noqa: F811
    """A month no other test creates partitions for; its partitions dropped afterwards."""
    month = add_months(month_start(timezone.now()), 14)
    yield month
    with connection.cursor() as cursor:
        for table in partitioned_tables():
            cursor.execute(f"DROP TABLE IF EXISTS {partition_for(table, month).name}")


@pytest.mark.real_clock
def test_a_read_held_by_the_runtime_role_delays_partition_creation_not_writes(far_month):
    far = far_month
    created: list[BaseException | None] = []

    def create() -> None:
        try:
            partitions_ensure(now=far, months_ahead=0)
            created.append(None)
        except BaseException as exc:  # reported by the test's thread
            created.append(exc)
        finally:
            connection.close()

    with _reader() as reader:
        reader.execute("SELECT count(*) FROM audit_remediation")  # a transaction holding the table
        started = time.monotonic()
        creator = threading.Thread(target=create)
        creator.start()
        time.sleep(0.5)  # the DDL is asking for its lock
        before_write = time.monotonic()
        written = _write(AuditKind.REMEDIATION, "during-ddl")
        write_s = time.monotonic() - before_write
        time.sleep(max(0.0, HELD_S - (time.monotonic() - started)))
        assert created == []  # the partition waits for the read to end
        reader.rollback()
    creator.join(timeout=30)

    assert AUDIT_MODELS[AuditKind.REMEDIATION].objects.filter(id=written).exists()
    assert write_s < 1.5, f"a write waited {write_s:.1f} s behind the DDL"
    assert created == [None]
    for table in partitioned_tables():
        assert partition_for(table, far).name in existing_partitions(table)


@pytest.mark.django_db(transaction=True)
def test_a_lock_held_for_the_whole_budget_fails_the_ddl_and_changes_nothing():
    far = add_months(month_start(timezone.now()), 15)
    partition = partition_for("audit_remediation", far)
    settings = connection.settings_dict
    sleeps: list[float] = []
    with psycopg.connect(host=settings["HOST"], user=settings["USER"], dbname=settings["NAME"]) as holder:
        holder.execute("LOCK TABLE audit_remediation IN ACCESS SHARE MODE")
        with pytest.raises(DDLLockNotGranted, match="no lock within 20 ms"):
            ddl_with_lock_timeout(
                [
                    f"CREATE TABLE {partition.name} PARTITION OF audit_remediation"
                    f" FOR VALUES FROM ('{partition.starts.isoformat()}') TO ('{partition.ends.isoformat()}')"
                ],
                lock_timeout_ms=20,
                budget_s=1.0,
                pause_s=0.1,
                sleep=lambda delay: (sleeps.append(delay), time.sleep(delay)),
            )
        holder.rollback()
    assert partition.name not in existing_partitions("audit_remediation")
    assert len(sleeps) >= 3
    assert all(0.1 <= delay <= 0.2 for delay in sleeps)
