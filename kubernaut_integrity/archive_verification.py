"""Verify an exported period with nothing but the public key: the retention archives
(`archive.py`) and the seal files written beside them (`seal_files.py`).

1. Each archive must match its manifest (SHA-256 and size; its rows are counted against the
   seals in step 4, which the manifest's own row count could not vouch for).
2. Each seal must be well-formed and signed by a trusted key; seals with consecutive numbers
   must link (previous hash, adjoining windows).
3. The exported seals must cover, without a gap, every month of an exported audit table from
   the start of the chain (seal 1's window) or the month's start.
4. Every archived row is hashed in the canonical form and sorted into the seal whose window
   holds its recorded_at; each table's part of a seal whose partitions are all exported must
   match its count and Merkle root, and the seal file's leaves then name each row that differs.
   A part that also needs partitions not exported (an embedding stored months after its audit
   row) is counted as not checkable here, not as a finding.

Every file is read as hostile input (`archive.py`, `seal_files.py`): a malformed one is a
finding naming it, never an exception.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kubernaut_integrity.archive import (
    MANIFEST_SUFFIX,
    ArchiveVerificationError,
    Manifest,
    archive_lines,
    archive_problem,
    manifest_read,
)
from kubernaut_integrity.canonical import FormError, line_identity, row_hash, timestamp_canonical
from kubernaut_integrity.findings import (
    ARCHIVE_CORRUPT,
    ROW_INSERTED,
    SEAL_MISSING,
    Finding,
    Report,
    WindowIndex,
    chain_check,
    leaves_check,
    seals_check,
)
from kubernaut_integrity.seal_files import SealFile, seal_directory_read
from kubernaut_integrity.seals import GENESIS_PREVIOUS, Leaves, seal_tables


@dataclass
class ArchiveReport(Report):
    archives: int = 0
    not_checkable: int = 0

    def coverage(self) -> dict[str, Any]:
        return {
            "archives": self.archives,
            "seals": self.seals,
            "rows": self.rows,
            "table_parts_not_checkable": self.not_checkable,
        }


def archive_verify(directory: Path, trusted: Mapping[str, Ed25519PublicKey]) -> ArchiveReport:
    report = ArchiveReport()
    archives: list[Manifest] = []
    for manifest_path in sorted(directory.glob(f"*{MANIFEST_SUFFIX}")):
        report.archives += 1
        try:
            manifest = manifest_read(manifest_path)
        except ArchiveVerificationError as exc:
            report.findings.append(Finding(ARCHIVE_CORRUPT, f"{manifest_path.name}: {exc}"))
            continue
        problem = archive_problem(manifest, directory)
        if problem is not None:
            report.findings.append(Finding(ARCHIVE_CORRUPT, problem, table=manifest.table))
            continue
        archives.append(manifest)
    sealed = seal_directory_read(directory, trusted=trusted)
    report.findings += sealed.findings
    files = sealed.files  # each one's body well-formed, or it would be a finding above
    report.seals = len(files)
    ordered, findings = seals_check((files[sequence].seal for sequence in sorted(files)), trusted)
    report.findings += findings
    report.findings += chain_check(ordered, excerpt=True)
    report.findings += _coverage(archives, files)
    _rows_check(directory, archives, files, report)
    return report


def _coverage(archives: list[Manifest], files: Mapping[int, SealFile]) -> list[Finding]:
    windows = sorted((copy.seal.body["window"]["start"], copy.seal.body["window"]["end"]) for copy in files.values())
    genesis = next((copy.seal.body for copy in files.values() if copy.seal.body["previous"] == GENESIS_PREVIOUS), None)
    findings = []
    months = {(archive.starts, archive.ends) for archive in archives if archive.table != "incident_embeddings"}
    for starts, ends in sorted(months):
        position = timestamp_canonical(starts)
        if genesis is not None:
            position = max(position, genesis["window"]["start"])
        stop = timestamp_canonical(ends)
        for start, end in windows:
            if end <= position:
                continue
            if start > position and position < stop:
                findings.append(Finding(SEAL_MISSING, f"no exported seal covers [{position}, {min(start, stop)})"))
            position = max(position, end)
        if position < stop:
            findings.append(Finding(SEAL_MISSING, f"no exported seal covers [{position}, {stop})"))
    return findings


def _rows_check(
    directory: Path, archives: list[Manifest], files: Mapping[int, SealFile], report: ArchiveReport
) -> None:
    index = WindowIndex.of_seals(copy.seal for copy in files.values())
    found: dict[tuple[int, str], Leaves] = {}
    readable = []
    for archive in archives:
        try:
            for row_id, recorded_at, digest in _archive_rows(directory / archive.archive):
                report.rows += 1
                sequence = index.key_of(recorded_at)
                if sequence is None:
                    report.findings.append(
                        Finding(
                            ROW_INSERTED,
                            f"recorded_at {recorded_at} is in no exported seal's window",
                            table=archive.table,
                            row_id=row_id,
                        )
                    )
                    continue
                found.setdefault((sequence, archive.table), []).append((row_id, digest))
        except (ArchiveVerificationError, FormError) as exc:
            # One finding, and the seal parts that need this archive are not checked against
            # what was read of it: no flood of findings derived from the same fault.
            report.findings.append(Finding(ARCHIVE_CORRUPT, str(exc), table=archive.table))
            continue
        readable.append(archive)
    exported = {archive.partition for archive in readable}
    tables = {archive.table for archive in readable}
    for sequence in sorted(files):
        copy = files[sequence]
        for table in seal_tables(copy.seal.body):
            needed = set(copy.seal.body["tables"][table]["partitions"])
            if table not in tables or not needed <= exported:
                if needed & exported:
                    report.not_checkable += 1
                continue
            actual = sorted(found.get((sequence, table), []))
            sealed_leaves = copy.leaves.get(table) if copy.leaves is not None else None
            report.findings += leaves_check(seal=copy.seal, table=table, actual=actual, sealed_leaves=sealed_leaves)


def _archive_rows(path: Path) -> Iterator[tuple[int, str, bytes]]:
    """(id, recorded_at, row hash) of each line: the line is the row's canonical form."""
    for number, line in enumerate(archive_lines(path), start=1):
        try:
            row_id, recorded_at = line_identity(line)
        except FormError as exc:
            raise FormError(f"{path.name}: line {number}: {exc}") from None
        yield row_id, recorded_at, row_hash(line)
