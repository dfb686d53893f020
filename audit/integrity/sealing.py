"""Sealing (docs/INTEGRITY.md): every closed, settled window of recorded_at not yet sealed gets
a chained, Ed25519-signed seal, stored in `audit_seals` (and appended to the seal log there) and
as a file in AUDIT_SEAL_DIR.

A window [start, end) is sealed once it ended more than the settle margin ago, with a count
of 0 when it had no rows, so the chain covers time without gaps. Windows are aligned to the
epoch. The first seal covers all history before the last GENESIS_WINDOWS windows in one
window, so introducing seals on a database with years of rows does not make years of seals.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.db import connection, transaction

from audit.integrity.seal_log import LogSigning, checkpoint_sign_stored, stored_hashes_read
from audit.integrity.sealed_rows import WindowRows, earliest_recorded_at, rows_by_window
from audit.integrity.stored_seals import last_seal, signed_seal
from audit.models import AuditSeal
from kubernaut_integrity.canonical import SEALED_TABLES, timestamp_canonical
from kubernaut_integrity.findings import WindowIndex
from kubernaut_integrity.seal_files import seal_file_write
from kubernaut_integrity.seals import GENESIS_PREVIOUS, Seal, seal_make, table_entry
from kubernaut_integrity.tlog import leaf_hash, leaves_append

#: How many of the most recent windows the first seal leaves to seals of their own.
GENESIS_WINDOWS = 60


@dataclass(frozen=True, slots=True)
class SealedWindow:
    sequence: int
    start: dt.datetime
    end: dt.datetime
    rows: int


def window_floor(moment: dt.datetime, window_seconds: int) -> dt.datetime:
    seconds = int(moment.timestamp()) // window_seconds * window_seconds
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)


iso = timestamp_canonical


def seal_pending(
    *,
    window_seconds: int,
    settle_seconds: float,
    private_key: Ed25519PrivateKey,
    seal_dir: Path,
    now: dt.datetime | None = None,
    log: LogSigning | None = None,
) -> list[SealedWindow]:
    """Seal every closed window that ended more than `settle_seconds` before `now` (default:
    the database's clock) and is not sealed yet; return what was sealed. Idempotent.

    Each new seal's body is appended to the seal log in the same transaction; with the `log`
    key(s), a checkpoint of the log is signed there too whenever the log grew since the last
    one (raises SealLogError, storing nothing, when the log no longer extends that one)."""
    with transaction.atomic(), connection.cursor() as cursor:
        # One sealer at a time; the write path only reads audit_seals, which this mode allows.
        cursor.execute("LOCK TABLE audit_seals IN SHARE ROW EXCLUSIVE MODE")
        if now is None:
            cursor.execute("SELECT statement_timestamp()")
            now = cursor.fetchone()[0]
        cutoff = window_floor(now - dt.timedelta(seconds=settle_seconds), window_seconds)
        last = last_seal()
        windows = _windows_to_seal(last=last, cutoff=cutoff, window_seconds=window_seconds)
        sealed = last.sequence if last is not None else 0
        made = _seals_make(windows=windows, last=last, now=now, private_key=private_key) if windows else []
        if made:
            # The log's leaves are the signed bodies; one read of the earlier subtrees they complete.
            log_hashes = leaves_append(
                start=sealed, leaves=[leaf_hash(seal.body_bytes) for seal, _ in made], read=stored_hashes_read
            )
            AuditSeal.objects.bulk_create(
                [
                    AuditSeal(
                        sequence=seal.body["sequence"],
                        window_start=start,
                        window_end=end,
                        row_count=sum(len(leaves) for leaves in rows.leaves.values()),
                        root=seal.body["root"],
                        key_id=seal.body["key_id"],
                        sealed_at=now,
                        body=seal.body_bytes.decode(),
                        signature=seal.signature,
                        log_hashes=hashes,
                    )
                    for (seal, rows), (start, end), hashes in zip(made, windows, log_hashes, strict=True)
                ]
            )
            # Written before the commit: a seal in the database always has its copy outside. If the
            # commit fails, the next run writes the same sequence numbers again over these files.
            for seal, rows in made:
                seal_file_write(seal_dir, seal, rows.leaves)
        if log is not None:
            checkpoint_sign_stored(signing=log, seal_dir=seal_dir, size=sealed + len(made), now=now)
    return [
        SealedWindow(seal.body["sequence"], start, end, sum(len(leaves) for leaves in rows.leaves.values()))
        for (seal, rows), (start, end) in zip(made, windows, strict=True)
    ]


def _seals_make(
    *,
    windows: list[tuple[dt.datetime, dt.datetime]],
    last: AuditSeal | None,
    now: dt.datetime,
    private_key: Ed25519PrivateKey,
) -> list[tuple[Seal, WindowRows]]:
    """The signed seals of `windows`, chained to `last`, with each window's rows."""
    index = WindowIndex((iso(start), iso(end), number) for number, (start, end) in enumerate(windows))
    by_window, _ = rows_by_window(windows=index, start=windows[0][0], end=windows[-1][1])
    previous = signed_seal(last).hash if last is not None else GENESIS_PREVIOUS
    sequence = last.sequence if last is not None else 0
    sealed_at = iso(now)
    made: list[tuple[Seal, WindowRows]] = []
    for number, (start, end) in enumerate(windows):
        rows = by_window.get(number) or WindowRows.empty()
        sequence += 1
        seal = seal_make(
            sequence=sequence,
            window_start=iso(start),
            window_end=iso(end),
            tables={table: table_entry(rows.leaves[table], rows.partitions[table]) for table in SEALED_TABLES},
            previous=previous,
            sealed_at=sealed_at,
            private_key=private_key,
        )
        made.append((seal, rows))
        previous = seal.hash
    return made


def _windows_to_seal(
    *, last: AuditSeal | None, cutoff: dt.datetime, window_seconds: int
) -> list[tuple[dt.datetime, dt.datetime]]:
    step = dt.timedelta(seconds=window_seconds)
    if last is not None:
        start = last.window_end
        first: list[tuple[dt.datetime, dt.datetime]] = []
    else:
        earliest = earliest_recorded_at()
        regular = cutoff - GENESIS_WINDOWS * step
        start = window_floor(earliest, window_seconds) if earliest is not None else cutoff - step
        first = []
        if start < regular:
            first, start = [(start, regular)], regular
    windows = first
    while start + step <= cutoff:
        windows.append((start, start + step))
        start += step
    return windows
