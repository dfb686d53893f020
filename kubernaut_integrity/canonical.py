"""The canonical form of a stored row, version 1, and its SHA-256 (the row hash).

A row is read as PostgreSQL's `row_to_json` writes it (the database path and the retention
archives both give that), and reduced to bytes that depend only on the stored values:

- the object `{"form": 1, "table": <table>, "row": {<column>: <value>, ...}}` with exactly the
  columns the form lists for that table (a listed column missing from the row is an error;
  columns added to a table later are not part of form 1);
- JSON with keys sorted by code point, no whitespace, UTF-8, non-ASCII characters unescaped;
- SQL NULL and JSON null are `null`; inside `payload` and `labels` a key that is absent stays
  absent, so absent and null differ;
- numbers: an integer is its decimal digits; any other number is the IEEE-754 binary64 nearest
  to the stored value, written in the shortest form that reads back as the same binary64;
- timestamps: UTC, `YYYY-MM-DDTHH:MM:SS.ffffffZ` (always six fractional digits);
- vectors: the lowercase hex of their float32 components, little-endian.

The row hash is SHA-256 of those bytes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import struct
from typing import Any

FORM_VERSION = 1

_COMMON = (
    "id",
    "recorded_at",
    "name",
    "namespace",
    "phase",
    "message",
    "created_at",
    "started_at",
    "completed_at",
    "correlation_id",
    "labels",
    "actor",
    "request_id",
    "content_sha256",
    "payload",
)

#: Form 1: every sealed table, in seal order, with the columns its rows are hashed over.
FORM_COLUMNS: dict[str, tuple[str, ...]] = {
    "audit_remediation": (
        *_COMMON,
        "signal_type",
        "signal_name",
        "signal_namespace",
        "target_type",
        "target_name",
        "target_namespace",
        "environment",
        "priority",
        "fingerprint",
    ),
    "audit_aianalysis": (
        *_COMMON,
        "remediation_request_ref",
        "signal_type",
        "llm_provider",
        "llm_model",
        "root_cause",
        "confidence",
        "recommended_action",
        "requires_approval",
    ),
    "audit_workflow": (
        *_COMMON,
        "remediation_request_ref",
        "ai_analysis_ref",
        "workflow_name",
        "step_count",
        "completed_count",
        "failed_count",
    ),
    "audit_execution": (
        *_COMMON,
        "workflow_execution_ref",
        "step_name",
        "action_type",
        "target_type",
        "target_name",
        "target_namespace",
        "action_result",
        "is_rolled_back",
    ),
    "incident_embeddings": (
        "id",
        "audit_type",
        "audit_id",
        "audit_recorded_at",
        "remediation_request_id",
        "namespace",
        "target_type",
        "target_name",
        "signal_type",
        "root_cause",
        "model",
        "dimensions",
        "input_sha256",
        "embedding",
        "recorded_at",
    ),
}
SEALED_TABLES: tuple[str, ...] = tuple(FORM_COLUMNS)

#: The column that places a row in a seal's window: when the row was stored.
WINDOW_COLUMN = "recorded_at"
#: The column each table is partitioned on (monthly), which names the archive a row is in.
PARTITION_COLUMN = {table: "recorded_at" for table in SEALED_TABLES} | {"incident_embeddings": "audit_recorded_at"}

_TIMESTAMPS = frozenset({"recorded_at", "created_at", "started_at", "completed_at", "audit_recorded_at"})
_VECTORS = frozenset({"embedding"})

_encode = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False).encode


class FormError(ValueError):
    """A row that cannot be put in the canonical form (a column missing, a bad value)."""


def timestamp_canonical(value: str) -> str:
    """`YYYY-MM-DDTHH:MM:SS.ffffffZ` in UTC, from any ISO 8601 text PostgreSQL writes."""
    # PostgreSQL in a UTC session writes "...SS.ffffff+00:00": the common case, without parsing.
    if len(value) == 32 and value.endswith("+00:00") and value[19] == ".":
        return value[:26] + "Z"
    moment = dt.datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise FormError(f"timestamp without a time zone: {value!r}")
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def timestamp_parse(value: str) -> dt.datetime:
    """The instant of a timestamp as PostgreSQL's JSON or the canonical form writes it."""
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(dt.UTC)


def vector_canonical(value: Any) -> str:
    # row_to_json writes a pgvector as its text "[0.1,0.2]"; the archives as a JSON array.
    components = json.loads(value) if isinstance(value, str) else value
    return struct.pack(f"<{len(components)}f", *components).hex()


def row_canonical(table: str, row: dict[str, Any]) -> bytes:
    """The canonical bytes of one row of `table` (a dict of column -> JSON value)."""
    try:
        columns = FORM_COLUMNS[table]
    except KeyError:
        raise FormError(f"table {table!r} is not in canonical form {FORM_VERSION}") from None
    values: dict[str, Any] = {}
    try:
        for column in columns:
            value = row[column]
            if value is not None:
                if column in _TIMESTAMPS:
                    value = timestamp_canonical(value)
                elif column in _VECTORS:
                    value = vector_canonical(value)
            values[column] = value
    except KeyError as exc:
        raise FormError(f"{table} row without column {exc.args[0]!r}") from None
    except (TypeError, ValueError, struct.error) as exc:
        raise FormError(f"{table} row {row.get('id')!r}: {exc}") from None
    return _encode({"form": FORM_VERSION, "table": table, "row": values}).encode("utf-8")


def row_hash(table: str, row: dict[str, Any]) -> bytes:
    """SHA-256 of the row's canonical form: the leaf its seal's Merkle tree is built from."""
    return hashlib.sha256(row_canonical(table, row)).digest()
