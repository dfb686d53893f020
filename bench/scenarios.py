"""The scenarios of `python -m bench`, each measured the same way.

An HTTP scenario starts the service afresh (its own environment, clean per-worker peak RSS),
runs `warmup` seconds of unmeasured load (connections opened, the local model loaded, the
cache filled), then measures `duration` seconds at a fixed concurrency while sampling the
CPU time of each gunicorn worker and of PostgreSQL, Redis' hit counters and the remote
embedder's call count.
"""

from __future__ import annotations

import argparse
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from bench import stack
from bench.wrk import HttpResult, wrk_run

#: The remote embedder's key: any non-empty string makes the openai provider the primary.
REMOTE_API_KEY = "bench-key"
#: Unmeasured load before the degraded scenario, at least.
DEGRADED_WARMUP_S = 20.0


class Bench:
    def __init__(self, *, db: stack.BenchDatabase, args: argparse.Namespace, log: Callable[[str], None]) -> None:
        self.db = db
        self.args = args
        self.log = log
        self.work_dir = stack.ROOT / ".data" / "bench"
        self.redis: Any = None
        self.embedder: Any = None
        #: the degraded scenario's embedder: accepts requests and never answers
        self.hanging_embedder: Any = None
        self.templates: dict[bool, Path] = {}
        #: batch size → template file of batch bodies (cached texts)
        self.batch_templates: dict[int, Path] = {}
        #: batch size → template file of audit-event batch bodies
        self.event_batch_templates: dict[int, Path] = {}
        self.workers_seen = 0
        self.threads: int | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        from bench.workload import batch_templates, event_batch_templates, templates, templates_write
        from testutils.openai_server import OpenAICompatibleServer
        from testutils.redis_server import RedisServer

        self.redis = RedisServer().start()
        self.embedder = OpenAICompatibleServer(mode="slow", delay_s=self.args.remote_delay_ms / 1000).start()
        for fresh in (False, True):
            rows = templates(count=self.args.templates, fresh=fresh)
            self.templates[fresh] = templates_write(
                self.work_dir / f"templates-{'fresh' if fresh else 'cached'}.tsv", rows
            )
        cached = templates(count=self.args.templates, fresh=False)
        for size in self.args.batch_sizes:
            # Enough distinct bodies that every template's text is in some batch.
            bodies = batch_templates(cached, size=size, count=max(4, -(-self.args.templates // size)))
            self.batch_templates[size] = templates_write(self.work_dir / f"templates-batch-{size}.tsv", bodies)
        if "events-batch" in self.args.scenarios:
            for size in self.args.event_batch_sizes:
                bodies = event_batch_templates(size=size, count=4)
                path = self.work_dir / f"templates-events-batch-{size}.tsv"
                self.event_batch_templates[size] = templates_write(path, bodies)

    def stop(self) -> None:
        for embedder in (self.embedder, self.hanging_embedder):
            if embedder is not None:
                embedder.stop()
        if self.redis is not None:
            self.redis.stop()

    def service_description(self) -> dict[str, Any]:
        import importlib

        config = importlib.import_module("kubernaut_storage.gunicorn_config")
        workers = self.args.workers or config.workers
        threads = self.args.threads or config.threads
        text = (
            f"service: gunicorn -c {stack.GUNICORN_CONFIG} (the production config: {config.worker_class}, "
            f"{workers} workers x {threads} threads) with DJANGO_SETTINGS_MODULE={stack.SETTINGS_MODULE} "
            "(authentication off, loopback only, a bench-only secret key), embedded PostgreSQL in "
            f"{stack.BENCH_DATA_DIR.relative_to(stack.ROOT)}, its own redis-server"
        )
        return {
            "gunicorn_config": stack.GUNICORN_CONFIG,
            "worker_class": config.worker_class,
            "workers": workers,
            "threads": threads,
            "settings": stack.SETTINGS_MODULE,
            "auth": "none (loopback only)",
            "text": text,
        }

    # -- scenarios -------------------------------------------------------------------------------

    def cached(self) -> dict[str, Any]:
        return self._http("cached", remote=True, fresh=False, concurrency=self.args.concurrency)

    def remote(self) -> dict[str, Any]:
        return self._http("remote", remote=True, fresh=True, concurrency=self.args.remote_concurrency)

    def local(self) -> dict[str, Any]:
        return self._http("local", remote=False, fresh=True, concurrency=self.args.concurrency)

    def degraded(self) -> dict[str, Any]:
        """The local scenario's load with the primary configured and hanging: each worker's
        circuit breaker opens during the warm-up, then writes go to the local model without
        waiting for the primary, but for one probe per worker and cool-down."""
        from testutils.openai_server import OpenAICompatibleServer

        if self.hanging_embedder is None:
            self.hanging_embedder = OpenAICompatibleServer(mode="hang").start()
        return self._http(
            "degraded",
            remote=True,
            fresh=True,
            concurrency=self.args.concurrency,
            embedder=self.hanging_embedder,
            # Measures the outage's steady state: a worker's circuit opens only after its own
            # first failures (timeouts), and a worker gunicorn hands few connections to can
            # take several seconds to collect them.
            warmup=max(self.args.warmup, DEGRADED_WARMUP_S),
        )

    def batch(self) -> list[dict[str, Any]]:
        """The batch endpoint at each of --batch-sizes: cached texts, the kinds mixed."""
        return [
            self._http(
                f"batch-{size}",
                remote=True,
                fresh=False,
                concurrency=self.args.concurrency,
                templates=self.batch_templates[size],
                batch_size=size,
            )
            for size in self.args.batch_sizes
        ]

    def events_batch(self) -> list[dict[str, Any]]:
        """Upstream Kubernaut's audit-event batch endpoint at each of --event-batch-sizes: the
        142 types mixed, no embedding (events never wait for a model)."""
        from bench.ceiling import ceiling_run, event_ceiling_statements

        rows = []
        for size in self.args.event_batch_sizes:
            templates = self.event_batch_templates[size]
            rows.append(
                self._http(
                    f"events-batch-{size}",
                    remote=False,
                    fresh=True,
                    concurrency=self.args.concurrency,
                    templates=templates,
                    batch_size=size,
                )
            )
            # The database's own ceiling for the same batches: the service's INSERT, each batch
            # one statement committed on its own, from as many connections, no HTTP, no Django.
            result = ceiling_run(
                self.db.conninfo,
                event_ceiling_statements(templates, count=8),
                connections=self.args.concurrency,
                duration_s=self.args.duration,
                warmup_s=min(self.args.warmup, 2.0),
            )
            row = result.as_row()
            row.update(scenario=f"events-ceiling-{size}", batch_size=size, records_per_s=row["writes_per_s"] * size)
            rows.append(row)
        return rows

    def ceiling(self) -> dict[str, Any]:
        from bench.ceiling import ceiling_run, ceiling_statements

        statements = ceiling_statements(self.templates[False], count=self.args.templates)
        pg_before, client_before = stack.postgres_cpu_seconds(), time.process_time()
        machine_before = stack.machine_busy_seconds()
        result = ceiling_run(
            self.db.conninfo,
            statements,
            connections=self.args.concurrency,
            duration_s=self.args.duration,
            warmup_s=min(self.args.warmup, 2.0),
        )
        wall = result.seconds + result.warmup_s
        row = result.as_row()
        postgres = stack.postgres_cpu_seconds() - pg_before
        # The psycopg writer threads, in this process.
        client = time.process_time() - client_before
        row["records_per_s"] = row["writes_per_s"]
        row["postgres_cpu_pct"] = 100 * postgres / wall
        row["client_cpu_pct"] = round(100 * client / wall, 1)
        row["foreign_cpu_pct"] = round(
            100 * (stack.machine_busy_seconds() - machine_before - postgres - client) / wall, 1
        )
        return row

    def _env(self, *, embedder: Any) -> dict[str, str]:
        """The service's environment; `embedder` (None: the local model only) as its primary."""
        env = {"REDIS_URL": self.redis.url, "EMBEDDING_OPENAI_API_KEY": "", "OPENAI_API_KEY": ""}
        if embedder is not None:
            env.update(EMBEDDING_OPENAI_API_KEY=REMOTE_API_KEY, EMBEDDING_OPENAI_BASE_URL=f"{embedder.base_url}")
        if self.args.workers:
            env["GUNICORN_WORKERS"] = str(self.args.workers)
        if self.args.threads:
            env["GUNICORN_THREADS"] = str(self.args.threads)
        return env

    def _http(
        self,
        name: str,
        *,
        remote: bool,
        fresh: bool,
        concurrency: int,
        templates: Path | None = None,
        batch_size: int = 1,
        embedder: Any = None,
        warmup: float | None = None,
    ) -> dict[str, Any]:
        """`templates` (default: the single-record ones) posted by wrk; each request carries
        `batch_size` records. With `remote`, `embedder` (default: the answering one) is the
        primary."""
        embedder = (embedder or self.embedder) if remote else None
        service = stack.Service(
            db=self.db, env=self._env(embedder=embedder), log_path=self.work_dir / f"gunicorn-{name}.log"
        )
        service.start()
        try:
            templates = templates or self.templates[fresh]
            warmup = self.args.warmup if warmup is None else warmup
            if not fresh:
                # Long enough for every template's text to reach the cache twice over, even
                # if each lookup misses and waits for the remote embedder.
                misses_per_s = concurrency / (self.args.remote_delay_ms / 1000 + 0.01)
                warmup = max(warmup, 2 * self.args.templates / misses_per_s)
            wrk_run(url=service.url, templates=templates, concurrency=concurrency, duration_s=warmup)
            workers = service.worker_pids()
            redis_client = redis.Redis.from_url(self.redis.url)
            before = self._counters(service.master_pid, workers, redis_client, embedder)
            metrics_before = service.metric_totals()
            result = wrk_run(
                url=service.url, templates=templates, concurrency=concurrency, duration_s=self.args.duration
            )
            after = self._counters(service.master_pid, workers, redis_client, embedder)
            metrics = _delta_means(metrics_before, service.metric_totals())
            peak_rss = {pid: stack.process_peak_rss_mb(pid) for pid in workers}
        finally:
            service.stop()
        row = self._row(name, concurrency, result, before, after, peak_rss)
        return {**row, "batch_size": batch_size, "records_per_s": result.per_s * batch_size, **metrics}

    def _counters(self, master: int, workers: list[int], redis_client: Any, embedder: Any) -> dict[str, Any]:
        stats = redis_client.info("stats")
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return {
            "time": time.monotonic(),
            "machine": stack.machine_busy_seconds(),
            "master": stack.process_cpu_seconds(master),
            "workers": {pid: stack.process_cpu_seconds(pid) for pid in workers},
            "postgres": stack.postgres_cpu_seconds(),
            "redis": stack.process_cpu_seconds(self.redis.pid),
            # This process does nothing else meanwhile: its CPU is the embedder's threads'.
            "embedder": time.process_time(),
            # wrk is our only child reaped in between (the measured run itself).
            "wrk": children.ru_utime + children.ru_stime,
            "redis_hits": stats["keyspace_hits"],
            "redis_misses": stats["keyspace_misses"],
            "embedder_calls": embedder.request_count if embedder is not None else 0,
        }

    @staticmethod
    def _row(
        name: str,
        concurrency: int,
        result: HttpResult,
        before: dict[str, Any],
        after: dict[str, Any],
        peak_rss: dict[int, float],
    ) -> dict[str, Any]:
        wall = after["time"] - before["time"]

        def delta(name: str) -> float:
            return float(after[name] - before[name])

        ours = sum(after["workers"][pid] - before["workers"][pid] for pid in before["workers"])
        ours += sum(delta(name) for name in ("master", "postgres", "redis", "embedder", "wrk"))
        hits = after["redis_hits"] - before["redis_hits"]
        lookups = hits + after["redis_misses"] - before["redis_misses"]
        return {
            "scenario": name,
            "concurrency": concurrency,
            "requests": result.requests,
            "seconds": round(result.seconds, 2),
            "writes_per_s": result.per_s,
            "p50_ms": result.p50_ms,
            "p95_ms": result.p95_ms,
            "p99_ms": result.p99_ms,
            "max_ms": result.max_ms,
            "non2xx": result.non2xx,
            "errors": result.socket_errors + result.timeouts,
            "timeouts": result.timeouts,
            "cache_hit_rate": round(hits / lookups, 4) if lookups else None,
            "embedder_calls": after["embedder_calls"] - before["embedder_calls"],
            "postgres_cpu_pct": 100 * (after["postgres"] - before["postgres"]) / wall,
            **{
                f"{name}_cpu_pct": round(100 * (after[name] - before[name]) / wall, 1)
                for name in ("redis", "embedder", "wrk")
            },
            # Everything else on the machine: other people's work, which the 2 cores shared.
            "foreign_cpu_pct": round(100 * (delta("machine") - ours) / wall, 1),
            "workers": [
                {
                    "pid": pid,
                    "cpu_pct": round(100 * (after["workers"][pid] - before["workers"][pid]) / wall, 1),
                    "peak_rss_mb": round(peak_rss[pid], 1),
                }
                for pid in before["workers"]
            ],
        }


def _delta_means(before: dict[str, float], after: dict[str, float]) -> dict[str, float | None]:
    """Means over the measured run of the service's histograms: where a write's time went
    inside the service (wrk's latency adds the client and the kernel), the embedding calls it
    made and how many texts each carried."""

    def mean(prefix: str, scale: float) -> float | None:
        count = after.get(f"{prefix}_count", 0.0) - before.get(f"{prefix}_count", 0.0)
        total = after.get(f"{prefix}_sum", 0.0) - before.get(f"{prefix}_sum", 0.0)
        return round(scale * total / count, 2) if count else None

    return {
        "service_mean_ms": mean("request_s", 1000),
        "embedding_call_mean_ms": mean("embedding_call_s", 1000),
        "texts_per_embedding_call": mean("batch_texts", 1),
    }
