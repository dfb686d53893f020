r"""The canonical form of a stored row and its SHA-256 (the row hash).

The canonical form of a row is one line of JSON text, written by PostgreSQL itself with
`canonical_sql` and stored verbatim, one row per line, in the retention archives. So the
database sealing it and a third party checking an archive hash the very same bytes, and
nothing re-serializes JSON in between (the drift that breaks hash chains computed twice).

The text is `json_build_object('form', <form>, 'table', <table>, <column>, <value>, ...)`:

- a form adds tables and never changes the lines of an earlier form's: form 1 seals the four
  typed audit tables and `incident_embeddings`, form 2 adds `audit_events`. A row's line names
  the form its table came with (every line of `audit_remediation` says 1, of `audit_events`
  2), so the rows older seals cover hash as they always did; a seal names its form, which
  says which tables it covers (FORM_TABLES);
- members in this order: "form", "table", then the columns of that table in the
  order of FORM_COLUMNS, each present (SQL NULL is `null`); columns added to a table later are
  not in its form;
- PostgreSQL's layout: `{"form" : 1, "table" : "audit_remediation", "id" : 42, ...}`, i.e.
  `" : "` between name and value and `", "` between members; strings are JSON strings, UTF-8,
  with `\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t` and `\u00XX` for other control characters;
- integers in decimal; booleans `true` / `false`; float8 columns in the shortest decimal that
  reads back as the same binary64 (extra_float_digits = 1, set for every transaction that
  reads rows for sealing, verifying or archiving);
- timestamps as strings `YYYY-MM-DDTHH:MM:SS.ffffffZ`, UTC, six fractional digits, whatever
  the session's time zone;
- uuids as strings, lowercase with hyphens;
- `payload`, `labels`, `event_data` and `extra_fields` (jsonb) as jsonb's normalised text: keys sorted by length then
  bytes, duplicate keys dropped, `", "` and `": "` separators, numbers as the stored decimal;
  inside them an absent key stays absent and a JSON null is `null`, so the two differ;
- the vector as a string in pgvector's text form, `"[0.1,-0.25,...]"` (shortest float32
  decimals).

The row hash is SHA-256 of the UTF-8 bytes of that line.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re

#: The form new seals are made in.
FORM_VERSION = 2

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

#: Every sealed table, in seal order, with the columns its rows are hashed over.
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
    "audit_events": (
        "id",
        "event_id",
        "recorded_at",
        "version",
        "event_type",
        "event_timestamp",
        "event_category",
        "event_action",
        "event_outcome",
        "actor_type",
        "actor_id",
        "actor_ip",
        "resource_type",
        "resource_id",
        "correlation_id",
        "parent_event_id",
        "parent_event_date",
        "namespace",
        "cluster_id",
        "severity",
        "duration_ms",
        "error_code",
        "error_message",
        "retention_days",
        "is_sensitive",
        "event_data",
        "extra_fields",
        "actor",
        "request_id",
        "content_sha256",
    ),
}
_FORM_1_TABLES = ("audit_remediation", "audit_aianalysis", "audit_workflow", "audit_execution", "incident_embeddings")
#: The tables a seal of each form covers, in seal order (the order of its root's leaves).
FORM_TABLES: dict[int, tuple[str, ...]] = {1: _FORM_1_TABLES, 2: (*_FORM_1_TABLES, "audit_events")}
#: The form each table's lines name: the first that sealed it.
TABLE_FORM: dict[str, int] = {
    table: min(f for f, tables in FORM_TABLES.items() if table in tables) for table in FORM_COLUMNS
}
SEALED_TABLES: tuple[str, ...] = FORM_TABLES[FORM_VERSION]

#: The column that places a row in a seal's window: when the row was stored.
WINDOW_COLUMN = "recorded_at"
#: The column each table is partitioned on (monthly), which names the archive a row is in.
PARTITION_COLUMN = {table: "recorded_at" for table in SEALED_TABLES} | {"incident_embeddings": "audit_recorded_at"}

_TIMESTAMPS = frozenset(
    {
        "recorded_at",
        "created_at",
        "started_at",
        "completed_at",
        "audit_recorded_at",
        "event_timestamp",
        "parent_event_date",
    }
)
_VECTORS = frozenset({"embedding"})
#: The canonical timestamp: to_char's pattern, and strftime's for the same text.
TIMESTAMP_SQL = """to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
#: The same text as a pattern: fixed width, so canonical timestamps compare as strings.
TIMESTAMP_PATTERN = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


def canonical_sql(table: str, alias: str = "p") -> str:
    """The SQL expression (text) of the canonical form of a row `alias` of `table`.

    Only the form's fixed table and column names go into it, all of them from FORM_COLUMNS.
    """
    members = ["'form', " + str(TABLE_FORM[table]), f"'table', '{table}'"]
    for column in FORM_COLUMNS[table]:
        reference = f'{alias}."{column}"'
        if column in _TIMESTAMPS:
            value = TIMESTAMP_SQL.format(reference)
        elif column in _VECTORS:
            value = f"{reference}::text"
        else:
            value = reference
        members.append(f"'{column}', {value}")
    return f"json_build_object({', '.join(members)})::text"


def row_hash(line: str) -> bytes:
    """SHA-256 of a canonical line: the leaf its seal's Merkle tree is built from."""
    return hashlib.sha256(line.encode("utf-8")).digest()


def line_identity(line: str) -> tuple[int, str]:
    """(id, recorded_at) of a canonical line: which row it is and which window holds it.
    Raises FormError for anything else, whatever the line holds."""
    try:
        row = json.loads(line)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the interpreter allows
        raise FormError(f"not a JSON line: {line[:80]!r}") from None
    if not isinstance(row, dict) or TABLE_FORM.get(row.get("table")) != row.get("form"):  # type: ignore[arg-type]
        raise FormError(f"not a canonical line of a sealed table: {line[:80]!r}")
    row_id, recorded_at = row.get("id"), row.get(WINDOW_COLUMN)
    if type(row_id) is not int or not isinstance(recorded_at, str) or not TIMESTAMP_PATTERN.fullmatch(recorded_at):
        raise FormError(f"a line without an id and a canonical {WINDOW_COLUMN}: {line[:80]!r}")
    return row_id, recorded_at


def timestamp_canonical(moment: dt.datetime) -> str:
    if moment.tzinfo is None:
        raise FormError(f"timestamp without a time zone: {moment!r}")
    return moment.astimezone(dt.UTC).strftime(TIMESTAMP_FORMAT)


def timestamp_parse(value: str) -> dt.datetime:
    """The instant of an ISO 8601 timestamp with an offset or `Z`."""
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(dt.UTC)


class FormError(ValueError):
    """A line that is not in the canonical form."""
