"""`python -m bench indexes`: vector index strategies for the partition that takes the writes.

For each strategy, from the same starting point (a fresh database prefilled with the same
records, so the written month's partition holds ~50,000 vectors of the measured model):

1. build the strategy's index on that partition, as the partial expression index the service uses
   (`WHERE model = '…'`), and time the build and its size;
2. measure the write path's own statement (audit row + embedding row, bench/ceiling.py) from
   `--connections` connections: writes per second and their latency;
3. run `--queries` similar-incident queries (the admin's: the 10 nearest vectors of the same
   model, embeddings/selectors.py) for new vectors near stored ones, and compare each answer
   with the exact one: recall@10 and latency.

    python -m bench indexes                       # 1536-d (the primary model)
    python -m bench indexes --dimensions 384      # the local model
    python -m bench indexes --smoke               # seconds: one strategy on a few hundred vectors

Strategies: `none` (no ANN index: the query is an exact scan), `hnsw-m16` (pgvector's
defaults, m = 16, ef_construction = 64), `hnsw-m8` (m = 8, ef_construction = 32), and the
same two on `halfvec` expressions (half-precision copies of the vectors in the index).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from pgvector.psycopg.vector import register_vector_info
from psycopg import sql
from psycopg.types import TypeInfo

from kubernaut_storage.database.partitioning import partition_for

ROOT = Path(__file__).resolve().parent.parent
STRATEGIES: dict[str, str | None] = {
    "none": None,
    "hnsw-m16": "hnsw ((embedding::vector({d})) vector_cosine_ops) WITH (m = 16, ef_construction = 64)",
    "hnsw-m8": "hnsw ((embedding::vector({d})) vector_cosine_ops) WITH (m = 8, ef_construction = 32)",
    "halfvec-m16": "hnsw ((embedding::halfvec({d})) halfvec_cosine_ops) WITH (m = 16, ef_construction = 64)",
    "halfvec-m8": "hnsw ((embedding::halfvec({d})) halfvec_cosine_ops) WITH (m = 8, ef_construction = 32)",
}
MODELS = {1536: "text-embedding-3-small", 384: "all-MiniLM-L6-v2"}
DATABASE = "kubernaut_bench_indexes"
K = 10
#: A check that the harness still runs (tests/bench/test_indexes.py), not a measurement.
SMOKE = {
    "dimensions": 384,
    "strategies": "halfvec-m16",
    "vectors": 300,
    "connections": 2,
    "duration": 0.5,
    "queries": 5,
}


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench indexes", description=__doc__)
    parser.add_argument("--dimensions", type=int, choices=sorted(MODELS), default=1536)
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--vectors", type=int, default=50_000, help="vectors of the model in the partition")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of writes per strategy")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--ef-search", type=int, default=40, help="hnsw.ef_search for the queries (pgvector's default)")
    parser.add_argument("--output", type=Path)
    parser.add_argument("--smoke", action="store_true", help=f"a quick check of the harness: {SMOKE}")
    args = parser.parse_args(argv)
    if args.smoke:
        for key, value in SMOKE.items():
            setattr(args, key, value)
    args.strategies = [name.strip() for name in args.strategies.split(",") if name.strip()]
    unknown = set(args.strategies) - set(STRATEGIES)
    if unknown:
        parser.error(f"unknown strategies: {', '.join(sorted(unknown))}")
    return args


def main(argv: list[str]) -> None:
    args = _arguments(argv)
    from bench import stack

    started_at = dt.datetime.now(dt.UTC)
    load_before = _loadavg()
    db = stack.bench_database_start(database=DATABASE)
    os.environ.update(db.env())
    import django

    django.setup()
    from bench.workload import templates, templates_write

    model = MODELS[args.dimensions]
    path = templates_write(ROOT / ".data" / "bench" / "templates-indexes.tsv", templates(count=200, fresh=False))
    rows = []
    for name in args.strategies:
        print(f"[{time.strftime('%H:%M:%S')}] strategy {name}", flush=True)
        row = _strategy(name, args, model=model, templates=path)
        rows.append(row)
        print("  " + json.dumps(row), flush=True)
    run = {
        "command": "python -m bench indexes " + " ".join(argv),
        "started_at": started_at.isoformat(),
        "loadavg_before": load_before,
        "loadavg_after": _loadavg(),
        "dimensions": args.dimensions,
        "model": model,
        "connections": args.connections,
        "ef_search": args.ef_search,
        "strategies": rows,
    }
    path = args.output or ROOT / "bench" / "results" / f"indexes-{args.dimensions}d-{started_at:%Y%m%dT%H%M%SZ}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(run, indent=2) + "\n")
    print()
    print(_table(rows))
    print(f"\nresults: {path}")


def _loadavg() -> list[float]:
    with open("/proc/loadavg") as file:
        return [float(value) for value in file.read().split()[:3]]


def _strategy(name: str, args: argparse.Namespace, *, model: str, templates: Path) -> dict[str, Any]:
    from bench import stack
    from bench.ceiling import ceiling_run, ceiling_statements
    from bench.prefill import prefill

    db = stack.bench_database_start(database=DATABASE)
    share = 0.2 if args.dimensions == 1536 else 0.8
    records = round(args.vectors / (1 - share if args.dimensions == 1536 else share))
    prefill(db.conninfo, records=records, local_share=share)
    with psycopg.connect(db.conninfo, autocommit=True) as conn:
        register_vector_info(conn, TypeInfo.fetch(conn, "vector"))
        partition = partition_for("incident_embeddings", dt.datetime.now(dt.UTC)).name
        vectors = conn.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE model = %s").format(sql.Identifier(partition)), [model]
        ).fetchone()[0]
        build_s, size_mb = _index_build(conn, name, partition, model, args.dimensions)
        query = _queries(conn, name, model, args)
        # New records resemble stored ones: near (not equal to) a stored vector, each its own.
        new_vectors = _near_stored(conn, model, args.dimensions, count=4000, seed=23)
    statements = ceiling_statements(
        templates, count=len(new_vectors), model=model, dimensions=args.dimensions, vectors=new_vectors
    )
    written = ceiling_run(db.conninfo, statements, connections=args.connections, duration_s=args.duration)
    return {
        "strategy": name,
        "vectors_in_partition": vectors,
        "build_s": build_s,
        "index_mb": size_mb,
        "writes_per_s": round(written.writes_per_s, 1),
        "write_p50_ms": round(written.percentile_ms(0.5), 2),
        "write_p95_ms": round(written.percentile_ms(0.95), 2),
        "write_errors": written.errors,
        **query,
    }


def _near_stored(conn: psycopg.Connection[Any], model: str, dimensions: int, *, count: int, seed: int) -> list[Any]:
    """`count` new unit vectors, each a random stored vector of `model` moved a little."""
    rng = np.random.default_rng(seed)
    stored = conn.execute(
        "SELECT embedding FROM incident_embeddings WHERE model = %s ORDER BY random() LIMIT %s", [model, count]
    ).fetchall()
    result = []
    for (vector,) in stored:
        noise = rng.standard_normal(dimensions).astype(np.float32) * (0.5 / np.sqrt(dimensions))
        moved = np.asarray(vector.to_numpy(), dtype=np.float32) + noise
        result.append((moved / np.linalg.norm(moved)).astype(np.float32))
    return result


def _index_build(
    conn: psycopg.Connection[Any], name: str, partition: str, model: str, dimensions: int
) -> tuple[float | None, float | None]:
    method = STRATEGIES[name]
    if method is None:
        return None, None
    conn.execute("SET maintenance_work_mem = '1GB'")
    started = time.perf_counter()
    conn.execute(
        sql.SQL("CREATE INDEX bench_ann ON {} USING " + method.format(d=dimensions) + " WHERE model = {}").format(
            sql.Identifier(partition), sql.Literal(model)
        )
    )
    build_s = time.perf_counter() - started
    size = conn.execute("SELECT pg_relation_size('bench_ann')").fetchone()[0]
    conn.execute("ANALYZE")
    return round(build_s, 1), round(size / 2**20, 1)


def _queries(conn: psycopg.Connection[Any], name: str, model: str, args: argparse.Namespace) -> dict[str, Any]:
    """Recall@10 and latency of the admin's similar-incident query for new vectors near stored ones."""
    d = args.dimensions
    queries = _near_stored(conn, model, d, count=args.queries, seed=17)
    cast = "halfvec" if name.startswith("halfvec") else "vector"
    # The admin's query (embeddings/selectors.py): the model as a literal, the index expression.
    ann = sql.SQL(
        "SELECT id FROM incident_embeddings WHERE model = {model} ORDER BY embedding::{cast}({d}) <=> %b::{cast}({d})"
        " LIMIT {k}"
    ).format(model=sql.Literal(model), cast=sql.SQL(cast), d=sql.Literal(d), k=sql.Literal(K))
    exact = sql.SQL(
        "SELECT id FROM incident_embeddings WHERE model = {model} ORDER BY embedding::vector({d}) <=> %b LIMIT {k}"
    ).format(model=sql.Literal(model), d=sql.Literal(d), k=sql.Literal(K))
    conn.execute(sql.SQL("SET hnsw.ef_search = {}").format(sql.Literal(args.ef_search)))
    plan = "\n".join(row[0] for row in conn.execute(sql.SQL("EXPLAIN ") + ann, [queries[0]]).fetchall())
    latencies, recalls = [], []
    for vector in queries:
        started = time.perf_counter()
        found = {row[0] for row in conn.execute(ann, [vector]).fetchall()}
        latencies.append(time.perf_counter() - started)
        with conn.transaction():
            conn.execute("SET LOCAL enable_indexscan = off")
            truth = {row[0] for row in conn.execute(exact, [vector]).fetchall()}
        recalls.append(len(found & truth) / K)
    latencies.sort()
    return {
        "query_p50_ms": round(1000 * statistics.median(latencies), 2),
        "query_p95_ms": round(1000 * latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))], 2),
        "recall_at_10": round(statistics.fmean(recalls), 3),
        "query_uses_index": "bench_ann" in plan,
    }


def _table(rows: list[dict[str, Any]]) -> str:
    columns = [
        ("strategy", "strategy"),
        ("build s", "build_s"),
        ("index MB", "index_mb"),
        ("writes/s", "writes_per_s"),
        ("write p50", "write_p50_ms"),
        ("write p95", "write_p95_ms"),
        ("query p50", "query_p50_ms"),
        ("query p95", "query_p95_ms"),
        ("recall@10", "recall_at_10"),
    ]
    lines = [[title for title, _ in columns]] + [
        ["-" if r[key] is None else str(r[key]) for _, key in columns] for r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(columns))]
    return "\n".join("  ".join(cell.rjust(w) for cell, w in zip(line, widths, strict=True)) for line in lines)
