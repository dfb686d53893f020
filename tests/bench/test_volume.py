"""`python -m bench volume`: its smoke form end to end, and the fill's rows against the write path's.

The smoke run has its own PostgreSQL (.data/volume-smoke-postgres), service and writers, as the
real run does; only the sizes are tiny. Its timings are not checked, only that every job ran
on valid rows: sealing and full verification find nothing wrong with what the fill stored,
retention retires exactly the oldest month and its archives verify offline.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from audit.models import RemediationAudit
from bench.volume.rows import record_content_sha256
from testutils.bench_runs import bench_run
from testutils.factories import remediation_body


def test_volume_smoke_fills_and_times_every_job_on_valid_rows(tmp_path: Path):
    output = tmp_path / "volume.json"
    bench_run(["-m", "bench", "volume", "--smoke", "--output", str(output)], timeout=600)

    result = json.loads(output.read_text())
    fill = result["fill"]
    assert fill["total_rows"] == sum(fill["rows"].values()) > 0
    assert set(fill["rows"]) >= {"audit_remediation", "audit_execution", "incident_embeddings"}
    # Every typed record has its embedding.
    typed = sum(
        count for table, count in fill["rows"].items() if table.startswith("audit_") and table != "audit_events"
    )
    assert fill["rows"]["incident_embeddings"] == typed
    assert result["bytes_per_record"]["typed_record"] > 0

    jobs = {job["job"]: job for job in result["jobs"]}
    assert list(jobs) == ["seal", "verify", "retention", "archive-verify", "index-build", "partitions"]
    # Sealing saw every filled row of the sealed tables (and perhaps a few of the writers').
    assert jobs["seal"]["rows"] >= typed + fill["rows"]["audit_events"] + fill["rows"]["incident_embeddings"]
    assert (jobs["verify"]["clean"], jobs["verify"]["findings"]) == (True, [])
    assert jobs["verify"]["rows"] >= jobs["seal"]["rows"]
    oldest = fill["months"][0]
    assert sorted(jobs["retention"]["partitions"]) == sorted(
        f"{table}_p{oldest}"
        for table in (
            "audit_remediation",
            "audit_aianalysis",
            "audit_workflow",
            "audit_execution",
            "audit_events",
            "incident_embeddings",
        )
    )
    assert (jobs["archive-verify"]["clean"], jobs["archive-verify"]["rows"]) == (True, jobs["retention"]["rows"])
    # The closed month left after retention, and only it, gets its index.
    [index] = jobs["index-build"]["indexes"]
    assert index.startswith(f"incident_embeddings_p{fill['months'][1]}_")
    assert jobs["index-build"]["rows"] > 0
    # The writes went on throughout, every one stored (how fast is the real run's business).
    assert all(job["writes"]["during"]["failed"] == 0 for job in jobs.values())
    assert sum(window["created"] for window in result["writes_alone"]) > 0
    assert sum(job["writes"]["during"]["created"] for job in jobs.values()) > 0

    pages = result["admin_pages"]
    assert len(pages) == 10
    assert all(set(page["status"]) <= {200, 302} for page in pages), pages


@pytest.mark.django_db
def test_content_sha256_of_the_fill_is_the_write_paths(api):
    """The fill computes `content_sha256` itself (it writes millions of rows without the API):
    the same value the write path stores for a record sent through the API."""
    body = remediation_body()
    response = api.post("/api/v1/audit/remediation", data=body, content_type="application/json")
    assert response.status_code == 201
    stored = RemediationAudit.objects.get(pk=response.json()["id"])

    assert stored.content_sha256 == record_content_sha256(
        payload=stored.payload, recorded_at=stored.recorded_at, actor=stored.actor
    )
    # And it is a fingerprint of all three, not of the payload alone.
    later = stored.recorded_at + dt.timedelta(microseconds=1)
    assert stored.content_sha256 != record_content_sha256(payload=stored.payload, recorded_at=later, actor=stored.actor)
