"""/healthz and /readyz in-process: each readiness check names what is wrong.

Breaking changes (a detached partition, a forgotten migration record) are made inside the
test's transaction, which is rolled back afterwards.
"""

from __future__ import annotations

import logging

import pytest
from django.db import connection
from django.utils import timezone

from kubernaut_storage.database.partitioning import add_months, month_start, partition_for

POD_IP_HOST = "10.244.1.17:8080"  # what the kubelet sends; not in ALLOWED_HOSTS


def test_healthz_answers_without_touching_the_database(client):
    # No django_db mark: any database access here would raise.
    response = client.get("/healthz", HTTP_HOST=POD_IP_HOST)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_reports_every_check_when_ready(client):
    response = client.get("/readyz", HTTP_HOST=POD_IP_HOST)

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ready"
    assert {name: check["status"] for name, check in body["checks"].items()} == {
        "database": "ok",
        "pgvector": "ok",
        "migrations": "ok",
        "partitions": "ok",
    }
    assert body["checks"]["pgvector"]["version"]


@pytest.mark.django_db
def test_readyz_names_a_missing_next_month_partition(client):
    next_month = partition_for("audit_remediation", add_months(month_start(timezone.now()), 1))
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE audit_remediation DETACH PARTITION {next_month.name}")

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert "partitions" in problem["detail"]
    assert problem["checks"]["partitions"]["status"] == "fail"
    assert problem["checks"]["partitions"]["missing"] == [next_month.name]
    assert problem["checks"]["database"]["status"] == "ok"


@pytest.mark.django_db
def test_readyz_names_unapplied_migrations(client):
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM django_migrations WHERE app = 'audit' AND name = '0002_append_only_and_partitions'")

    response = client.get("/readyz")

    assert response.status_code == 503
    migrations = response.json()["checks"]["migrations"]
    assert migrations["status"] == "fail"
    assert migrations["unapplied"] == ["audit.0002_append_only_and_partitions"]


@pytest.mark.django_db
def test_readyz_fails_in_tokenreview_mode_without_a_cluster_configuration(client, settings, monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    settings.AUTH_MODE = "tokenreview"
    settings.KUBERNETES_TOKENREVIEW = {}  # in-cluster, but this is no pod

    response = client.get("/readyz")

    assert response.status_code == 503
    tokenreview = response.json()["checks"]["tokenreview"]
    assert tokenreview["status"] == "fail"
    assert "KUBERNETES_SERVICE_HOST" in tokenreview["detail"]


@pytest.mark.django_db
def test_readyz_answers_draining_once_the_drain_file_exists(client, settings, tmp_path):
    settings.DRAIN_FILE = str(tmp_path / "draining")
    assert client.get("/readyz").status_code == 200

    (tmp_path / "draining").touch()
    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["type"].endswith("/draining")
    assert client.get("/healthz").status_code == 200


@pytest.mark.django_db
def test_probes_are_not_access_logged_and_not_ready_is_logged_once_per_change(client, caplog):
    caplog.set_level(logging.INFO)
    assert client.get("/readyz").status_code == 200
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM django_migrations WHERE app = 'audit'")
    client.get("/healthz")
    for _ in range(3):
        assert client.get("/readyz").status_code == 503

    loggers = {record.name for record in caplog.records}
    assert "kubernaut_storage.access" not in loggers
    assert "django.request" not in loggers
    health = [record for record in caplog.records if record.name == "kubernaut_storage.observability.health"]
    assert [(record.levelname, record.getMessage()) for record in health] == [
        ("WARNING", "readiness: not ready: migrations")
    ]
