"""The write path's database plumbing, shared by single and batch writes.

A cursor that binds parameters on the server (prepared statements, binary vectors), giving a
pooled connection back while a write waits for its embedding, and retrying transient database
errors: a database that stays down becomes a 503, a busy Idempotency-Key a 409.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import orjson
import psycopg
from django.db import DatabaseError, IntegrityError, connection
from django.db.backends.utils import CursorWrapper
from django_prometheus.db.common import ExportingCursorWrapper
from pgvector.psycopg.vector import register_vector_info
from psycopg.types import TypeInfo
from psycopg.types.json import Jsonb
from psycopg_pool import PoolTimeout

from kubernaut_storage.database.lost_connections import connection_close_after_error
from kubernaut_storage.database.retries import RetriesExhausted, RetryPolicy, call_with_retries
from kubernaut_storage.http.exceptions import IdempotencyKeyInFlight, ServiceUnavailable
from kubernaut_storage.observability.metrics import DB_RETRIES as DB_RETRIES_TOTAL

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Retries after the first attempt for transient database errors, and the first backoff.
DB_RETRIES = 3
DB_BACKOFF_S = 0.05

# SQLSTATEs worth a retry: serialization failure, deadlock, and the connection going away
# (class 08, admin/crash shutdown, cannot connect now).
_TRANSIENT_SQLSTATES = {"40001", "40P01", "57P01", "57P02", "57P03"}
_LOCK_NOT_AVAILABLE = "55P03"
# The statement ran out its statement_timeout (the runtime role's 5 s): the database is too
# slow or a lock blocks the table. A retry would hold the thread and a pooled connection that
# long again while the pool runs dry behind it, so the caller is told to come back later.
_QUERY_CANCELED = "57014"


def jsonb(value: Any) -> Jsonb:
    # orjson, not the stdlib encoder the ORM's JSONField uses: same JSON, several times faster.
    return Jsonb(value, dumps=orjson.dumps)


#: The server-binding cursor, counted and timed in django-prometheus' database series like
#: every cursor the backend makes.
ServerBindingCursor = ExportingCursorWrapper(psycopg.Cursor, "default", "postgresql")

#: Connections whose psycopg adapters know pgvector's `vector` type (looked up once each).
_vector_connections: weakref.WeakSet[psycopg.Connection[Any]] = weakref.WeakSet()


@contextmanager
def server_binding_cursor() -> Iterator[CursorWrapper]:
    """A Django cursor (errors wrapped, queries logged when Django logs them) whose psycopg
    cursor binds parameters on the server: binary parameters and prepared statements, which
    the client-side binding cursor Django's PostgreSQL backend uses by default cannot do."""
    connection.ensure_connection()
    raw = connection.connection
    with connection.wrap_database_errors:
        if raw not in _vector_connections:
            register_vector_info(raw, TypeInfo.fetch(raw, "vector"))
            _vector_connections.add(raw)
        cursor = ServerBindingCursor(raw)
    # (django-stubs type these as taking a CursorWrapper; they take the driver's cursor.)
    make = connection.make_debug_cursor if connection.queries_logged else connection.make_cursor
    wrapped = make(cursor)  # type: ignore[arg-type]
    with wrapped:
        yield wrapped


def connection_release() -> None:
    """Give a pooled connection back while the embedding is computed (up to ~100 ms and more,
    against a few ms of SQL): held, the pool would run dry with threads that only wait."""
    if getattr(connection, "pool", None) is not None and not connection.in_atomic_block:
        connection.close()


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


def with_db_retries(operation: Callable[[], T], *, sleep: Callable[[float], None] = time.sleep) -> T:
    """Run `operation`, retrying transient database errors with exponential backoff + jitter.

    A connection lost *during* COMMIT leaves the outcome unknown; a retry may then store the
    record twice. Callers that must not duplicate send an Idempotency-Key, which makes the
    retry a replay.
    """

    def attempt() -> T:
        try:
            return operation()
        except DatabaseError as exc:
            state = _sqlstate(exc)
            if state == _LOCK_NOT_AVAILABLE:
                raise IdempotencyKeyInFlight() from exc
            if state == _QUERY_CANCELED:
                logger.error("database statement cancelled (statement timeout): %s", exc)
                raise ServiceUnavailable(
                    "The database did not complete the write in time; the record was not stored. Retry later."
                ) from exc
            if isinstance(exc.__cause__, PoolTimeout):
                # The pool waited its whole timeout for a connection: asking it again would
                # only hold this thread longer.
                logger.error("no database connection within the pool's timeout: %s", exc)
                raise ServiceUnavailable() from exc
            raise

    def connection_drop() -> None:
        if not connection.in_atomic_block:
            # The next attempt (or request) gets a working connection rather than reuse a
            # broken one, nor another the same database restart broke.
            connection_close_after_error()

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
