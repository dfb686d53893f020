"""What `python -m bench faults` checks in the database after each fault.

Every acknowledged record must be stored exactly once, under the id its 201 named, with its
embedding or a backlog row (pending); `embeddings_backfill` must then leave none pending.
The rows are found by correlation id (each record has its own), straight from PostgreSQL.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg

from bench import stack
from bench.faults.load import Record

#: kind (the endpoint's last segment) → audit table
AUDIT_TABLES = {
    "remediation": "audit_remediation",
    "aianalysis": "audit_aianalysis",
    "workflow": "audit_workflow",
    "execution": "audit_execution",
}


@dataclass
class StoredState:
    #: correlation id → ids of the audit rows carrying it (more than one is a duplicate)
    rows: dict[str, list[int]] = field(default_factory=dict)
    embedded: set[tuple[str, int]] = field(default_factory=set)
    pending: set[tuple[str, int]] = field(default_factory=set)


def stored_state(conninfo: str, *, correlation_prefix: str) -> StoredState:
    state = StoredState()
    like = correlation_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    with psycopg.connect(conninfo, autocommit=True) as connection:
        for kind, table in AUDIT_TABLES.items():
            rows = connection.execute(
                f"SELECT correlation_id, id FROM {table} WHERE correlation_id LIKE %s",
                [like],
            ).fetchall()
            ids = [row_id for _, row_id in rows]
            for correlation_id, row_id in rows:
                state.rows.setdefault(correlation_id, []).append(row_id)
            for source, target in (("incident_embeddings", state.embedded), ("embedding_backlog", state.pending)):
                found = connection.execute(
                    f"SELECT audit_id FROM {source} WHERE audit_type = %s AND audit_id = ANY(%s)",
                    [kind, ids],
                ).fetchall()
                target.update((kind, audit_id) for (audit_id,) in found)
    return state


def records_check(records: list[Record], state: StoredState) -> dict[str, Any]:
    """The verdict on `records` (one fault's load) against what the database holds."""
    acknowledged = [record for record in records if record.acknowledged]
    lost, wrong_id, unembedded, pending = [], [], [], 0
    for record in acknowledged:
        assert record.created is not None
        ids = state.rows.get(record.correlation_id, [])
        if not ids:
            lost.append(record.correlation_id)
            continue
        if ids != [record.created["id"]]:
            wrong_id.append(record.correlation_id)
        key = (record.kind, ids[0])
        if key in state.pending:
            pending += 1
        elif key not in state.embedded:
            unembedded.append(record.correlation_id)
    duplicated = sorted(correlation_id for correlation_id, ids in state.rows.items() if len(ids) > 1)
    known = {record.correlation_id for record in records}
    return {
        "records": len(records),
        "acknowledged": len(acknowledged),
        "replayed": sum(record.replayed for record in acknowledged),
        "acknowledged_pending": sum(record.created["embeddingStatus"] == "pending" for record in acknowledged),  # type: ignore[index]
        # Stored, never acknowledged: the client gave up or was rejected after the commit.
        "stored_unacknowledged": sum(
            1 for record in records if not record.acknowledged and record.correlation_id in state.rows
        ),
        "lost": len(lost),
        "duplicated": len(duplicated),
        "wrong_id": len(wrong_id),
        "unembedded": len(unembedded),
        "pending": pending,
        "strangers": len(set(state.rows) - known),
        "examples": {
            "lost": lost[:5],
            "duplicated": duplicated[:5],
            "wrong_id": wrong_id[:5],
            "unembedded": unembedded[:5],
        },
    }


def backfill_run(db: stack.BenchDatabase, *, env: dict[str, str]) -> float:
    """`manage.py embeddings_backfill` as an operator runs it; its wall time in seconds."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "manage.py", "embeddings_backfill", "--no-progress", "-v", "0"],
        cwd=stack.ROOT,
        env={**os.environ, **db.env(), **env, "LOG_LEVEL": "WARNING"},
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"embeddings_backfill failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return time.monotonic() - started
