"""Measure the abuse cases of docs/SECURITY.md against a real gunicorn (the repo's config).

Run from the repo root; it serves a scratch database of the embedded PostgreSQL (never the test
database, never production), migrated first, with the local model:

    .venv/bin/python bench/scripts/abuse.py slow --connections 200 --seconds 60
    .venv/bin/python bench/scripts/abuse.py form --megabytes 150
    .venv/bin/python bench/scripts/abuse.py tokens --tokens 2000
    .venv/bin/python bench/scripts/abuse.py logins --logins 90 --concurrency 30
    .venv/bin/python bench/scripts/abuse.py batches --records 500 --concurrency 16
    .venv/bin/python bench/scripts/abuse.py ddl --seconds 20

Each prints one JSON object with its figures.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kubernaut_storage.settings.local")
import django

django.setup()

from audit.models import AuditKind
from testutils.factories import VALID_BODIES
from testutils.gunicorn import Gunicorn, free_port, gunicorn_env, gunicorn_spawn, request
from testutils.openai_server import OpenAICompatibleServer
from testutils.tokenreview_server import FakeTokenReviewServer, jwt_shaped

DATABASE = "kubernaut_abuse_bench"
WRITE_PATH = "/api/v1/audit/remediation"
BATCH_PATH = "/api/v1/audit/batch"


def _env(**overrides: str) -> dict[str, str]:
    env = gunicorn_env(
        DJANGO_SETTINGS_MODULE="kubernaut_storage.settings.local",
        EMBEDDED_POSTGRES_DATABASE=DATABASE,
        GUNICORN_WORKERS="3",
        GUNICORN_THREADS="24",
        LOG_LEVEL="WARNING",
    )
    env.pop("DATABASE_URL", None)
    env.update(overrides)
    return env


def _manage(*args: str, env: dict[str, str]) -> None:
    command = [str(REPO / ".venv" / "bin" / "python"), "manage.py", *args]
    subprocess.run(command, cwd=REPO, env=env, check=True)


@contextlib.contextmanager
def serving(**overrides: str) -> Iterator[Gunicorn]:
    port, metrics_port = free_port(), free_port()
    env = _env(GUNICORN_BIND=f"127.0.0.1:{port}", METRICS_BIND=f"127.0.0.1:{metrics_port}", **overrides)
    _manage("migrate", "--noinput", "-v", "0", env=env)
    server = Gunicorn(gunicorn_spawn(env), port, metrics_port)
    threading.Thread(target=lambda: [None for _ in server.process.stderr or []], daemon=True).start()
    try:
        server.wait_until("/healthz", 200, timeout_s=120)
        yield server
    finally:
        server.stop()


def _timed(call: Callable[[], int]) -> tuple[float, int]:
    started = time.perf_counter()
    try:
        status = call()
    except OSError:
        status = 0
    return (time.perf_counter() - started) * 1000, status


def _write(port: int, headers: dict[str, str] | None = None) -> int:
    return request(port, "POST", WRITE_PATH, body=VALID_BODIES[AuditKind.REMEDIATION](), headers=headers).status


def _percentiles(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(ordered[max(0, int(len(ordered) * 0.95) - 1)], 1),
        "max_ms": round(ordered[-1], 1),
    }


def _probe(port: int, seconds: float) -> dict[str, Any]:
    """/healthz and a valid write, one after the other, for `seconds`."""
    healthz: list[float] = []
    writes: list[float] = []
    failures = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for path, sink in (("/healthz", healthz), (WRITE_PATH, writes)):
            call = (lambda: request(port, "GET", "/healthz").status) if path == "/healthz" else (lambda: _write(port))
            latency, status = _timed(call)
            sink.append(latency)
            failures += status not in (200, 201)
    return {"healthz": _percentiles(healthz), "writes": _percentiles(writes), "failures": failures}


def slow(args: argparse.Namespace) -> dict[str, Any]:
    with serving() as server:
        _probe(server.port, 3)  # warm-up: model loaded, pools filled
        quiet = _probe(server.port, 10)
        head = b"POST /api/v1/audit/remediation HTTP/1.1\r\nHost: storage\r\n"

        def slow_connection() -> socket.socket:
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            sock.sendall(head)
            return sock

        sockets = [slow_connection() for _ in range(args.connections)]
        reopened = 0
        # Slowloris: each connection sends one more header line every second, and one the
        # server closed is opened again at once, so `connections` are always waiting.
        stop = threading.Event()

        def drip() -> None:
            nonlocal reopened
            while not stop.wait(1.0):
                for index, sock in enumerate(sockets):
                    try:
                        sock.sendall(b"X-a: b\r\n")
                        if _closed(sock):
                            raise ConnectionResetError
                    except OSError:
                        sock.close()
                        with contextlib.suppress(OSError):
                            sockets[index] = slow_connection()
                            reopened += 1

        dripper = threading.Thread(target=drip, daemon=True)
        dripper.start()
        attacked = _probe(server.port, args.seconds)
        stop.set()
        dripper.join()
        for sock in sockets:
            sock.close()
    return {"connections": args.connections, "quiet": quiet, "under_attack": attacked, "reopened": reopened}


def _closed(sock: socket.socket) -> bool:
    sock.settimeout(0.001)
    try:
        return sock.recv(1) == b""
    except (TimeoutError, BlockingIOError):
        return False
    except OSError:
        return True
    finally:
        sock.settimeout(5)


def _worker_rss_mb(master_pid: int) -> dict[int, float]:
    """Resident memory of each worker (the master's children) from /proc."""
    rss = {}
    for status_file in Path("/proc").glob("[0-9]*/status"):
        with contextlib.suppress(OSError, StopIteration):
            fields = dict(line.split(":", 1) for line in status_file.read_text().splitlines() if ":" in line)
            if int(fields["PPid"]) == master_pid and "VmRSS" in fields:
                rss[int(status_file.parent.name)] = round(int(fields["VmRSS"].split()[0]) / 1024, 1)
    return rss


def form(args: argparse.Namespace) -> dict[str, Any]:
    with serving(GUNICORN_WORKERS="1") as server:
        _probe(server.port, 2)
        before = _worker_rss_mb(server.process.pid)
        size = args.megabytes * 1024 * 1024
        # With a CSRF cookie, as a browser has one: the CSRF check then reads the form.
        page = request(server.port, "GET", "/admin/login/")
        cookie = page.headers["set-cookie"].split(";", 1)[0]
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
        connection.putrequest("POST", "/admin/login/")
        connection.putheader("Cookie", cookie)
        connection.putheader("Content-Type", "application/x-www-form-urlencoded")
        connection.putheader("Content-Length", str(size))
        connection.endheaders()
        status = 0
        with contextlib.suppress(OSError):
            chunk = b"a=" + b"x" * (1024 * 1024 - 2)
            for _ in range(args.megabytes):
                connection.send(chunk)
        with contextlib.suppress(OSError, http.client.HTTPException):
            status = connection.getresponse().status
        connection.close()
        time.sleep(1)
        after = _worker_rss_mb(server.process.pid)
    return {"megabytes": args.megabytes, "status": status, "worker_rss_mb_before": before, "after": after}


def tokens(args: argparse.Namespace) -> dict[str, Any]:
    good = jwt_shaped("bench-writer")
    with FakeTokenReviewServer(caller_token="bench-own-token") as api:
        api.tokens[good] = ("system:serviceaccount:kubernaut-system:gateway", [], [])
        overrides = {
            "AUTH_MODE": "tokenreview",
            "TOKENREVIEW_API_URL": api.url,
            "TOKENREVIEW_TOKEN_FILE": "",
        }
        token_file = REPO / ".data" / "bench-own-token"
        token_file.write_text("bench-own-token")
        overrides["TOKENREVIEW_TOKEN_FILE"] = str(token_file)
        with serving(**overrides) as server:
            # Verdicts are cached per process: prime every worker (connections spread over them).
            assert {_write(server.port, {"Authorization": f"Bearer {good}"}) for _ in range(12)} == {201}
            reviews_before = api.request_count
            statuses: list[int] = []
            good_latencies: list[float] = []
            flood_done = threading.Event()

            def bogus(n: int) -> int:
                return request(
                    server.port, "POST", WRITE_PATH, body={}, headers={"Authorization": f"Bearer {jwt_shaped(f'b{n}')}"}
                ).status

            def good_writer() -> None:
                while not flood_done.is_set():
                    latency, status = _timed(lambda: _write(server.port, {"Authorization": f"Bearer {good}"}))
                    good_latencies.append(latency)
                    statuses.append(status)

            writer = threading.Thread(target=good_writer)
            writer.start()
            started = time.monotonic()
            with ThreadPoolExecutor(16) as pool:
                flood = list(pool.map(bogus, range(args.tokens)))
            elapsed = time.monotonic() - started
            flood_done.set()
            writer.join()
            reviews = api.request_count - reviews_before
    return {
        "bogus_tokens": args.tokens,
        "flood_seconds": round(elapsed, 1),
        "reviews": reviews,
        "reviews_per_second": round(reviews / elapsed, 1),
        "bogus_answers": {str(code): flood.count(code) for code in sorted(set(flood))},
        "cached_writer": {
            **_percentiles(good_latencies),
            "answers": {str(code): statuses.count(code) for code in sorted(set(statuses))},
        },
    }


def logins(args: argparse.Namespace) -> dict[str, Any]:
    env = _env()
    with serving() as server:
        create = (
            "from django.contrib.auth import get_user_model; U = get_user_model(); "
            "U.objects.filter(username='bench-auditor').exists() or "
            "U.objects.create_user('bench-auditor', password='right-password', is_staff=True)"
        )
        _manage("shell", "-c", create, env=env)
        write_statuses: list[int] = []
        done = threading.Event()
        # A browser's CSRF cookie and the matching form field, so each try reaches the password check.
        cookie = request(server.port, "GET", "/admin/login/").headers["set-cookie"].split(";", 1)[0]
        csrf = cookie.split("=", 1)[1]

        def writer() -> None:
            while not done.is_set():
                write_statuses.append(_timed(lambda: _write(server.port))[1])

        def login(n: int) -> int:
            # Every third try names the real account (axes locks it out after five); the others
            # name accounts that do not exist, each hashed all the same.
            username = "bench-auditor" if n % 3 == 0 else f"nobody-{n}"
            body = f"csrfmiddlewaretoken={csrf}&username={username}&password=wrong-{n}".encode()
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
            try:
                connection.request(
                    "POST",
                    "/admin/login/",
                    body=body,
                    headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie},
                )
                return connection.getresponse().status
            finally:
                connection.close()

        writers = [threading.Thread(target=writer) for _ in range(4)]
        for thread in writers:
            thread.start()
        started = time.monotonic()
        with ThreadPoolExecutor(args.concurrency) as pool:
            answers = list(pool.map(login, range(args.logins)))
        elapsed = time.monotonic() - started
        done.set()
        for thread in writers:
            thread.join()
    return {
        "logins": args.logins,
        "seconds": round(elapsed, 1),
        "login_answers": {str(code): answers.count(code) for code in sorted(set(answers))},
        "writes": len(write_statuses),
        "write_answers": {str(code): write_statuses.count(code) for code in sorted(set(write_statuses))},
    }


def _pod_rss_mb(master_pid: int) -> float:
    """Resident memory of the whole pod: the master (it serves the metrics) and its workers."""
    master = Path(f"/proc/{master_pid}/status").read_text()
    rss_kb = next(int(line.split()[1]) for line in master.splitlines() if line.startswith("VmRSS:"))
    return round(rss_kb / 1024 + sum(_worker_rss_mb(master_pid).values()), 1)


def _batch_bodies(*, records: int, count: int) -> list[bytes]:
    """`count` batch bodies of `records` records each, fresh texts (every one embedded), the
    records' messages padded towards AUDIT_MAX_BODY_BYTES, so their texts are the longest the
    model reads."""
    from django.conf import settings

    from bench.workload import batch_templates, templates

    (_, template), *_ = batch_templates(templates(count=200, fresh=True), size=records, count=1)
    prefix = time.time_ns()

    def body(number: int, pad: int) -> bytes:
        unique = f"b{prefix}-{number:06d}"
        words = f"words {unique} " + "w" * pad
        return template.replace(b"@ID@", unique.encode()).replace(b"@WORDS@", words.encode())

    # Past ~1,500 characters a text is truncated at the model's 256 tokens anyway; a message
    # holds at most MESSAGE_LENGTH.
    pad = min(2000, max(0, (settings.AUDIT_MAX_BODY_BYTES - len(body(0, 0)) - 1024) // records))
    bodies = [body(number, pad) for number in range(count)]
    assert all(len(body) <= settings.AUDIT_MAX_BODY_BYTES for body in bodies)
    return bodies


def batches(args: argparse.Namespace) -> dict[str, Any]:
    """`concurrency` clients posting maximum-size batches `rounds` times each, each sent again on
    a 503 until stored: the pod's RSS (master and workers, sampled every 100 ms) fresh, warm and
    at its peak, the answers, the refusals, batch times and CPU."""
    bodies = _batch_bodies(records=args.records, count=args.concurrency * args.rounds + 2 * args.workers)
    # As the pod runs (k8s/base/configmap.yaml): glibc's arenas capped, the given workers; the
    # OpenAI-compatible primary (testutils/openai_server.py, 1536-d) or the local model alone.
    overrides = {"MALLOC_ARENA_MAX": "2", "GUNICORN_WORKERS": str(args.workers)}
    with contextlib.ExitStack() as stack:
        if args.embedder == "remote":
            embedder = stack.enter_context(OpenAICompatibleServer())
            overrides.update(EMBEDDING_OPENAI_API_KEY="abuse-bench", EMBEDDING_OPENAI_BASE_URL=embedder.base_url)
        if args.records_in_flight:
            overrides["AUDIT_RECORDS_IN_FLIGHT"] = str(args.records_in_flight)
        server = stack.enter_context(serving(**overrides))

        def post(body: bytes) -> tuple[float, int, str]:
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=300)
            started = time.perf_counter()
            try:
                connection.request("POST", BATCH_PATH, body=body, headers={"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                return (time.perf_counter() - started) * 1000, response.status, response.getheader("Retry-After") or ""
            finally:
                connection.close()

        _probe(server.port, 3)
        fresh = _pod_rss_mb(server.process.pid)
        # Batches one at a time first: every worker's model, pools and caches warm before the
        # baseline, so the peak shows what concurrent batches add.
        for body in bodies[: 2 * args.workers]:
            post(body)
        idle = _pod_rss_mb(server.process.pid)
        peak = [idle]
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.1):
                with contextlib.suppress(OSError, StopIteration):
                    peak.append(_pod_rss_mb(server.process.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        cpu_before = _processes_cpu_s(server.process.pid)
        started = time.monotonic()
        refusals: list[str] = []

        def post_until_stored(body: bytes) -> tuple[float, int, str]:
            # A 503 is sent again after --retry-delay (an impatient client ignores Retry-After).
            while True:
                latency, status, retry_after = post(body)
                if status != 503:
                    return latency, status, retry_after
                refusals.append(retry_after)
                time.sleep(args.retry_delay)

        with ThreadPoolExecutor(args.concurrency) as pool:
            answers = list(pool.map(post_until_stored, bodies[2 * args.workers :]))
        elapsed = time.monotonic() - started
        cpu = _processes_cpu_s(server.process.pid) - cpu_before
        stop.set()
        sampler.join()
    stored = [latency for latency, status, _ in answers if status == 201]
    statuses = [status for _, status, _ in answers]
    return {
        "records_per_batch": args.records,
        "body_bytes": len(bodies[0]),
        "concurrency": args.concurrency,
        "batches": len(answers),
        "seconds": round(elapsed, 1),
        "answers": {str(code): statuses.count(code) for code in sorted(set(statuses))},
        "refused_503": len(refusals),
        "retry_after": sorted(set(refusals)),
        "stored_batch_ms": _percentiles(stored) if stored else None,
        "pod_cpu_s": round(cpu, 1),
        "pod_cpu_s_per_stored_batch": round(cpu / len(stored), 2) if stored else None,
        "workers": args.workers,
        "embedder": args.embedder,
        "records_in_flight": args.records_in_flight or "default",
        "pod_rss_mb_fresh": fresh,
        "pod_rss_mb_warm": idle,
        "pod_rss_mb_peak": max(peak),
    }


def _processes_cpu_s(master_pid: int) -> float:
    """CPU seconds used so far by the master and its workers (utime + stime)."""
    pids = [master_pid, *_worker_rss_mb(master_pid)]
    ticks = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def ddl(args: argparse.Namespace) -> dict[str, Any]:
    """A transaction holding `audit_remediation` (a plain read, as the API pods' role may hold
    one) for `seconds` while `audit_partitions_ensure` creates partitions: what writers see."""
    import psycopg
    from django.db import connection

    connection.ensure_connection()  # the embedded server's socket directory
    address = {"host": connection.settings_dict["HOST"], "user": connection.settings_dict["USER"], "dbname": DATABASE}

    def partitions(database: psycopg.Connection[Any]) -> set[str]:
        rows = database.execute(
            "SELECT child.relname FROM pg_inherits JOIN pg_class child ON child.oid = pg_inherits.inhrelid"
            " WHERE child.relkind = 'r'"
        ).fetchall()
        return {name for (name,) in rows}

    with serving() as server, psycopg.connect(**address, autocommit=True) as owner:
        _probe(server.port, 3)
        quiet = _writes_timed(server.port, seconds=5, writers=args.writers)
        before = partitions(owner)
        with psycopg.connect(**address) as reader:
            reader.execute("SELECT count(*) FROM audit_remediation")  # and the transaction stays open
            started = time.monotonic()
            command = [str(REPO / ".venv" / "bin" / "python"), "manage.py", "audit_partitions_ensure"]
            creator = subprocess.Popen(
                [*command, "--months-ahead", str(args.months_ahead)],
                cwd=REPO,
                env=_env(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            held = _writes_timed(server.port, seconds=args.seconds, writers=args.writers)
            reader.rollback()
        creator.wait(timeout=600)
        ddl_seconds = time.monotonic() - started
        created = partitions(owner) - before
        for name in created:  # the scratch database as it was, for the next run
            owner.execute(f"DROP TABLE {name}")
    return {
        "held_seconds": args.seconds,
        "writers": args.writers,
        "quiet": quiet,
        "while_held": held,
        "partitions_created": len(created),
        "ddl_exit": creator.returncode,
        "ddl_seconds_from_start": round(ddl_seconds, 1),
    }


def _writes_timed(port: int, *, seconds: float, writers: int) -> dict[str, Any]:
    """`writers` threads writing one record after another for `seconds`."""
    latencies: list[float] = []
    statuses: list[int] = []
    deadline = time.monotonic() + seconds

    def writer() -> None:
        while time.monotonic() < deadline:
            latency, status = _timed(lambda: _write(port))
            latencies.append(latency)
            statuses.append(status)

    threads = [threading.Thread(target=writer) for _ in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {
        **_percentiles(latencies),
        "writes": len(statuses),
        "answers": {str(code): statuses.count(code) for code in sorted(set(statuses))},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("slow")
    command.add_argument("--connections", type=int, default=200)
    command.add_argument("--seconds", type=float, default=60)
    command = commands.add_parser("form")
    command.add_argument("--megabytes", type=int, default=150)
    command = commands.add_parser("tokens")
    command.add_argument("--tokens", type=int, default=2000)
    command = commands.add_parser("logins")
    command.add_argument("--logins", type=int, default=90)
    command.add_argument("--concurrency", type=int, default=30)
    command = commands.add_parser("batches")
    command.add_argument("--records", type=int, default=500)
    command.add_argument("--concurrency", type=int, default=16)
    command.add_argument("--rounds", type=int, default=1)
    command.add_argument("--workers", type=int, default=3)
    command.add_argument("--embedder", choices=["remote", "local"], default="remote")
    command.add_argument("--records-in-flight", type=int, default=0, help="AUDIT_RECORDS_IN_FLIGHT (0: the default)")
    command.add_argument("--retry-delay", type=float, default=0.1, help="seconds before sending a 503's batch again")
    command = commands.add_parser("ddl")
    command.add_argument("--seconds", type=float, default=20)
    command.add_argument("--writers", type=int, default=4)
    command.add_argument("--months-ahead", type=int, default=18)
    args = parser.parse_args()
    runs = {"slow": slow, "form": form, "tokens": tokens, "logins": logins, "batches": batches, "ddl": ddl}
    print(json.dumps(runs[args.command](args), indent=2))


if __name__ == "__main__":
    main()
