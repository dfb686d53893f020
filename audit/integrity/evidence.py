"""The evidence bundle of one correlation id (`kubernaut_integrity/evidence.py` describes the
file; `python -m kubernaut_integrity evidence` checks it): its records' canonical lines with
their inclusion proofs in their windows' table trees, the seals involved with their inclusion
proofs in the seal log, the checkpoints with consistency proofs to the latest, their anchors
and cosignatures. Read in one REPEATABLE READ snapshot; read-only.

Sizes, in queries: one for the records (every sealed table with a correlation id), one for
their seals, one per table and window for that window's row hashes (PostgreSQL hashes the
canonical lines: only 32 bytes a row travel), a few point lookups for checkpoints, anchors and
cosignatures, and one batch of point reads of the seals' log hashes for every log proof.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.utils import timezone
from psycopg import sql

from audit.integrity.seal_log import checkpoint_note_full, proofs_batched
from audit.integrity.sealed_rows import canonical_settings
from audit.models import AuditAnchor, AuditCheckpoint, AuditCheckpointCosignature, AuditWitnessState
from kubernaut_integrity.canonical import (
    FORM_COLUMNS,
    SEALED_TABLES,
    WINDOW_COLUMN,
    canonical_sql,
    timestamp_canonical,
)
from kubernaut_integrity.evidence import EVIDENCE_FORMAT, hashes_json
from kubernaut_integrity.note import Signature
from kubernaut_integrity.seals import Seal
from kubernaut_integrity.tlog import HashReader, MemoryLog, consistency_proof, inclusion_proof, tree_hash

#: The tables whose rows belong to a correlation id: every sealed table with that column.
CORRELATED_TABLES = tuple(table for table in SEALED_TABLES if "correlation_id" in FORM_COLUMNS[table])


class EvidenceError(Exception):
    """No bundle can be made (no checkpoint yet, a size the log does not have)."""


@dataclass(frozen=True, slots=True)
class _Record:
    table: str
    row_id: int
    recorded_at: dt.datetime
    line: str


@dataclass(frozen=True, slots=True)
class _StoredSeal:
    sequence: int
    window_start: dt.datetime
    window_end: dt.datetime
    seal: Seal


@dataclass
class Evidence:
    """The bundle, and what building it found: `problems` are rows that no longer hash to what
    their seal signed (the bundle still holds them; their check fails)."""

    bundle: dict[str, Any]
    records: int = 0
    unsealed: int = 0
    problems: list[str] = field(default_factory=list)


def evidence_bundle(
    *,
    correlation_id: str,
    time_from: dt.datetime | None = None,
    time_to: dt.datetime | None = None,
    consistent_from: Sequence[int] = (),
) -> Evidence:
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        latest = AuditCheckpoint.objects.order_by("-size").first()
        if latest is None:
            raise EvidenceError("the seal log has no checkpoint yet: set AUDIT_LOG_PRIVATE_KEY_FILE and run audit_seal")
        size = latest.size
        for old_size in consistent_from:
            if not 0 < old_size <= size:
                raise EvidenceError(f"--consistent-from {old_size}: the latest checkpoint has {size} seals")
        records = _records(correlation_id=correlation_id, time_from=time_from, time_to=time_to)
        covering = _seals_covering([record.recorded_at for record in records])
        proven: list[tuple[_Record, _StoredSeal]] = []
        unsealed: list[_Record] = []
        for record in records:
            stored = covering.get(record.recorded_at)
            if stored is not None and stored.sequence <= size:
                proven.append((record, stored))
            else:
                unsealed.append(record)
        evidence = Evidence(bundle={}, records=len(proven), unsealed=len(unsealed))
        record_entries = _record_proofs(proven, evidence.problems)
        seals = {stored.sequence: stored.seal for _, stored in proven} | _seals_read([size])
        checkpoints = _checkpoints_chosen(latest=latest, sequences=sorted(seals))
        anchors = list(AuditAnchor.objects.filter(checkpoint_id__in=list(checkpoints)).order_by("checkpoint_id"))
        cosignatures: dict[int, list[Signature]] = defaultdict(list)
        for cosignature in AuditCheckpointCosignature.objects.filter(checkpoint_id__in=list(checkpoints)).order_by(
            "id"
        ):
            cosignatures[cosignature.checkpoint_id].append(
                Signature(cosignature.witness_name, cosignature.key_hash, bytes(cosignature.signature))
            )
        log_proofs = proofs_batched(
            lambda read: _log_proofs(
                read, size=size, seals=sorted(seals), checkpoints=sorted(checkpoints), extra=consistent_from
            )
        )
    evidence.bundle = {
        "format": EVIDENCE_FORMAT,
        "correlation_id": correlation_id,
        "from": _iso(time_from),
        "to": _iso(time_to),
        "generated_at": _iso(timezone.now()),
        "checkpoints": [
            {
                "note": checkpoint_note_full(checkpoints[checkpoint_size], cosignatures[checkpoint_size])
                .encode()
                .decode(),
                "proof": hashes_json(log_proofs["checkpoints"][checkpoint_size]),
            }
            for checkpoint_size in sorted(checkpoints)
        ],
        "anchors": [
            {"checkpoint": anchor.checkpoint_id, "token": base64.b64encode(bytes(anchor.response)).decode()}
            for anchor in anchors
        ],
        "seals": [
            {
                "body": seals[sequence].body_bytes.decode(),
                "signature": base64.b64encode(seals[sequence].signature).decode(),
                "proof": hashes_json(log_proofs["seals"][sequence]),
            }
            for sequence in sorted(seals)
        ],
        "records": record_entries,
        "unsealed": [{"line": record.line} for record in unsealed],
        "consistency": [
            {"from": old_size, "proof": hashes_json(log_proofs["extra"][old_size])} for old_size in consistent_from
        ],
    }
    return evidence


def _iso(moment: dt.datetime | None) -> str | None:
    return timestamp_canonical(moment) if moment is not None else None


def _records(*, correlation_id: str, time_from: dt.datetime | None, time_to: dt.datetime | None) -> list[_Record]:
    """Every row of the correlation id in the range, in every correlated table: its canonical line."""
    bounds: sql.Composable = sql.SQL("")
    parameters: dict[str, Any] = {"correlation_id": correlation_id, "from": time_from, "to": time_to}
    if time_from is not None:
        bounds += sql.SQL(" AND p.{} >= %(from)s").format(sql.Identifier(WINDOW_COLUMN))
    if time_to is not None:
        bounds += sql.SQL(" AND p.{} < %(to)s").format(sql.Identifier(WINDOW_COLUMN))
    query = sql.SQL(" UNION ALL ").join(
        sql.SQL("SELECT {}, p.id, p.{}, {} FROM {} AS p WHERE p.correlation_id = %(correlation_id)s{}").format(
            sql.Literal(table),
            sql.Identifier(WINDOW_COLUMN),
            sql.SQL(canonical_sql(table)),  # type: ignore[arg-type]
            sql.Identifier(table),
            bounds,
        )
        for table in CORRELATED_TABLES
    )
    with connection.cursor() as cursor:
        canonical_settings(cursor)
        cursor.execute(query.as_string(cursor.cursor.connection), parameters)
        rows = cursor.fetchall()
    return sorted((_Record(*row) for row in rows), key=lambda record: (record.recorded_at, record.table, record.row_id))


def _seals_covering(moments: Iterable[dt.datetime]) -> dict[dt.datetime, _StoredSeal]:
    """The seal whose window holds each moment, by the seals' window index."""
    wanted = sorted(set(moments))
    if not wanted:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT t.at, s.sequence, s.window_start, s.window_end, s.body, s.signature"
            " FROM unnest(%s::timestamptz[]) AS t(at) CROSS JOIN LATERAL"
            " (SELECT sequence, window_start, window_end, body, signature FROM audit_seals"
            " WHERE window_start <= t.at ORDER BY window_start DESC LIMIT 1) AS s"
            " WHERE s.window_end > t.at",
            [wanted],
        )
        return {
            at: _StoredSeal(sequence, start, end, Seal(body.encode(), bytes(signature)))
            for at, sequence, start, end, body, signature in cursor.fetchall()
        }


def _seals_read(sequences: Sequence[int]) -> dict[int, Seal]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT sequence, body, signature FROM audit_seals WHERE sequence = ANY(%s)", [list(sequences)])
        return {sequence: Seal(body.encode(), bytes(signature)) for sequence, body, signature in cursor.fetchall()}


def _record_proofs(proven: Sequence[tuple[_Record, _StoredSeal]], problems: list[str]) -> list[dict[str, Any]]:
    """Each record's leaf index and inclusion proof in its table's tree of its seal's window."""
    by_part: dict[tuple[int, str], list[_Record]] = defaultdict(list)
    stored_of: dict[int, _StoredSeal] = {}
    for record, stored in proven:
        by_part[stored.sequence, record.table].append(record)
        stored_of[stored.sequence] = stored
    entries: dict[tuple[str, int], dict[str, Any]] = {}
    for (sequence, table), records in sorted(by_part.items()):
        stored = stored_of[sequence]
        leaves = window_leaves(table=table, start=stored.window_start, end=stored.window_end)
        tree = MemoryLog()
        tree.extend([digest for _, digest in leaves])
        sealed = stored.seal.body["tables"].get(table, {})
        if (len(leaves), tree_hash(size=len(leaves), read=tree.read).hex()) != (
            sealed.get("count"),
            sealed.get("root"),
        ):
            problems.append(
                f"seal {sequence}: the {len(leaves)} rows of {table} in its window no longer hash to the"
                f" {sealed.get('count')} rows it sealed: run audit_verify"
            )
        position = {row_id: index for index, (row_id, _) in enumerate(leaves)}
        for record in records:
            index = position[record.row_id]
            entries[record.table, record.row_id] = {
                "index": index,
                "proof": hashes_json(inclusion_proof(index=index, size=len(leaves), read=tree.read)),
                "line": record.line,
            }
    return [entries[record.table, record.row_id] for record, _ in proven]


def window_leaves(*, table: str, start: dt.datetime, end: dt.datetime) -> list[tuple[int, bytes]]:
    """(id, row hash) of every row of `table` in [start, end), in id order: the table's leaves."""
    query = sql.SQL(
        "SELECT p.id, sha256(convert_to({}, 'UTF8')) FROM {} AS p WHERE p.{} >= %s AND p.{} < %s ORDER BY p.id"
    ).format(
        sql.SQL(canonical_sql(table)),  # type: ignore[arg-type]
        sql.Identifier(table),
        sql.Identifier(WINDOW_COLUMN),
        sql.Identifier(WINDOW_COLUMN),
    )
    with connection.cursor() as cursor:
        canonical_settings(cursor)
        cursor.execute(query.as_string(cursor.cursor.connection), [start, end])
        return [(row_id, bytes(digest)) for row_id, digest in cursor.fetchall()]


def _checkpoints_chosen(*, latest: AuditCheckpoint, sequences: Sequence[int]) -> dict[int, AuditCheckpoint]:
    """The latest checkpoint; for each seal the first checkpoint holding it and the first anchored
    one holding it (when does it enter signed, and time-stamped, history); the last checkpoint each
    witness cosigned."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT size FROM audit_checkpoints WHERE size >= s ORDER BY size LIMIT 1),"
            " (SELECT checkpoint_size FROM audit_anchors WHERE checkpoint_size >= s ORDER BY checkpoint_size LIMIT 1)"
            " FROM unnest(%s::bigint[]) AS s",
            [list(sequences)],
        )
        sizes = {size for row in cursor.fetchall() for size in row if size is not None}
    sizes |= set(AuditWitnessState.objects.filter(cosigned_size__gt=0).values_list("cosigned_size", flat=True))
    sizes = {checkpoint_size for checkpoint_size in sizes if checkpoint_size <= latest.size} | {latest.size}
    return {row.size: row for row in AuditCheckpoint.objects.filter(size__in=sizes)}


def _log_proofs(
    read: HashReader, *, size: int, seals: Sequence[int], checkpoints: Sequence[int], extra: Sequence[int]
) -> dict[str, dict[int, list[bytes]]]:
    return {
        "seals": {sequence: inclusion_proof(index=sequence - 1, size=size, read=read) for sequence in seals},
        "checkpoints": {
            checkpoint_size: consistency_proof(old_size=checkpoint_size, new_size=size, read=read)
            for checkpoint_size in checkpoints
        },
        "extra": {old_size: consistency_proof(old_size=old_size, new_size=size, read=read) for old_size in extra},
    }
