"""Retention exports the seals with each archive, and the standalone verifier — nothing but
Python, `cryptography` and the public key — checks the archived rows against them."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from audit.models import RemediationAudit
from embeddings.models import IncidentEmbedding
from kubernaut_storage.database.partitioning import (
    add_months,
    month_start,
    partition_create,
    partition_for,
    partitioned_tables,
)
from testutils.admin_rows import bulk_remediations, remediation_chain
from testutils.integrity import key_files, seal_now, verify
from testutils.integrity_export import zstd_compress, zstd_decompress

pytestmark = pytest.mark.django_db

REPOSITORY = Path(django_settings.BASE_DIR)


@pytest.fixture
def archived(tmp_path: Path, settings: Any) -> dict[str, Any]:
    """Rows three months old (and one embedding of theirs stored today, as a backfill does),
    sealed, then archived and dropped by `audit_retention`."""
    month = add_months(month_start(timezone.now()), -3)
    for table in partitioned_tables():
        partition_create(partition_for(table, month))
    bulk_remediations(count=30, recorded_from=month, recorded_to=month + dt.timedelta(days=10), prefix="old")
    old = list(RemediationAudit.objects.filter(name__startswith="old-").order_by("id")[:3])
    vectors = np.random.default_rng(7).random((3, 384), dtype=np.float32)
    for row, vector, stored in zip(old, vectors, (row.recorded_at for row in old[:2]), strict=False):
        IncidentEmbedding.objects.create(
            audit_type="remediation",
            audit_id=row.id,
            audit_recorded_at=row.recorded_at,
            namespace="ns",
            model="all-MiniLM-L6-v2",
            dimensions=384,
            input_sha256="0" * 64,
            embedding=vector,
            recorded_at=stored,
        )
    IncidentEmbedding.objects.create(  # backfilled today for a three-month-old record
        audit_type="remediation",
        audit_id=old[2].id,
        audit_recorded_at=old[2].recorded_at,
        namespace="ns",
        model="all-MiniLM-L6-v2",
        dimensions=384,
        input_sha256="0" * 64,
        embedding=vectors[2],
        recorded_at=timezone.now(),
    )
    remediation_chain()
    private, public = key_files(tmp_path / "keys")
    seal_dir, archive_dir = tmp_path / "seals", tmp_path / "archives"
    settings.AUDIT_SEAL_DIR = str(seal_dir)
    settings.AUDIT_ARCHIVE_DIR = str(archive_dir)
    seal_now(private, seal_dir)
    call_command("audit_retention", "--older-than", "2", "--yes", stdout=io.StringIO(), stderr=io.StringIO())
    return {"public": public, "archive_dir": archive_dir, "seal_dir": seal_dir, "month": month}


def _standalone(directory: Path, public: Path) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "kubernaut_integrity", str(directory), "--public-key", str(public), "--json"],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    return done.returncode, json.loads(done.stdout)


def test_archive_and_seals_verify_clean(archived: dict[str, Any]) -> None:
    archive_dir = archived["archive_dir"]
    assert sorted(archive_dir.glob("seal-*.json"))
    status, report = _standalone(archive_dir, archived["public"])
    assert status == 0, report["findings"]
    assert report["rows"] == 30 + 3
    out = io.StringIO()
    call_command("audit_archive_verify", str(archive_dir), "--public-key", str(archived["public"]), stdout=out)
    assert "clean" in out.getvalue()
    # The live database verifies clean too: the retired partitions have their manifests.
    clean, db_report = verify(archived["public"], seal_dir=archived["seal_dir"])
    assert clean, db_report["findings"]


def test_one_byte_of_the_archive_changed_is_found(archived: dict[str, Any]) -> None:
    archive = archived["archive_dir"] / f"{partition_for('audit_remediation', archived['month']).name}.jsonl.zst"
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0x01
    archive.write_bytes(bytes(data))
    status, report = _standalone(archived["archive_dir"], archived["public"])
    assert status == 1
    assert [(f["kind"], f["table"]) for f in report["findings"]] == [("archive_corrupt", "audit_remediation")]
    with pytest.raises(CommandError):
        call_command(
            "audit_archive_verify",
            str(archived["archive_dir"]),
            "--public-key",
            str(archived["public"]),
            stdout=io.StringIO(),
        )


def test_a_row_rewritten_with_a_matching_manifest_is_named(archived: dict[str, Any]) -> None:
    """An archive re-made with one row changed and its manifest updated passes the SHA-256
    check; the seals still name the row."""
    partition = partition_for("audit_remediation", archived["month"]).name
    archive = archived["archive_dir"] / f"{partition}.jsonl.zst"
    lines = zstd_decompress(archive.read_bytes()).decode().splitlines()
    row = json.loads(lines[4])
    row["phase"] = "Completed" if row["phase"] != "Completed" else "Failed"
    lines[4] = json.dumps(row)
    data = zstd_compress(("\n".join(lines) + "\n").encode())
    archive.write_bytes(data)
    manifest_path = archived["archive_dir"] / f"{partition}.manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest.update(archive_sha256=hashlib.sha256(data).hexdigest(), archive_bytes=len(data))
    manifest_path.write_text(json.dumps(manifest))
    status, report = _standalone(archived["archive_dir"], archived["public"])
    assert status == 1
    assert [(f["kind"], f["table"], f["id"]) for f in report["findings"]] == [
        ("row_modified", "audit_remediation", row["id"])
    ]
