"""Schema changes that wait for their lock a short while, never the write path behind them.

A statement that needs a strong lock on a table the service writes (creating a partition of it,
detaching one: ACCESS EXCLUSIVE on the parent) waits in the lock queue behind any transaction
that holds the table, even only to read it; and every INSERT that comes after queues behind that
waiting statement. So one long read (the API pods' role may hold one for as long as it likes)
would stop every write for as long as it held. Here the DDL waits at most `lock_timeout_ms`,
gives up and tries again after a pause, in a transaction of its own: a held lock delays the DDL,
and a write waits at most `lock_timeout_ms` behind each attempt.

`CREATE INDEX CONCURRENTLY` and `DETACH PARTITION CONCURRENTLY` need no such guard: their lock
(SHARE UPDATE EXCLUSIVE) lets writes through while they wait, and a lock timeout during their
later waits for old transactions would only leave an invalid index or a pending detach behind.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence

from django.db import DatabaseError, connection, transaction

from kubernaut_storage.database.errors import LOCK_NOT_AVAILABLE, sqlstate
from kubernaut_storage.database.retries import RetriesExhausted, RetryPolicy, call_with_retries

logger = logging.getLogger(__name__)

#: The longest a write waits behind one attempt: about a single write's own time under load.
DDL_LOCK_TIMEOUT_MS = 100
#: Attempts are this far apart, plus as much again at random: writes need the gaps between them.
DDL_RETRY_PAUSE_S = 1.0
#: How long a DDL keeps trying before it fails (its command then exits non-zero and runs again
#: with its CronJob); partitions are created months ahead, so nothing depends on the next minute.
DDL_RETRY_BUDGET_S = 600.0


class DDLLockNotGranted(Exception):  # noqa: N818 - a condition, not an error of the caller
    """The DDL's lock was held by others for the whole retry budget; nothing was changed."""


def ddl_with_lock_timeout(
    statements: Sequence[str],
    *,
    lock_timeout_ms: int = DDL_LOCK_TIMEOUT_MS,
    budget_s: float = DDL_RETRY_BUDGET_S,
    pause_s: float = DDL_RETRY_PAUSE_S,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Run `statements` in one transaction whose every lock is waited for at most
    `lock_timeout_ms`, the whole transaction again after a pause when a lock was not granted;
    the number of attempts. Raises DDLLockNotGranted once `budget_s` is spent.

    For statements that may run in a transaction block (not CONCURRENTLY); on the thread's
    default connection, outside any transaction of the caller's (one would hold the locks its
    earlier statements took while this one retries).
    """
    attempts = 0

    def attempt() -> None:
        nonlocal attempts
        attempts += 1
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT set_config('lock_timeout', %s, true)", [f"{int(lock_timeout_ms)}ms"])
            for statement in statements:
                cursor.execute(statement)
            cursor.execute("SET LOCAL lock_timeout TO DEFAULT")

    def before_retry(attempt: int, error: Exception, delay: float) -> None:
        logger.warning(
            "DDL lock not granted within %d ms (attempt %d); again in %.1f s", lock_timeout_ms, attempt, delay
        )

    # A fixed count could not bound the time; the budget does, with at least `pause_s` between
    # attempts (full jitter between pause_s and twice it).
    policy = RetryPolicy(retries=1_000_000, base_backoff_s=2 * pause_s, max_backoff_s=2 * pause_s, budget_s=budget_s)
    try:
        call_with_retries(
            attempt,
            policy=policy,
            retryable=lambda error: isinstance(error, DatabaseError) and sqlstate(error) == LOCK_NOT_AVAILABLE,
            on_retry=before_retry,
            sleep=sleep,
            rng=lambda: 0.5 + random.random() / 2,  # noqa: S311 - spacing, not secrecy
        )
    except RetriesExhausted as spent:
        raise DDLLockNotGranted(
            f"no lock within {lock_timeout_ms} ms in {spent.attempts} attempts over {budget_s:.0f} s"
        ) from spent.__cause__
    return attempts
