"""Fill the volume benchmark's database with months of history, by binary COPY.

Chains of records (bench/volume/rows.py) are spread evenly from the first day of the month
`months` months back to an hour ago, so the oldest month is whole and closed, every month
after it too, and the current month runs up to the present. Each table is loaded by one
`COPY … FROM STDIN (FORMAT BINARY)` on a connection of its own, fed block by block from this
process, so PostgreSQL ingests the tables side by side while Python builds the next block.
Rows keep their explicit ids (each table's in recorded_at order, as the write path would
have given them); the sequences are moved past them afterwards. The indexes stay in place
during the load, as they are in production, so the tables and indexes end up the size that
months of single writes give them, not the denser size of a fresh CREATE INDEX.

The database refuses these rows on purpose: their recorded_at is months old, which the
write-lag trigger rejects (and the clock bound, to any role but the tables' owner), and the
seal check runs for every row. The fill connects as the superuser and sets
`session_replication_role = replica` in its own sessions, which turns every trigger off for
the load and nothing else: the jobs measured afterwards, and the writes alongside them, run
with every trigger in force.
"""

from __future__ import annotations

import datetime as dt
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql
from psycopg.types.json import set_json_dumps

from bench.volume.rows import EMBEDDINGS_TABLE, EVENTS_TABLE, ChainRows, TableColumns, chain_starts
from kubernaut_storage.database.partitioning import add_months, month_start

#: Chains built per block (12 rows each with events): a block per table is a few MB at most.
BLOCK_CHAINS = 2000
#: Blocks each table's COPY may fall behind the builder before the builder waits.
QUEUED_BLOCKS = 3
#: The newest chain ends this long before the fill starts: the present belongs to the writers.
MARGIN = dt.timedelta(hours=1)
TYPED_TABLES = ("audit_remediation", "audit_aianalysis", "audit_workflow", "audit_execution")


@dataclass
class FillResult:
    rows: dict[str, int]
    chains: int
    first_recorded_at: dt.datetime
    last_recorded_at: dt.datetime
    copy_s: float
    vacuum_s: float
    months: list[str] = field(default_factory=list)

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    def as_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "total_rows": self.total_rows,
            "chains": self.chains,
            "first_recorded_at": self.first_recorded_at.isoformat(),
            "last_recorded_at": self.last_recorded_at.isoformat(),
            "months": self.months,
            "copy_s": round(self.copy_s, 1),
            "copy_rows_per_s": round(self.total_rows / self.copy_s) if self.copy_s else None,
            "vacuum_analyze_s": round(self.vacuum_s, 1),
        }


def fill_tables(conn: psycopg.Connection[Any]) -> list[str]:
    """The tables the fill writes: the four audit tables, the events table when it exists, and
    the embeddings."""
    present = conn.execute("SELECT to_regclass(%s) IS NOT NULL", [EVENTS_TABLE]).fetchone()
    return [*TYPED_TABLES, *([EVENTS_TABLE] if present and present[0] else []), EMBEDDINGS_TABLE]


def table_columns(conn: psycopg.Connection[Any], table: str) -> TableColumns:
    rows = conn.execute(
        "SELECT a.attname, t.typname FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid"
        " WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        [table],
    ).fetchall()
    return TableColumns(table, tuple((name, kind) for name, kind in rows))


def fill(
    conninfo: str,
    *,
    rows: int,
    months: int,
    dimensions: int,
    now: dt.datetime,
    log: Callable[[str], None],
    vacuum: bool = True,
) -> FillResult:
    """Load about `rows` rows (whole chains) over the `months` closed months before `now`'s
    and the current one up to MARGIN before `now`."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        tables = fill_tables(conn)
        columns = {table: table_columns(conn, table) for table in tables}
        start = add_months(month_start(now), -months)
        month_names = _partitions_create(conn, tables, start=start, now=now)
        next_ids = {
            table: int(
                conn.execute(
                    sql.SQL("SELECT coalesce(max(id), 0) + 1 FROM {}").format(sql.Identifier(table))
                ).fetchone()[0]
            )  # type: ignore[index]
            for table in tables
        }
    builder = ChainRows(columns=columns, dimensions=dimensions, events=EVENTS_TABLE in tables)
    chains = max(1, rows // builder.rows_per_chain())
    # Every record of a chain lies between 2 s before and 62 s after its start: the first
    # chain's earliest still in the first month, the last chain's latest MARGIN before now.
    origin = start + dt.timedelta(seconds=2)
    step = (now - MARGIN - dt.timedelta(seconds=62) - origin) / chains
    first_ids = dict(next_ids)
    started = time.perf_counter()
    loaders = {table: _TableLoader(conninfo, columns[table]) for table in tables}
    for loader in loaders.values():
        loader.start()
    try:
        reported = 0
        for first in range(0, chains, BLOCK_CHAINS):
            count = min(BLOCK_CHAINS, chains - first)
            starts = list(chain_starts(first=first, count=count, start=origin, step=step))
            block = builder.block(first_chain=first, starts=starts, next_ids=next_ids)
            for table, loader in loaders.items():
                loader.put(block.get(table, []))
            done = first + count
            if done * 20 // chains > reported:
                reported = done * 20 // chains
                written = sum(next_ids[t] - first_ids[t] for t in tables)
                elapsed = time.perf_counter() - started
                log(f"  fill: {done:,}/{chains:,} chains, {written:,} rows, {written / elapsed:,.0f} rows/s")
    finally:
        for loader in loaders.values():
            loader.finish()
    errors = [loader.error for loader in loaders.values() if loader.error is not None]
    if errors:
        raise errors[0]
    copy_s = time.perf_counter() - started
    counts = {table: next_ids[table] - first_ids[table] for table in tables}
    vacuum_s = 0.0
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for table in tables:
            conn.execute(
                sql.SQL("SELECT setval(pg_get_serial_sequence({}, 'id'), {})").format(
                    sql.Literal(table), sql.Literal(max(next_ids[table] - 1, 1))
                )
            )
        if vacuum:
            # What autovacuum would long have done to months-old rows: hint bits set, visibility
            # map and statistics current, so that the jobs measured next read settled tables.
            vacuumed = time.perf_counter()
            conn.execute("VACUUM ANALYZE")
            vacuum_s = time.perf_counter() - vacuumed
        conn.execute("CHECKPOINT")
    return FillResult(
        rows=counts,
        chains=chains,
        first_recorded_at=start,
        last_recorded_at=origin + step * (chains - 1) + dt.timedelta(seconds=62),
        copy_s=copy_s,
        vacuum_s=vacuum_s,
        months=month_names,
    )


def _partitions_create(
    conn: psycopg.Connection[Any], tables: list[str], *, start: dt.datetime, now: dt.datetime
) -> list[str]:
    """The monthly partitions from `start`'s month to `now`'s (the migrations made the current
    month's and later ones; the past months' exist only in a database that was there then)."""
    months = []
    month = start
    while month <= month_start(now):
        months.append(f"{month:%Y_%m}")
        following = add_months(month, 1)
        for table in tables:
            conn.execute(
                sql.SQL("CREATE TABLE IF NOT EXISTS {} PARTITION OF {} FOR VALUES FROM ({}) TO ({})").format(
                    sql.Identifier(f"{table}_p{month:%Y_%m}"),
                    sql.Identifier(table),
                    sql.Literal(month),
                    sql.Literal(following),
                )
            )
        month = following
    return months


class _TableLoader(threading.Thread):
    """One table's COPY on a connection of its own, fed blocks of rows through a queue."""

    def __init__(self, conninfo: str, columns: TableColumns) -> None:
        super().__init__(name=f"copy-{columns.table}", daemon=True)
        self.conninfo = conninfo
        self.columns = columns
        self.blocks: queue.Queue[list[tuple[Any, ...]] | None] = queue.Queue(maxsize=QUEUED_BLOCKS)
        self.error: BaseException | None = None
        self.ended = False

    def put(self, rows: list[tuple[Any, ...]]) -> None:
        if self.error is not None:
            raise self.error
        self.blocks.put(rows)

    def finish(self) -> None:
        if self.is_alive():
            self.blocks.put(None)
            self.join()

    def run(self) -> None:
        statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
            sql.Identifier(self.columns.table), sql.SQL(", ").join(map(sql.Identifier, self.columns.names))
        )
        try:
            with psycopg.connect(self.conninfo) as conn:
                register_vector(conn)
                set_json_dumps(orjson.dumps, conn)
                # The load's own session only: no trigger fires for these months-old rows.
                conn.execute("SET session_replication_role = replica")
                with conn.cursor() as cursor, cursor.copy(statement) as copy:
                    copy.set_types(self.columns.types)
                    while (rows := self.blocks.get()) is not None:
                        for row in rows:
                            copy.write_row(row)
                    self.ended = True
        except BaseException as exc:
            self.error = exc
            # Keep taking blocks so the builder never waits on a loader that has stopped.
            while not self.ended:
                self.ended = self.blocks.get() is None
