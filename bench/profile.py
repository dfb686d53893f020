"""`python -m bench profile`: the cost of one write, in process, and where it goes (pyinstrument).

Runs the Django WSGI application directly (everything gunicorn calls: middleware, DRF,
validation, the embedding lookup, the INSERT) on one thread, with the same bench database,
Redis and remote embedder as `python -m bench`, and no HTTP client or server in the way:

1. CPU milliseconds per request (process time) and wall milliseconds per request;
2. a pyinstrument profile of the same requests (wall time: the round trips to Redis and
   PostgreSQL and the commit's WAL flush show as waits in psycopg and redis).

    python -m bench profile --scenario cached --requests 2000
    python -m bench profile --smoke     # seconds: a check that the harness still runs
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

#: A check that the harness still runs (tests/bench/test_profile.py), not a measurement.
SMOKE = {"requests": 10, "prefill": 100, "templates": 8, "remote_delay_ms": 5.0}


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench profile", description=__doc__)
    parser.add_argument("--scenario", choices=["cached", "remote", "local"], default="cached")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--prefill", type=int, default=5000)
    parser.add_argument("--templates", type=int, default=200)
    parser.add_argument(
        "--batch-size", type=int, default=0, help="post batches of this many records to the batch endpoint (0: single)"
    )
    parser.add_argument("--remote-delay-ms", type=float, default=100.0)
    parser.add_argument("--interval-ms", type=float, default=0.1, help="pyinstrument's sampling interval")
    parser.add_argument("--html", type=Path, help="also write pyinstrument's HTML report here")
    parser.add_argument("--no-profile", action="store_true", help="only the CPU and wall time per request")
    parser.add_argument("--smoke", action="store_true", help=f"a quick check of the harness: {SMOKE}")
    args = parser.parse_args(argv)
    if args.smoke:
        for key, value in SMOKE.items():
            setattr(args, key, value)
    return args


def requests_from(templates: Path, *, prefix: str) -> Iterator[tuple[str, bytes]]:
    """Endless (path, body) pairs from a template file, filled in as bench/post.lua does."""
    rows = [line.split(b"\t", 1) for line in templates.read_bytes().splitlines()]
    counter = 0
    while True:
        for path, body in rows:
            counter += 1
            unique = f"{prefix}-{counter}".encode()
            phrase = " ".join(_WORDS[(counter >> (6 * i)) % 64] for i in range(4)).encode()
            yield path.decode(), body.replace(b"@ID@", unique).replace(b"@WORDS@", prefix.encode() + b" " + phrase)


_WORDS = [f"word{chr(97 + i // 26)}{chr(97 + i % 26)}" for i in range(64)]


def wsgi_caller(application: Callable[..., Any]) -> Callable[[str, bytes], tuple[str, bytes]]:
    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        statuses.append(status)

    statuses: list[str] = []

    def call(path: str, body: bytes) -> tuple[str, bytes]:
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": path,
            "SCRIPT_NAME": "",
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8080",
            "HTTP_HOST": "127.0.0.1:8080",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)),
            "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.url_scheme": "http",
            "wsgi.version": (1, 0),
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        response = application(environ, start_response)
        content = b"".join(response)
        response.close()
        return statuses[-1], content

    return call


def main(argv: list[str]) -> None:
    args = _arguments(argv)
    from bench import stack
    from bench.prefill import prefill
    from bench.scenarios import REMOTE_API_KEY
    from testutils.openai_server import OpenAICompatibleServer
    from testutils.redis_server import RedisServer

    db = stack.bench_database_start()
    prefill(db.conninfo, records=args.prefill)
    redis_server = RedisServer().start()
    embedder = OpenAICompatibleServer(mode="slow", delay_s=args.remote_delay_ms / 1000).start()
    try:
        os.environ.update(db.env())
        os.environ.update(AUTH_MODE="none", REDIS_URL=redis_server.url, LOG_LEVEL="WARNING")
        os.environ.update(EMBEDDING_OPENAI_API_KEY="", OPENAI_API_KEY="")
        if args.scenario != "local":
            os.environ.update(EMBEDDING_OPENAI_API_KEY=REMOTE_API_KEY, EMBEDDING_OPENAI_BASE_URL=embedder.base_url)
        import django

        django.setup()
        _profile(args, stack.ROOT / ".data" / "bench")
    finally:
        embedder.stop()
        redis_server.stop()


def _profile(args: argparse.Namespace, work_dir: Path) -> None:
    import logging

    from django.core.wsgi import get_wsgi_application

    from bench.stack import postgres_cpu_seconds
    from bench.workload import batch_templates, templates, templates_write

    logging.disable(logging.WARNING)
    fresh = args.scenario != "cached"
    rows = templates(count=args.templates, fresh=fresh)
    if args.batch_size:
        rows = batch_templates(rows, size=args.batch_size, count=max(4, -(-args.templates // args.batch_size)))
    path = templates_write(work_dir / "templates-profile.tsv", rows)
    call = wsgi_caller(get_wsgi_application())
    bodies = requests_from(path, prefix="prof" + "".join(chr(97 + int(d)) for d in str(time.time_ns())[-8:]))

    def run(count: int) -> None:
        for _ in range(count):
            status, content = call(*next(bodies))
            if not status.startswith("201"):
                raise RuntimeError(f"{status}: {content[:500]!r}")

    # Warm up: connections, the model, and (cached) one pass over the templates fills the cache.
    run(max(args.templates, min(200, args.requests)))
    # Five rounds; the least disturbed one (lowest CPU) is the best estimate on a shared
    # machine, where other processes' load inflates CPU time too (caches, SMT siblings).
    rounds = []
    for _ in range(5):
        cpu, wall, database = time.process_time(), time.perf_counter(), postgres_cpu_seconds()
        run(args.requests // 5)
        rounds.append((time.process_time() - cpu, time.perf_counter() - wall, postgres_cpu_seconds() - database))
    # Per record: a batch request carries batch_size of them.
    count = args.requests // 5 * max(1, args.batch_size)
    cpu, wall, database = min(rounds)
    median = sorted(rounds)[2]
    unit = f"batch of {args.batch_size}" if args.batch_size else "single"
    print(
        f"{args.scenario} ({unit}): {args.requests // 5} requests x 5 rounds, one thread, in process, best round "
        f"(median): {1000 * cpu / count:.3f} ({1000 * median[0] / count:.3f}) ms CPU and "
        f"{1000 * wall / count:.3f} ms wall per record; PostgreSQL {1000 * database / count:.3f} "
        f"({1000 * median[2] / count:.3f}) ms CPU per record"
    )
    if args.no_profile:
        return
    from pyinstrument import Profiler

    profiler = Profiler(interval=args.interval_ms / 1000)
    profiler.start()
    run(args.requests)
    profiler.stop()
    print(profiler.output_text(unicode=True, color=False, show_all=False, short_mode=False))
    if args.html:
        args.html.write_text(profiler.output_html())
        print(f"HTML profile: {args.html}")
