"""Measure the abuse cases of docs/SECURITY.md against a real gunicorn (the repo's config).

Run from the repo root; it serves a scratch database of the embedded PostgreSQL (never the test
database, never production), migrated first, with the local model:

    .venv/bin/python bench/scripts/abuse.py slow --connections 200 --seconds 60
    .venv/bin/python bench/scripts/abuse.py form --megabytes 150
    .venv/bin/python bench/scripts/abuse.py tokens --tokens 2000
    .venv/bin/python bench/scripts/abuse.py logins --logins 90 --concurrency 30
    .venv/bin/python bench/scripts/abuse.py connections --kind big-head --connections 80
    .venv/bin/python bench/scripts/abuse.py connections --kind large --connections 200 --with-token
    .venv/bin/python bench/scripts/abuse.py connections --kind idle --connections 5000
    .venv/bin/python bench/scripts/abuse.py metrics-idle --connections 16
    .venv/bin/python bench/scripts/abuse.py schema --concurrency 16 [--rate 50]
    .venv/bin/python bench/scripts/abuse.py unknown-keys --keys 45000 [--shape list]
    .venv/bin/python bench/scripts/abuse.py batches --records 500 --concurrency 16
    .venv/bin/python bench/scripts/abuse.py ddl --seconds 20

Each prints one JSON object with its figures.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import http.client
import json
import multiprocessing
import os
import selectors
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


# --- Bodies judged before they are read; writers through a token flood; password spraying ---

_CSRF_MADE_UP = "csrftoken=" + "a" * 32  # well-formed, so the CSRF check goes on to read the form


@contextlib.contextmanager
def _rss_peaks(master_pid: int) -> Iterator[dict[int, float]]:
    """The highest resident memory of each worker while the block runs, sampled every 100 ms."""
    peaks: dict[int, float] = {}
    stop = threading.Event()

    def sample() -> None:
        for pid, rss in _worker_rss_mb(master_pid).items():
            peaks[pid] = max(peaks.get(pid, 0.0), rss)

    def run() -> None:
        while not stop.wait(0.1):
            sample()

    sample()
    sampler = threading.Thread(target=run, daemon=True)
    sampler.start()
    try:
        yield peaks
    finally:
        stop.set()
        sampler.join()
        sample()


@contextlib.contextmanager
def _probing(port: int) -> Iterator[dict[str, Any]]:
    """/healthz and a valid write, one after the other, on a thread for as long as the block runs."""
    figures: dict[str, Any] = {"failures": 0}
    latencies: dict[str, list[float]] = {"healthz": [], "writes": []}
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            for name, call in (
                ("healthz", lambda: request(port, "GET", "/healthz").status),
                ("writes", lambda: _write(port)),
            ):
                latency, status = _timed(call)
                latencies[name].append(latency)
                figures["failures"] += status not in (200, 201)

    prober = threading.Thread(target=run, daemon=True)
    prober.start()
    try:
        yield figures
    finally:
        stop.set()
        prober.join()
        for name, measured in latencies.items():
            figures[name] = _percentiles(measured or [0.0])


def _body_post(port: int, *, kind: str, path: str, size: int) -> tuple[int, int]:
    """One body of `size` bytes to `path` with a made-up CSRF cookie: (status or 0, bytes the server took)."""
    boundary = "kubernaut-abuse-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="x.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    filler = b"x" * (1024 * 1024)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    sent = 0
    status = 0
    try:
        connection.putrequest("POST", path)
        connection.putheader("Cookie", _CSRF_MADE_UP)
        if kind == "form":
            connection.putheader("Content-Type", "application/x-www-form-urlencoded")
            head, tail = b"username=a&password=", b""
        else:
            connection.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
        if kind == "chunked":
            connection.putheader("Transfer-Encoding", "chunked")
        else:
            connection.putheader("Content-Length", str(len(head) + size + len(tail)))
        connection.endheaders()
        with contextlib.suppress(OSError):
            for piece in (head, *([filler] * (size // len(filler))), filler[: size % len(filler)], tail):
                if piece:
                    connection.send(b"%x\r\n%s\r\n" % (len(piece), piece) if kind == "chunked" else piece)
                    sent += len(piece)
            if kind == "chunked":
                connection.send(b"0\r\n\r\n")
        with contextlib.suppress(OSError, http.client.HTTPException):
            status = connection.getresponse().status
    finally:
        connection.close()
    return status, sent


def bodies(args: argparse.Namespace) -> dict[str, Any]:
    """`connections` clients post bodies of `megabytes` back to back for `seconds` (at least one
    each); worker RSS and probes meanwhile."""
    with serving() as server:
        _probe(server.port, 3)
        quiet = _probe(server.port, 5)
        before = _worker_rss_mb(server.process.pid)
        size = int(args.megabytes * 1024 * 1024)
        started = time.monotonic()

        def client(_: int) -> list[tuple[int, int]]:
            answers = [_body_post(server.port, kind=args.kind, path=args.path, size=size)]
            while time.monotonic() - started < args.seconds:
                answers.append(_body_post(server.port, kind=args.kind, path=args.path, size=size))
            return answers

        with (
            _rss_peaks(server.process.pid) as peaks,
            _probing(server.port) as attacked,
            ThreadPoolExecutor(args.connections) as pool,
        ):
            answers = [answer for answers in pool.map(client, range(args.connections)) for answer in answers]
        elapsed = time.monotonic() - started
        time.sleep(1)
        after = _worker_rss_mb(server.process.pid)
    statuses = [status for status, _ in answers]
    return {
        "kind": args.kind,
        "path": args.path,
        "bodies": len(answers),
        "megabytes_each": args.megabytes,
        "seconds": round(elapsed, 1),
        "answers": {str(code): statuses.count(code) for code in sorted(set(statuses))},
        "megabytes_taken_by_server_max": round(max(sent for _, sent in answers) / 2**20, 1),
        "worker_rss_mb_before": before,
        "worker_rss_mb_peak": peaks,
        "worker_rss_mb_after": after,
        "worker_growth_mb_max": round(max(peaks.get(pid, 0.0) - rss for pid, rss in before.items()), 1),
        "quiet": quiet,
        "under_attack": attacked,
    }


def _post_as(connection: http.client.HTTPConnection, token: str, body: dict[str, Any]) -> int:
    connection.request(
        "POST",
        WRITE_PATH,
        body=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    answer = connection.getresponse()
    answer.read()
    return answer.status


def token_flood(args: argparse.Namespace) -> dict[str, Any]:
    """A sustained flood of invented JWT-shaped tokens from `attacker_addresses` client addresses;
    meanwhile `writers` new writers (each its own address) join, and `cached` writers keep
    writing across their verdicts' expiry (TOKENREVIEW_ACCEPTED_TTL_SECONDS)."""
    account = "system:serviceaccount:kubernaut-system:gateway"
    warm_up_token = jwt_shaped("warm-up")
    cached_tokens = {f"127.0.2.{n + 1}": jwt_shaped(f"cached-{n}") for n in range(args.cached)}
    writer_tokens = {f"127.0.1.{n + 1}": jwt_shaped(f"new-{n}") for n in range(args.writers)}
    attackers = [f"127.0.0.{n + 2}" for n in range(args.attacker_addresses)]
    token_file = REPO / ".data" / "bench-own-token"
    token_file.write_text("bench-own-token")
    with FakeTokenReviewServer(caller_token="bench-own-token") as api:
        for token in (warm_up_token, *cached_tokens.values(), *writer_tokens.values()):
            api.tokens[token] = (account, [], [])
        overrides = {
            "AUTH_MODE": "tokenreview",
            "TOKENREVIEW_API_URL": api.url,
            "TOKENREVIEW_TOKEN_FILE": str(token_file),
            "TOKENREVIEW_ACCEPTED_TTL_SECONDS": str(args.ttl),
        }
        with serving(**overrides) as server:
            port = server.port
            # Every worker loads its model and fills its pools before anything is measured.
            for _ in range(24):
                _write(port, {"Authorization": f"Bearer {warm_up_token}"})
            stop = threading.Event()
            flooding = threading.Event()
            # Each cached writer keeps one connection (one worker, one cache) and writes every 0.2 s.
            cached_log: dict[str, list[tuple[float, float, int]]] = {address: [] for address in cached_tokens}

            def cached_writer(address: str) -> None:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(address, 0))
                while not stop.is_set():
                    at = time.monotonic()
                    try:
                        status = _post_as(connection, cached_tokens[address], VALID_BODIES[AuditKind.REMEDIATION]())
                    except (OSError, http.client.HTTPException):
                        connection.close()
                        status = 0
                    cached_log[address].append((at, (time.monotonic() - at) * 1000, status))
                    stop.wait(0.2)
                connection.close()

            healthz: list[tuple[float, float]] = []

            def healthz_prober() -> None:
                while not stop.wait(0.1):
                    at = time.monotonic()
                    latency, _ = _timed(lambda: request(port, "GET", "/healthz").status)
                    healthz.append((at, latency))

            flood_answers: dict[int, int] = {}
            flood_lock = threading.Lock()

            def flooder(n: int) -> None:
                connection = http.client.HTTPConnection(
                    "127.0.0.1", port, timeout=30, source_address=(attackers[n % len(attackers)], 0)
                )
                sent = 0
                while not stop.is_set():
                    try:
                        status = _post_as(connection, jwt_shaped(f"bogus-{n}-{sent}"), {})
                    except (OSError, http.client.HTTPException):
                        connection.close()
                        status = 0
                    sent += 1
                    with flood_lock:
                        flood_answers[status] = flood_answers.get(status, 0) + 1
                connection.close()

            threads = [threading.Thread(target=cached_writer, args=(a,)) for a in cached_tokens]
            threads.append(threading.Thread(target=healthz_prober))
            for thread in threads:
                thread.start()
            time.sleep(args.quiet)
            flood_started = time.monotonic()
            flooding.set()
            reviews_before = api.request_count
            flooders = [threading.Thread(target=flooder, args=(n,)) for n in range(args.connections)]
            for thread in flooders:
                thread.start()
            time.sleep(5)

            def new_writer(address: str) -> int:
                """Attempts until a 201 (a 503 is retried after its Retry-After); 0 when never."""
                for attempt in range(1, args.retries + 2):
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(address, 0))
                    try:
                        status = _post_as(connection, writer_tokens[address], VALID_BODIES[AuditKind.REMEDIATION]())
                    except (OSError, http.client.HTTPException):
                        status = 0
                    finally:
                        connection.close()
                    if status == 201:
                        return attempt
                    time.sleep(1.0)
                return 0

            with ThreadPoolExecutor(args.writers) as pool:
                futures = []
                for address in writer_tokens:
                    futures.append(pool.submit(new_writer, address))
                    time.sleep(0.3)
                attempts = [future.result() for future in futures]
            remaining = args.quiet + args.ttl + 15 - (time.monotonic() - flood_started + args.quiet)
            time.sleep(max(0.0, remaining))
            stop.set()
            for thread in (*threads, *flooders):
                thread.join()
            flood_seconds = time.monotonic() - flood_started
            reviews = api.request_count - reviews_before

    def refused_streak_s(log: list[tuple[float, float, int]]) -> float:
        longest, since = 0.0, None
        for at, _, status in log:
            if status != 201 and since is None:
                since = at
            elif status == 201 and since is not None:
                longest, since = max(longest, at - since), None
        return round(longest, 1)

    cached_all = [entry for log in cached_log.values() for entry in log]
    quiet_writes = [latency for at, latency, _ in cached_all if at < flood_started]
    attacked_writes = [latency for at, latency, _ in cached_all if at >= flood_started]
    cached_statuses = [status for at, _, status in cached_all if at >= flood_started]
    flood_total = sum(flood_answers.values())
    return {
        "flood": {
            "connections": args.connections,
            "addresses": len(attackers),
            "seconds": round(flood_seconds, 1),
            "requests_per_second": round(flood_total / flood_seconds),
            "answers": {str(code): count for code, count in sorted(flood_answers.items())},
            "reviews": reviews,
        },
        "new_writers": {
            "count": args.writers,
            "accepted_first_try": attempts.count(1),
            "attempts_histogram": {str(n): attempts.count(n) for n in sorted(set(attempts))},
            "refused_after_all_retries": attempts.count(0),
        },
        "cached_writers": {
            "count": args.cached,
            "accepted_ttl_s": args.ttl,
            "answers": {str(code): cached_statuses.count(code) for code in sorted(set(cached_statuses))},
            "longest_refused_streak_s": max(refused_streak_s(log) for log in cached_log.values()),
        },
        "quiet": {
            "healthz": _percentiles([latency for at, latency in healthz if at < flood_started] or [0.0]),
            "writes": _percentiles(quiet_writes or [0.0]),
        },
        "under_attack": {
            "healthz": _percentiles([latency for at, latency in healthz if at >= flood_started] or [0.0]),
            "writes": _percentiles(attacked_writes or [0.0]),
        },
    }


def _sign_in(port: int, username: str, password: str, *, cookies: dict[str, str]) -> int:
    """The admin's login form as a browser posts it, `cookies` its cookie jar (updated)."""

    def call(method: str, body: bytes | None) -> http.client.HTTPResponse:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        connection.request(method, "/admin/login/?next=/admin/", body=body, headers=headers)
        answer = connection.getresponse()
        answer.read()
        connection.close()
        for name, value in answer.getheaders():
            if name.lower() == "set-cookie":
                key, _, rest = value.partition("=")
                cookies[key] = rest.split(";", 1)[0]
        return answer

    if "csrftoken" not in cookies:
        call("GET", None)
    form = f"csrfmiddlewaretoken={cookies['csrftoken']}&username={username}&password={password}"
    return call("POST", form.encode()).status


def spray(args: argparse.Namespace) -> dict[str, Any]:
    """One address tries one common password over `usernames` distinct usernames, `concurrency`
    at a time; an auditor who signed in from their browser before, and one who never did, then
    sign in from the same address."""
    env = _env()
    with serving() as server:
        create = (
            "from django.contrib.auth import get_user_model; U = get_user_model(); "
            "[U.objects.filter(username=n).exists() or U.objects.create_user(n, password='right-password', "
            "is_staff=True) for n in ('bench-known', 'bench-new')]"
        )
        _manage("shell", "-v", "0", "-c", create, env=env)
        # The scratch database keeps the last run's failures.
        python = str(REPO / ".venv" / "bin" / "python")
        subprocess.run([python, "manage.py", "axes_reset"], cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL)
        known_browser: dict[str, str] = {}
        assert _sign_in(server.port, "bench-known", "right-password", cookies=known_browser) == 302
        known_browser.pop("sessionid", None)  # signed out; the browser keeps its other cookies
        quiet = _probe(server.port, 5)

        def attempt(n: int) -> int:
            return _sign_in(server.port, f"sprayed-{n}", "Winter2025!", cookies={})

        started = time.monotonic()
        with _probing(server.port) as attacked, ThreadPoolExecutor(args.concurrency) as pool:
            answers = list(pool.map(attempt, range(args.usernames)))
        elapsed = time.monotonic() - started
        known = _sign_in(server.port, "bench-known", "right-password", cookies=known_browser)
        new = _sign_in(server.port, "bench-new", "right-password", cookies={})
    return {
        "usernames": args.usernames,
        "seconds": round(elapsed, 1),
        "tries_per_second": round(args.usernames / elapsed, 1),
        "answers": {str(code): answers.count(code) for code in sorted(set(answers))},
        "hashed": answers.count(200),
        "after_the_spray": {"auditor_signed_in_here_before": known, "auditor_new_here": new},
        "quiet": quiet,
        "under_attack": attacked,
    }


# --- Attacks on the serving layer: connections that deliver part of a request, or nothing ---


class _Reopener:
    """Keeps `count` connections open to `port`, each having sent `payload` (then nothing), and
    opens a new one `reopen_delay_s` after the server closes one: an attacker holding its
    connections, not a flood (reopened at once, every attack becomes a request flood).

    It runs in a process of its own, so its work never delays the measuring client's threads.
    """

    def __init__(self, port: int, count: int, payload: bytes, *, reopen_delay_s: float = 1.0) -> None:
        context = multiprocessing.get_context("fork")
        self._stop = context.Event()
        self._results = context.SimpleQueue()
        self._process = context.Process(
            target=_reopen_forever, args=(port, count, payload, reopen_delay_s, self._stop, self._results), daemon=True
        )
        self.reopened = 0
        self.answered: dict[bytes, int] = {}  # status lines the server sent before closing

    def __enter__(self) -> _Reopener:
        self._process.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.reopened, self.answered = self._results.get()
        self._process.join()


def _reopen_forever(port: int, count: int, payload: bytes, reopen_delay_s: float, stop: Any, results: Any) -> None:
    selector = selectors.DefaultSelector()
    due: collections.deque[float] = collections.deque()  # when each closed connection reopens
    reopened = 0
    answered: dict[bytes, int] = {}
    held: list[socket.socket] = []
    hold_closed = payload == _ATTACK_PAYLOADS["no-close"]

    def open_one() -> None:
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
        # What is left to send; None once it is all sent and the connection only waits.
        selector.register(sock, selectors.EVENT_WRITE, memoryview(payload))

    def reopen(sock: socket.socket, *, hold: bool = False) -> None:
        nonlocal reopened
        selector.unregister(sock)
        if hold:  # the server is done with it; this client never closes its side
            held.append(sock)
        else:
            sock.close()
        reopened += 1
        due.append(time.monotonic() + reopen_delay_s)

    for _ in range(count):
        open_one()
    while not stop.is_set():
        while due and due[0] <= time.monotonic():
            due.popleft()
            open_one()
        for key, _ in selector.select(timeout=0.05):
            sock: socket.socket = key.fileobj  # type: ignore[assignment]
            if key.data is not None:  # still sending
                try:
                    rest = key.data[sock.send(key.data) if key.data else 0 :]
                except BlockingIOError:
                    continue
                except OSError:
                    reopen(sock)
                    continue
                selector.modify(sock, selectors.EVENT_WRITE if rest else selectors.EVENT_READ, rest if rest else None)
                continue
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if data.startswith(b"HTTP/"):
                status = data.split(b"\r\n", 1)[0]
                answered[status] = answered.get(status, 0) + 1
            if not data:
                reopen(sock, hold=hold_closed)
    results.put((reopened, answered))
    for sock in held:
        sock.close()
    for key in list(selector.get_map().values()):
        key.fileobj.close()  # type: ignore[union-attr]


def _timed_probe(port: int, seconds: float, *, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """/healthz, /readyz and a valid write in turn for `seconds`, each on a new connection."""
    calls = {
        "healthz": lambda: request(port, "GET", "/healthz").status,
        "readyz": lambda: request(port, "GET", "/readyz").status,
        "writes": lambda: _write(port, headers),
    }
    latencies: dict[str, list[float]] = {name: [] for name in calls}
    failures = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for name, call in calls.items():
            latency, status = _timed(call)
            latencies[name].append(latency)
            failures += status not in (200, 201)
    return {**{name: _percentiles(values) for name, values in latencies.items()}, "failures": failures}


_ATTACK_PAYLOADS = {
    # A head over the worker's 64 KiB cap whose last line never ends.
    "big-head": b"GET /healthz HTTP/1.1\r\nHost: storage\r\nX-Long: " + b"a" * 70_000,
    # One complete request, and the start of a second behind it.
    "pipelined": b"GET /healthz HTTP/1.1\r\nHost: storage\r\n\r\nGET /healthz HTTP/1.1\r\nHost: storage\r\n",
    # Bodies that stop: chunked, after Expect: 100-continue, and over 1 MiB.
    "chunked": b"Transfer-Encoding: chunked\r\n\r\n100\r\n" + b"x" * 100,
    "expect": b"Expect: 100-continue\r\nContent-Length: 1000\r\n\r\n",
    "large": b"Content-Length: 3000000\r\n\r\n" + b" " * 200_000,
    # Just under 1 MiB of a body just over it: what the worker buffers in its loop.
    "mebibyte": b"Content-Length: 1048000\r\n\r\n" + b" " * 1_000_000,
    # Nothing at all: the connection is opened and left idle.
    "idle": b"",
    # A whole request that asks the server to close, from a client that never closes its side.
    "no-close": b"GET /healthz HTTP/1.1\r\nHost: storage\r\nConnection: close\r\n\r\n",
}
_BODY_KINDS = ("chunked", "expect", "large", "mebibyte")


def _attack_payload(kind: str, token: str | None) -> bytes:
    if kind not in _BODY_KINDS:
        return _ATTACK_PAYLOADS[kind]
    head = f"POST {WRITE_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    if token:
        head += f"Authorization: Bearer {token}\r\n"
    return head.encode() + _ATTACK_PAYLOADS[kind]


def connections(args: argparse.Namespace) -> dict[str, Any]:
    """`connections` attacking connections of one kind, reopened as soon as they are closed."""
    good = jwt_shaped("bench-writer")
    with contextlib.ExitStack() as stack:
        overrides: dict[str, str] = {}
        headers = None
        if args.with_token:
            api = stack.enter_context(FakeTokenReviewServer(caller_token="bench-own-token"))
            api.tokens[good] = ("system:serviceaccount:kubernaut-system:gateway", [], [])
            token_file = REPO / ".data" / "bench-own-token"
            token_file.write_text("bench-own-token")
            overrides = {"AUTH_MODE": "tokenreview", "TOKENREVIEW_API_URL": api.url}
            overrides["TOKENREVIEW_TOKEN_FILE"] = str(token_file)
            headers = {"Authorization": f"Bearer {good}"}
        server = stack.enter_context(serving(**overrides))
        _timed_probe(server.port, 3, headers=headers)  # warm-up: model loaded, pools filled, verdicts cached
        quiet = _timed_probe(server.port, args.seconds, headers=headers)
        rss_before = _worker_rss_mb(server.process.pid)
        with contextlib.ExitStack() as attack:
            tokened = args.connections // 2 if args.with_token else 0
            attackers = [
                attack.enter_context(_Reopener(server.port, tokened, _attack_payload(args.kind, good))),
                attack.enter_context(
                    _Reopener(server.port, args.connections - tokened, _attack_payload(args.kind, None))
                ),
            ]
            time.sleep(1)
            attacked = _timed_probe(server.port, args.seconds, headers=headers)
            rss_during = _worker_rss_mb(server.process.pid)
        answered: dict[str, int] = {}
        for attacker in attackers:
            for status, count in attacker.answered.items():
                answered[status.decode()] = answered.get(status.decode(), 0) + count
    return {
        "kind": args.kind,
        "connections": args.connections,
        "with_token": args.with_token,
        "quiet": quiet,
        "under_attack": attacked,
        "attack_connections_closed_by_server": sum(attacker.reopened for attacker in attackers),
        "answers_to_attackers": answered,
        "worker_rss_mb": {"before": rss_before, "during": rss_during},
    }


def metrics_idle(args: argparse.Namespace) -> dict[str, Any]:
    """Idle connections to the metrics port, reopened as they are closed, and 20 scrapes."""
    with serving() as server, _Reopener(server.metrics_port, args.connections, b"") as attacker:
        time.sleep(1)
        answers: list[int] = []
        latencies: list[float] = []
        for _ in range(args.scrapes):
            latency, status = _timed(lambda: server.scrape().status)
            answers.append(status)
            latencies.append(latency)
            time.sleep(0.25)
    return {
        "idle_connections": args.connections,
        "scrapes": {str(code): answers.count(code) for code in sorted(set(answers))},
        "scrape_latency": _percentiles(latencies),
        "reopened": attacker.reopened,
    }


def schema(args: argparse.Namespace) -> dict[str, Any]:
    """A flood of GET /api/schema/ on fresh workers, writes alongside."""
    with serving() as server:
        statuses: list[int] = []
        done = threading.Event()

        # --rate: at most this many requests per second in all (0: as fast as they are answered).
        interval = args.concurrency / args.rate if args.rate else 0.0

        def flood() -> None:
            while not done.is_set():
                started = time.monotonic()
                statuses.append(_timed(lambda: request(server.port, "GET", "/api/schema/").status)[1])
                time.sleep(max(0.0, interval - (time.monotonic() - started)))

        flooders = [threading.Thread(target=flood) for _ in range(args.concurrency)]
        for thread in flooders:
            thread.start()
        started = time.monotonic()
        attacked = _probe(server.port, args.seconds)
        elapsed = time.monotonic() - started
        done.set()
        for thread in flooders:
            thread.join()
        quiet = _probe(server.port, args.seconds)
    return {
        "schema_requests_per_s": round(len(statuses) / elapsed, 1),
        "schema_answers": {str(code): statuses.count(code) for code in sorted(set(statuses))},
        "quiet": quiet,
        "under_attack": attacked,
    }


def _workers_cpu_s(master_pid: int) -> float:
    ticks = 0
    for pid in _worker_rss_mb(master_pid):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime + stime
    return ticks / os.sysconf("SC_CLK_TCK")


def unknown_keys(args: argparse.Namespace) -> dict[str, Any]:
    """One body with `keys` invalid parts: the answer's size and the workers' CPU for it.

    --shape keys: unknown keys; list: a list field of that many invalid items.
    """
    kind = AuditKind.REMEDIATION if args.shape == "keys" else AuditKind.EXECUTION
    body = VALID_BODIES[kind]()
    if args.shape == "keys":
        body.update({f"k{index:05d}": 1 for index in range(args.keys)})
    else:
        body["validationWarnings"] = [1] * args.keys
    payload = json.dumps(body).encode()
    with serving(GUNICORN_WORKERS="1") as server:
        _probe(server.port, 2)
        answers = []
        for _ in range(args.repeat):
            cpu_before = _workers_cpu_s(server.process.pid)
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
            started = time.perf_counter()
            path = f"/api/v1/audit/{kind.value}"
            connection.request("POST", path, body=payload, headers={"Content-Type": "application/json"})
            answer = connection.getresponse()
            content = answer.read()
            latency_ms = (time.perf_counter() - started) * 1000
            connection.close()
            time.sleep(0.2)
            answers.append(
                {
                    "status": answer.status,
                    "answer_bytes": len(content),
                    "errors_listed": len(json.loads(content).get("errors", [])),
                    "latency_ms": round(latency_ms, 1),
                    "worker_cpu_s": round(_workers_cpu_s(server.process.pid) - cpu_before, 2),
                }
            )
    return {"body_bytes": len(payload), "shape": args.shape, "invalid_parts": args.keys, "answers": answers}


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
    command = commands.add_parser("bodies")
    command.add_argument("--kind", choices=("multipart", "chunked", "form"), default="multipart")
    command.add_argument("--path", default="/admin/login/")
    command.add_argument("--megabytes", type=float, default=300)
    command.add_argument("--connections", type=int, default=4)
    command.add_argument("--seconds", type=float, default=0)
    command = commands.add_parser("token-flood")
    command.add_argument("--connections", type=int, default=80)
    command.add_argument("--attacker-addresses", type=int, default=1)
    command.add_argument("--writers", type=int, default=31)
    command.add_argument("--retries", type=int, default=10)
    command.add_argument("--cached", type=int, default=8)
    command.add_argument("--ttl", type=float, default=60)
    command.add_argument("--quiet", type=float, default=5)
    command = commands.add_parser("spray")
    command.add_argument("--usernames", type=int, default=90)
    command.add_argument("--concurrency", type=int, default=30)
    command = commands.add_parser("connections")
    command.add_argument("--kind", choices=sorted(_ATTACK_PAYLOADS), required=True)
    command.add_argument("--connections", type=int, default=80)
    command.add_argument("--seconds", type=float, default=20)
    command.add_argument("--with-token", action="store_true", help="half the attackers send a writer's token")
    command = commands.add_parser("metrics-idle")
    command.add_argument("--connections", type=int, default=16)
    command.add_argument("--scrapes", type=int, default=20)
    command = commands.add_parser("schema")
    command.add_argument("--concurrency", type=int, default=16)
    command.add_argument("--rate", type=float, default=0, help="requests per second in all; 0: unthrottled")
    command.add_argument("--seconds", type=float, default=20)
    command = commands.add_parser("unknown-keys")
    command.add_argument("--keys", type=int, default=45_000)
    command.add_argument("--shape", choices=("keys", "list"), default="keys")
    command.add_argument("--repeat", type=int, default=3)
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
    runs = {"slow": slow, "form": form, "tokens": tokens, "logins": logins}
    runs |= {"bodies": bodies, "token-flood": token_flood, "spray": spray}
    runs |= {"connections": connections, "metrics-idle": metrics_idle, "schema": schema, "unknown-keys": unknown_keys}
    runs |= {"batches": batches, "ddl": ddl}
    print(json.dumps(runs[args.command](args), indent=2))


if __name__ == "__main__":
    main()
