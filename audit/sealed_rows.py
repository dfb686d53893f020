"""Reading the sealed tables for sealing and verification: every row in a time range as
PostgreSQL's `row_to_json` writes it (the same text the retention archives hold), hashed in the
canonical form of `kubernaut_integrity.canonical`, and sorted into windows."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django.db import connection
from psycopg import sql

from kubernaut_integrity.canonical import SEALED_TABLES, WINDOW_COLUMN, row_hash, timestamp_canonical
from kubernaut_integrity.findings import WindowIndex
from kubernaut_integrity.seals import Leaves

#: Rows per round trip of the server-side cursor.
FETCH_ROWS = 5000


@dataclass(frozen=True, slots=True)
class HashedRow:
    table: str
    row_id: int
    recorded_at: str  # canonical
    digest: bytes
    partition: str


def rows_hashed(*, table: str, start: dt.datetime | None, end: dt.datetime) -> Iterator[HashedRow]:
    """Every row of `table` with recorded_at in [start, end) (no lower bound: None), by id.

    Needs a transaction (the cursor is server-side). PostgreSQL's JSON output must write
    float8 exactly: extra_float_digits 1 (its default) is set for the transaction.
    """
    column = sql.Identifier(WINDOW_COLUMN)
    condition = sql.SQL("p.{} < %s").format(column)
    params: list[dt.datetime] = [end]
    if start is not None:
        condition = sql.SQL("p.{} >= %s AND ").format(column) + condition
        params.insert(0, start)
    query = sql.SQL(
        "SELECT p.tableoid::regclass::text, row_to_json(p)::text FROM {} AS p WHERE {} ORDER BY p.id"
    ).format(sql.Identifier(table), condition)
    raw = connection.connection
    assert raw is not None
    with raw.cursor() as settings_cursor:
        settings_cursor.execute("SET LOCAL extra_float_digits = 1")
    loads = json.loads
    with raw.cursor(name=f"sealed_rows_{table}") as cursor:
        cursor.itersize = FETCH_ROWS
        cursor.execute(query, params)
        for partition, text in cursor:
            row = loads(text)
            yield HashedRow(table, row["id"], timestamp_canonical(row[WINDOW_COLUMN]), row_hash(table, row), partition)


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
        for row in rows_hashed(table=table, start=start, end=end):
            key = key_of(row.recorded_at)
            if key is None:
                outside.append(row)
            else:
                window = by_window.get(key)
                if window is None:
                    window = by_window[key] = WindowRows.empty()
                window.leaves[table].append((row.row_id, row.digest))
                window.partitions[table].add(row.partition)
            counted += 1
            if on_rows is not None and counted == FETCH_ROWS:
                on_rows(counted)
                counted = 0
        if on_rows is not None and counted:
            on_rows(counted)
    return by_window, outside
