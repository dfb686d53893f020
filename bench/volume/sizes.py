"""What the stored rows cost on disk: heap, TOAST and indexes of every partition, per row.

pg_total_relation_size of a partition is its heap, its TOAST table and every index on it;
the sums run over the partitions of each partitioned table. A typed record costs its audit
row and its embedding row; an upstream event, its row alone.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

_SIZES = """
SELECT coalesce(sum(pg_total_relation_size(inhrelid)), 0), coalesce(sum(pg_relation_size(inhrelid)), 0),
       coalesce(sum(pg_indexes_size(inhrelid)), 0)
  FROM pg_inherits WHERE inhparent = %s::regclass
"""


def table_sizes(conn: psycopg.Connection[Any], rows: dict[str, int]) -> dict[str, dict[str, Any]]:
    """Per table: total, heap, TOAST and index bytes, and each per row of `rows`."""
    sizes = {}
    for table, count in rows.items():
        total, heap, indexes = (int(value) for value in conn.execute(_SIZES, [table]).fetchone())  # type: ignore[union-attr]
        toast = total - heap - indexes
        sizes[table] = {
            "rows": count,
            "total_bytes": total,
            "heap_bytes": heap,
            "toast_bytes": toast,
            "index_bytes": indexes,
            "bytes_per_row": round(total / count) if count else None,
            "heap_toast_index_per_row": [round(part / count) for part in (heap, toast, indexes)] if count else None,
        }
    return sizes


def bytes_per_record(sizes: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A typed record (audit row + its embedding row) and an event, in bytes."""
    typed = {table: size for table, size in sizes.items() if table.startswith("audit_") and table != "audit_events"}
    records = sum(size["rows"] for size in typed.values())
    embeddings = sizes.get("incident_embeddings", {"total_bytes": 0, "rows": 0})
    events = sizes.get("audit_events")
    total = sum(size["total_bytes"] for size in sizes.values())
    return {
        "typed_record": round(
            (sum(size["total_bytes"] for size in typed.values()) + embeddings["total_bytes"]) / records
        )
        if records
        else None,
        "audit_row": round(sum(size["total_bytes"] for size in typed.values()) / records) if records else None,
        "embedding_row": round(embeddings["total_bytes"] / embeddings["rows"]) if embeddings["rows"] else None,
        "event": events["bytes_per_row"] if events else None,
        "any_row": round(total / sum(size["rows"] for size in sizes.values())),
    }


def index_bytes(conn: psycopg.Connection[Any], names: list[str]) -> int:
    total = 0
    for name in names:
        row = conn.execute(sql.SQL("SELECT pg_relation_size({})").format(sql.Literal(name))).fetchone()
        total += int(row[0]) if row else 0
    return total
