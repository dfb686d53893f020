"""Time sealing and verification (docs/INTEGRITY.md) on a scratch database.

Run from the repo root, against a scratch database of the embedded PostgreSQL (never the test
database, never production):

    export DJANGO_SETTINGS_MODULE=kubernaut_storage.settings.local
    export EMBEDDED_POSTGRES_DATABASE=kubernaut_integrity_bench
    .venv/bin/python bench/scripts/integrity.py --rows 100000

It migrates the database, empties the sealed tables and the seals (the scratch database only:
it refuses a database whose name does not end in `_bench`), writes --rows remediation records,
each with a 384-d embedding (so 2 x --rows sealed rows), server-side with INSERT ... SELECT,
spread over one hour three months ago, with a realistic payload; then times `audit_seal`,
`audit_verify`, `audit_retention --older-than 2` (archiving that month with its seals) and
the standalone `python -m kubernaut_integrity` on the archives, and prints rows, seconds and
rows/s of each.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kubernaut_storage.settings.local")

import django

django.setup()

from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from kubernaut_integrity.keys import key_pair_write
from kubernaut_storage.database.partitioning import (
    add_months,
    month_start,
    partition_create,
    partition_for,
    partitioned_tables,
)
from testutils.integrity import scratch_database_emptied

PAYLOAD = {
    "name": "rr-payments-oom-7f3c",
    "namespace": "payments",
    "phase": "Completed",
    "message": "Remediation finished.\nAll steps succeeded.",
    "createdAt": "2026-12-02T10:00:00Z",
    "startedAt": "2026-12-02T10:00:05Z",
    "completedAt": "2026-12-02T10:01:05Z",
    "correlationId": "corr-0123456789ab",
    "labels": {"app.kubernetes.io/name": "payments-api", "team": "checkout"},
    "signalType": "prometheus",
    "signalName": "KubePodOOMKilled",
    "signalNamespace": "payments",
    "targetType": "deployment",
    "targetName": "payments-api",
    "targetNamespace": "payments",
    "environment": "production",
    "priority": "P1",
    "fingerprint": "a" * 64,
    "reason": "Container exceeded its memory limit",
    "originalPayload": "eyJhbGVydCI6ICJPT00ifQ==",
}

LOAD_SQL = """
WITH audit AS (
  INSERT INTO audit_remediation (recorded_at, name, namespace, phase, message, created_at, started_at,
    completed_at, correlation_id, labels, actor, request_id, content_sha256, payload, signal_type, signal_name,
    signal_namespace, target_type, target_name, target_namespace, environment, priority, fingerprint)
  SELECT t, 'rr-' || n, 'payments', 'Completed', 'Remediation finished.', t, t, t, 'corr-' || n,
    '{"team": "checkout"}', 'system:serviceaccount:kubernaut-system:gateway', 'req-' || n, md5(n::text) || md5(n::text),
    %(payload)s::jsonb || jsonb_build_object('correlationId', 'corr-' || n, 'confidence', n / 7.0),
    'prometheus', 'KubePodOOMKilled', 'payments', 'deployment', 'payments-api', 'payments', 'production', 'P1', ''
  FROM generate_series(1, %(rows)s) AS n,
    LATERAL (SELECT %(start)s::timestamptz + n * interval '3600 seconds' / %(rows)s) AS at(t)
  RETURNING id, recorded_at
)
INSERT INTO incident_embeddings (audit_type, audit_id, audit_recorded_at, remediation_request_id, namespace,
  target_type, target_name, signal_type, root_cause, model, dimensions, input_sha256, embedding, recorded_at)
SELECT 'remediation', audit.id, audit.recorded_at, 'rr', 'payments', 'deployment', 'payments-api', 'prometheus', '',
  'all-MiniLM-L6-v2', 384, md5(audit.id::text) || md5(audit.id::text),
  (SELECT array_agg(sin(audit.id * 0.001 + d))::real[]::vector FROM generate_series(1, 384) AS d), audit.recorded_at
FROM audit
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000, help="remediation records (each with an embedding)")
    arguments = parser.parse_args()
    now = timezone.now()
    scratch_database_emptied(now=now)
    month = add_months(month_start(now), -3)
    for table in partitioned_tables():
        partition_create(partition_for(table, month))
    with connection.cursor() as cursor:
        cursor.execute("SET kubernaut.audit_max_write_lag = ''")  # these rows are dated in the past on purpose
        started = time.perf_counter()
        cursor.execute(
            LOAD_SQL,
            {"payload": json.dumps(PAYLOAD), "rows": arguments.rows, "start": month + dt.timedelta(days=1)},
        )
        print(f"loaded {2 * arguments.rows} rows in {time.perf_counter() - started:.1f} s")
        cursor.execute("ANALYZE")
    with tempfile.TemporaryDirectory() as scratch:
        private, public, _ = key_pair_write(Path(scratch) / "keys")
        seal_dir = Path(scratch) / "seals"
        started = time.perf_counter()
        call_command("audit_seal", "--private-key", str(private), "--seal-dir", str(seal_dir), stdout=io.StringIO())
        sealing = time.perf_counter() - started
        out = io.StringIO()
        started = time.perf_counter()
        call_command("audit_verify", "--public-key", str(public), "--seal-dir", str(seal_dir), "--json", stdout=out)
        verifying = time.perf_counter() - started
        report = json.loads(out.getvalue())
        rows = report["rows"]
        print(f"audit_seal:   {rows} rows in {sealing:.2f} s = {rows / sealing:,.0f} rows/s")
        print(
            f"audit_verify: {rows} rows, {report['seals']} seals in {verifying:.2f} s = {rows / verifying:,.0f} rows/s"
        )
        archive_dir = Path(scratch) / "archives"
        started = time.perf_counter()
        with override_settings(AUDIT_SEAL_DIR=str(seal_dir)):
            call_command(
                "audit_retention", "--older-than", "2", "--archive-dir", str(archive_dir), "--yes", stdout=io.StringIO()
            )
        archiving = time.perf_counter() - started
        print(
            f"audit_retention: {rows} rows archived with their seals in {archiving:.2f} s"
            f" = {rows / archiving:,.0f} rows/s"
        )
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "kubernaut_integrity", str(archive_dir), "--public-key", str(public), "--json"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        )
        standalone = time.perf_counter() - started
        checked = json.loads(done.stdout)["rows"]
        print(
            f"python -m kubernaut_integrity: {checked} archived rows in {standalone:.2f} s"
            f" = {checked / standalone:,.0f} rows/s"
        )


if __name__ == "__main__":
    main()
