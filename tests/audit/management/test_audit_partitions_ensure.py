"""`manage.py audit_partitions_ensure` creates exactly the missing monthly partitions."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from audit.models import RemediationAudit
from kubernaut_storage.database.partitioning import (
    add_months,
    existing_partitions,
    month_start,
    partition_for,
    partitioned_tables,
)

pytestmark = pytest.mark.django_db


def _run(*args: str) -> str:
    out = io.StringIO()
    call_command("audit_partitions_ensure", *args, stdout=out)
    return out.getvalue()


def test_creates_missing_months_and_is_idempotent():
    far = add_months(month_start(timezone.now()), 5)
    names = {table: partition_for(table, far).name for table in partitioned_tables()}
    for table, name in names.items():
        assert name not in existing_partitions(table)

    output = _run("--months-ahead", "5")

    for table, name in names.items():
        assert name in existing_partitions(table)
        assert f"created {name}" in output
    assert "0 partition(s) created" in _run("--months-ahead", "5")


def test_rows_for_a_new_month_land_in_its_partition():
    _run("--months-ahead", "3")
    month = add_months(month_start(timezone.now()), 3)
    record = RemediationAudit.objects.create(
        recorded_at=month,
        name="n",
        namespace="ns",
        phase="Pending",
        created_at=month,
        correlation_id="c",
        actor="test",
        request_id="r",
        content_sha256="0" * 64,
        payload={},
        signal_type="prometheus",
        signal_name="A",
        signal_namespace="ns",
        target_type="pod",
        target_name="p",
        target_namespace="ns",
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM audit_remediation WHERE id = %s", [record.id])
        assert cursor.fetchone()[0] == partition_for("audit_remediation", month).name


def test_negative_months_is_refused():
    with pytest.raises(SystemExit):
        _run("--months-ahead", "-1")
