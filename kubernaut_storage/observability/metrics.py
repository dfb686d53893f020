"""Every Prometheus metric the service exports, in one place.

Under gunicorn, PROMETHEUS_MULTIPROC_DIR is set before workers start, so these objects write
to per-process files that the metrics endpoint on port 9090 aggregates: counts add up across
workers. Without it (tests, `runserver`) they live in the process's default registry.

Metrics an app computes at scrape time (from the database, say) are collectors it registers
with `scrape_collector_register` from its AppConfig.ready(): the project's metrics endpoint
reads them without importing the app.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.registry import Collector

_scrape_collectors: dict[str, Collector] = {}


def scrape_collector_register(*, name: str, collector: Collector) -> None:
    """Have the metrics endpoint (port 9090) read `collector` at every scrape.

    Call from AppConfig.ready(): gunicorn's master, which serves the endpoint, runs
    django.setup() before it starts it. Registering a name again replaces its collector.
    """
    _scrape_collectors[name] = collector


def scrape_collectors() -> list[Collector]:
    return list(_scrape_collectors.values())


# Latency buckets around the targets: p50 < 100 ms, p95 < 250 ms.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

AUDIT_WRITES = Counter(
    "kubernaut_audit_writes_total",
    "Audit write requests by audit kind and outcome.",
    ["kind", "outcome"],  # outcome: created, replayed, invalid, rejected, unavailable, error
)
REQUEST_LATENCY = Histogram(
    "kubernaut_http_request_duration_seconds",
    "HTTP request latency by endpoint, method and status class.",
    ["endpoint", "method", "status"],
    buckets=_LATENCY_BUCKETS,
)
EMBEDDING_LATENCY = Histogram(
    "kubernaut_embedding_duration_seconds",
    "Time of one embedding provider call, failed calls included (cache misses only).",
    ["provider"],
    buckets=_LATENCY_BUCKETS,
)
EMBEDDING_BATCH_TEXTS = Histogram(
    "kubernaut_embedding_batch_texts",
    "Distinct texts per embedding provider call: concurrent cache misses of a process share calls.",
    ["provider"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)
EMBEDDING_CACHE = Counter(
    "kubernaut_embedding_cache_total",
    "Embedding cache lookups by result: hit, miss, error, bypass (Redis skipped after a failure).",
    ["result"],
)
EMBEDDING_RETRIES = Counter(
    "kubernaut_embedding_retries_total",
    "Retries of the primary embedding provider.",
    ["provider"],
)
EMBEDDING_FALLBACKS = Counter(
    "kubernaut_embedding_fallbacks_total",
    "Embeddings made by the fallback provider because the primary failed.",
    ["reason"],
)
EMBEDDING_DEFERRALS = Counter(
    "kubernaut_embedding_deferrals_total",
    "Audit records stored without an embedding (every provider failed); backfilled later.",
)
# Across the workers of a pod the live maximum (open > half-open > closed): each worker has its
# own breaker, and one that stopped calling the primary is what an operator needs to see.
EMBEDDING_CIRCUIT_STATE = Gauge(
    "kubernaut_embedding_circuit_state",
    "Circuit breaker of the primary embedding provider: 0 closed, 1 half-open, 2 open.",
    ["provider"],
    multiprocess_mode="livemax",
)
IDEMPOTENCY_KEY_ANOMALIES = Counter(
    "kubernaut_idempotency_key_anomalies_total",
    "Idempotency keys whose stored answer names no matching audit row (forged or damaged);"
    " the request was written anyway, without the key.",
)
DB_RETRIES = Counter(
    "kubernaut_db_retries_total",
    "Retries of a write transaction after a transient database error.",
)
VALIDATION_FAILURES = Counter(
    "kubernaut_validation_failures_total",
    "Requests rejected by validation, by audit kind.",
    ["kind"],
)
AUTH_FAILURES = Counter(
    "kubernaut_auth_failures_total",
    "Authentication and authorization failures by reason.",
    ["reason"],  # missing, malformed, rejected, forbidden, unavailable
)
# Alerts need the reason a pod is unready, not only that it is: "partitions" failing means
# this or next month's partition is missing, weeks before a write could fail. Updated by every
# /readyz; a check skipped (its dependency failed) keeps its last value. Across the workers of
# a pod the live maximum: one worker seeing a failure is enough.
READINESS_CHECK_FAILING = Gauge(
    "kubernaut_readiness_check_failing",
    "1 while the readiness check fails, 0 once it passes, by check (database, partitions, ...).",
    ["check"],
    multiprocess_mode="livemax",
)
