"""`audit_verify`'s work: the seal chain, the seals' copies outside the database, and every
row of the sealed windows against its seal (docs/INTEGRITY.md). Read-only."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.db import connection, transaction

from audit.integrity.log_verification import LogTrust, seal_log_check
from audit.integrity.metrics import seal_lag
from audit.integrity.sealed_rows import RowsPrefetch, WindowRows, earliest_recorded_at, rows_by_window
from audit.integrity.stored_seals import last_seal, seal_before, seals_in_range, signed_seal
from audit.models import AuditSeal
from kubernaut_integrity.archive import archive_paths
from kubernaut_integrity.canonical import SEALED_TABLES
from kubernaut_integrity.findings import (
    PARTITION_MISSING,
    ROW_INSERTED,
    SEAL_ANCHOR_MISMATCH,
    SEAL_MISSING,
    UNSEALED_LAG,
    Finding,
    Report,
    WindowIndex,
    chain_check,
    leaves_check,
    seals_check,
)
from kubernaut_integrity.seal_files import SealDirectory, SealFile, seal_directory_read, seal_file_name
from kubernaut_integrity.seals import Leaves, Seal, seal_tables, well_formed
from kubernaut_storage.database.partitioning import existing_partitions, partitioned_tables


@dataclass
class VerifyReport(Report):
    seconds: float = 0.0

    def coverage(self) -> dict[str, Any]:
        return {
            **super().coverage(),
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rows / self.seconds) if self.seconds else None,
        }


def audit_verify(
    *,
    trusted: Mapping[str, Ed25519PublicKey],
    seal_dir: Path | None,
    archive_dir: Path,
    window_seconds: int,
    max_lag_seconds: float,
    time_from: dt.datetime | None = None,
    time_to: dt.datetime | None = None,
    now: dt.datetime,
    on_rows: Callable[[int], None] | None = None,
    log_trust: LogTrust | None = None,
    workers: int = 1,
) -> VerifyReport:
    """Verify the seals whose windows overlap [time_from, time_to) (default: all) and their rows;
    with `log_trust` and no range, the whole seal log too (`log_verification.py`).

    The rows are hashed on `workers` connections in this run's snapshot; inside a caller's
    transaction (whose rows other connections cannot see) on this one only."""
    started = time.perf_counter()
    report = VerifyReport()
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost:
            # One snapshot for the seals and the rows: REPEATABLE READ, read-only.
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        stored = list(
            seals_in_range(time_from, time_to).only("sequence", "body", "signature", "window_start", "window_end")
        )
        prefetch = _rows_prefetch(stored, time_from, time_to, workers) if outermost and workers > 1 else None
        try:
            _seals_and_rows_check(
                report=report,
                stored=stored,
                trusted=trusted,
                seal_dir=seal_dir,
                archive_dir=archive_dir,
                time_from=time_from,
                time_to=time_to,
                on_rows=on_rows,
                workers=workers if outermost else 1,
                prefetch=prefetch,
            )
        finally:
            if prefetch is not None:
                prefetch.close()
        if time_to is None:
            last = last_seal()
            lag = seal_lag(
                now=now,
                last_sealed_end=last.window_end if last is not None else None,
                earliest=earliest_recorded_at(),
                window_seconds=window_seconds,
            )
            if lag > max_lag_seconds:
                report.findings.append(
                    Finding(UNSEALED_LAG, f"the oldest closed window not sealed ended {lag:.0f} s ago")
                )
        if log_trust is not None and time_from is None and time_to is None:
            # One tree over every seal: checked whole, by a run over the whole history.
            report.findings += seal_log_check(trust=log_trust, seal_dir=seal_dir)
    report.seconds = time.perf_counter() - started
    return report


def _seals_and_rows_check(
    *,
    report: VerifyReport,
    stored: list[AuditSeal],
    trusted: Mapping[str, Ed25519PublicKey],
    seal_dir: Path | None,
    archive_dir: Path,
    time_from: dt.datetime | None,
    time_to: dt.datetime | None,
    on_rows: Callable[[int], None] | None,
    workers: int,
    prefetch: RowsPrefetch | None,
) -> None:
    """The seals on their own, their chain and their copies outside the database, then the rows
    of their windows against them."""
    before = seal_before(stored[0].sequence) if stored else None
    if before is not None and not well_formed(before):
        before = None  # the chain shows a gap here; the seal's own fault is found with its range
    database = {row.sequence: signed_seal(row) for row in stored}
    report.seals = len(database)
    checked, findings = seals_check(database.values(), trusted)
    report.findings += findings
    report.findings += chain_check(checked, before=before)
    anchored = _anchored(seal_dir, database, time_from, time_to, trusted)
    report.findings += anchored.findings
    reference = _reference_seals(database, set(checked), anchored, report.findings)
    if reference:
        report.rows = _rows_check(
            reference=reference,
            anchored=anchored.files,
            archive_dir=archive_dir,
            time_from=time_from,
            time_to=time_to,
            findings=report.findings,
            on_rows=on_rows,
            workers=workers,
            prefetch=prefetch,
        )


def _rows_prefetch(
    stored: list[AuditSeal], time_from: dt.datetime | None, time_to: dt.datetime | None, workers: int
) -> RowsPrefetch | None:
    """The rows the check will most likely need, hashed while the seals are checked: the range
    `_rows_check` computes, from the stored windows (not yet checked; if the signed ones span
    more, `rows_by_window` reads the rows itself)."""
    if not stored:
        return None
    first_start = min(seal.window_start for seal in stored)
    last_end = max(seal.window_end for seal in stored)
    earliest = earliest_recorded_at() or first_start
    start = time_from if time_from is not None and time_from >= first_start else min(earliest, first_start)
    end = min(time_to, last_end) if time_to is not None else last_end
    return RowsPrefetch(start=start, end=end, workers=workers) if start < end else None


def _anchored(
    seal_dir: Path | None,
    database: Mapping[int, Seal],
    time_from: dt.datetime | None,
    time_to: dt.datetime | None,
    trusted: Mapping[str, Ed25519PublicKey],
) -> SealDirectory:
    """The seal files of the range (none without a seal directory)."""
    if seal_dir is None:
        return SealDirectory()
    # Without a time range every file counts; with one, those between its first and last seal.
    if time_from is None and time_to is None:
        return seal_directory_read(seal_dir, trusted=trusted)
    low, high = min(database, default=0), max(database, default=0)
    return seal_directory_read(seal_dir, trusted=trusted, wanted=lambda sequence: low <= sequence <= high)


def _reference_seals(
    database: Mapping[int, Seal],
    usable: set[Seal],
    anchored: SealDirectory,
    findings: list[Finding],
) -> dict[int, Seal]:
    """The seal each window's rows are checked against: the copy outside the database when it
    is validly signed (it survives a rewrite of the database), else the database's if it is
    well-formed."""
    reference = {sequence: seal for sequence, seal in database.items() if seal in usable}
    for sequence, copy in anchored.files.items():
        stored = database.get(sequence)
        if stored is None:
            findings.append(
                Finding(
                    SEAL_MISSING, "the seal's copy outside the database exists, the database lost it", seal=sequence
                )
            )
        elif (stored.body_bytes, stored.signature) != (copy.seal.body_bytes, copy.seal.signature):
            findings.append(
                Finding(
                    SEAL_ANCHOR_MISMATCH, f"differs from {seal_file_name(sequence)} outside the database", seal=sequence
                )
            )
        if copy.signed:
            reference[sequence] = copy.seal
    if anchored.files or anchored.unusable:
        for sequence in database.keys() - anchored.files.keys() - anchored.unusable:
            findings.append(
                Finding(SEAL_ANCHOR_MISMATCH, f"no {seal_file_name(sequence)} outside the database", seal=sequence)
            )
    return reference


def _rows_check(
    *,
    reference: Mapping[int, Seal],
    anchored: Mapping[int, SealFile],
    archive_dir: Path,
    time_from: dt.datetime | None,
    time_to: dt.datetime | None,
    findings: list[Finding],
    on_rows: Callable[[int], None] | None,
    workers: int,
    prefetch: RowsPrefetch | None,
) -> int:
    seals = [reference[sequence] for sequence in sorted(reference)]
    index = WindowIndex.of_seals(seals)
    first_start = dt.datetime.fromisoformat(index.starts[0].replace("Z", "+00:00"))
    last_end = dt.datetime.fromisoformat(max(index.ends).replace("Z", "+00:00"))
    # Rows before the first seal are checked too (none may exist) unless a range starts there or later.
    earliest = earliest_recorded_at() or first_start
    start = time_from if time_from is not None and time_from >= first_start else min(earliest, first_start)
    end = min(time_to, last_end) if time_to is not None else last_end
    by_window, outside = rows_by_window(
        windows=index, start=start, end=end, on_rows=on_rows, workers=workers, prefetched=prefetch
    )
    rows = sum(len(leaves) for window in by_window.values() for leaves in window.leaves.values()) + len(outside)
    for row in outside:
        findings.append(
            Finding(
                ROW_INSERTED,
                f"recorded_at {row.recorded_at} is in no seal's window",
                table=row.table,
                row_id=row.row_id,
            )
        )
    present = {table: existing_partitions(table) for table in partitioned_tables()}
    for seal in seals:
        body = seal.body
        sequence = body["sequence"]
        window = by_window.get(sequence) or WindowRows.empty()
        covered = seal_tables(body)
        for table in SEALED_TABLES:
            if table not in covered:
                # A seal of an older form, made before the table was sealed: none of its rows
                # can be in that window (the sealed-window trigger refuses them).
                findings += [
                    Finding(
                        ROW_INSERTED,
                        f"in the window of seal {sequence}, of form {body['form']}, which does not seal {table}",
                        table=table,
                        row_id=row_id,
                        seal=sequence,
                    )
                    for row_id, _ in window.leaves[table]
                ]
                continue
            entry = body["tables"].get(table, {})
            gone = [name for name in entry.get("partitions", []) if name not in present[table]]
            if gone:
                findings += [
                    Finding(
                        PARTITION_MISSING,
                        f"partition {name} is gone and has no archive manifest",
                        table=table,
                        seal=sequence,
                    )
                    for name in gone
                    if not _archived(archive_dir, name)
                ]
                continue  # a retired partition's rows are checked in its archive (audit_archive_verify)
            copy = anchored.get(sequence)
            sealed_leaves: Leaves | None = copy.leaves.get(table) if copy is not None and copy.leaves else None
            findings += leaves_check(seal=seal, table=table, actual=window.leaves[table], sealed_leaves=sealed_leaves)
    return rows


def _archived(archive_dir: Path, partition: str) -> bool:
    _, manifest = archive_paths(archive_dir, partition)
    return manifest.exists()
