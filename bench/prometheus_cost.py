"""`python -m bench prometheus-cost`: what django-prometheus' parts cost per cached write.

In one process, so that a shared machine's drift hits every variant alike: the WSGI
application is called directly (as `python -m bench profile` does) in rounds that rotate
through four variants:

- none:       neither its request middleware nor its instrumented cursor on the write statement;
- middleware: its request middleware only (PrometheusBefore/AfterMiddleware, bracketing ours);
- database:   its instrumented cursor only (the service's configuration);
- both.

For each it reports the CPU time per request (the least disturbed round and the median) and the
Python function calls per request, which do not drift with the machine's load.

    python -m bench prometheus-cost --rounds 30 --requests 200
    python -m bench prometheus-cost --smoke     # seconds: a check that the harness still runs
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

MIDDLEWARE_BEFORE = "django_prometheus.middleware.PrometheusBeforeMiddleware"
MIDDLEWARE_AFTER = "django_prometheus.middleware.PrometheusAfterMiddleware"
#: A check that the harness still runs (tests/bench/test_prometheus_cost.py), not a measurement.
SMOKE = {"rounds": 1, "requests": 5, "prefill": 100}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench prometheus-cost", description=__doc__)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--requests", type=int, default=200, help="per round and variant")
    parser.add_argument("--prefill", type=int, default=2000)
    parser.add_argument("--smoke", action="store_true", help=f"a quick check of the harness: {SMOKE}")
    args = parser.parse_args(argv)
    if args.smoke:
        for key, value in SMOKE.items():
            setattr(args, key, value)

    from bench import stack
    from bench.prefill import prefill
    from testutils.redis_server import RedisServer

    db = stack.bench_database_start()
    prefill(db.conninfo, records=args.prefill)
    redis_server = RedisServer().start()
    try:
        os.environ.update(db.env())
        os.environ.update(AUTH_MODE="none", REDIS_URL=redis_server.url, LOG_LEVEL="WARNING")
        os.environ.update(EMBEDDING_OPENAI_API_KEY="", OPENAI_API_KEY="")
        import django

        django.setup()
        _measure(args, stack.ROOT / ".data" / "bench")
    finally:
        redis_server.stop()


def _measure(args: argparse.Namespace, work_dir: Any) -> None:
    import logging

    import psycopg
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import override_settings

    from bench.profile import requests_from, wsgi_caller
    from bench.workload import templates, templates_write
    from kubernaut_storage.database import connections

    logging.disable(logging.WARNING)
    instrumented = connections.ServerBindingCursor
    ours = [name for name in settings.MIDDLEWARE if not name.startswith("django_prometheus.")]
    # Placed as its documentation says: first after the probes (answered before it), and last.
    bracketed = [ours[0], MIDDLEWARE_BEFORE, *ours[1:], MIDDLEWARE_AFTER]
    with override_settings(MIDDLEWARE=ours):
        without_middleware = wsgi_caller(WSGIHandler())
    with override_settings(MIDDLEWARE=bracketed):
        with_middleware = wsgi_caller(WSGIHandler())
    variants = {
        "none": (without_middleware, psycopg.Cursor),
        "middleware": (with_middleware, psycopg.Cursor),
        "database": (without_middleware, instrumented),
        "both": (with_middleware, instrumented),
    }
    path = templates_write(work_dir / "templates-prometheus-cost.tsv", templates(count=200, fresh=False))
    bodies = requests_from(path, prefix="pc" + "".join(chr(97 + int(d)) for d in str(time.time_ns())[-8:]))

    def run(call: Callable[[str, bytes], tuple[str, bytes]], count: int) -> None:
        for _ in range(count):
            status, content = call(*next(bodies))
            if not status.startswith("201"):
                raise RuntimeError(f"{status}: {content[:300]!r}")

    run(with_middleware, min(400, 2 * args.requests))  # warm: connections, the cache, every template once
    calls = {
        name: _python_calls_per_request(run, *variant, connections, requests=min(100, args.requests))
        for name, variant in variants.items()
    }
    per_request: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for round_index in range(args.rounds):
        order = names[round_index % len(names) :] + names[: round_index % len(names)]
        for name in order:
            call, cursor = variants[name]
            connections.ServerBindingCursor = cursor
            started = time.process_time()
            run(call, args.requests)
            per_request[name].append((time.process_time() - started) / args.requests * 1000)
    connections.ServerBindingCursor = instrumented
    # The least disturbed round (lowest CPU) estimates the cost best on a shared machine, where
    # other processes inflate CPU time too (caches, SMT siblings); the median is shown beside it.
    best, middle = min(per_request["none"]), statistics.median(per_request["none"])
    for name in names:
        low, median = min(per_request[name]), statistics.median(per_request[name])
        print(
            f"{name:10s} {calls[name]:7.1f} Python calls per write ({100 * (calls[name] / calls['none'] - 1):+.1f} %); "
            f"CPU best {low:.3f} ms ({100 * (low / best - 1):+.1f} %), "
            f"median {median:.3f} ms ({100 * (median / middle - 1):+.1f} %) over {args.rounds} rounds"
        )


def _python_calls_per_request(run: Any, call: Any, cursor: Any, connections: Any, requests: int = 100) -> float:
    connections.ServerBindingCursor = cursor
    run(call, 20)
    counted = [0]

    def count(frame: FrameType, event: str, arg: Any) -> None:
        if event == "call":
            counted[0] += 1

    sys.setprofile(count)
    try:
        run(call, requests)
    finally:
        sys.setprofile(None)
    return counted[0] / requests
