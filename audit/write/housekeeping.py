"""Housekeeping of the write path's own bookkeeping (not of audit records, which are evidence)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from django.db import connection, transaction

from audit.models import IdempotencyKey


def idempotency_keys_prune(
    *,
    cutoff: dt.datetime,
    batch_size: int,
    on_batch: Callable[[int], None] | None = None,
    scope: str | None = None,
) -> int:
    """Delete keys claimed before `cutoff` (of `scope` only, if given), `batch_size` per
    transaction; return how many.

    Short batches keep each transaction's locks brief: a write claiming a new key never waits
    behind a long DELETE. Each batch walks the created_at index from the oldest key.
    """
    table = connection.ops.quote_name(IdempotencyKey._meta.db_table)
    scoped = " AND kind = %s" if scope is not None else ""  # kind: the scope's column
    statement = (
        f"DELETE FROM {table} WHERE id IN"  # noqa: S608 - a constant table name
        f" (SELECT id FROM {table} WHERE created_at < %s{scoped} ORDER BY created_at LIMIT %s)"
    )
    deleted = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement, [cutoff, *([scope] if scope is not None else []), batch_size])
            batch = cursor.rowcount
        deleted += batch
        if on_batch is not None and batch:
            on_batch(batch)
        if batch < batch_size:
            return deleted
