"""Measure the bytes one stored audit record costs in PostgreSQL, vector and indexes included.

Results are in docs/SCALING.md. Run from the repo root against a scratch database of the
embedded PostgreSQL (never the test database, never production):

    export DJANGO_SETTINGS_MODULE=kubernaut_storage.settings.local
    export EMBEDDED_POSTGRES_DATABASE=kubernaut_size_bench
    .venv/bin/python bench/scripts/record_size.py --records 20000

It migrates the database, inserts --records audit rows of the four kinds with one embedding
each (bench/prefill.py: 80 % 1536-d vectors of the primary model, 20 % 384-d of the local
model), then reads pg_total_relation_size (heap, TOAST and every index) of each partitioned
table's partitions; then builds the HNSW index of each model as `embeddings_index_build` does
for a closed month and reads its size. Prints one JSON object. The database is left in place:
drop it with `dropdb` or reuse it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kubernaut_storage.settings.local")

import django

django.setup()

from django.core.management import call_command
from django.db import connection

from bench.prefill import LOCAL_MODEL, PRIMARY_MODEL, prefill
from embeddings.ann_indexes import AnnIndex, ann_index_build
from kubernaut_storage.database.partitioning import partitioned_tables

SIZES = """
SELECT sum(pg_total_relation_size(inhrelid)), sum(pg_indexes_size(inhrelid)), sum(pg_relation_size(inhrelid))
  FROM pg_inherits WHERE inhparent = %s::regclass
"""


def conninfo() -> str:
    params = connection.get_connection_params()
    return f"host={params['host']} dbname={params['dbname']} user={params['user']}"


def table_sizes() -> dict[str, dict[str, int]]:
    sizes = {}
    with connection.cursor() as cursor:
        for table in partitioned_tables():
            cursor.execute(SIZES, [table])
            total, indexes, heap = cursor.fetchone()
            sizes[table] = {"total": int(total or 0), "indexes": int(indexes or 0), "heap": int(heap or 0)}
    return sizes


def hnsw_sizes() -> dict[str, Any]:
    """Build each model's HNSW index on the embeddings' partition; its bytes per vector."""
    result = {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text, model, dimensions, count(*) FROM incident_embeddings"
            " GROUP BY 1, 2, 3 ORDER BY 1, 2"
        )
        groups = cursor.fetchall()
    for partition, model, dimensions, count in groups:
        index = AnnIndex(partition=partition, model=model, dimensions=dimensions)
        seconds = ann_index_build(index).seconds
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_relation_size(%s::regclass)", [index.name])
            size = cursor.fetchone()[0]
        result[model] = {
            "dimensions": dimensions,
            "vectors": count,
            "index_bytes": size,
            "bytes_per_vector": round(size / count),
            "build_s": round(seconds, 1),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM audit_remediation")
        if cursor.fetchone()[0]:
            sys.exit("the database already holds audit rows: use an empty scratch database")
    filled = prefill(conninfo(), records=args.records)
    sizes = table_sizes()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT model, avg(pg_column_size(embedding))::int FROM incident_embeddings GROUP BY model ORDER BY model"
        )
        vector_bytes = dict(cursor.fetchall())
    audit_total = sum(size["total"] for table, size in sizes.items() if table.startswith("audit_"))
    embeddings_total = sizes["incident_embeddings"]["total"]
    hnsw = hnsw_sizes()
    records = filled.records
    mix_hnsw = (
        hnsw[PRIMARY_MODEL]["index_bytes"] + hnsw[LOCAL_MODEL]["index_bytes"]
        if PRIMARY_MODEL in hnsw and LOCAL_MODEL in hnsw
        else 0
    )
    print(
        json.dumps(
            {
                "records": records,
                "primary_vectors": filled.primary_vectors,
                "local_vectors": filled.local_vectors,
                "tables": sizes,
                "vector_column_bytes": vector_bytes,
                "bytes_per_record": {
                    "audit_row_with_indexes": round(audit_total / records),
                    "embedding_row_with_indexes": round(embeddings_total / records),
                    "hnsw_of_a_closed_month": round(mix_hnsw / records),
                    "total": round((audit_total + embeddings_total + mix_hnsw) / records),
                },
                "hnsw": hnsw,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
