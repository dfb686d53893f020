"""Reading the sealed tables for sealing and verification: every row in a time range, hashed by
PostgreSQL in the canonical form of `kubernaut_integrity.canonical` (only the 32-byte hashes
cross the wire), and sorted into windows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django.db import connection
from psycopg import sql

from kubernaut_integrity.canonical import SEALED_TABLES, TIMESTAMP_SQL, WINDOW_COLUMN, canonical_sql
from kubernaut_integrity.findings import WindowIndex
from kubernaut_integrity.seals import Leaves

#: Rows per round trip of the server-side cursor.
FETCH_ROWS = 10_000


@dataclass(frozen=True, slots=True)
class HashedRow:
    table: str
    row_id: int
    recorded_at: str  # canonical
    digest: bytes
    partition: str


def canonical_settings(cursor: object) -> None:
    """What the canonical text depends on besides the row: float8 written exactly."""
    cursor.execute("SET LOCAL extra_float_digits = 1")  # type: ignore[attr-defined]


def rows_hashed(*, table: str, start: dt.datetime | None, end: dt.datetime) -> Iterator[tuple[int, str, bytes, str]]:
    """(id, canonical recorded_at, row hash, partition) of every row of `table` with
    recorded_at in [start, end) (no lower bound: None), by id. Needs a transaction (the cursor
    is server-side)."""
    column = sql.Identifier(WINDOW_COLUMN)
    condition = sql.SQL("p.{} < %s").format(column)
    params: list[dt.datetime] = [end]
    if start is not None:
        condition = sql.SQL("p.{} >= %s AND ").format(column) + condition
        params.insert(0, start)
    query = sql.SQL(
        "SELECT p.id, {}, sha256(convert_to({}, 'UTF8')), p.tableoid::regclass::text"
        " FROM {} AS p WHERE {} ORDER BY p.id"
    ).format(
        sql.SQL(TIMESTAMP_SQL.format('p."recorded_at"')),
        sql.SQL(canonical_sql(table)),  # type: ignore[arg-type]
        sql.Identifier(table),
        condition,
    )
    raw = connection.connection
    assert raw is not None
    with raw.cursor() as settings_cursor:
        canonical_settings(settings_cursor)
    with raw.cursor(name=f"sealed_rows_{table}") as cursor:
        cursor.itersize = FETCH_ROWS
        cursor.execute(query, params)
        yield from cursor


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
    start: dt.datetime | None,
    end: dt.datetime,
    on_rows: Callable[[int], None] | None = None,
) -> tuple[dict[int, WindowRows], list[HashedRow]]:
    """Every row in [start, end) of every sealed table, sorted into `windows` (by key); and
    the rows that fall in none of them."""
    by_window: dict[int, WindowRows] = {}
    outside: list[HashedRow] = []
    key_of = windows.key_of
    connection.ensure_connection()
    for table in SEALED_TABLES:
        counted = 0
        current_key, current_leaves, current_partitions = None, [], set()  # type: ignore[var-annotated]
        for row_id, recorded_at, digest, partition in rows_hashed(table=table, start=start, end=end):
            counted += 1
            if on_rows is not None and counted == FETCH_ROWS:
                on_rows(counted)
                counted = 0
            key = key_of(recorded_at)
            if key is None:
                outside.append(HashedRow(table, row_id, recorded_at, digest, partition))
                continue
            if key != current_key:
                window = by_window.get(key)
                if window is None:
                    window = by_window[key] = WindowRows.empty()
                current_key, current_leaves, current_partitions = key, window.leaves[table], window.partitions[table]
            current_leaves.append((row_id, digest))
            current_partitions.add(partition)
        if on_rows is not None and counted:
            on_rows(counted)
    return by_window, outside
