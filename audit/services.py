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
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
import psycopg
from django.db import DatabaseError, IntegrityError, connection, models, transaction
from django.db.backends.utils import CursorWrapper
from django.utils import timezone
from django_prometheus.db.common import ExportingCursorWrapper
from pgvector.psycopg.vector import register_vector_info
from psycopg.types import TypeInfo
from psycopg.types.json import Jsonb
from psycopg_pool import PoolTimeout

from audit.models import AUDIT_MODELS, AuditKind, IdempotencyKey
from audit.texts import audit_text
from embeddings.models import EmbeddingBacklog, IncidentEmbedding
from embeddings.providers.base import Embedding, EmbeddingProviderError
from embeddings.services import embedding_for_text, text_sha256
from kubernaut_storage.exceptions import IdempotencyKeyInFlight, IdempotencyKeyReused, ServiceUnavailable
from kubernaut_storage.metrics import DB_RETRIES as DB_RETRIES_TOTAL
from kubernaut_storage.metrics import EMBEDDING_DEFERRALS
from kubernaut_storage.retries import RetriesExhausted, RetryPolicy, call_with_retries

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
        _connection_release()

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
    statement = audit_insert_statement(
        kind=kind,
        data=data,
        payload=payload,
        actor=actor,
        request_id=request_id,
        recorded_at=recorded_at,
        content_sha256=content_sha256,
        embedding=embedding,
        input_sha256=text_sha256(text),
        deferral_reason=deferral_reason,
    )

    def created(audit_id: int, embedding_id: int | None) -> dict[str, Any]:
        return {
            "id": audit_id,
            "embeddingId": embedding_id,
            "embeddingStatus": "stored" if embedding is not None else "pending",
            "correlationId": data["correlation_id"],
            "recordedAt": recorded_at.isoformat().replace("+00:00", "Z"),
        }

    def write() -> AuditWrite:
        if idempotency_key is None and not connection.in_atomic_block:
            return AuditWrite(body=created(*statement.execute()), replayed=False)
        # The key claim must commit with the rows; a caller's transaction gets a savepoint.
        with transaction.atomic():
            body = created(*statement.execute())
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
        with _server_binding_cursor() as cursor:
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
        params.append(_jsonb(value) if isinstance(field, models.JSONField) else value)
    if embedding is None:
        params += [kind.value, deferral_reason[:1000], recorded_at]
    else:
        seed = audit_embedding_seed(kind=kind, data=data)
        params += [kind.value, *(seed[column] for column in _SEED_COLUMNS)]
        params += [embedding.model, embedding.dimensions, input_sha256, embedding.vector, recorded_at]
    return AuditInsert(sql=sql, params=tuple(params))


_SEED_COLUMNS = ("remediation_request_id", "namespace", "target_type", "target_name", "signal_type", "root_cause")


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
        columns = ["audit_type", "audit_id", "audit_recorded_at", *_SEED_COLUMNS]
        columns += ["model", "dimensions", "input_sha256", "embedding", "recorded_at"]
        # %b: the vector goes in pgvector's binary format, 4 bytes a dimension, no float text.
        values = ["%s", "audit.id", "audit.recorded_at", *["%s"] * len(_SEED_COLUMNS), "%s", "%s", "%s", "%b", "%s"]
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


def _jsonb(value: Any) -> Jsonb:
    # orjson, not the stdlib encoder the ORM's JSONField uses: same JSON, several times faster.
    return Jsonb(value, dumps=orjson.dumps)


#: The server-binding cursor, counted and timed in django-prometheus' database series like
#: every cursor the backend makes.
_ServerBindingCursor = ExportingCursorWrapper(psycopg.Cursor, "default", "postgresql")

#: Connections whose psycopg adapters know pgvector's `vector` type (looked up once each).
_vector_connections: weakref.WeakSet[psycopg.Connection[Any]] = weakref.WeakSet()


@contextmanager
def _server_binding_cursor() -> Iterator[CursorWrapper]:
    """A Django cursor (errors wrapped, queries logged when Django logs them) whose psycopg
    cursor binds parameters on the server: binary parameters and prepared statements, which
    the client-side binding cursor Django's PostgreSQL backend uses by default cannot do."""
    connection.ensure_connection()
    raw = connection.connection
    with connection.wrap_database_errors:
        if raw not in _vector_connections:
            register_vector_info(raw, TypeInfo.fetch(raw, "vector"))
            _vector_connections.add(raw)
        cursor = _ServerBindingCursor(raw)
    # (django-stubs type these as taking a CursorWrapper; they take the driver's cursor.)
    make = connection.make_debug_cursor if connection.queries_logged else connection.make_cursor
    wrapped = make(cursor)  # type: ignore[arg-type]
    with wrapped:
        yield wrapped


def _connection_release() -> None:
    """Give a pooled connection back while the embedding is computed (up to ~100 ms and more,
    against a few ms of SQL): held, the pool would run dry with threads that only wait."""
    if getattr(connection, "pool", None) is not None and not connection.in_atomic_block:
        connection.close()


def _idempotent_replay(*, actor: str, kind: str, key: str, payload_sha256: str) -> AuditWrite | None:
    claimed = IdempotencyKey.objects.filter(actor=actor, kind=kind, key=key).first()
    if claimed is None:
        return None
    if claimed.request_sha256 != payload_sha256:
        raise IdempotencyKeyReused()
    return AuditWrite(body=claimed.response_body, replayed=True)


def _idempotency_key_claim(*, actor: str, kind: str, key: str, payload_sha256: str, body: dict[str, Any]) -> bool:
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

    def attempt() -> T:
        try:
            return operation()
        except DatabaseError as exc:
            if _sqlstate(exc) == _LOCK_NOT_AVAILABLE:
                raise IdempotencyKeyInFlight() from exc
            if isinstance(exc.__cause__, PoolTimeout):
                # The pool waited its whole timeout for a connection: asking it again would
                # only hold this thread longer.
                logger.error("no database connection within the pool's timeout: %s", exc)
                raise ServiceUnavailable() from exc
            raise

    def connection_drop() -> None:
        if not connection.in_atomic_block:
            # The next attempt (or request) opens a fresh connection rather than reuse a broken one.
            connection.close()

    def before_retry(attempt: int, error: Exception, delay: float) -> None:
        connection_drop()
        DB_RETRIES_TOTAL.inc()
        logger.warning("transient database error (attempt %d), retrying: %s", attempt, error)

    try:
        return call_with_retries(
            attempt,
            policy=RetryPolicy(retries=DB_RETRIES, base_backoff_s=DB_BACKOFF_S),
            retryable=lambda error: isinstance(error, DatabaseError) and _is_transient(error),
            on_retry=before_retry,
            sleep=sleep,
        )
    except RetriesExhausted as spent:
        connection_drop()
        logger.error("database unavailable after %d attempts: %s", spent.attempts, spent.__cause__)
        raise ServiceUnavailable() from spent.__cause__
