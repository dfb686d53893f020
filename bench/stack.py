"""The processes a benchmark run owns: its PostgreSQL, the service under gunicorn, and their stats.

The embedded PostgreSQL runs in its own data directory (`.data/bench-postgres`), never the
development or test one, and its database is dropped and created again on every run so that
each run starts from the same prefilled state. This process starts it and therefore stops it
when it exits (kubernaut_storage/database/embedded_postgres.py); gunicorn only attaches to it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
BENCH_DATA_DIR = ROOT / ".data" / "bench-postgres"
BENCH_DATABASE = "kubernaut_bench"
#: Never a real secret: the benchmark's service listens on loopback only.
BENCH_SECRET_KEY = "bench-only-not-a-secret-loopback-only"
SETTINGS_MODULE = "kubernaut_storage.settings.local"
GUNICORN_CONFIG = "kubernaut_storage/gunicorn_config.py"
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True, slots=True)
class BenchDatabase:
    socket_dir: str
    name: str
    data_dir: Path = BENCH_DATA_DIR

    @property
    def conninfo(self) -> str:
        return f"host={self.socket_dir} user=postgres dbname={self.name}"

    def env(self) -> dict[str, str]:
        """What a Django process needs to find this database through the embedded server."""
        return {
            "EMBEDDED_POSTGRES_DIR": str(self.data_dir),
            "EMBEDDED_POSTGRES_DATABASE": self.name,
            "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE,
        }


def bench_database_start(*, database: str = BENCH_DATABASE, data_dir: Path = BENCH_DATA_DIR) -> BenchDatabase:
    """Start the PostgreSQL of `data_dir` (owned by this process), recreate `database`, migrate it."""
    from kubernaut_storage.database.embedded_postgres import embedded_server_start

    socket_dir = embedded_server_start(data_dir=data_dir, database="postgres")
    with psycopg.connect(host=socket_dir, user="postgres", dbname="postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    db = BenchDatabase(socket_dir=socket_dir, name=database, data_dir=data_dir)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env={**os.environ, **db.env()},
        check=True,
    )
    return db


def process_cpu_seconds(pid: int, *, reaped_children: bool = False) -> float:
    """User + system CPU time of one process, from /proc; with `reaped_children`, plus that of
    its children that exited and were waited for."""
    with open(f"/proc/{pid}/stat") as stat:
        # The command name (field 2) may hold spaces; everything after its ')' is fixed.
        fields = stat.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / _CLOCK_TICKS


def machine_busy_seconds() -> float:
    """CPU time all processes of the machine have used, summed over its CPUs (/proc/stat)."""
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal ...: everything but idle and iowait.
    return (sum(fields[:8]) - fields[3] - fields[4]) / _CLOCK_TICKS


def process_peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as file:
            return [int(child) for child in file.read().split()]
    except FileNotFoundError:
        return []


def postgres_cpu_seconds(data_dir: Path = BENCH_DATA_DIR) -> float:
    """CPU time of the PostgreSQL of `data_dir` so far: the postmaster, its live processes
    (backends, checkpointer, WAL writer, ...) and every backend that has exited."""
    with open(data_dir / "postmaster.pid") as file:
        postmaster = int(file.readline())
    total = process_cpu_seconds(postmaster, reaped_children=True)
    for pid in children(postmaster):
        # A backend that exited meanwhile is counted by its parent once reaped; at worst a
        # few ms of one backend are lost between the two reads.
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            total += process_cpu_seconds(pid)
    return total


class Service:
    """kubernaut-storage under gunicorn with the production gunicorn config (gthread)."""

    def __init__(self, *, db: BenchDatabase, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.metrics_url = f"http://127.0.0.1:{free_port()}/metrics"
        self.env = {
            **os.environ,
            **db.env(),
            "DJANGO_SECRET_KEY": BENCH_SECRET_KEY,
            "AUTH_MODE": "none",
            "GUNICORN_BIND": f"127.0.0.1:{self.port}",
            "METRICS_BIND": self.metrics_url.removeprefix("http://").removesuffix("/metrics"),
            # Production's level: one JSON access line per request, into the scenario's log
            # file. Interleaved runs at WARNING were not measurably faster (docs/PERFORMANCE.md).
            "LOG_LEVEL": "INFO",
            # As scripts/run and k8s/base/configmap.yaml set it (fewer malloc arenas, less RSS).
            "MALLOC_ARENA_MAX": "2",
            **env,
        }
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *, timeout_s: float = 60.0) -> Service:
        gunicorn = Path(sys.executable).parent / "gunicorn"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [str(gunicorn), "-c", GUNICORN_CONFIG, "kubernaut_storage.wsgi"],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout_s
        expected = int(self.env.get("GUNICORN_WORKERS", "0")) or None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}; see {self.log_path}")
            if self._answers() and (expected is None or len(self.worker_pids()) >= expected):
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the service did not answer within {timeout_s} s; see {self.log_path}")

    def _answers(self) -> bool:
        # A GET on a POST-only endpoint: Django and DRF loaded, nothing written.
        try:
            urllib.request.urlopen(f"{self.url}/api/v1/audit/remediation", timeout=2)
        except urllib.error.HTTPError as exc:
            return exc.code == 405
        except OSError:
            return False
        return False

    def metric_totals(self) -> dict[str, float]:
        """The service's own view, summed over its workers: `<histogram>_sum`/`_count` of the
        request and embedding-call latencies and of the texts per embedding call."""
        from prometheus_client.parser import text_string_to_metric_families

        with urllib.request.urlopen(self.metrics_url, timeout=5) as response:
            text = response.read().decode()
        wanted = {
            "kubernaut_http_request_duration_seconds": "request_s",
            "kubernaut_embedding_duration_seconds": "embedding_call_s",
            "kubernaut_embedding_batch_texts": "batch_texts",
        }
        totals: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            prefix = wanted.get(family.name)
            if prefix is None:
                continue
            for sample in family.samples:
                for suffix in ("_sum", "_count"):
                    if sample.name == family.name + suffix:
                        key = prefix + suffix
                        totals[key] = totals.get(key, 0.0) + sample.value
        return totals

    @property
    def master_pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def worker_pids(self) -> list[int]:
        return children(self.master_pid)

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None
