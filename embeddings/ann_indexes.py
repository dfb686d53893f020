"""The ANN indexes of `incident_embeddings`: HNSW, per month and model, once the month has closed.

Maintaining an HNSW index on every write costs more than all the rest of a write: on the
2-core machine a 1536-d insert into a partition of 50,000 vectors fell from ~2,600 to ~360
writes/s with pgvector's default HNSW (docs/PERFORMANCE.md). So the month being written, the
hot partition, has no ANN index, and a similar-incident query scans that month exactly
(recall 1.0) while it reads every closed month from its index. `manage.py
embeddings_index_build` builds the missing indexes of the closed months, CONCURRENTLY.

One index per (model, dimensions) a month holds, a partial expression index,
on that month's partition only, over half-precision copies of the vectors:

    CREATE INDEX CONCURRENTLY incident_embeddings_p2026_10_<digest>_hnsw
        ON incident_embeddings_p2026_10
        USING hnsw ((embedding::halfvec(1536)) halfvec_cosine_ops) WITH (m = 16, ef_construction = 64)
        WHERE model = 'text-embedding-3-small' AND dimensions = 1536

halfvec, not vector (`python -m bench indexes`, docs/PERFORMANCE.md): at 50,000 vectors the
index is half the size (195 against 391 MB at 1536-d, 56 against 98 MB at 384-d), built as
fast, and its recall@10 was as good or better (1.0 against 0.979; 0.99 against 0.98). It also
indexes up to 4,000 dimensions where vector stops at 2,000 (text-embedding-3-large has 3,072).
The table keeps the full-precision vectors.

`embeddings/selectors.py:similar_incidents` filters on the model and the dimensions as
literals and orders by that expression, so PostgreSQL answers each closed month from its index
(a Merge Append of per-partition index scans) and sorts the hot month's exact distances.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connection, connections
from psycopg import errors, sql

from kubernaut_storage.database.partitioning import month_start, partitions_list

TABLE = "incident_embeddings"
#: pgvector's defaults; the build is done once per month, off the write path.
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 64
#: An HNSW build is several times slower once its graph no longer fits in this.
MAINTENANCE_WORK_MEM = "1GB"
_SUFFIX = "_hnsw"


@dataclass(frozen=True, slots=True)
class AnnIndex:
    """The HNSW index of one model's vectors in one month's partition."""

    partition: str
    model: str
    dimensions: int

    @property
    def name(self) -> str:
        # Model names may be long or hold any character: a digest keeps the name valid and
        # within PostgreSQL's 63 bytes, the partition prefix keeps it readable.
        digest = hashlib.sha256(f"{self.model}\x00{self.dimensions}".encode()).hexdigest()[:8]
        return f"{self.partition}_{digest}{_SUFFIX}"

    def create_sql(self, *, m: int, ef_construction: int) -> sql.Composed:
        return sql.SQL(
            "CREATE INDEX CONCURRENTLY {name} ON {partition}"
            " USING hnsw ((embedding::halfvec({dimensions})) halfvec_cosine_ops)"
            " WITH (m = {m}, ef_construction = {ef_construction})"
            " WHERE model = {model} AND dimensions = {dimensions}"
        ).format(
            name=sql.Identifier(self.name),
            partition=sql.Identifier(self.partition),
            dimensions=sql.Literal(self.dimensions),
            m=sql.Literal(m),
            ef_construction=sql.Literal(ef_construction),
            model=sql.Literal(self.model),
        )


@dataclass(frozen=True, slots=True)
class BuildProgress:
    """One sample of a build, from PostgreSQL's `pg_stat_progress_create_index`.

    `phase` names what the build waits for or does ("waiting for writers before build",
    "building index: loading tuples", ...); the counts are PostgreSQL's own, 0 where the
    phase has none. `graph_spilled_after` is set once pgvector says the graph no longer fits
    in maintenance_work_mem: from there the build is several times slower, which is the
    memory bound at work, not a stall.
    """

    seconds: float
    phase: str
    tuples_done: int
    tuples_total: int
    blocks_done: int
    blocks_total: int
    graph_spilled_after: int | None = None


@dataclass(frozen=True, slots=True)
class BuildResult:
    seconds: float
    #: The tuple count at which the graph outgrew maintenance_work_mem, if it did.
    graph_spilled_after: int | None


#: pgvector's NOTICE when the graph outgrows maintenance_work_mem; it names the tuple count.
_GRAPH_SPILL_NOTICE = "hnsw graph no longer fits into maintenance_work_mem after "


def closed_partitions(*, now: dt.datetime) -> list[str]:
    """The partitions of months that ended before the current UTC month began, oldest first."""
    current = month_start(now)
    return [stats.partition.name for stats in partitions_list(TABLE) if stats.partition.ends <= current]


def ann_indexes_missing(*, now: dt.datetime, recheck: bool = False) -> list[AnnIndex]:
    """The indexes the closed months lack, invalid ones (an interrupted build) included.

    A month that has indexes of ours, all valid, is taken as done without reading its rows:
    finding the models of a month reads the whole partition. `recheck` reads every closed
    month again, for a model added to an old month later (by `embeddings_backfill`).
    """
    existing = _existing_indexes()
    missing = []
    for partition in closed_partitions(now=now):
        ours = {name: valid for name, valid in existing.items() if name.startswith(f"{partition}_")}
        if ours and all(ours.values()) and not recheck:
            continue
        for model, dimensions in _models_in(partition):
            index = AnnIndex(partition=partition, model=model, dimensions=dimensions)
            if existing.get(index.name) is not True:
                missing.append(index)
    return missing


def ann_index_build(
    index: AnnIndex,
    *,
    m: int = HNSW_M,
    ef_construction: int = HNSW_EF_CONSTRUCTION,
    maintenance_work_mem: str = MAINTENANCE_WORK_MEM,
    on_progress: Callable[[BuildProgress], None] | None = None,
    progress_seconds: float = 30.0,
) -> BuildResult:
    """Build `index` without blocking writes (CONCURRENTLY); how long it took, and whether the
    graph outgrew maintenance_work_mem (the build's memory bound).

    An invalid index of the same name, left by an interrupted build, is dropped first.
    Must run outside a transaction, as CREATE INDEX CONCURRENTLY requires. With `on_progress`,
    a sample of the build every `progress_seconds`, read on a connection of its own: a month's
    build runs for minutes, and an operator must tell a slow build from a stuck one.

    No lock_timeout (unlike partition creation, kubernaut_storage/database/ddl.py): both
    statements lock only a closed month's partition, which no write inserts into, and in SHARE
    UPDATE EXCLUSIVE mode, which lets writes through while it waits. A timeout would instead
    abort the build during its waits for older transactions and leave an invalid index.
    """
    started = time.perf_counter()
    spilled: list[int] = []
    with connection.cursor() as cursor:
        context = cursor.cursor.connection
        drop = sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(index.name))
        cursor.execute(drop.as_string(context))
        cursor.execute("SELECT set_config('maintenance_work_mem', %s, false), pg_backend_pid()", [maintenance_work_mem])
        _, build_pid = cursor.fetchone()

        def notice(diagnostic: errors.Diagnostic) -> None:
            message = diagnostic.message_primary or ""
            if message.startswith(_GRAPH_SPILL_NOTICE):
                spilled.append(int(message.removeprefix(_GRAPH_SPILL_NOTICE).split()[0]))

        context.add_notice_handler(notice)
        done = threading.Event()
        sampler = None
        if on_progress is not None:
            sampler = threading.Thread(
                target=_progress_sample,
                kwargs={
                    "build_pid": build_pid,
                    "started": started,
                    "every": progress_seconds,
                    "done": done,
                    "spilled": spilled,
                    "report": on_progress,
                },
                daemon=True,
            )
            sampler.start()
        try:
            cursor.execute(index.create_sql(m=m, ef_construction=ef_construction).as_string(context))
        finally:
            done.set()
            if sampler is not None:
                sampler.join()
            context.remove_notice_handler(notice)
            cursor.execute("RESET maintenance_work_mem")
    return BuildResult(seconds=time.perf_counter() - started, graph_spilled_after=spilled[0] if spilled else None)


def _progress_sample(
    *,
    build_pid: int,
    started: float,
    every: float,
    done: threading.Event,
    spilled: list[int],
    report: Callable[[BuildProgress], None],
) -> None:
    """Report the build's row of pg_stat_progress_create_index until it ends (a thread: Django
    gives it a connection of its own, closed on the way out)."""
    try:
        while not done.wait(every):
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT phase, tuples_done, tuples_total, blocks_done, blocks_total"
                    " FROM pg_stat_progress_create_index WHERE pid = %s",
                    [build_pid],
                )
                row = cursor.fetchone()
            if row is not None:
                phase, tuples_done, tuples_total, blocks_done, blocks_total = row
                report(
                    BuildProgress(
                        seconds=time.perf_counter() - started,
                        phase=phase,
                        tuples_done=tuples_done or 0,
                        tuples_total=tuples_total or 0,
                        blocks_done=blocks_done or 0,
                        blocks_total=blocks_total or 0,
                        graph_spilled_after=spilled[0] if spilled else None,
                    )
                )
    finally:
        connections.close_all()


def _existing_indexes() -> dict[str, bool]:
    """Our HNSW indexes on the partitions of TABLE: name → valid."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT index.relname, pg_index.indisvalid FROM pg_inherits"
            " JOIN pg_index ON pg_index.indrelid = pg_inherits.inhrelid"
            " JOIN pg_class AS index ON index.oid = pg_index.indexrelid"
            " WHERE pg_inherits.inhparent = %s::regclass AND index.relname LIKE %s",
            [TABLE, f"%{_SUFFIX}"],
        )
        return {name: valid for name, valid in cursor.fetchall()}


def _models_in(partition: str) -> list[tuple[str, int]]:
    with connection.cursor() as cursor:
        query = sql.SQL("SELECT model, dimensions FROM {} GROUP BY model, dimensions ORDER BY model, dimensions")
        cursor.execute(query.format(sql.Identifier(partition)).as_string(cursor.cursor.connection))
        return [(model, int(dimensions)) for model, dimensions in cursor.fetchall()]
