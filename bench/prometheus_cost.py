"""`python -m bench prometheus-cost`: what django-prometheus' parts cost per cached write.

In one process, so that a shared machine's drift hits every variant alike: the WSGI
application is called directly (as `python -m bench profile` does) in rounds that rotate
through four variants, and the median CPU time per request of each is reported:

- none:       neither its middleware nor the instrumented cursor on the write statement;
- middleware: its request middleware only;
- database:   its instrumented cursor only;
- both:       the service as configured.

    python -m bench prometheus-cost --rounds 12 --requests 300
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench prometheus-cost", description=__doc__)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--requests", type=int, default=300, help="per round and variant")
    parser.add_argument("--prefill", type=int, default=2000)
    args = parser.parse_args(argv)

    from bench import stack
    from bench.prefill import prefill
    from tests.support.redis_server import RedisServer

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

    from audit import services
    from bench.profile import requests_from, wsgi_caller
    from bench.workload import templates, templates_write

    logging.disable(logging.WARNING)
    instrumented = services._ServerBindingCursor
    with_middleware = wsgi_caller(WSGIHandler())
    plain = [name for name in settings.MIDDLEWARE if not name.startswith("django_prometheus.")]
    with override_settings(MIDDLEWARE=plain):
        without_middleware = wsgi_caller(WSGIHandler())
    variants = {
        "none": (without_middleware, psycopg.Cursor),
        "middleware": (with_middleware, psycopg.Cursor),
        "database": (without_middleware, instrumented),
        "both": (with_middleware, instrumented),
    }
    path = templates_write(work_dir / "templates-prometheus-cost.tsv", templates(count=200, fresh=False))
    bodies = requests_from(path, prefix="pc" + "".join(chr(97 + int(d)) for d in str(time.time_ns())[-8:]))

    def run(call: Any, count: int) -> None:
        for _ in range(count):
            status, content = call(*next(bodies))
            if not status.startswith("201"):
                raise RuntimeError(f"{status}: {content[:300]!r}")

    run(with_middleware, 400)  # warm: connections, the cache, every template once
    per_request: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for round_index in range(args.rounds):
        order = names[round_index % len(names) :] + names[: round_index % len(names)]
        for name in order:
            call, cursor = variants[name]
            services._ServerBindingCursor = cursor
            started = time.process_time()
            run(call, args.requests)
            per_request[name].append((time.process_time() - started) / args.requests * 1000)
    services._ServerBindingCursor = instrumented
    base = statistics.median(per_request["none"])
    for name in names:
        median = statistics.median(per_request[name])
        print(f"{name:10s} {median:.3f} ms CPU per write (median of {args.rounds}), {100 * (median / base - 1):+.1f} %")
