"""kubernaut_readiness_check_failing: what the partition alert (k8s/components/monitoring) reads."""

from __future__ import annotations

import pytest
from django.db import connection
from django.utils import timezone
from prometheus_client import REGISTRY

from kubernaut_storage.database.partitioning import add_months, month_start, partition_create, partition_for


def failing(check: str) -> float | None:
    return REGISTRY.get_sample_value("kubernaut_readiness_check_failing", {"check": check})


@pytest.mark.django_db
def test_a_missing_next_month_partition_sets_the_gauge_and_its_return_clears_it(client):
    assert client.get("/readyz").status_code == 200
    assert failing("partitions") == 0
    next_month = partition_for("audit_remediation", add_months(month_start(timezone.now()), 1))
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE audit_remediation DETACH PARTITION {next_month.name}")

    assert client.get("/readyz").status_code == 503
    assert failing("partitions") == 1
    assert failing("database") == 0

    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {next_month.name}")
    partition_create(next_month)  # what the partitions CronJob does
    assert client.get("/readyz").status_code == 200
    assert failing("partitions") == 0
