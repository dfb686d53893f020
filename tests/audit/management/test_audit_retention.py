"""`manage.py audit_retention` end to end on real partitions: archive, verify, detach, drop."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from audit.models import RemediationAudit
from embeddings.models import EmbeddingBacklog, IncidentEmbedding
from kubernaut_integrity.archive import ArchiveVerificationError, manifest_verify
from kubernaut_storage.database.partitioning import (
    add_months,
    existing_partitions,
    month_start,
    partition_create,
    partition_for,
    partitioned_tables,
)
from testutils.admin_rows import bulk_remediations, remediation_chain
from testutils.integrity_export import zstd_compress, zstd_decompress

pytestmark = pytest.mark.django_db

OLD_ROWS = 25


@pytest.fixture
def old_month() -> dt.datetime:
    """Three months ago, with partitions for every table and rows in the remediation table,
    the embeddings and the embedding backlog."""
    month = add_months(month_start(timezone.now()), -3)
    for table in partitioned_tables():
        partition_create(partition_for(table, month))
    bulk_remediations(count=OLD_ROWS, recorded_from=month, recorded_to=month + dt.timedelta(days=10), prefix="old")
    vectors = np.random.default_rng(7).random((3, 384), dtype=np.float32)
    for index, vector in enumerate(vectors):
        IncidentEmbedding.objects.create(
            audit_type="remediation",
            audit_id=index + 1,
            audit_recorded_at=month + dt.timedelta(days=1),
            namespace="ns",
            model="all-MiniLM-L6-v2",
            dimensions=384,
            input_sha256="0" * 64,
            embedding=vector,
            recorded_at=month + dt.timedelta(days=1),
        )
    EmbeddingBacklog.objects.create(
        audit_type="remediation",
        audit_id=99,
        audit_recorded_at=month + dt.timedelta(days=2),
        reason="provider down",
        created_at=month + dt.timedelta(days=2),
    )
    return month


def _retention(*args: str) -> str:
    out = io.StringIO()
    call_command("audit_retention", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def _old_names(month: dt.datetime) -> set[str]:
    return {partition_for(table, month).name for table in partitioned_tables()}


def _all_partitions() -> set[str]:
    return {name for table in partitioned_tables() for name in existing_partitions(table)}


def test_dry_run_prints_the_plan_and_changes_nothing(old_month, tmp_path):
    chain = remediation_chain()
    before = _all_partitions()

    output = _retention("--older-than", "2", "--archive-dir", str(tmp_path))

    for name in _old_names(old_month):
        assert name in output
    assert "Dry run: nothing archived or dropped" in output
    assert _all_partitions() == before
    assert list(tmp_path.iterdir()) == []
    assert RemediationAudit.objects.filter(name__startswith="old-").count() == OLD_ROWS
    assert RemediationAudit.objects.filter(id=chain["remediation"].id).exists()


def test_yes_archives_verifies_and_drops_only_the_expired_partitions(old_month, tmp_path):
    chain = remediation_chain()
    current = _all_partitions() - _old_names(old_month)
    recent_embeddings = IncidentEmbedding.objects.filter(audit_recorded_at__gte=month_start(timezone.now())).count()

    output = _retention("--older-than", "2", "--archive-dir", str(tmp_path), "--yes")

    assert "6 partition(s) archived, verified, detached and dropped." in output
    assert _all_partitions() == current  # the old ones gone, every current and future one kept
    assert not RemediationAudit.objects.filter(name__startswith="old-").exists()
    assert RemediationAudit.objects.filter(id=chain["remediation"].id).exists()
    assert IncidentEmbedding.objects.count() == recent_embeddings > 0
    assert not EmbeddingBacklog.objects.filter(audit_recorded_at__lt=month_start(timezone.now())).exists()

    remediation = partition_for("audit_remediation", old_month)
    manifest = json.loads((tmp_path / f"{remediation.name}.manifest.json").read_text())
    archive = tmp_path / manifest["archive"]
    assert manifest["table"] == "audit_remediation"
    assert manifest["partition"] == remediation.name
    assert manifest["bounds"] == {"from": remediation.starts.isoformat(), "to": remediation.ends.isoformat()}
    assert manifest["row_count"] == OLD_ROWS
    assert manifest["format"] == "jsonl+zstd"
    assert manifest["archive_sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert dt.datetime.fromisoformat(manifest["created_at"]) <= timezone.now()
    rows = [json.loads(line) for line in zstd_decompress(archive.read_bytes()).decode().splitlines()]
    assert len(rows) == OLD_ROWS
    assert {row["name"] for row in rows} == {f"old-{n}" for n in range(1, OLD_ROWS + 1)}
    assert all(row["recorded_at"].startswith(f"{old_month:%Y-%m}") for row in rows)
    assert {"correlation_id", "payload", "labels", "content_sha256", "actor"} <= rows[0].keys()

    embeddings = partition_for("incident_embeddings", old_month)
    embedding_manifest = manifest_verify(tmp_path / f"{embeddings.name}.manifest.json")
    assert embedding_manifest.row_count == 3
    vectors = [
        json.loads(json.loads(line)["embedding"])  # pgvector's text form, as the canonical form has it
        for line in zstd_decompress((tmp_path / embedding_manifest.archive).read_bytes()).decode().splitlines()
    ]
    assert [len(vector) for vector in vectors] == [384, 384, 384]
    assert all(isinstance(value, float) for value in vectors[0])

    # Empty partitions are archived too: an empty archive with a manifest says "nothing was lost".
    workflow = manifest_verify(tmp_path / f"{partition_for('audit_workflow', old_month).name}.manifest.json")
    assert workflow.row_count == 0


def test_nothing_newer_than_the_cutoff_is_touched(old_month, tmp_path):
    before = _all_partitions()
    output = _retention("--older-than", "4", "--archive-dir", str(tmp_path), "--yes")
    assert "none" in output
    assert _all_partitions() == before


def test_the_current_month_is_never_retired(tmp_path):
    # --older-than 1 is the most aggressive setting: last month at most, never this one.
    this_month = {partition_for(table, timezone.now()).name for table in partitioned_tables()}
    _retention("--older-than", "1", "--archive-dir", str(tmp_path), "--yes")
    assert this_month <= _all_partitions()


def test_the_default_archive_dir_is_the_setting(old_month, tmp_path, settings):
    settings.AUDIT_ARCHIVE_DIR = tmp_path / "archives"
    _retention("--older-than", "2", "--yes")
    assert len(list((tmp_path / "archives").glob("*.manifest.json"))) == 6


def test_zero_months_is_refused(tmp_path):
    with pytest.raises(CommandError, match="at least 1"):
        _retention("--older-than", "0", "--archive-dir", str(tmp_path))


def test_a_tampered_archive_fails_verification(old_month, tmp_path):
    _retention("--older-than", "2", "--archive-dir", str(tmp_path), "--yes")
    manifest_path = tmp_path / f"{partition_for('audit_remediation', old_month).name}.manifest.json"
    archive: Path = tmp_path / json.loads(manifest_path.read_text())["archive"]
    rows = zstd_decompress(archive.read_bytes()).decode().splitlines()
    archive.write_bytes(zstd_compress("\n".join(rows[:-1]).encode() + b"\n"))  # one row "lost"
    with pytest.raises(ArchiveVerificationError, match="SHA-256"):
        manifest_verify(manifest_path)


def test_archive_verify_command_accepts_intact_archives_and_reports_tampered_ones(old_month, tmp_path):
    _retention("--older-than", "2", "--archive-dir", str(tmp_path), "--yes")
    out = io.StringIO()
    call_command("audit_archive_verify", str(tmp_path), stdout=out)
    assert "6 archive(s) verified." in out.getvalue()

    archive = tmp_path / f"{partition_for('audit_remediation', old_month).name}.jsonl.zst"
    archive.write_bytes(archive.read_bytes()[:-8])  # truncated in transit
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 of 6 archive"):
        call_command("audit_archive_verify", str(tmp_path), stdout=out)
    assert f"FAILED {partition_for('audit_remediation', old_month).name}.manifest.json" in out.getvalue()
