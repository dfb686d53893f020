"""The write-lag bound the database enforces: AUDIT_WRITE_MAX_LAG_SECONDS, written by the owner.

The sealed-window trigger refuses a row whose recorded_at lies further behind its INSERT than
`audit_write_limits.max_write_lag` (migration audit.0007), so a write that waited, retried or
stalled longer cannot enter a window `audit_seal` may already have sealed. The table is the
owner's: the API pods' role reads it and cannot change it, nor lift it for its own session
(the owner's own inserts are not bound, as with the clock bound). `manage.py migrate`, which
the owner runs before every rollout, writes the setting into it.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections


def write_lag_bound_apply(*, using: str = DEFAULT_DB_ALIAS, **kwargs: Any) -> None:
    """`post_migrate`: the database's bound becomes AUDIT_WRITE_MAX_LAG_SECONDS (0: unchecked)."""
    seconds = settings.AUDIT_WRITE_MAX_LAG_SECONDS
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT to_regclass('audit_write_limits') IS NOT NULL")
        if not cursor.fetchone()[0]:
            return  # migrated to before the table exists
        cursor.execute(
            "UPDATE audit_write_limits SET max_write_lag = make_interval(secs => %s)"
            " WHERE max_write_lag IS DISTINCT FROM make_interval(secs => %s)",
            [seconds or None, seconds or None],
        )
