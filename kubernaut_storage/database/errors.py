"""What a database error means for the request that met it, and retrying the transient ones.

Transient errors (a lost connection, a serialization failure, a deadlock) are retried with
backoff; a database that stays down becomes a 503, a statement that ran out its timeout a 503 at
once, a lock not granted within `lock_timeout` (a busy Idempotency-Key) a 409.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import DatabaseError, IntegrityError, connection
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
#: A lock not granted within lock_timeout.
LOCK_NOT_AVAILABLE = "55P03"
# The statement ran out its statement_timeout (the runtime role's 5 s): the database is too
# slow or a lock blocks the table. A retry would hold the thread and a pooled connection that
# long again while the pool runs dry behind it, so the caller is told to come back later.
_QUERY_CANCELED = "57014"
#: The constraint name the write-path triggers give a row that reached the database too late:
#: its recorded_at lies in a window already sealed, or further behind its statement than the
#: write-lag bound. The request was slow, not wrong: sent again, it gets a new recorded_at.
WRITE_TOO_LATE_CONSTRAINT = "audit_write_too_late"


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a Django database error (None: no server answer, e.g. a lost connection)."""
    cause = exc.__cause__
    return getattr(cause, "sqlstate", None)


def _is_transient(exc: DatabaseError) -> bool:
    if isinstance(exc, IntegrityError):
        return False
    state = sqlstate(exc)
    if state is None:
        # No SQLSTATE: the connection failed or was lost (psycopg OperationalError).
        return True
    return state in _TRANSIENT_SQLSTATES or state.startswith("08")


class WriteTooLate(ServiceUnavailable):
    default_detail = "The write took too long to reach the database and was not stored; send it again."
    default_code = "write_too_late"
    retry_after = 1


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
            state = sqlstate(exc)
            if state == LOCK_NOT_AVAILABLE:
                raise IdempotencyKeyInFlight() from exc
            if state == _QUERY_CANCELED:
                logger.error("database statement cancelled (statement timeout): %s", exc)
                raise ServiceUnavailable(
                    "The database did not complete the write in time; the record was not stored. Retry later."
                ) from exc
            if getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None) == WRITE_TOO_LATE_CONSTRAINT:
                logger.error("write refused as too late to be sealed: %s", exc)
                raise WriteTooLate() from exc
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
