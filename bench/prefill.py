"""Prefill the bench database: audit rows of all four kinds, each with its embedding.

Audit rows are made in the database (INSERT … SELECT over generate_series), vectors in numpy
and streamed in with binary COPY, then joined to their rows in one INSERT … SELECT per kind:
50,000 records take seconds, not the minutes 50,000 HTTP writes would.

The vectors are what a text embedding model's output looks like to an index, not noise:
every vector is distinct, unit length, and lies near one of `TOPICS` topic centres (similar
incidents have similar texts), and all centres share a common direction, as real embeddings
do (unrelated texts still have a cosine of ~0.1-0.3). 80 % are 1536-d vectors of the primary
model, 20 % 384-d vectors of the local model (records embedded during an outage of the primary).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import psycopg
from pgvector.psycopg import register_vector

PRIMARY_MODEL = "text-embedding-3-small"
PRIMARY_DIMENSIONS = 1536
LOCAL_MODEL = "all-MiniLM-L6-v2"
LOCAL_DIMENSIONS = 384
LOCAL_SHARE = 0.2
TOPICS = 400
#: Cosine of a vector to its topic centre is about 1 / sqrt(1 + NOISE²) ≈ 0.75.
NOISE = 0.88
_COPY_CHUNK = 5000

KINDS = ("remediation", "aianalysis", "workflow", "execution")
_APPS = [
    f"{p}-{s}" for p in ("payments", "checkout", "search", "catalog", "auth", "billing") for s in ("api", "worker")
]
_NAMESPACES = ["payments", "shop-prod", "shop-staging", "search", "identity", "billing", "data", "edge"]
_SIGNALS = ["KubePodOOMKilled", "KubePodCrashLooping", "BackOff", "KubeNodeNotReady", "CPUThrottlingHigh"]
_CAUSES = [
    "A memory leak in the cache grows until the OOM killer fires.",
    "The service reads a missing config key at start-up and exits.",
    "The image tag does not exist in the registry.",
    "Disk pressure on the node evicted the pod.",
    "The CPU limit is below the steady-state use.",
]


def _array(values: list[str]) -> str:
    return "ARRAY[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


# Per-row values every kind uses; `i` runs 1..n, `n` is the row count of the kind.
_ROW = f"""
    SELECT i,
        date_trunc('month', now()) + (now() - date_trunc('month', now())) * (i::float8 / n) AS t,
        ({_array(_APPS)})[1 + mod(i, {len(_APPS)})] AS app,
        ({_array(_NAMESPACES)})[1 + mod(i / 7, {len(_NAMESPACES)})] AS ns,
        ({_array(_SIGNALS)})[1 + mod(i, {len(_SIGNALS)})] AS signal,
        ({_array(_CAUSES)})[1 + mod(i / 3, {len(_CAUSES)})] AS cause,
        (ARRAY['Completed', 'Completed', 'Completed', 'Failed'])[1 + mod(i, 4)] AS phase,
        md5(i::text || %(kind)s) AS h
    FROM generate_series(1, %(n)s) AS i, (SELECT %(n)s::int AS n) AS total
"""

_COMMON = {
    "recorded_at": "t",
    "name": "left(%(kind)s, 2) || '-' || app || '-' || left(h, 5)",
    "namespace": "ns",
    "phase": "phase",
    "message": "'Remediation of ' || app || '-' || left(h, 9) || ' in ' || ns || ' ' || lower(phase) || '.'",
    "created_at": "t - interval '2 minutes'",
    "started_at": "t - interval '115 seconds'",
    "completed_at": "t - interval '5 seconds'",
    "correlation_id": "'corr-' || h",
    "labels": "jsonb_build_object('app.kubernetes.io/name', app, 'team', 'checkout')",
}
_KIND_COLUMNS: dict[str, dict[str, str]] = {
    "remediation": {
        "signal_type": "'prometheus'",
        "signal_name": "signal",
        "signal_namespace": "ns",
        "target_type": "'deployment'",
        "target_name": "app",
        "target_namespace": "ns",
        "environment": "'production'",
        "priority": "'P1'",
        "fingerprint": "h || h",
    },
    "aianalysis": {
        "remediation_request_ref": "'rr-' || app || '-' || left(h, 5)",
        "signal_type": "'prometheus'",
        "llm_provider": "'openai'",
        "llm_model": "'gpt-4o'",
        "root_cause": "cause",
        "confidence": "0.5 + mod(i, 50) / 100.0",
        "recommended_action": "'increase_memory_limit'",
        "requires_approval": "phase = 'Failed'",
    },
    "workflow": {
        "remediation_request_ref": "'rr-' || app || '-' || left(h, 5)",
        "ai_analysis_ref": "'ai-' || app || '-' || left(h, 5)",
        "workflow_name": "'oom-recovery'",
        "step_count": "3",
        "completed_count": "3",
        "failed_count": "0",
    },
    "execution": {
        "workflow_execution_ref": "'wf-' || app || '-' || left(h, 5)",
        "step_name": "'increase-memory'",
        "action_type": "'increase_memory_limit'",
        "target_type": "'deployment'",
        "target_name": "app",
        "target_namespace": "ns",
        "action_result": "'patched deployment ' || app || ' in ' || ns",
        "is_rolled_back": "phase = 'Failed'",
    },
}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _audit_insert_sql(kind: str) -> str:
    body = {**_COMMON, **_KIND_COLUMNS[kind]}
    del body["recorded_at"]
    columns = {
        **_COMMON,
        **_KIND_COLUMNS[kind],
        "actor": "'system:serviceaccount:kubernaut:bench'",
        "request_id": "h",
        "content_sha256": "encode(sha256(convert_to(h, 'UTF8')), 'hex')",
        "payload": "jsonb_build_object("
        + ", ".join(f"'{_camel(column)}', {expression}" for column, expression in body.items())
        + ")",
    }
    return (
        f"WITH inserted AS (INSERT INTO audit_{kind} ({', '.join(columns)})"
        f" SELECT {', '.join(columns.values())} FROM ({_ROW}) AS row ORDER BY i RETURNING id)"
        " SELECT min(id) FROM inserted"
    )


_EMBEDDING_INSERT = """
    INSERT INTO incident_embeddings (audit_type, audit_id, audit_recorded_at, remediation_request_id, namespace,
        target_type, target_name, signal_type, root_cause, model, dimensions, input_sha256, embedding, recorded_at)
    SELECT %(kind)s, a.id, a.recorded_at, a.name, a.namespace, '', '', '', '', v.model, v.dimensions,
        encode(sha256(convert_to(a.correlation_id, 'UTF8')), 'hex'), v.embedding, a.recorded_at
    FROM audit_{kind} AS a JOIN bench_vectors AS v ON v.kind = %(kind)s AND v.ord = a.id - %(base)s
    WHERE a.id > %(base)s
"""


def topic_centres(rng: np.random.Generator, dims: int, topics: int = TOPICS) -> npt.NDArray[np.float32]:
    common = rng.standard_normal(dims)
    common /= np.linalg.norm(common)
    centres = rng.standard_normal((topics, dims)) / np.sqrt(dims) + 0.45 * common
    return (centres / np.linalg.norm(centres, axis=1, keepdims=True)).astype(np.float32)


def clustered_vectors(
    rng: np.random.Generator, centres: npt.NDArray[np.float32], count: int
) -> npt.NDArray[np.float32]:
    """`count` distinct unit vectors, each near a random one of `centres`."""
    dims = centres.shape[1]
    topic = rng.integers(len(centres), size=count)
    noise = rng.standard_normal((count, dims), dtype=np.float32) * (NOISE / np.sqrt(dims))
    vectors = centres[topic] + noise
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


@dataclass(frozen=True, slots=True)
class Prefill:
    records: int
    primary_vectors: int
    local_vectors: int
    seconds: float


def prefill(conninfo: str, *, records: int, local_share: float = LOCAL_SHARE, seed: int = 5) -> Prefill:
    """Insert `records` audit rows (split over the four kinds) and one embedding for each,
    `local_share` of them 384-d vectors of the local model, the rest 1536-d of the primary."""
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    centres = {
        PRIMARY_MODEL: topic_centres(rng, PRIMARY_DIMENSIONS),
        LOCAL_MODEL: topic_centres(rng, LOCAL_DIMENSIONS),
    }
    per_kind = [records // len(KINDS) + (1 if k < records % len(KINDS) else 0) for k in range(len(KINDS))]
    primary = local = 0
    with psycopg.connect(conninfo, autocommit=True) as conn:
        register_vector(conn)
        conn.execute(
            "CREATE TEMP TABLE bench_vectors (kind text, ord bigint, model text, dimensions int, embedding vector)"
        )
        for kind, count in zip(KINDS, per_kind, strict=True):
            if count == 0:
                continue
            # The rows take consecutive ids in generate_series order: row i has id base + i.
            inserted = conn.execute(_audit_insert_sql(kind), {"kind": kind, "n": count})  # type: ignore[arg-type]
            base = inserted.fetchone()[0] - 1  # type: ignore[index]
            with (
                conn.cursor() as cursor,
                cursor.copy(
                    "COPY bench_vectors (kind, ord, model, dimensions, embedding) FROM STDIN (FORMAT BINARY)"
                ) as copy,
            ):
                copy.set_types(["text", "int8", "text", "int4", "vector"])
                for start in range(0, count, _COPY_CHUNK):
                    size = min(_COPY_CHUNK, count - start)
                    is_local = rng.random(size) < local_share
                    vectors = {
                        model: clustered_vectors(rng, centres[model], size) for model in (PRIMARY_MODEL, LOCAL_MODEL)
                    }
                    for offset in range(size):
                        model = LOCAL_MODEL if is_local[offset] else PRIMARY_MODEL
                        vector = vectors[model][offset]
                        copy.write_row([kind, start + offset + 1, model, vector.shape[0], vector])
                    local += int(is_local.sum())
                    primary += size - int(is_local.sum())
            conn.execute(_EMBEDDING_INSERT.format(kind=kind), {"kind": kind, "base": base})  # type: ignore[arg-type]
        conn.execute("DROP TABLE bench_vectors")
        conn.execute("VACUUM ANALYZE")
        # Start every measurement from a clean checkpoint, not in the middle of the prefill's.
        conn.execute("CHECKPOINT")
    return Prefill(records=records, primary_vectors=primary, local_vectors=local, seconds=time.perf_counter() - started)
