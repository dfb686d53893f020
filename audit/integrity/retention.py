"""Retention: archive whole expired partitions, verify the archive, then detach and drop them.

The audit tables are append-only (row triggers reject UPDATE and DELETE), so retention never
deletes rows: it removes whole monthly partitions, of the four audit tables and of
`incident_embeddings` alike, once each is safely archived:

1. lock the partition against writes (SHARE: readers go on; only a late embedding backfill
   into that month would wait) and read it in id order through a server-side cursor;
2. write `<partition>.jsonl.gz` (one JSON object per row: the row's canonical form, exactly
   the bytes its seal hashed; docs/INTEGRITY.md), hashing the compressed bytes as they are
   written;
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
import gzip
import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from django.db import connection, transaction
from django.db.models import Q
from psycopg import sql

from audit.integrity.sealed_rows import canonical_settings
from audit.models import AuditKind, AuditSeal
from embeddings.models import EmbeddingBacklog
from kubernaut_integrity.canonical import canonical_sql
from kubernaut_integrity.files import atomic_file, atomic_write
from kubernaut_integrity.seal_files import seal_file_name, seal_file_write
from kubernaut_integrity.seals import Seal
from kubernaut_storage.database.partitioning import (
    Partition,
    PartitionStats,
    add_months,
    month_start,
    partitioned_tables,
    partitions_list,
)

ARCHIVE_FORMAT = "jsonl+gzip"
#: Rows fetched per round trip from the server-side cursor.
FETCH_ROWS = 2000
#: The audit table of each audit kind, to clear that month's embedding backlog.
_KIND_OF_TABLE = {f"audit_{kind.value}": kind for kind in AuditKind}


class ArchiveVerificationError(Exception):
    """The archive on disk does not match what was read: nothing is dropped."""


@dataclass(frozen=True, slots=True)
class Manifest:
    table: str
    partition: str
    starts: dt.datetime
    ends: dt.datetime
    row_count: int
    archive: str
    archive_sha256: str
    archive_bytes: int
    created_at: dt.datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "partition": self.partition,
            "bounds": {"from": self.starts.isoformat(), "to": self.ends.isoformat()},
            "row_count": self.row_count,
            "archive": self.archive,
            "archive_sha256": self.archive_sha256,
            "archive_bytes": self.archive_bytes,
            "format": ARCHIVE_FORMAT,
            "created_at": self.created_at.isoformat(),
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


MANIFEST_SUFFIX = ".manifest.json"


def archive_paths(archive_dir: Path, partition: Partition) -> tuple[Path, Path]:
    return archive_dir / f"{partition.name}.jsonl.gz", archive_dir / f"{partition.name}{MANIFEST_SUFFIX}"


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
    archive_path, manifest_path = archive_paths(archive_dir, partition)
    with transaction.atomic(), connection.cursor() as cursor:
        # Bounded waits: DETACH needs an exclusive lock on the parent, which queues the write
        # path behind it; better to fail and retry later than to stall writes.
        cursor.execute(f"SET LOCAL lock_timeout = '{int(lock_timeout_s * 1000)}ms'")
        cursor.execute(_sql("LOCK TABLE {} IN SHARE MODE", partition.name, cursor=cursor))
        row_count, sha256, size = _archive_write(partition=partition, path=archive_path, on_rows=on_rows)
        cursor.execute(_sql("SELECT count(*) FROM {}", partition.name, cursor=cursor))
        in_database = cursor.fetchone()[0]
        _archive_verify(path=archive_path, row_count=row_count, sha256=sha256, expected_rows=in_database)
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
        atomic_write(manifest_path, json.dumps(manifest.as_json(), indent=2).encode() + b"\n")
        seals_export(partition=partition, directory=archive_dir, seal_dir=seal_dir)
        cursor.execute(_sql("ALTER TABLE {} DETACH PARTITION {}", partition.table, partition.name, cursor=cursor))
        cursor.execute(_sql("DROP TABLE {}", partition.name, cursor=cursor))
        kind = _KIND_OF_TABLE.get(partition.table)
        if kind is not None:
            EmbeddingBacklog.objects.filter(
                audit_type=kind, audit_recorded_at__gte=partition.starts, audit_recorded_at__lt=partition.ends
            ).delete()
    return manifest


def manifest_verify(manifest_path: Path) -> dict[str, Any]:
    """Re-check an archive against its manifest; returns the manifest. For operators and tests."""
    manifest: dict[str, Any] = json.loads(manifest_path.read_text())
    archive = manifest_path.parent / manifest["archive"]
    _archive_verify(
        path=archive,
        row_count=manifest["row_count"],
        sha256=manifest["archive_sha256"],
        expected_rows=manifest["row_count"],
    )
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
            shutil.copyfile(anchored, directory / name)
        else:
            seal_file_write(directory, Seal(stored.body.encode(), bytes(stored.signature)), None)
        written += 1
    return written


def _sql(template: str, *identifiers: str, cursor: Any) -> str:
    composed = sql.SQL(template).format(*(sql.Identifier(name) for name in identifiers))
    return composed.as_string(cursor.cursor.connection)


class _HashingWriter:
    """A binary file that hashes and counts what is written through it."""

    def __init__(self, file: BinaryIO) -> None:
        self.file = file
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self.file.write(data)

    def flush(self) -> None:
        self.file.flush()


def _archive_write(*, partition: Partition, path: Path, on_rows: Callable[[int], None] | None) -> tuple[int, str, int]:
    """Stream the partition into a gzip JSON Lines file; return (rows, SHA-256, bytes)."""
    # Each line is the row's canonical form (docs/INTEGRITY.md): the bytes its seal hashed.
    query = sql.SQL("SELECT {} FROM {} AS p ORDER BY p.id").format(
        sql.SQL(canonical_sql(partition.table)),  # type: ignore[arg-type]
        sql.Identifier(partition.name),
    )
    rows = 0
    connection.ensure_connection()
    raw = connection.connection
    assert raw is not None
    with raw.cursor() as settings_cursor:
        canonical_settings(settings_cursor)
    with atomic_file(path) as file:
        hashing = _HashingWriter(file)
        # mtime=0 and no file name in the header: the same rows always give the same bytes.
        with (
            gzip.GzipFile(filename="", mode="wb", fileobj=hashing, mtime=0) as compressed,  # type: ignore[arg-type]
            raw.cursor(name=f"retention_{partition.name}") as server_side,
        ):
            server_side.itersize = FETCH_ROWS
            server_side.execute(query)
            batch = 0
            for (line,) in server_side:
                compressed.write(line.encode("utf-8") + b"\n")
                rows += 1
                batch += 1
                if on_rows is not None and batch == FETCH_ROWS:
                    on_rows(batch)
                    batch = 0
            if on_rows is not None and batch:
                on_rows(batch)
    return rows, hashing.sha256.hexdigest(), hashing.size


def _archive_verify(*, path: Path, row_count: int, sha256: str, expected_rows: int) -> None:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    if digest.hexdigest() != sha256:
        raise ArchiveVerificationError(f"{path.name}: SHA-256 {digest.hexdigest()} != {sha256}")
    lines = 0
    with gzip.open(path, "rt", encoding="utf-8") as text:
        for line in text:
            json.loads(line)
            lines += 1
    if not lines == row_count == expected_rows:
        raise ArchiveVerificationError(
            f"{path.name}: {lines} lines in the archive, {row_count} rows written, {expected_rows} in the partition"
        )
