"""`python -m bench`: the write path over HTTP beside the database's own ceiling, in one run.

Scenarios (each at a fixed concurrency, wrk + bench/post.lua, keep-alive connections):

- cached:  realistic bodies whose embedding texts repeat, so every embedding comes from Redis;
- remote:  fresh texts, embedded by an OpenAI-compatible server that answers after a delay
           (testutils/openai_server.py, default 100 ms);
- local:   fresh texts, embedded in process by the local model;
- degraded: the local scenario with an OpenAI-compatible primary that accepts requests and never
           answers: the circuit breaker sends writes to the local model without waiting;
- batch:   the batch endpoint, bodies of --batch-sizes records each (default 50), the four
           kinds mixed, cached texts, at the cached scenario's concurrency; one row per size,
           its throughput in records/s as well as requests/s;
- events-batch: upstream Kubernaut's audit-event batch endpoint, bodies of --event-batch-sizes
           events each (default 100 and 1000), the 142 event types mixed, at the cached
           scenario's concurrency; one row per size, in records (events)/s as well;
- ceiling: the service's own INSERT statement (same schema, indexes, transaction shape and
           parameters) sent straight from psycopg over as many connections as the cached
           scenario has, with no HTTP and no Django.

The service runs under the production gunicorn config (kubernaut_storage/gunicorn_config.py)
with the `local` Django settings (authentication off, loopback only, a bench-only secret key),
against its own embedded PostgreSQL (.data/bench-postgres) and its own redis-server.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
SCENARIOS = ("cached", "ceiling", "remote", "local", "degraded", "batch", "events-batch")
#: Scenarios run when --scenarios is not given.
DEFAULT_SCENARIOS = ("cached", "ceiling", "remote", "local")
SMOKE = {"duration": 4.0, "warmup": 2.0, "prefill": 2000}


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--scenarios",
        default=",".join(DEFAULT_SCENARIOS),
        help=f"comma-separated, of: {', '.join(SCENARIOS)} (default {','.join(DEFAULT_SCENARIOS)})",
    )
    parser.add_argument(
        "--batch-sizes", default="50", help="records per request of the batch scenario, comma-separated (default 50)"
    )
    parser.add_argument(
        "--event-batch-sizes",
        default="100,1000",
        help="events per request of the events-batch scenario, comma-separated (default 100,1000)",
    )
    parser.add_argument("--duration", type=float, default=30.0, help="seconds measured per scenario (default 30)")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of unmeasured load before each (default 5)")
    parser.add_argument("--concurrency", type=int, default=16, help="connections for cached, local and ceiling")
    # Little's law: 300 writes/s that each wait ~0.2 s are 60 in flight; 40 connections cap the
    # scenario below 40 / 0.13 s whatever the service does.
    parser.add_argument("--remote-concurrency", type=int, default=64, help="connections for remote (default 64)")
    parser.add_argument("--remote-delay-ms", type=float, default=100.0, help="the remote embedder's answer delay")
    parser.add_argument("--prefill", type=int, default=50_000, help="embedded records in the tables before the run")
    parser.add_argument("--templates", type=int, default=200, help="distinct request bodies (cached: distinct texts)")
    parser.add_argument("--workers", type=int, help="GUNICORN_WORKERS for the service (default: the config's)")
    parser.add_argument("--threads", type=int, help="GUNICORN_THREADS for the service (default: the config's)")
    parser.add_argument("--smoke", action="store_true", help=f"a quick check of the harness: {SMOKE}")
    parser.add_argument("--output", type=Path, help="JSON results file (default bench/results/bench-<time>.json)")
    args = parser.parse_args(argv)
    if args.smoke:
        for key, value in SMOKE.items():
            setattr(args, key, value)
    args.scenarios = [name.strip() for name in args.scenarios.split(",") if name.strip()]
    try:
        args.batch_sizes = [int(size) for size in args.batch_sizes.split(",") if size.strip()]
    except ValueError:
        parser.error("--batch-sizes takes comma-separated whole numbers")
    if not args.batch_sizes or min(args.batch_sizes) < 1:
        parser.error("--batch-sizes takes one or more sizes of at least 1")
    try:
        args.event_batch_sizes = [int(size) for size in args.event_batch_sizes.split(",") if size.strip()]
    except ValueError:
        parser.error("--event-batch-sizes takes comma-separated whole numbers")
    if not args.event_batch_sizes or min(args.event_batch_sizes) < 1:
        parser.error("--event-batch-sizes takes one or more sizes of at least 1")
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    return args


def loadavg() -> list[float]:
    with open("/proc/loadavg") as file:
        return [float(value) for value in file.read().split()[:3]]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def main(argv: list[str]) -> None:
    """`python -m bench [options]` runs the benchmark; `faults`, `indexes`, `profile`, `prometheus-cost`,
    `volume`: tools beside it."""
    command = argv[0] if argv and not argv[0].startswith("-") else "run"
    if command == "indexes":
        from bench.indexes import main as indexes_main

        indexes_main(argv[1:])
    elif command == "profile":
        from bench.profile import main as profile_main

        profile_main(argv[1:])
    elif command == "prometheus-cost":
        from bench.prometheus_cost import main as prometheus_cost_main

        prometheus_cost_main(argv[1:])
    elif command == "faults":
        from bench.faults.suite import main as faults_main

        faults_main(argv[1:])
    elif command == "volume":
        from bench.volume.cli import main as volume_main

        volume_main(argv[1:])
    elif command == "run":
        run(_arguments(argv[1:] if argv and argv[0] == "run" else argv))
    else:
        sys.exit(
            f"python -m bench: unknown command {command!r} (run, faults, indexes, profile, prometheus-cost, volume)"
        )


def run(args: argparse.Namespace) -> dict[str, Any]:
    import logging

    from bench import stack
    from bench.prefill import prefill
    from bench.report import results_write, summary_line, table

    logging.basicConfig(level=logging.WARNING)
    started_at = dt.datetime.now(dt.UTC)
    load_before = loadavg()
    log(f"load average {load_before[0]:.2f}; starting the bench PostgreSQL in {stack.BENCH_DATA_DIR}")
    db = stack.bench_database_start()
    log(f"prefilling {args.prefill:,} embedded records")
    filled = prefill(db.conninfo, records=args.prefill)
    log(
        f"prefilled {filled.records:,} records ({filled.primary_vectors:,} x 1536-d, "
        f"{filled.local_vectors:,} x 384-d vectors) in {filled.seconds:.1f} s"
    )
    os.environ.update(db.env())
    import django

    django.setup()

    from bench.scenarios import Bench

    bench = Bench(db=db, args=args, log=log)
    rows: list[dict[str, Any]] = []
    try:
        bench.start()
        runners: dict[str, Callable[[], dict[str, Any] | list[dict[str, Any]]]] = {
            "cached": bench.cached,
            "ceiling": bench.ceiling,
            "remote": bench.remote,
            "local": bench.local,
            "degraded": bench.degraded,
            "batch": bench.batch,
            "events-batch": bench.events_batch,
        }
        for name in args.scenarios:
            log(f"scenario {name}")
            result = runners[name]()
            for row in result if isinstance(result, list) else [result]:
                rows.append(row)
                log(
                    f"  {row['scenario']}: {row['writes_per_s']:.0f} requests/s, "
                    f"{row['records_per_s']:.0f} records/s, p95 {row['p95_ms']:.1f} ms, "
                    f"non-2xx {row.get('non2xx', 0)}, errors {row.get('errors', 0)}"
                )
    finally:
        bench.stop()

    run = {
        "command": "python -m bench " + shlex.join(sys.argv[1:]),
        "started_at": started_at.isoformat(),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "loadavg_before": load_before,
            "loadavg_after": loadavg(),
        },
        "service": bench.service_description(),
        "prefill": {
            "records": filled.records,
            "primary_vectors_1536d": filled.primary_vectors,
            "local_vectors_384d": filled.local_vectors,
            "seconds": round(filled.seconds, 1),
        },
        "options": {
            key: value for key, value in vars(args).items() if key not in ("output", "smoke") and value is not None
        },
        "scenarios": rows,
    }
    run["summary"] = summary_line(rows)
    path = args.output or RESULTS_DIR / f"bench-{started_at:%Y%m%dT%H%M%SZ}.json"
    results_write(path, run)
    print()
    print(bench.service_description()["text"])
    print(
        f"prefill: {filled.records:,} embedded records; load average {load_before[0]:.2f} before, "
        f"{run['machine']['loadavg_after'][0]:.2f} after"
    )
    print()
    print(table(rows))
    print()
    print(f"results: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    print(run["summary"])
    return run
