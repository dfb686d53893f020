"""Retention that is interrupted mid-archive, and several partitions retired at once: nothing is
lost, nothing is dropped before its archive is whole, and a resumed run reads only what is left."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from psycopg import sql

from audit.integrity import retention
from audit.integrity.retention import partition_retire
from kubernaut_integrity import archive_writing
from kubernaut_integrity.archive import archive_lines, archive_paths, manifest_verify
from kubernaut_integrity.archive_writing import journal_path, journal_read
from kubernaut_integrity.canonical import canonical_sql
from kubernaut_storage.database.partitioning import (
    Partition,
    add_months,
    existing_partitions,
    month_start,
    partition_create,
    partition_for,
    partitioned_tables,
)
from testutils.admin_rows import bulk_remediations
from testutils.integrity_export import zstd_decompress

ROWS = 25


class SimulatedCrashError(Exception):
    """The process dying mid-archive, as far as the database and the files can tell."""


@pytest.fixture
def old_remediations() -> Partition:
    """Three months ago: a partition of every table, ROWS rows in the remediation one."""
    month = add_months(month_start(timezone.now()), -3)
    for table in partitioned_tables():
        partition_create(partition_for(table, month))
    bulk_remediations(count=ROWS, recorded_from=month, recorded_to=month + dt.timedelta(days=10), prefix="old")
    return partition_for("audit_remediation", month)


@pytest.fixture
def small_segments(monkeypatch: pytest.MonkeyPatch) -> None:
    """Segments of 10 rows read 5 at a time, so that 25 rows make several."""
    monkeypatch.setattr(archive_writing, "SEGMENT_ROWS", 10)
    monkeypatch.setattr(retention, "FETCH_ROWS", 5)


def _canonical_lines(partition: Partition) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SET extra_float_digits = 1")
        query = sql.SQL("SELECT {} FROM {} AS p ORDER BY p.id").format(
            sql.SQL(canonical_sql(partition.table)),  # type: ignore[arg-type]
            sql.Identifier(partition.name),
        )
        cursor.execute(query.as_string(cursor.cursor.connection))
        return [line for (line,) in cursor.fetchall()]


def _retire(partition: Partition, archive_dir: Path, seal_dir: Path, *, crash_after: int | None = None) -> list[int]:
    """Retire `partition`; with `crash_after`, die once that many rows have been read. Returns
    the batches of rows read."""
    read: list[int] = []

    def on_rows(rows: int) -> None:
        read.append(rows)
        if crash_after is not None and sum(read) >= crash_after:
            raise SimulatedCrashError

    partition_retire(
        partition=partition, archive_dir=archive_dir, seal_dir=seal_dir, now=timezone.now(), on_rows=on_rows
    )
    return read


@pytest.mark.django_db
@pytest.mark.usefixtures("small_segments")
def test_a_run_that_dies_mid_archive_is_resumed_and_the_partition_archived_once(old_remediations, tmp_path):
    partition = old_remediations
    expected = _canonical_lines(partition)
    archive, manifest_path = archive_paths(tmp_path, partition.name)

    with pytest.raises(SimulatedCrashError):
        _retire(partition, tmp_path, tmp_path / "seals", crash_after=15)

    # The partition is whole; the first segment (10 rows) is durable and journaled, the rows
    # read after it are not counted on.
    assert partition.name in existing_partitions("audit_remediation")
    assert len(_canonical_lines(partition)) == ROWS
    assert [segment.rows for segment in journal_read(journal_path(archive))] == [10]
    assert not manifest_path.exists()

    read = _retire(partition, tmp_path, tmp_path / "seals")

    assert sum(read) == ROWS - 10  # only what the first run had not made durable
    assert partition.name not in existing_partitions("audit_remediation")
    assert list(archive_lines(archive)) == expected  # every row once, in id order
    assert manifest_verify(manifest_path).row_count == ROWS
    assert not journal_path(archive).exists()


@pytest.mark.django_db
@pytest.mark.usefixtures("small_segments")
def test_the_resumed_archive_is_the_bytes_of_an_uninterrupted_one(old_remediations, tmp_path):
    partition = old_remediations
    with pytest.raises(SimulatedCrashError):
        _retire(partition, tmp_path / "a", tmp_path / "seals", crash_after=20)
    interrupted = tmp_path / "a" / archive_paths(tmp_path, partition.name)[0].name
    whole = archive_paths(tmp_path / "b", partition.name)[0]
    (tmp_path / "b").mkdir()

    # The uninterrupted archive of the same rows, as the resumed run will make it.
    writer = archive_writing.SegmentedArchiveWriter.resumed(archive=whole)
    for number, line in enumerate(_canonical_lines(partition), start=1):
        writer.write(line.encode() + b"\n", rows=1, last_id=number)
    writer.finish()
    _retire(partition, tmp_path / "a", tmp_path / "seals")

    assert interrupted.read_bytes() == whole.read_bytes()
    assert zstd_decompress(whole.read_bytes()).count(b"\n") == ROWS


@pytest.mark.django_db
@pytest.mark.usefixtures("small_segments")
def test_a_journal_the_database_no_longer_matches_starts_the_archive_over(old_remediations, tmp_path):
    partition = old_remediations
    with pytest.raises(SimulatedCrashError):
        _retire(partition, tmp_path, tmp_path / "seals", crash_after=15)
    # A row below the journal's last id, as a late backfill between the runs could add.
    with connection.cursor() as cursor:
        cursor.execute(
            f'INSERT INTO "{partition.name}" SELECT (jsonb_populate_record(NULL::"{partition.name}",'
            " to_jsonb(r) || jsonb_build_object('id', r.id - 1, 'name', 'late'))).*"
            f' FROM "{partition.name}" AS r ORDER BY r.id LIMIT 1'
        )

    read = _retire(partition, tmp_path, tmp_path / "seals")

    assert sum(read) == ROWS + 1
    manifest = manifest_verify(archive_paths(tmp_path, partition.name)[1])
    assert manifest.row_count == ROWS + 1


@pytest.mark.django_db
@pytest.mark.usefixtures("small_segments")
def test_an_archive_cut_short_behind_the_journal_starts_over(old_remediations, tmp_path):
    partition = old_remediations
    with pytest.raises(SimulatedCrashError):
        _retire(partition, tmp_path, tmp_path / "seals", crash_after=15)
    archive, manifest_path = archive_paths(tmp_path, partition.name)
    archive.write_bytes(archive.read_bytes()[:20])  # not the bytes the journal records

    read = _retire(partition, tmp_path, tmp_path / "seals")

    assert sum(read) == ROWS
    assert manifest_verify(manifest_path).row_count == ROWS


@pytest.mark.django_db(transaction=True)
def test_parallel_workers_retire_every_partition_of_the_month(old_remediations, tmp_path):
    month = old_remediations.starts
    names = {partition_for(table, month).name for table in partitioned_tables()}
    out = io.StringIO()

    call_command(
        "audit_retention", "--older-than", "2", "--archive-dir", str(tmp_path), "--parallel", "3", "--yes",
        stdout=out, stderr=io.StringIO(),
    )  # fmt: skip

    assert f"{len(names)} partition(s) archived, verified, detached and dropped." in out.getvalue()
    assert not names & {name for table in partitioned_tables() for name in existing_partitions(table)}
    manifests = [json.loads(path.read_text()) for path in tmp_path.glob("*.manifest.json")]
    assert sorted(manifest["partition"] for manifest in manifests) == sorted(names)
    assert sum(manifest["row_count"] for manifest in manifests) == ROWS
    assert not list(tmp_path.glob("*.journal.json"))
