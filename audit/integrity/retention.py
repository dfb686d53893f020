"""Retention: archive whole expired partitions, verify the archive, then detach and drop them.

The audit tables are append-only (row triggers reject UPDATE and DELETE), so retention never
deletes rows: it removes whole monthly partitions, of the four audit tables and of
`incident_embeddings` alike, once each is safely archived:

1. lock the partition against writes (SHARE: readers go on; only a late embedding backfill
   into that month would wait) and read it in id order through a server-side cursor;
2. stream its rows' canonical lines into `<partition>.jsonl.gz` (the archive format is
   `kubernaut_integrity.archive`'s: exactly the bytes each row's seal hashed), hashing the
   compressed bytes as they are written;
3. verify: re-read the file, check its SHA-256, decompress and parse every line, and compare
   the count with `count(*)` of the still-locked partition;
4. write `<partition>.manifest.json` (table, partition, bounds, row count, SHA-256, created at)
   and, beside it, the seal files covering the partition's rows (docs/INTEGRITY.md), so the
   archive can be verified with nothing but the public key;
5. DETACH PARTITION and DROP it, and forget the embedding backlog of that month (those rows can
   never be embedded now) — all in the transaction that took the lock, so a partition is gone
   only if its verified archive is on disk.

A partition is expired when it ends on or before the first day of the month `older_than_months`
before the current UTC month, so the current month and newer are never touched.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.db import connection, transaction
from django.db.models import Q
from psycopg import sql

from audit.integrity.sealed_rows import canonical_settings
from audit.integrity.stored_seals import signed_seal
from audit.models import EVENT_AUDIT_TYPE, AuditKind, AuditSeal
from embeddings.models import EmbeddingBacklog
from kubernaut_integrity.archive import Manifest, archive_paths, archive_reread, archive_writer, manifest_write
from kubernaut_integrity.canonical import canonical_sql
from kubernaut_integrity.files import atomic_copy
from kubernaut_integrity.seal_files import seal_file_name, seal_file_write
from kubernaut_storage.database.partitioning import (
    Partition,
    PartitionStats,
    add_months,
    month_start,
    partitioned_tables,
    partitions_list,
)

#: Rows fetched per round trip from the server-side cursor.
FETCH_ROWS = 2000
#: The audit table of each audit kind, to clear that month's embedding backlog.
_KIND_OF_TABLE: dict[str, str] = {f"audit_{kind.value}": kind.value for kind in AuditKind} | {
    "audit_events": EVENT_AUDIT_TYPE
}


def retention_cutoff(*, now: dt.datetime, older_than_months: int) -> dt.datetime:
    if older_than_months < 1:
        raise ValueError("older_than_months must be at least 1")
    return add_months(month_start(now), -older_than_months)


def expired_partitions(*, now: dt.datetime, older_than_months: int) -> list[PartitionStats]:
    """Partitions of every partitioned table that lie entirely before the cutoff, oldest first."""
    cutoff = retention_cutoff(now=now, older_than_months=older_than_months)
    expired = [
        stats for table in partitioned_tables() for stats in partitions_list(table) if stats.partition.ends <= cutoff
    ]
    return sorted(expired, key=lambda stats: (stats.partition.starts, stats.partition.table))


def partition_retire(
    *,
    partition: Partition,
    archive_dir: Path,
    seal_dir: Path,
    now: dt.datetime,
    lock_timeout_s: float = 10,
    on_rows: Callable[[int], None] | None = None,
) -> Manifest:
    """Archive, verify, detach and drop one partition (steps 1-5 above). Returns its manifest.

    Raises ArchiveVerificationError (or a database error, e.g. a lock timeout) with the
    partition left in place.
    """
    if partition.ends > month_start(now):
        raise ValueError(f"{partition.name} is not entirely in the past: refusing to drop it")
    archive_dir.mkdir(parents=True, exist_ok=True)
    archive_path, manifest_path = archive_paths(archive_dir, partition.name)
    with transaction.atomic(), connection.cursor() as cursor:
        # Bounded waits: DETACH needs an exclusive lock on the parent, which queues the write
        # path behind it; better to fail and retry later than to stall writes.
        cursor.execute(f"SET LOCAL lock_timeout = '{int(lock_timeout_s * 1000)}ms'")
        cursor.execute(_sql("LOCK TABLE {} IN SHARE MODE", partition.name, cursor=cursor))
        row_count, sha256, size = _archive_write(partition=partition, path=archive_path, on_rows=on_rows)
        cursor.execute(_sql("SELECT count(*) FROM {}", partition.name, cursor=cursor))
        in_database = cursor.fetchone()[0]
        archive_reread(path=archive_path, row_count=row_count, sha256=sha256, expected_rows=in_database)
        manifest = Manifest(
            table=partition.table,
            partition=partition.name,
            starts=partition.starts,
            ends=partition.ends,
            row_count=row_count,
            archive=archive_path.name,
            archive_sha256=sha256,
            archive_bytes=size,
            created_at=now,
        )
        manifest_write(manifest_path, manifest)
        seals_export(partition=partition, directory=archive_dir, seal_dir=seal_dir)
        cursor.execute(_sql("ALTER TABLE {} DETACH PARTITION {}", partition.table, partition.name, cursor=cursor))
        cursor.execute(_sql("DROP TABLE {}", partition.name, cursor=cursor))
        kind = _KIND_OF_TABLE.get(partition.table)
        if kind is not None:
            EmbeddingBacklog.objects.filter(
                audit_type=kind, audit_recorded_at__gte=partition.starts, audit_recorded_at__lt=partition.ends
            ).delete()
    return manifest


def seals_export(*, partition: Partition, directory: Path, seal_dir: Path) -> int:
    """Write beside an archive every seal covering rows of `partition`: the seals whose window
    overlaps its bounds, and those naming it (embeddings stored after their month). The copy in
    `seal_dir` is taken when there is one (it carries the leaves that name changed rows)."""
    covering = AuditSeal.objects.filter(
        Q(window_start__lt=partition.ends, window_end__gt=partition.starts)
        | Q(window_end__gt=partition.starts, body__contains=f'"{partition.name}"')
    ).only("sequence", "body", "signature")
    written = 0
    for stored in covering.iterator():
        name = seal_file_name(stored.sequence)
        anchored = seal_dir / name
        if anchored.is_file():
            atomic_copy(anchored, directory / name)
        else:
            seal_file_write(directory, signed_seal(stored), None)
        written += 1
    return written


def _sql(template: str, *identifiers: str, cursor: Any) -> str:
    composed = sql.SQL(template).format(*(sql.Identifier(name) for name in identifiers))
    return composed.as_string(cursor.cursor.connection)


def _archive_write(*, partition: Partition, path: Path, on_rows: Callable[[int], None] | None) -> tuple[int, str, int]:
    """Stream the partition's canonical lines into its archive; return (rows, SHA-256, bytes)."""
    query = sql.SQL("SELECT {} FROM {} AS p ORDER BY p.id").format(
        sql.SQL(canonical_sql(partition.table)),  # type: ignore[arg-type]
        sql.Identifier(partition.name),
    )
    connection.ensure_connection()
    raw = connection.connection
    assert raw is not None
    with raw.cursor() as settings_cursor:
        canonical_settings(settings_cursor)
    with archive_writer(path) as archive, raw.cursor(name=f"retention_{partition.name}") as server_side:
        server_side.itersize = FETCH_ROWS
        server_side.execute(query)
        batch = 0
        for (line,) in server_side:
            archive.write_line(line)
            batch += 1
            if on_rows is not None and batch == FETCH_ROWS:
                on_rows(batch)
                batch = 0
        if on_rows is not None and batch:
            on_rows(batch)
    return archive.rows, archive.sha256, archive.size
