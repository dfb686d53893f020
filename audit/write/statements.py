"""The SQL statements of the write path: audit rows with their embedding or backlog rows.

A single record is one statement, `WITH audit AS (INSERT …) INSERT … SELECT … FROM audit`; a
batch is one statement per kind present, its rows sent as arrays (`unnest`), so its text is the
same whatever the batch size and it is prepared like the single write's. Both are sent with
server-side parameters (prepared after a few uses on a connection) and the vectors in
pgvector's binary format; docs/PERFORMANCE.md has what each of these saved. Only our models'
table and column names go into the text; every value is a parameter.

Every column named like a validated field takes its value; absent optional fields take the
model's defaults; the whole body as received lives in `payload`, fingerprinted in
`content_sha256`.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from django.db import connection, models

from audit.models import AUDIT_MODELS, AuditKind
from embeddings.models import EmbeddingBacklog, IncidentEmbedding
from embeddings.providers.base import Embedding
from kubernaut_storage.database.connections import jsonb, server_binding_cursor

#: The denormalised columns `incident_embeddings` carries for similarity search.
SEED_COLUMNS = ("remediation_request_id", "namespace", "target_type", "target_name", "signal_type", "root_cause")
#: The columns of an embedding row, in the order both statements give them.
_EMBEDDING_COLUMNS = (
    *("audit_type", "audit_id", "audit_recorded_at", *SEED_COLUMNS),
    *("model", "dimensions", "input_sha256", "embedding", "recorded_at"),
)
#: Why an embedding was deferred, as the backlog row keeps it.
_DEFERRAL_REASON_LENGTH = 1000
#: Columns every row of a batch shares: one request, one caller, one receive time.
_SHARED_COLUMNS = ("recorded_at", "actor", "request_id")


def fingerprint_json(value: Any) -> bytes:
    """The bytes the write path's fingerprints hash (`content_sha256`, an Idempotency-Key's
    request hash): orjson's compact JSON with sorted keys. Not the seals' canonical form
    (kubernaut_integrity): these hashes are compared only with themselves, and changing the
    form would change every stored fingerprint."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def record_content_sha256(*, payload: Mapping[str, Any], recorded_at: dt.datetime, actor: str) -> str:
    """The write-time fingerprint stored in `content_sha256`: the body as received, when and by whom."""
    return hashlib.sha256(
        fingerprint_json({"payload": payload, "recordedAt": recorded_at.isoformat(), "actor": actor})
    ).hexdigest()


def audit_embedding_seed(*, kind: AuditKind, data: Mapping[str, Any]) -> dict[str, str]:
    """The denormalised columns `incident_embeddings` carries for similarity search.

    `data` is validated data, or a stored payload as `payload_as_data` gives it back
    (`embeddings_backfill`).
    """
    remediation_ref = data["name"] if kind == AuditKind.REMEDIATION else data.get("remediation_request_ref", "")
    return {
        "remediation_request_id": remediation_ref,
        "namespace": data["namespace"],
        "target_type": data.get("target_type", ""),
        "target_name": data.get("target_name", ""),
        "signal_type": data.get("signal_type", ""),
        "root_cause": data.get("root_cause", ""),
    }


@dataclass(frozen=True, slots=True)
class AuditStatement:
    """Audit rows of one kind with their embedding or backlog rows, as one SQL statement."""

    sql: str
    params: tuple[Any, ...]
    #: Positions in the request of the records it stores, in the order it returns them.
    indexes: tuple[int, ...]

    def execute(self) -> list[tuple[int, int | None]]:
        """Run it on the request's connection; (audit id, embedding id or None) per record, in order."""
        with server_binding_cursor() as cursor:
            cursor.execute(self.sql, self.params)
            rows = cursor.fetchall()
        if len(rows) != len(self.indexes):  # pragma: no cover - the statement returns one per input row
            raise AssertionError(f"{len(rows)} rows returned for {len(self.indexes)} inserted")
        return [(int(audit_id), embedding_id) for audit_id, embedding_id in rows]


@dataclass(frozen=True, slots=True)
class RecordRow:
    """One record, ready for its statement: its validated data, its body as received, its
    embedding (None: deferred) and the hashes stored beside it."""

    index: int
    data: Mapping[str, Any]
    payload: Mapping[str, Any]
    embedding: Embedding | None
    input_sha256: str
    content_sha256: str


def record_insert_statement(
    *,
    kind: AuditKind,
    row: RecordRow,
    actor: str,
    request_id: str,
    recorded_at: dt.datetime,
    deferral_reason: str = "",
) -> AuditStatement:
    """The statement that stores one record with its embedding (or, None: its backlog row)."""
    fields, sql = _record_insert_sql(kind, row.embedding is not None)
    given = {
        **row.data,
        "recorded_at": recorded_at,
        "actor": actor,
        "request_id": request_id,
        "content_sha256": row.content_sha256,
        "payload": row.payload,
    }
    params = [_column_value(field, given) for field in fields]
    embedding = row.embedding
    if embedding is None:
        params += [kind.value, deferral_reason[:_DEFERRAL_REASON_LENGTH], recorded_at]
    else:
        seed = audit_embedding_seed(kind=kind, data=row.data)
        params += [kind.value, *(seed[column] for column in SEED_COLUMNS)]
        params += [embedding.model, embedding.dimensions, row.input_sha256, embedding.vector, recorded_at]
    return AuditStatement(sql=sql, params=tuple(params), indexes=(row.index,))


def records_insert_statement(
    *,
    kind: AuditKind,
    rows: Sequence[RecordRow],
    actor: str,
    request_id: str,
    recorded_at: dt.datetime,
    deferral_reason: str = "",
) -> AuditStatement:
    """The statement that stores `rows` (all of `kind`, from one request) with their
    embeddings or backlog rows."""
    fields, sql = _records_insert_sql(kind)
    columns: list[list[Any]] = [[] for _ in fields]
    seeds: list[list[Any]] = [[] for _ in SEED_COLUMNS]
    models_: list[str | None] = []
    dimensions: list[int | None] = []
    input_sha256s: list[str] = []
    vectors: list[Any] = []
    for row in rows:
        given = {**row.data, "content_sha256": row.content_sha256, "payload": row.payload}
        for values, field in zip(columns, fields, strict=True):
            values.append(_column_value(field, given))
        seed = audit_embedding_seed(kind=kind, data=row.data)
        for values, column in zip(seeds, SEED_COLUMNS, strict=True):
            values.append(seed[column])
        embedding = row.embedding
        models_.append(embedding.model if embedding else None)
        dimensions.append(embedding.dimensions if embedding else None)
        input_sha256s.append(row.input_sha256)
        vectors.append(embedding.vector if embedding else None)
    arrays = [*columns, *seeds, models_, dimensions, input_sha256s, vectors]
    params: list[Any] = [deferral_reason[:_DEFERRAL_REASON_LENGTH]]
    # An array of NULLs only is sent as NULL: unnest pads it to the rows' count with NULLs, and
    # the driver need not guess the element type of a list that holds no value.
    params += [None if all(value is None for value in array) else array for array in arrays]
    params += [recorded_at, actor, request_id]  # the audit rows
    params += [kind.value, recorded_at, recorded_at]  # the embedding rows
    params += [kind.value, recorded_at, recorded_at]  # the backlog rows
    return AuditStatement(sql=sql, params=tuple(params), indexes=tuple(row.index for row in rows))


def _column_value(field: models.Field[Any, Any], given: Mapping[str, Any]) -> Any:
    value = given[field.name] if field.name in given else field.get_default()
    return jsonb(value) if isinstance(field, models.JSONField) else value


def _quote(name: str) -> str:
    return connection.ops.quote_name(name)


def _embedding_insert() -> str:
    return f"INSERT INTO {_quote(IncidentEmbedding._meta.db_table)} ({', '.join(_EMBEDDING_COLUMNS)})"


def _backlog_insert() -> str:
    return (
        f"INSERT INTO {_quote(EmbeddingBacklog._meta.db_table)}"
        " (audit_type, audit_id, audit_recorded_at, reason, created_at)"
    )


@functools.cache
def _record_insert_sql(kind: AuditKind, stored: bool) -> tuple[tuple[models.Field[Any, Any], ...], str]:
    model = AUDIT_MODELS[kind]
    fields = tuple(field for field in model._meta.concrete_fields if not field.primary_key)
    audit = (
        f"INSERT INTO {_quote(model._meta.db_table)} ({', '.join(_quote(f.column) for f in fields)})"  # noqa: S608
        f" VALUES ({', '.join(['%s'] * len(fields))}) RETURNING id, recorded_at"
    )
    if stored:
        # %b: the vector goes in pgvector's binary format, 4 bytes a dimension, no float text.
        values = ["%s", "audit.id", "audit.recorded_at", *["%s"] * len(SEED_COLUMNS), "%s", "%s", "%s", "%b", "%s"]
        second = f"{_embedding_insert()} SELECT {', '.join(values)} FROM audit RETURNING audit_id, id"  # noqa: S608
    else:
        second = (
            f"{_backlog_insert()}"  # noqa: S608
            " SELECT %s, audit.id, audit.recorded_at, %s, %s FROM audit RETURNING audit_id, NULL::bigint"
        )
    return fields, f"WITH audit AS ({audit}) {second}"


@functools.cache
def _records_insert_sql(kind: AuditKind) -> tuple[tuple[models.Field[Any, Any], ...], str]:
    model = AUDIT_MODELS[kind]
    fields = tuple(
        field for field in model._meta.concrete_fields if not field.primary_key and field.name not in _SHARED_COLUMNS
    )
    embedding_fields = {field.column: field for field in IncidentEmbedding._meta.concrete_fields}

    def array(field: models.Field[Any, Any]) -> str:
        # %b: arrays in PostgreSQL's binary format, with no quoting or escaping of each element
        # (in the text format that was most of the statement's cost in Python); the vectors
        # in pgvector's binary format, as the single write sends its one vector.
        return f"CAST(%b AS {field.db_type(connection)}[])"

    arrays = [array(field) for field in fields]
    columns = (*SEED_COLUMNS, "model", "dimensions", "input_sha256", "embedding")
    arrays += [array(embedding_fields[column]) for column in columns]
    names = [f"f_{field.column}" for field in fields] + [f"s_{column}" for column in SEED_COLUMNS]
    names += ["e_model", "e_dimensions", "e_input_sha256", "e_embedding"]

    audit_columns = [*_SHARED_COLUMNS, *(field.column for field in fields)]
    # The audit ids come from the table's identity, assigned in `ord` order as the rows are
    # inserted, so numbering them in id order pairs each with its input row.
    sql = (
        "WITH batch_rows AS MATERIALIZED ("  # noqa: S608
        f"SELECT *, CAST(%s AS text) AS e_reason FROM unnest({', '.join(arrays)})"
        f" WITH ORDINALITY AS batch_rows({', '.join(names)}, ord)"
        "), audit AS ("
        f"INSERT INTO {_quote(model._meta.db_table)} ({', '.join(_quote(column) for column in audit_columns)})"
        f" SELECT %s, %s, %s, {', '.join(f'f_{field.column}' for field in fields)} FROM batch_rows ORDER BY ord"
        " RETURNING id"
        "), numbered AS MATERIALIZED ("
        "SELECT id, row_number() OVER (ORDER BY id) AS ord FROM audit"
        "), embedded AS ("
        f"{_embedding_insert()}"
        f" SELECT %s, numbered.id, %s, {', '.join(f's_{column}' for column in SEED_COLUMNS)},"
        " e_model, e_dimensions, e_input_sha256, e_embedding, %s"
        " FROM batch_rows JOIN numbered USING (ord) WHERE e_model IS NOT NULL RETURNING audit_id, id"
        "), deferred AS ("
        f"{_backlog_insert()}"
        " SELECT %s, numbered.id, %s, e_reason, %s FROM batch_rows JOIN numbered USING (ord) WHERE e_model IS NULL"
        ") SELECT numbered.id, embedded.id FROM numbered LEFT JOIN embedded ON embedded.audit_id = numbered.id"
        " ORDER BY numbered.ord"
    )
    return fields, sql
