"""Retention: archive whole expired partitions, verify the archive, then detach and drop them.

The audit tables are append-only (row triggers reject UPDATE and DELETE), so retention never
deletes rows: it removes whole monthly partitions, of the four audit tables and of
`incident_embeddings` alike, once each is safely archived. Several partitions are retired at
once (`partitions_retire`), each on its own connection and in its own transaction:

1. lock the partition against writes and other retention runs (SHARE ROW EXCLUSIVE: readers
   go on; only a late embedding backfill into that month would wait);
2. have PostgreSQL write its rows' canonical lines, FETCH_ROWS rows per query in id order,
   each batch one `bytea` already joined by newlines (so no Python work per row, and memory
   bounded by the batch whatever the partition's size), and append them to
   `<partition>.jsonl.zst` in segments that are fsynced and journaled as they complete
   (`kubernaut_integrity.archive_writing`): a run that dies mid-archive is resumed by the
   next one after the last complete segment, once the database shows the same rows up to it;
3. verify: re-read the file from disk, its SHA-256 and every segment's lines against what the
   database sent, and their count against `count(*)` of the still-locked partition;
4. write `<partition>.manifest.json` (table, partition, bounds, row count, SHA-256, created at)
   and, beside it, the seal files covering the partition's rows (docs/INTEGRITY.md), so the
   archive can be verified with nothing but the public key;
5. DETACH PARTITION and DROP it, and forget the embedding backlog of that month (those rows can
   never be embedded now) — all in the transaction that took the lock, so a partition is gone
   only if its verified, fsynced archive is on disk.

A partition is expired when it ends on or before the first day of the month `older_than_months`
before the current UTC month, so the current month and newer are never touched.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import filecmp
import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
from django.db import connection, connections, transaction
from django.db.models import Q
from psycopg import sql

from audit.integrity.sealed_rows import canonical_settings
from audit.integrity.stored_seals import signed_seal
from audit.models import EVENT_AUDIT_TYPE, AuditKind, AuditSeal
from embeddings.models import EmbeddingBacklog
from kubernaut_integrity.archive import Manifest, archive_paths, manifest_write
from kubernaut_integrity.archive_writing import (
    SEGMENT_ROWS,
    SegmentedArchiveWriter,
    archive_segments_check,
    journal_path,
)
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

#: Rows per query: ~7 MB of lines at 384-d; a divisor of SEGMENT_ROWS, so that segments end at
#: the same rows on every run.
FETCH_ROWS = 2000
assert SEGMENT_ROWS % FETCH_ROWS == 0
#: Batches fetched ahead of the one being compressed: memory stays a few batches.
PIPELINE_BATCHES = 2
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


def partitions_retire(
    *,
    partitions: list[Partition],
    workers: int,
    archive_dir: Path,
    seal_dir: Path,
    now: dt.datetime,
    lock_timeout_s: float = 10,
    on_rows: Callable[[int], None] | None = None,
) -> list[tuple[Partition, Manifest | Exception]]:
    """Retire `partitions`, `workers` at a time, each on its own connection; the outcome of each
    (its manifest, or the error that kept it), in the order given. One failure does not stop
    the others: each partition is its own transaction (a savepoint inside a caller's). With one
    worker, or inside a caller's transaction, one after the other in this thread."""

    def retire(partition: Partition) -> Manifest | Exception:
        try:
            return partition_retire(
                partition=partition,
                archive_dir=archive_dir,
                seal_dir=seal_dir,
                now=now,
                lock_timeout_s=lock_timeout_s,
                on_rows=on_rows,
            )
        except Exception as exc:  # reported per partition by the caller
            return exc
        finally:
            if workers > 1:
                connections.close_all()  # this worker thread's connection

    if workers <= 1 or connection.in_atomic_block:
        # Inside a caller's transaction, on its connection: other connections cannot see what
        # it has not committed (the partitions themselves, in tests).
        workers = 1
        return [(partition, retire(partition)) for partition in partitions]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="retention") as pool:
        return list(zip(partitions, pool.map(retire, partitions), strict=True))


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
    partition left in place, and its archive's complete segments kept for the next run.
    """
    if partition.ends > month_start(now):
        raise ValueError(f"{partition.name} is not entirely in the past: refusing to drop it")
    archive_dir.mkdir(parents=True, exist_ok=True)
    archive_path, manifest_path = archive_paths(archive_dir, partition.name)
    with transaction.atomic(), connection.cursor() as cursor:
        # Bounded waits: DETACH needs an exclusive lock on the parent, which queues the write
        # path behind it; better to fail and retry later than to stall writes.
        cursor.execute(f"SET LOCAL lock_timeout = '{int(lock_timeout_s * 1000)}ms'")
        # Against writes like SHARE, and against a second retention run of the same partition
        # too (the mode conflicts with itself): one writer per archive file and journal.
        cursor.execute(_sql("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE", partition.name, cursor=cursor))
        # The partition is still here: a manifest of an earlier, interrupted run describes an
        # archive this run may extend, so it goes until this run has verified the archive.
        manifest_path.unlink(missing_ok=True)
        canonical_settings(cursor)
        writer = _writer(partition=partition, archive=archive_path, cursor=cursor)
        try:
            _archive_write(partition=partition, writer=writer, cursor=cursor, on_rows=on_rows)
            segments = writer.finish()
        finally:
            writer.close()
        cursor.execute(_sql("SELECT count(*) FROM {}", partition.name, cursor=cursor))
        in_database = cursor.fetchone()[0]
        archive_segments_check(archive=archive_path, segments=segments, expected_rows=in_database)
        manifest = Manifest(
            table=partition.table,
            partition=partition.name,
            starts=partition.starts,
            ends=partition.ends,
            row_count=in_database,
            archive=archive_path.name,
            archive_sha256=segments[-1].sha256,
            archive_bytes=segments[-1].end,
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
    # Only after the commit: until then a crash leaves the partition, and the journal lets the
    # next run finish its archive without reading it all again.
    journal_path(archive_path).unlink(missing_ok=True)
    return manifest


def seals_export(*, partition: Partition, directory: Path, seal_dir: Path) -> int:
    """Write beside an archive every seal covering rows of `partition`: the seals whose window
    overlaps its bounds, and those naming it (embeddings stored after their month). The copy in
    `seal_dir` is taken when there is one (it carries the leaves that name changed rows).

    Seal files never change once written (a rewrite is a new file renamed over the old), so the
    copy is a hard link when both directories are on one file system, and a seal already
    exported for another partition of the month is not written again; one fsync of the
    directory makes the links durable. (A file copy with an fsync each took 88 s of the 454 s
    the volume bench's month took to retire, most of them copies of the same files.)"""
    covering = AuditSeal.objects.filter(
        Q(window_start__lt=partition.ends, window_end__gt=partition.starts)
        | Q(window_end__gt=partition.starts, body__contains=f'"{partition.name}"')
    )
    unanchored: list[int] = []
    written = 0
    for sequence in covering.values_list("sequence", flat=True).iterator(chunk_size=10_000):
        name = seal_file_name(sequence)
        if not _link_or_copy(os.path.join(seal_dir, name), os.path.join(directory, name)):
            unanchored.append(sequence)
        written += 1
    for stored in AuditSeal.objects.filter(sequence__in=unanchored).only("sequence", "body", "signature"):
        seal_file_write(directory, signed_seal(stored), None)
    _directory_sync(directory)
    return written


def _link_or_copy(source: str, destination: str) -> bool:
    """`destination` made the file `source` is; False when there is no `source`. Plain os
    calls on str paths: this runs once per seal, tens of thousands of times per partition."""
    try:
        os.link(source, destination)
        return True
    except FileNotFoundError:
        return False
    except FileExistsError:
        if os.path.samefile(source, destination) or filecmp.cmp(source, destination, shallow=False):
            return True  # exported already, with another partition of the same windows
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
            raise
        atomic_copy(Path(source), Path(destination))
        return True
    # Another file by that name: replaced whole. A name of this thread's own for the link,
    # since the partitions of one month are exported side by side.
    temporary = f"{destination}.{os.getpid()}.{threading.get_native_id()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temporary)
    os.link(source, temporary)
    os.replace(temporary, destination)
    return True


def _directory_sync(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _sql(template: str, *identifiers: str, cursor: Any) -> str:
    composed = sql.SQL(template).format(*(sql.Identifier(name) for name in identifiers))
    return composed.as_string(cursor.cursor.connection)


def _writer(*, partition: Partition, archive: Path, cursor: Any) -> SegmentedArchiveWriter:
    """The archive's writer, resumed after an interrupted run when the partition still holds
    exactly the rows that run archived (rows are never changed or deleted, but a late
    embedding backfill between the runs could add one with a lower id: then start over)."""
    writer = SegmentedArchiveWriter.resumed(archive=archive)
    if writer.segments:
        cursor.execute(_sql("SELECT count(*) FROM {} WHERE id <= %s", partition.name, cursor=cursor), [writer.last_id])
        if cursor.fetchone()[0] != writer.rows:
            writer.start_over()
    return writer


def _archive_write(
    *, partition: Partition, writer: SegmentedArchiveWriter, cursor: Any, on_rows: Callable[[int], None] | None
) -> None:
    """Append the partition's rows after the writer's last id, FETCH_ROWS at a time: the next
    batch is fetched (PostgreSQL writing its lines) while this one is compressed and written.

    Not COPY: its text format doubles every backslash of the JSON (one per escaped quote), and
    it sends one message per row; one `bytea` per batch crosses the wire as it is."""
    batches: queue.Queue[tuple[int, int, bytes] | BaseException | None] = queue.Queue(maxsize=PIPELINE_BATCHES)
    stop = threading.Event()
    fetcher = threading.Thread(
        target=_batches_fetch,
        kwargs={"partition": partition, "after_id": writer.last_id, "cursor": cursor, "out": batches, "stop": stop},
        name=f"retention-fetch-{partition.name}",
    )
    fetcher.start()
    try:
        while (batch := batches.get()) is not None:
            if isinstance(batch, BaseException):
                raise batch
            last_id, rows, lines = batch
            writer.write(lines, rows=rows, last_id=last_id)
            if on_rows is not None:
                on_rows(rows)
    finally:
        stop.set()
        with contextlib.suppress(queue.Empty):
            batches.get_nowait()  # unblock a fetcher waiting to put
        fetcher.join()


def _batches_fetch(
    *, partition: Partition, after_id: int, cursor: Any, out: queue.Queue[Any], stop: threading.Event
) -> None:
    """(last id, rows, lines) of each batch after `after_id` into `out`, then None (or the error).
    The connection is this thread's alone until it ends: the caller only waits on `out`."""
    query = sql.SQL(
        "SELECT max(b.id), count(*), convert_to(string_agg(b.line, '' ORDER BY b.id), 'UTF8')"
        " FROM (SELECT p.id, {} || E'\\n' AS line FROM {} AS p WHERE p.id > %s ORDER BY p.id LIMIT %s) AS b"
    ).format(
        sql.SQL(canonical_sql(partition.table)),  # type: ignore[arg-type]
        sql.Identifier(partition.name),
    )
    try:
        # A server-binding cursor on the same connection (and transaction), for binary results:
        # the bytea arrives as its bytes, not as hex text (Django's client-side cursors cannot).
        with psycopg.Cursor(cursor.cursor.connection) as binary:
            while not stop.is_set():
                binary.execute(query, [after_id, FETCH_ROWS], binary=True)
                batch = binary.fetchone()
                assert batch is not None  # an aggregate: one row, even over no rows
                last_id, rows, lines = batch
                if not rows:
                    break
                _put(out, (last_id, rows, lines), stop)
                after_id = last_id
                if rows < FETCH_ROWS:
                    break
        _put(out, None, stop)
    except BaseException as exc:  # handed to the writing thread, which raises it
        _put(out, exc, stop)


def _put(out: queue.Queue[Any], item: Any, stop: threading.Event) -> None:
    while not stop.is_set():
        with contextlib.suppress(queue.Full):
            out.put(item, timeout=0.5)
            return
