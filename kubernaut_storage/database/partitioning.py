"""Monthly range partitions: the idempotent creation of monthly partitions used by
`audit_partitions_ensure` and readiness, and their listing for retention.

Each app names its own partitioned tables (`partitioned_tables` on its AppConfig); this module
only collects them.

There is deliberately no DEFAULT partition: a write for a month without a partition must fail
loudly, and readiness reports a missing current or next month before that happens.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.apps import apps
from django.db import connection
from psycopg import sql

from kubernaut_storage.database.ddl import ddl_with_lock_timeout


def partitioned_tables() -> dict[str, str]:
    """Every partitioned table of the installed apps, with its partition key column."""
    return {
        table: key
        for config in apps.get_app_configs()
        for table, key in getattr(config, "partitioned_tables", {}).items()
    }


@dataclass(frozen=True, slots=True)
class Partition:
    table: str
    name: str
    starts: dt.datetime
    ends: dt.datetime


def month_start(moment: dt.datetime) -> dt.datetime:
    moment = moment.astimezone(dt.UTC)
    return dt.datetime(moment.year, moment.month, 1, tzinfo=dt.UTC)


def add_months(start: dt.datetime, months: int) -> dt.datetime:
    index = start.year * 12 + start.month - 1 + months
    return dt.datetime(index // 12, index % 12 + 1, 1, tzinfo=dt.UTC)


def partition_for(table: str, month: dt.datetime) -> Partition:
    starts = month_start(month)
    return Partition(table, f"{table}_p{starts:%Y_%m}", starts, add_months(starts, 1))


def existing_partitions(table: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT child.relname FROM pg_inherits"
            " JOIN pg_class parent ON parent.oid = pg_inherits.inhparent"
            " JOIN pg_class child ON child.oid = pg_inherits.inhrelid"
            " WHERE parent.relname = %s",
            [table],
        )
        return {row[0] for row in cursor.fetchall()}


def partitions_ensure(*, now: dt.datetime, months_ahead: int) -> list[Partition]:
    """Create the partitions for `now`'s month and the next `months_ahead`; return those created.

    Idempotent. Months are UTC calendar months, the same on every replica whatever its zone.
    """
    created = []
    for table in partitioned_tables():
        present = existing_partitions(table)
        for offset in range(months_ahead + 1):
            partition = partition_for(table, add_months(month_start(now), offset))
            if partition.name in present:
                continue
            partition_create(partition)
            created.append(partition)
    return created


def partition_create(partition: Partition) -> None:
    """Create one monthly partition (idempotent). Also for tests that need a past month.

    It takes ACCESS EXCLUSIVE on the parent, which the write path inserts into: the statement
    waits for that lock only briefly and tries again later (`ddl_with_lock_timeout`), so a
    transaction holding the parent delays the partition, never the writes queued behind it.
    """
    statement = sql.SQL("CREATE TABLE IF NOT EXISTS {} PARTITION OF {} FOR VALUES FROM ({}) TO ({})").format(
        sql.Identifier(partition.name),
        sql.Identifier(partition.table),
        sql.Literal(partition.starts),
        sql.Literal(partition.ends),
    )
    connection.ensure_connection()
    ddl_with_lock_timeout([statement.as_string(connection.connection)])


@dataclass(frozen=True, slots=True)
class PartitionStats:
    """A partition as the catalog describes it, with the planner's row estimate."""

    partition: Partition
    estimated_rows: int


def partitions_list(table: str) -> list[PartitionStats]:
    """The range partitions of `table` with their bounds as PostgreSQL stores them, oldest first.

    Bounds are parsed by PostgreSQL itself (`pg_get_expr` prints them in the session's time
    zone; casting back in the same session is exact). A DEFAULT partition or one bounded by
    MINVALUE/MAXVALUE has no such bounds and is left out: retention never drops what it cannot
    place in time.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name, starts, ends, estimated FROM ("
            "  SELECT child.relname AS name,"
            "    (regexp_match(pg_get_expr(child.relpartbound, child.oid), $$FROM \\('([^']+)'\\)$$))[1]::timestamptz"
            "      AS starts,"
            "    (regexp_match(pg_get_expr(child.relpartbound, child.oid), $$TO \\('([^']+)'\\)$$))[1]::timestamptz"
            "      AS ends,"
            "    greatest(child.reltuples, 0)::bigint AS estimated"
            "  FROM pg_inherits JOIN pg_class child ON child.oid = pg_inherits.inhrelid"
            "  WHERE pg_inherits.inhparent = %s::regclass"
            ") AS bounds WHERE starts IS NOT NULL AND ends IS NOT NULL ORDER BY starts",
            [table],
        )
        return [
            PartitionStats(Partition(table, name, starts, ends), int(estimated))
            for name, starts, ends, estimated in cursor.fetchall()
        ]
