"""Reading the sealed tables for sealing and verification: every row in a time range, hashed by
PostgreSQL in the canonical form of `kubernaut_integrity.canonical` (only the 32-byte hashes
cross the wire), and sorted into windows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.db import connection
from psycopg import sql

from kubernaut_integrity.canonical import SEALED_TABLES, TIMESTAMP_SQL, WINDOW_COLUMN, canonical_sql
from kubernaut_integrity.findings import WindowIndex
from kubernaut_integrity.seals import Leaves

#: The rows of one table read per query: a day of recorded_at (at most a partition's share).
SLICE = dt.timedelta(days=1)
#: Progress is reported every this many rows.
PROGRESS_ROWS = 10_000


@dataclass(frozen=True, slots=True)
class HashedRow:
    table: str
    row_id: int
    recorded_at: str  # canonical
    digest: bytes
    partition: str


def canonical_settings(cursor: Any) -> None:
    """What the canonical text depends on besides the row: float8 written exactly."""
    cursor.execute("SET LOCAL extra_float_digits = 1")


def rows_hashed(*, table: str, start: dt.datetime, end: dt.datetime) -> Iterator[tuple[int, str, bytes, str]]:
    """(id, canonical recorded_at, row hash, partition) of every row of `table` with
    recorded_at in [start, end), a day at a time, in no particular order.

    The hashing is most of the work and PostgreSQL's: a plain (not server-side) cursor lets it
    spread a big slice over parallel workers, and only the 32-byte hashes cross the wire.
    """
    query = sql.SQL(
        "SELECT p.id, {}, sha256(convert_to({}, 'UTF8')), p.tableoid::regclass::text"
        " FROM {} AS p WHERE p.{} >= %s AND p.{} < %s"
    ).format(
        sql.SQL(TIMESTAMP_SQL.format('p."recorded_at"')),  # type: ignore[arg-type]
        sql.SQL(canonical_sql(table)),  # type: ignore[arg-type]
        sql.Identifier(table),
        sql.Identifier(WINDOW_COLUMN),
        sql.Identifier(WINDOW_COLUMN),
    )
    raw = connection.connection
    assert raw is not None
    with raw.cursor() as cursor:
        canonical_settings(cursor)
        cursor.execute("SET LOCAL parallel_setup_cost = 0")
        cursor.execute("SET LOCAL parallel_tuple_cost = 0")
        low = start
        while low < end:
            high = min(end, low + SLICE)
            cursor.execute(query, [low, high])
            yield from cursor.fetchall()
            low = high


@dataclass
class WindowRows:
    """One window's rows: per table, the leaves (id order) and the partitions they were in."""

    leaves: dict[str, Leaves]
    partitions: dict[str, set[str]]

    @classmethod
    def empty(cls) -> WindowRows:
        return cls({table: [] for table in SEALED_TABLES}, {table: set() for table in SEALED_TABLES})


def rows_by_window(
    *,
    windows: WindowIndex,
    start: dt.datetime,
    end: dt.datetime,
    on_rows: Callable[[int], None] | None = None,
) -> tuple[dict[int, WindowRows], list[HashedRow]]:
    """Every row in [start, end) of every sealed table, sorted into `windows` (by key), each
    window's leaves in id order; and the rows that fall in none of them."""
    by_window: dict[int, WindowRows] = {}
    outside: list[HashedRow] = []
    key_of = windows.key_of
    connection.ensure_connection()
    for table in SEALED_TABLES:
        counted = 0
        for row_id, recorded_at, digest, partition in rows_hashed(table=table, start=start, end=end):
            counted += 1
            if on_rows is not None and counted == PROGRESS_ROWS:
                on_rows(counted)
                counted = 0
            key = key_of(recorded_at)
            if key is None:
                outside.append(HashedRow(table, row_id, recorded_at, digest, partition))
                continue
            window = by_window.get(key)
            if window is None:
                window = by_window[key] = WindowRows.empty()
            window.leaves[table].append((row_id, digest))
            window.partitions[table].add(partition)
        if on_rows is not None and counted:
            on_rows(counted)
    for window in by_window.values():
        for leaves in window.leaves.values():
            leaves.sort()
    outside.sort(key=lambda row: (row.table, row.row_id))
    return by_window, outside


def earliest_recorded_at() -> dt.datetime | None:
    """The oldest recorded_at of any sealed table (each an index's first entry)."""
    union = sql.SQL(" UNION ALL ").join(
        sql.SQL("(SELECT min({}) FROM {})").format(sql.Identifier(WINDOW_COLUMN), sql.Identifier(table))
        for table in SEALED_TABLES
    )
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL("SELECT min(m) FROM ({}) AS mins(m)").format(union).as_string(cursor.cursor.connection))
        earliest: dt.datetime | None = cursor.fetchone()[0]
    return earliest
