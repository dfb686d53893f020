"""The write path (DESIGN §1, §3): one audit record and its embedding, atomically.

    validated body ─► semantic text ─► embedding (outside any transaction: it may take 100 ms)
                   ─► one transaction: audit row + embedding row (or backlog row) + idempotency key

Transient database errors are retried; a database that stays down is a 503. Nothing is
acknowledged that has not committed.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from audit.models import AUDIT_MODELS, AuditKind, AuditRecord, IdempotencyKey
from embeddings.providers.base import Embedding, EmbeddingProviderError
from embeddings.services import (
    embedding_backlog_add,
    embedding_for_text,
    incident_embedding_create,
    text_sha256,
)
from embeddings.texts import audit_text
from kubernaut_storage.exceptions import IdempotencyKeyInFlight, IdempotencyKeyReused, ServiceUnavailable
from kubernaut_storage.metrics import DB_RETRIES as DB_RETRIES_TOTAL
from kubernaut_storage.metrics import EMBEDDING_DEFERRALS

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Retries after the first attempt for transient database errors, and the first backoff.
DB_RETRIES = 3
DB_BACKOFF_S = 0.05

# SQLSTATEs worth a retry: serialization failure, deadlock, and the connection going away
# (class 08, admin/crash shutdown, cannot connect now).
_TRANSIENT_SQLSTATES = {"40001", "40P01", "57P01", "57P02", "57P03"}
_LOCK_NOT_AVAILABLE = "55P03"


@dataclass(frozen=True, slots=True)
class AuditWrite:
    """What a write answered: the 201 body, and whether it was an idempotent replay."""

    body: dict[str, Any]
    replayed: bool


def canonical_json(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def request_sha256(payload: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(payload)).hexdigest()


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
    if idempotency_key is not None:
        replay = _with_db_retries(
            lambda: _idempotent_replay(actor=actor, kind=kind, key=idempotency_key, payload_sha256=payload_sha256)
        )
        if replay is not None:
            return replay

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
    content_sha256 = hashlib.sha256(
        canonical_json({"payload": payload, "recordedAt": recorded_at.isoformat(), "actor": actor})
    ).hexdigest()
    model = AUDIT_MODELS[kind]
    # Every column named like a validated field takes its value; the rest of the body lives
    # in `payload`. Absent optional fields take the model's defaults.
    columns = {field.name: data[field.name] for field in model._meta.concrete_fields if field.name in data}

    def write() -> AuditWrite:
        with transaction.atomic():
            record = model._default_manager.create(
                **columns,
                recorded_at=recorded_at,
                actor=actor,
                request_id=request_id,
                content_sha256=content_sha256,
                payload=payload,
            )
            embedding_id = None
            if embedding is not None:
                embedding_id = incident_embedding_create(
                    audit_type=kind,
                    audit_id=record.id,
                    audit_recorded_at=recorded_at,
                    seed=audit_embedding_seed(kind=kind, record=record, data=data),
                    embedding=embedding,
                    input_sha256=text_sha256(text),
                    recorded_at=recorded_at,
                ).id
            else:
                embedding_backlog_add(
                    audit_type=kind,
                    audit_id=record.id,
                    audit_recorded_at=recorded_at,
                    reason=deferral_reason,
                    created_at=recorded_at,
                )
            body = {
                "id": record.id,
                "embeddingId": embedding_id,
                "embeddingStatus": "stored" if embedding is not None else "pending",
                "correlationId": record.correlation_id,
                "recordedAt": recorded_at.isoformat().replace("+00:00", "Z"),
            }
            if idempotency_key is not None and not _idempotency_key_claim(
                actor=actor, kind=kind, key=idempotency_key, payload_sha256=payload_sha256, body=body
            ):
                raise _ConcurrentKeyClaimError
        return AuditWrite(body=body, replayed=False)

    try:
        written = _with_db_retries(write)
    except _ConcurrentKeyClaimError:
        # A concurrent request with the same key committed first; our transaction rolled
        # back, so exactly one row exists. Answer as a retry of that request would be.
        assert idempotency_key is not None
        replay = _with_db_retries(
            lambda: _idempotent_replay(actor=actor, kind=kind, key=idempotency_key, payload_sha256=payload_sha256)
        )
        if replay is None:  # pragma: no cover - the conflicting row committed, so it exists
            raise IdempotencyKeyInFlight() from None
        return replay
    if embedding is None:
        # Counted once the record and its backlog row committed, not when the chain failed:
        # the metric then equals the rows `embeddings_backfill` has to do.
        EMBEDDING_DEFERRALS.inc()
    return written


class _ConcurrentKeyClaimError(Exception):
    """Raised inside the write transaction to roll it back when the key was claimed first."""


def audit_embedding_seed(*, kind: AuditKind, record: AuditRecord, data: Mapping[str, Any]) -> dict[str, str]:
    """The denormalised columns `incident_embeddings` carries for similarity search.

    Also used by `embeddings_backfill`, which rebuilds `data` from the stored payload.
    """
    remediation_ref = record.name if kind == AuditKind.REMEDIATION else data.get("remediation_request_ref", "")
    return {
        "remediation_request_id": remediation_ref,
        "namespace": record.namespace,
        "target_type": data.get("target_type", ""),
        "target_name": data.get("target_name", ""),
        "signal_type": data.get("signal_type", ""),
        "root_cause": data.get("root_cause", ""),
    }


def _idempotent_replay(*, actor: str, kind: AuditKind, key: str, payload_sha256: str) -> AuditWrite | None:
    claimed = IdempotencyKey.objects.filter(actor=actor, kind=kind, key=key).first()
    if claimed is None:
        return None
    if claimed.request_sha256 != payload_sha256:
        raise IdempotencyKeyReused()
    return AuditWrite(body=claimed.response_body, replayed=True)


def _idempotency_key_claim(*, actor: str, kind: AuditKind, key: str, payload_sha256: str, body: dict[str, Any]) -> bool:
    """Claim the key in the current transaction; False if another request holds it.

    ON CONFLICT DO NOTHING waits for a concurrent uncommitted claim of the same key and then
    sees it committed (False) or rolled back (we claim it). The wait is bounded by the
    connection's lock_timeout, which surfaces as 409 (still in flight).
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {IdempotencyKey._meta.db_table}"  # noqa: S608 - a constant table name
            " (actor, kind, key, request_sha256, response_body, created_at)"
            " VALUES (%s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (actor, kind, key) DO NOTHING RETURNING id",
            [actor, str(kind), key, payload_sha256, canonical_json(body).decode(), timezone.now()],
        )
        return cursor.fetchone() is not None


def _sqlstate(exc: BaseException) -> str | None:
    cause = exc.__cause__
    return getattr(cause, "sqlstate", None)


def _is_transient(exc: DatabaseError) -> bool:
    if isinstance(exc, IntegrityError):
        return False
    state = _sqlstate(exc)
    if state is None:
        # No SQLSTATE: the connection failed or was lost (psycopg OperationalError).
        return True
    return state in _TRANSIENT_SQLSTATES or state.startswith("08")


def _with_db_retries(operation: Callable[[], T], *, sleep: Callable[[float], None] = time.sleep) -> T:
    """Run `operation`, retrying transient database errors with exponential backoff + jitter.

    A connection lost *during* COMMIT leaves the outcome unknown; a retry may then store the
    record twice. Callers that must not duplicate send an Idempotency-Key, which makes the
    retry a replay.
    """
    for attempt in range(DB_RETRIES + 1):
        try:
            return operation()
        except DatabaseError as exc:
            if _sqlstate(exc) == _LOCK_NOT_AVAILABLE:
                raise IdempotencyKeyInFlight() from exc
            if not _is_transient(exc):
                raise
            if not connection.in_atomic_block:
                # The next attempt opens a fresh connection rather than reuse a broken one.
                connection.close()
            if attempt == DB_RETRIES:
                logger.error("database unavailable after %d attempts: %s", attempt + 1, exc)
                raise ServiceUnavailable() from exc
            DB_RETRIES_TOTAL.inc()
            delay = DB_BACKOFF_S * 2**attempt
            logger.warning("transient database error (attempt %d), retrying: %s", attempt + 1, exc)
            sleep(delay + random.uniform(0, delay))  # noqa: S311 - jitter, not security
    raise AssertionError("unreachable")
