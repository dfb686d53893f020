"""Reading the sealed tables for sealing and verification: every row in a time range, hashed by
PostgreSQL in the canonical form of `kubernaut_integrity.canonical` (only the 32-byte hashes
cross the wire), and sorted into windows. The range is read a day of one table at a time; with
several workers those slices are hashed side by side on connections of their own, all in the
snapshot of the caller's transaction."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import psycopg
from django.db import connection
from psycopg import sql

from kubernaut_integrity.canonical import (
    SEALED_TABLES,
    TIMESTAMP_SQL,
    WINDOW_COLUMN,
    canonical_sql,
    timestamp_canonical,
)
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


def _hashed_query(table: str) -> sql.Composed:
    return sql.SQL(
        "SELECT p.id, {}, sha256(convert_to({}, 'UTF8')), p.tableoid::regclass::text"
        " FROM {} AS p WHERE p.{} >= %s AND p.{} < %s"
    ).format(
        sql.SQL(TIMESTAMP_SQL.format('p."recorded_at"')),  # type: ignore[arg-type]
        sql.SQL(canonical_sql(table)),  # type: ignore[arg-type]
        sql.Identifier(table),
        sql.Identifier(WINDOW_COLUMN),
        sql.Identifier(WINDOW_COLUMN),
    )


def _slices(start: dt.datetime, end: dt.datetime) -> Iterator[tuple[dt.datetime, dt.datetime]]:
    low = start
    while low < end:
        high = min(end, low + SLICE)
        yield low, high
        low = high


Slice = tuple[str, dt.datetime, dt.datetime]
SliceRows = tuple[str, list[tuple[int, str, bytes, str]]]


def _serial_hashed(slices: Iterable[Slice]) -> Iterator[SliceRows]:
    """(table, [(id, canonical recorded_at, row hash, partition), ...]) of each slice, in order, on
    this connection. The hashing is most of the work and PostgreSQL's: a plain (not server-side)
    cursor lets it spread a big slice over parallel workers, and only the 32-byte hashes cross
    the wire."""
    raw = connection.connection
    assert raw is not None
    with raw.cursor() as cursor:
        canonical_settings(cursor)
        cursor.execute("SET LOCAL parallel_setup_cost = 0")
        cursor.execute("SET LOCAL parallel_tuple_cost = 0")
        for table, low, high in slices:
            cursor.execute(_hashed_query(table), [low, high])
            yield table, cursor.fetchall()


def _parallel_hashed(slices: list[Slice], *, workers: int) -> Iterator[SliceRows]:
    """The slices hashed on `workers` connections of their own (`SnapshotWorkers`), in order."""
    run = SnapshotWorkers(workers=workers)
    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="verify") as pool:
            yield from pool.map(run.hashed, slices)
    finally:
        run.close()


class SnapshotWorkers:
    """Connections of their own, one per worker thread, each a REPEATABLE READ, read-only
    transaction in the caller's snapshot (exported here, on the caller's connection and thread),
    so every row is read as of the same instant as the caller's. Instead of PostgreSQL's
    parallel query within one statement: a day of one table is too small to be worth its
    workers, and the slices keep every connection busy."""

    def __init__(self, *, workers: int) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_export_snapshot()")
            self.snapshot = cursor.fetchone()[0]
        self.params = connection.get_connection_params()
        self.params.pop("cursor_factory", None)
        self.opened: list[psycopg.Connection[Any]] = []
        self.local = threading.local()
        self.lock = threading.Lock()

    def hashed(self, task: Slice) -> SliceRows:
        worker: psycopg.Connection[Any] | None = getattr(self.local, "connection", None)
        if worker is None:
            worker = psycopg.connect(**self.params)
            with self.lock:
                self.opened.append(worker)
            worker.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            worker.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(self.snapshot)))
            with worker.cursor() as settings_cursor:
                canonical_settings(settings_cursor)
            self.local.connection = worker
        table, low, high = task
        with worker.cursor() as cursor:
            cursor.execute(_hashed_query(table), [low, high])
            return table, cursor.fetchall()

    def close(self) -> None:
        for worker in self.opened:
            worker.close()


class RowsPrefetch:
    """The rows of [start, end) hashed in the background while the caller checks the seals (on
    their connections: the caller's stays free). `rows_by_window` takes them when they cover the
    range it is asked for; `close` stops and releases everything."""

    def __init__(self, *, start: dt.datetime, end: dt.datetime, workers: int) -> None:
        self.start, self.end = start, end
        slices = [(table, low, high) for table in SEALED_TABLES for low, high in _slices(start, end)]
        self._workers = SnapshotWorkers(workers=workers)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="verify")
        self._futures = [self._pool.submit(self._workers.hashed, task) for task in slices]

    def covers(self, start: dt.datetime, end: dt.datetime) -> bool:
        return self.start <= start and end <= self.end

    def results(self) -> Iterator[SliceRows]:
        for future in self._futures:
            yield future.result()

    def close(self) -> None:
        for future in self._futures:
            future.cancel()
        self._pool.shutdown(wait=True)
        self._workers.close()


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
    workers: int = 1,
    prefetched: RowsPrefetch | None = None,
) -> tuple[dict[int, WindowRows], list[HashedRow]]:
    """Every row in [start, end) of every sealed table, sorted into `windows` (by key), each
    window's leaves in id order; and the rows that fall in none of them.

    With `workers` > 1 the rows are read on that many connections in this transaction's
    snapshot: it must be REPEATABLE READ and hold no uncommitted rows that should be counted
    (the other connections cannot see them). `prefetched` rows are used when they cover the
    range (those outside it are left out)."""
    by_window: dict[int, WindowRows] = {}
    outside: list[HashedRow] = []
    key_of = windows.key_of
    connection.ensure_connection()
    slices = [(table, low, high) for table in SEALED_TABLES for low, high in _slices(start, end)]
    hashed: Iterator[SliceRows]
    low, high = timestamp_canonical(start), timestamp_canonical(end)
    if prefetched is not None and prefetched.covers(start, end):
        hashed = prefetched.results()
    elif workers > 1:
        hashed = _parallel_hashed(slices, workers=workers)
    else:
        hashed = _serial_hashed(slices)
    counted = 0
    for table, rows in hashed:
        for row_id, recorded_at, digest, partition in rows:
            if not low <= recorded_at < high:  # canonical timestamps compare as strings
                continue
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
