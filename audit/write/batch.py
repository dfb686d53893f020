"""The batch write path: many audit records of any kinds, all or nothing, in one transaction.

    validated records ─► their texts ─► embeddings: one cache round trip, misses in as few
                         provider calls as the primary's batch limit allows
                      ─► one transaction: per kind present, one statement inserting every row of
                         that kind with its embedding (or backlog) row; then the idempotency key

Each kind's statement takes its rows as arrays (`unnest`), so its text is the same whatever the
batch size and it is prepared like the single write's. A batch takes no lock another batch
could hold: its rows are new ids, and the only shared row is the Idempotency-Key, claimed last
with ON CONFLICT DO NOTHING (a transaction that waits for it holds nothing the other needs).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection, models, transaction
from django.utils import timezone

from audit.models import AUDIT_MODELS, AuditKind
from audit.write.idempotency import (
    AuditWrite,
    ConcurrentKeyClaimError,
    idempotency_key_claim,
    idempotency_key_lookup,
    replay_after_lost_claim,
    request_sha256,
)
from audit.write.single import SEED_COLUMNS, audit_embedding_seed, created_body, record_content_sha256
from audit.write.texts import audit_text
from embeddings.models import EmbeddingBacklog, IncidentEmbedding
from embeddings.providers.base import Embedding
from embeddings.services import embeddings_for_texts, text_sha256
from kubernaut_storage.database.connections import jsonb, server_binding_cursor
from kubernaut_storage.database.errors import with_db_retries
from kubernaut_storage.observability.metrics import EMBEDDING_DEFERRALS

logger = logging.getLogger(__name__)

#: The Idempotency-Key scope of batches: apart from the four endpoints' scopes, so a key used
#: for a single record and for a batch names two different requests.
BATCH_IDEMPOTENCY_SCOPE = "batch"

#: Columns every row of a batch shares: one request, one caller, one receive time.
_SHARED_COLUMNS = ("recorded_at", "actor", "request_id")


@dataclass(frozen=True, slots=True)
class BatchRecord:
    """One record of a batch: its kind, its validated data and its body as received."""

    kind: AuditKind
    data: Mapping[str, Any]
    payload: Mapping[str, Any]


def audit_batch_create(
    *,
    records: Sequence[BatchRecord],
    payload: Mapping[str, Any],
    actor: str,
    request_id: str,
    idempotency_key: str | None = None,
) -> AuditWrite:
    """Store every record or none; the body is `{"results": [...]}`, one single-write 201
    body per record, in the order of `records`.

    `payload` is the whole batch body as received, hashed for the Idempotency-Key.
    """
    # Hashed only for a key: a batch body is up to AUDIT_MAX_BODY_BYTES of canonical JSON.
    payload_sha256 = request_sha256(payload) if idempotency_key is not None else ""
    record_kinds = [record.kind for record in records]
    lookup = idempotency_key_lookup(
        actor=actor,
        kind=BATCH_IDEMPOTENCY_SCOPE,
        key=idempotency_key,
        payload_sha256=payload_sha256,
        record_kinds=record_kinds,
    )
    if lookup.replay is not None:
        return lookup.replay
    idempotency_key = lookup.key

    texts = [audit_text(kind=record.kind, data=record.data) for record in records]
    embedded = embeddings_for_texts(texts=texts)
    if embedded.deferral_reason:
        # Never lose an audit: store them now, embed them later (`embeddings_backfill`).
        logger.warning("embedding deferred for records of a batch: %s", embedded.deferral_reason)

    recorded_at = timezone.now()
    statements = [
        audit_batch_insert_statement(
            kind=kind,
            rows=[
                BatchRow(
                    index=index,
                    record=records[index],
                    embedding=embedded.embeddings[index],
                    input_sha256=text_sha256(texts[index]),
                    content_sha256=record_content_sha256(
                        payload=records[index].payload, recorded_at=recorded_at, actor=actor
                    ),
                )
                for index in indexes
            ],
            actor=actor,
            request_id=request_id,
            recorded_at=recorded_at,
            deferral_reason=embedded.deferral_reason,
        )
        for kind, indexes in _indexes_by_kind(records).items()
    ]

    def write() -> AuditWrite:
        results: list[dict[str, Any]] = [{} for _ in records]
        with transaction.atomic():
            for statement in statements:
                for index, (audit_id, embedding_id) in zip(statement.indexes, statement.execute(), strict=True):
                    results[index] = created_body(
                        audit_id=audit_id,
                        embedding_id=embedding_id,
                        correlation_id=records[index].data["correlation_id"],
                        recorded_at=recorded_at,
                    )
            body = {"results": results}
            if idempotency_key is not None and not idempotency_key_claim(
                actor=actor,
                kind=BATCH_IDEMPOTENCY_SCOPE,
                key=idempotency_key,
                payload_sha256=payload_sha256,
                body=body,
            ):
                raise ConcurrentKeyClaimError
        return AuditWrite(body=body, replayed=False)

    try:
        written = with_db_retries(write)
    except ConcurrentKeyClaimError:
        # A concurrent batch with the same key committed first; ours rolled back whole.
        assert idempotency_key is not None
        return replay_after_lost_claim(
            actor=actor,
            kind=BATCH_IDEMPOTENCY_SCOPE,
            key=idempotency_key,
            payload_sha256=payload_sha256,
            record_kinds=record_kinds,
        )
    pending = sum(1 for embedding in embedded.embeddings if embedding is None)
    if pending:
        # Counted once committed, as for single writes: the rows `embeddings_backfill` has to do.
        EMBEDDING_DEFERRALS.inc(pending)
    return written


def _indexes_by_kind(records: Sequence[BatchRecord]) -> dict[AuditKind, list[int]]:
    """Positions of each kind's records, kinds in a fixed order."""
    by_kind: dict[AuditKind, list[int]] = {kind: [] for kind in AuditKind}
    for index, record in enumerate(records):
        by_kind[record.kind].append(index)
    return {kind: indexes for kind, indexes in by_kind.items() if indexes}


# --- the statements -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BatchRow:
    """A record of the batch at position `index`, ready for its statement."""

    index: int
    record: BatchRecord
    embedding: Embedding | None
    input_sha256: str
    content_sha256: str


@dataclass(frozen=True, slots=True)
class AuditBatchInsert:
    """One kind's rows of a batch, with their embedding or backlog rows, as one statement."""

    sql: str
    params: tuple[Any, ...]
    #: Positions in the batch of the rows, in the order the statement returns them.
    indexes: tuple[int, ...]

    def execute(self) -> list[tuple[int, int | None]]:
        """Run it on the request's connection; (audit id, embedding id or None) per row, in order."""
        with server_binding_cursor() as cursor:
            cursor.execute(self.sql, self.params)
            rows = cursor.fetchall()
        if len(rows) != len(self.indexes):  # pragma: no cover - the statement returns one per input row
            raise AssertionError(f"{len(rows)} rows returned for {len(self.indexes)} inserted")
        return [(int(audit_id), embedding_id) for audit_id, embedding_id in rows]


def audit_batch_insert_statement(
    *,
    kind: AuditKind,
    rows: Sequence[BatchRow],
    actor: str,
    request_id: str,
    recorded_at: dt.datetime,
    deferral_reason: str = "",
) -> AuditBatchInsert:
    """The statement that stores `rows` (all of `kind`) with their embeddings or backlog rows.

    Columns take values as the single write's statement does: validated fields, else the
    model's defaults; the body as received in `payload`.
    """
    fields, sql = _batch_insert_sql(kind)
    columns: list[list[Any]] = [[] for _ in fields]
    seeds: list[list[Any]] = [[] for _ in SEED_COLUMNS]
    models_: list[str | None] = []
    dimensions: list[int | None] = []
    input_sha256s: list[str] = []
    vectors: list[Any] = []
    for row in rows:
        given = {**row.record.data, "content_sha256": row.content_sha256, "payload": row.record.payload}
        for values, field in zip(columns, fields, strict=True):
            value = given[field.name] if field.name in given else field.get_default()
            values.append(jsonb(value) if isinstance(field, models.JSONField) else value)
        seed = audit_embedding_seed(kind=kind, data=row.record.data)
        for values, column in zip(seeds, SEED_COLUMNS, strict=True):
            values.append(seed[column])
        embedding = row.embedding
        models_.append(embedding.model if embedding else None)
        dimensions.append(embedding.dimensions if embedding else None)
        input_sha256s.append(row.input_sha256)
        vectors.append(embedding.vector if embedding else None)
    arrays = [*columns, *seeds, models_, dimensions, input_sha256s, vectors]
    params: list[Any] = [deferral_reason[:1000]]
    # An array of NULLs only is sent as NULL: unnest pads it to the rows' count with NULLs, and
    # the driver need not guess the element type of a list that holds no value.
    params += [None if all(value is None for value in array) else array for array in arrays]
    params += [recorded_at, actor, request_id]  # the audit rows
    params += [kind.value, recorded_at, recorded_at]  # the embedding rows
    params += [kind.value, recorded_at, recorded_at]  # the backlog rows
    return AuditBatchInsert(
        sql=sql,
        params=tuple(params),
        indexes=tuple(row.index for row in rows),
    )


@functools.cache
def _batch_insert_sql(kind: AuditKind) -> tuple[tuple[models.Field[Any, Any], ...], str]:
    model = AUDIT_MODELS[kind]
    fields = tuple(
        field for field in model._meta.concrete_fields if not field.primary_key and field.name not in _SHARED_COLUMNS
    )
    quote = connection.ops.quote_name
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
    embedding_columns = ["audit_type", "audit_id", "audit_recorded_at", *SEED_COLUMNS]
    embedding_columns += ["model", "dimensions", "input_sha256", "embedding", "recorded_at"]
    # Only our models' table and column names go into the text; every value is a parameter.
    # The audit ids come from the table's identity, assigned in `ord` order as the rows are
    # inserted, so numbering them in id order pairs each with its input row.
    sql = (
        "WITH batch_rows AS MATERIALIZED ("  # noqa: S608
        f"SELECT *, CAST(%s AS text) AS e_reason FROM unnest({', '.join(arrays)})"
        f" WITH ORDINALITY AS batch_rows({', '.join(names)}, ord)"
        "), audit AS ("
        f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(column) for column in audit_columns)})"
        f" SELECT %s, %s, %s, {', '.join(f'f_{field.column}' for field in fields)} FROM batch_rows ORDER BY ord"
        " RETURNING id"
        "), numbered AS MATERIALIZED ("
        "SELECT id, row_number() OVER (ORDER BY id) AS ord FROM audit"
        "), embedded AS ("
        f"INSERT INTO {quote(IncidentEmbedding._meta.db_table)} ({', '.join(embedding_columns)})"
        f" SELECT %s, numbered.id, %s, {', '.join(f's_{column}' for column in SEED_COLUMNS)},"
        " e_model, e_dimensions, e_input_sha256, e_embedding, %s"
        " FROM batch_rows JOIN numbered USING (ord) WHERE e_model IS NOT NULL RETURNING audit_id, id"
        "), deferred AS ("
        f"INSERT INTO {quote(EmbeddingBacklog._meta.db_table)}"
        " (audit_type, audit_id, audit_recorded_at, reason, created_at)"
        " SELECT %s, numbered.id, %s, e_reason, %s FROM batch_rows JOIN numbered USING (ord) WHERE e_model IS NULL"
        ") SELECT numbered.id, embedded.id FROM numbered LEFT JOIN embedded ON embedded.audit_id = numbered.id"
        " ORDER BY numbered.ord"
    )
    return fields, sql
