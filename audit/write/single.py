"""The write path: one audit record and its embedding, atomically.

    validated body ─► semantic text ─► embedding (outside any transaction: it may take 100 ms)
                   ─► one transaction: audit row + embedding row (or backlog row) + idempotency key

The audit row and its embedding (or backlog) row are one SQL statement, `WITH audit AS
(INSERT …) INSERT … SELECT … FROM audit`: a statement is atomic on its own, so without an
Idempotency-Key the write is one round trip, committed with the statement, and with one it is
that statement and the key claim in one transaction. The statement is sent with server-side
parameters (prepared after a few uses on a connection) and the vector in pgvector's binary
format; docs/PERFORMANCE.md has what each of these saved.

Transient database errors are retried; a database that stays down is a 503. Nothing is
acknowledged that has not committed.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db import connection, models, transaction
from django.utils import timezone

from audit.models import AUDIT_MODELS, AuditKind
from audit.write.idempotency import (
    AuditWrite,
    ConcurrentKeyClaimError,
    canonical_json,
    idempotency_key_claim,
    idempotency_key_lookup,
    replay_after_lost_claim,
    request_sha256,
)
from audit.write.texts import audit_text
from embeddings.models import EmbeddingBacklog, IncidentEmbedding
from embeddings.providers.base import Embedding, EmbeddingProviderError
from embeddings.services import embedding_for_text, text_sha256
from kubernaut_storage.database.connections import jsonb, server_binding_cursor
from kubernaut_storage.database.errors import with_db_retries
from kubernaut_storage.observability.metrics import EMBEDDING_DEFERRALS

logger = logging.getLogger(__name__)


def audit_record_create(
    *,
    kind: AuditKind,
    data: Mapping[str, Any],
    payload: Mapping[str, Any],
    actor: str,
    request_id: str,
    idempotency_key: str | None = None,
) -> AuditWrite:
    """Validate-free core of every audit POST.

    `data` is the serializer's validated_data (snake_case, typed); `payload` the request body
    as received (camelCase), stored verbatim and hashed for idempotency.
    """
    payload_sha256 = request_sha256(payload)
    lookup = idempotency_key_lookup(
        actor=actor, kind=kind, key=idempotency_key, payload_sha256=payload_sha256, record_kinds=[kind]
    )
    if lookup.replay is not None:
        return lookup.replay
    idempotency_key = lookup.key

    text = audit_text(kind=kind, data=data)
    embedding: Embedding | None
    try:
        embedding = embedding_for_text(text=text)
        deferral_reason = ""
    except EmbeddingProviderError as exc:
        # Never lose an audit: store it now, embed it later (`embeddings_backfill`).
        logger.warning("embedding deferred for a %s audit: %s", kind, exc)
        embedding, deferral_reason = None, str(exc) or type(exc).__name__

    recorded_at = timezone.now()
    statement = audit_insert_statement(
        kind=kind,
        data=data,
        payload=payload,
        actor=actor,
        request_id=request_id,
        recorded_at=recorded_at,
        content_sha256=record_content_sha256(payload=payload, recorded_at=recorded_at, actor=actor),
        embedding=embedding,
        input_sha256=text_sha256(text),
        deferral_reason=deferral_reason,
    )

    def created(audit_id: int, embedding_id: int | None) -> dict[str, Any]:
        return created_body(
            audit_id=audit_id, embedding_id=embedding_id, correlation_id=data["correlation_id"], recorded_at=recorded_at
        )

    def write() -> AuditWrite:
        if idempotency_key is None and not connection.in_atomic_block:
            return AuditWrite(body=created(*statement.execute()), replayed=False)
        # The key claim must commit with the rows; a caller's transaction gets a savepoint.
        with transaction.atomic():
            body = created(*statement.execute())
            if idempotency_key is not None and not idempotency_key_claim(
                actor=actor, kind=kind, key=idempotency_key, payload_sha256=payload_sha256, body=body
            ):
                raise ConcurrentKeyClaimError
        return AuditWrite(body=body, replayed=False)

    try:
        written = with_db_retries(write)
    except ConcurrentKeyClaimError:
        # A concurrent request with the same key committed first; our transaction rolled
        # back, so exactly one row exists.
        assert idempotency_key is not None
        return replay_after_lost_claim(
            actor=actor, kind=kind, key=idempotency_key, payload_sha256=payload_sha256, record_kinds=[kind]
        )
    if embedding is None:
        # Counted once the record and its backlog row committed, not when the chain failed:
        # the metric then equals the rows `embeddings_backfill` has to do.
        EMBEDDING_DEFERRALS.inc()
    return written


def record_content_sha256(*, payload: Mapping[str, Any], recorded_at: dt.datetime, actor: str) -> str:
    """The write-time fingerprint stored in `content_sha256`: the body as received, when and by whom."""
    return hashlib.sha256(
        canonical_json({"payload": payload, "recordedAt": recorded_at.isoformat(), "actor": actor})
    ).hexdigest()


def created_body(
    *, audit_id: int, embedding_id: int | None, correlation_id: str, recorded_at: dt.datetime
) -> dict[str, Any]:
    """The 201 body of one stored record (a batch answers one per record)."""
    return {
        "id": audit_id,
        "embeddingId": embedding_id,
        "embeddingStatus": "stored" if embedding_id is not None else "pending",
        "correlationId": correlation_id,
        "recordedAt": recorded_at.isoformat().replace("+00:00", "Z"),
    }


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


# --- the statement ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuditInsert:
    """One audit row and its embedding or backlog row, as one SQL statement and its parameters."""

    sql: str
    params: tuple[Any, ...]

    def execute(self) -> tuple[int, int | None]:
        """Run it on the request's connection; (audit id, embedding id or None)."""
        with server_binding_cursor() as cursor:
            cursor.execute(self.sql, self.params)
            row = cursor.fetchone()
        return int(row[0]), row[1]


def audit_insert_statement(
    *,
    kind: AuditKind,
    data: Mapping[str, Any],
    payload: Mapping[str, Any],
    actor: str,
    request_id: str,
    recorded_at: dt.datetime,
    content_sha256: str,
    embedding: Embedding | None,
    input_sha256: str,
    deferral_reason: str = "",
) -> AuditInsert:
    """The statement that stores one audit record with its embedding (or, None: its backlog row).

    Every column named like a validated field takes its value; absent optional fields take the
    model's defaults; the whole body as received lives in `payload`.
    """
    fields, sql = _insert_sql(kind, embedding is not None)
    given = {
        **data,
        "recorded_at": recorded_at,
        "actor": actor,
        "request_id": request_id,
        "content_sha256": content_sha256,
        "payload": payload,
    }
    params: list[Any] = []
    for field in fields:
        value = given[field.name] if field.name in given else field.get_default()
        params.append(jsonb(value) if isinstance(field, models.JSONField) else value)
    if embedding is None:
        params += [kind.value, deferral_reason[:1000], recorded_at]
    else:
        seed = audit_embedding_seed(kind=kind, data=data)
        params += [kind.value, *(seed[column] for column in SEED_COLUMNS)]
        params += [embedding.model, embedding.dimensions, input_sha256, embedding.vector, recorded_at]
    return AuditInsert(sql=sql, params=tuple(params))


SEED_COLUMNS = ("remediation_request_id", "namespace", "target_type", "target_name", "signal_type", "root_cause")


@functools.cache
def _insert_sql(kind: AuditKind, stored: bool) -> tuple[tuple[models.Field[Any, Any], ...], str]:
    model = AUDIT_MODELS[kind]
    fields = tuple(field for field in model._meta.concrete_fields if not field.primary_key)
    quote = connection.ops.quote_name
    audit = (
        f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(f.column) for f in fields)})"  # noqa: S608
        f" VALUES ({', '.join(['%s'] * len(fields))}) RETURNING id, recorded_at"
    )
    if stored:
        columns = ["audit_type", "audit_id", "audit_recorded_at", *SEED_COLUMNS]
        columns += ["model", "dimensions", "input_sha256", "embedding", "recorded_at"]
        # %b: the vector goes in pgvector's binary format, 4 bytes a dimension, no float text.
        values = ["%s", "audit.id", "audit.recorded_at", *["%s"] * len(SEED_COLUMNS), "%s", "%s", "%s", "%b", "%s"]
        second = (
            f"INSERT INTO {quote(IncidentEmbedding._meta.db_table)} ({', '.join(columns)})"  # noqa: S608
            f" SELECT {', '.join(values)} FROM audit RETURNING audit_id, id"
        )
    else:
        second = (
            f"INSERT INTO {quote(EmbeddingBacklog._meta.db_table)}"  # noqa: S608
            " (audit_type, audit_id, audit_recorded_at, reason, created_at)"
            " SELECT %s, audit.id, audit.recorded_at, %s, %s FROM audit RETURNING audit_id, NULL::bigint"
        )
    # Only our models' table and column names go into the text; every value is a parameter.
    return fields, f"WITH audit AS ({audit}) {second}"
