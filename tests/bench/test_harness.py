"""The benchmark harness (python -m bench), each piece on a tiny run, so that it cannot rot:
the prefill, the Lua script under wrk against the real service, wrk's result line, the
ceiling writer and the report. Timing targets live in the benchmark, never here."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.signals import request_finished, request_started
from django.db import connection

from audit.models import AUDIT_MODELS, AuditKind
from bench.ceiling import ceiling_run, ceiling_statements
from bench.prefill import prefill
from bench.report import summary_line, table
from bench.workload import templates, templates_write
from bench.wrk import parse_wrk_output, wrk_run
from embeddings.models import IncidentEmbedding
from testutils.audit_rows import table_counts

# The harness writes over its own connections, which must see committed data and commit.
pytestmark = pytest.mark.django_db(transaction=True)

WRK_OUTPUT = """Running 1s test @ http://127.0.0.1:8080
  2 threads and 4 connections
BENCH_RESULT {"requests": 120, "duration_us": 1000000, "non2xx": 1, "errors_connect": 0, \
"errors_read": 2, "errors_write": 0, "errors_timeout": 3, "latency_mean_us": 3300.5, \
"latency_p50_us": 3000, "latency_p95_us": 7000, "latency_p99_us": 9000, "latency_max_us": 12000}
"""


def _conninfo() -> str:
    settings = connection.settings_dict
    return f"host={settings['HOST']} user={settings['USER']} dbname={settings['NAME']}"


@pytest.fixture
def template_file(tmp_path: Path) -> Path:
    return templates_write(tmp_path / "templates.tsv", templates(count=8, fresh=True))


def test_wrk_result_line_is_parsed():
    result = parse_wrk_output(WRK_OUTPUT)
    assert (result.requests, result.per_s, result.non2xx) == (120, 120.0, 1)
    assert (result.socket_errors, result.timeouts) == (2, 3)
    assert (result.p50_ms, result.p95_ms, result.p99_ms, result.max_ms) == (3.0, 7.0, 9.0, 12.0)


def test_wrk_output_without_a_result_line_is_an_error():
    with pytest.raises(ValueError, match="BENCH_RESULT"):
        parse_wrk_output("Running 1s test\n  0 requests\n")


def test_prefill_fills_every_kind_with_one_embedding_each():
    before = table_counts()
    filled = prefill(_conninfo(), records=40)
    after = table_counts()
    assert filled.primary_vectors + filled.local_vectors == 40
    assert sum(after[kind.value] - before[kind.value] for kind in AuditKind) == 40
    assert after["embeddings"] - before["embeddings"] == 40
    assert {(row.model, row.dimensions) for row in IncidentEmbedding.objects.all()} <= {
        ("text-embedding-3-small", 1536),
        ("all-MiniLM-L6-v2", 384),
    }


def test_ceiling_writer_sends_the_services_statement(template_file):
    statements = ceiling_statements(template_file, count=8)
    assert all(statement.sql.startswith('WITH audit AS (INSERT INTO "audit_') for statement in statements)
    before = table_counts()

    result = ceiling_run(_conninfo(), statements, connections=2, duration_s=0.5, warmup_s=0.1)

    assert result.errors == 0
    assert result.writes_per_s > 0
    after = table_counts()
    written = sum(after[kind.value] - before[kind.value] for kind in AuditKind)
    assert written >= len(result.latencies_s)
    assert after["embeddings"] - before["embeddings"] == written
    assert IncidentEmbedding.objects.filter(model="text-embedding-3-small", dimensions=1536).count() == written


class _RequestsInFlight:
    """Requests the in-process live server is handling. wrk stops at its deadline with requests
    still being written; the test's teardown TRUNCATEs the tables, which deadlocks with such a
    write, so the test waits for the server to finish them first."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def started(self, **kwargs: Any) -> None:
        with self._lock:
            self.count += 1

    def finished(self, **kwargs: Any) -> None:
        with self._lock:
            self.count -= 1

    def wait_idle(self, *, quiet_s: float = 0.2, timeout_s: float = 30) -> bool:
        """True once no request has been in flight for `quiet_s` (a request read from a socket
        wrk had already closed still starts after the last one ended)."""
        deadline = time.monotonic() + timeout_s
        idle_since = None
        while time.monotonic() < deadline:
            if self.count:
                idle_since = None
            elif idle_since is None:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since >= quiet_s:
                return True
            time.sleep(0.01)
        return False


@pytest.fixture
def requests_in_flight() -> Iterator[_RequestsInFlight]:
    in_flight = _RequestsInFlight()
    request_started.connect(in_flight.started)
    request_finished.connect(in_flight.finished)
    yield in_flight
    request_started.disconnect(in_flight.started)
    request_finished.disconnect(in_flight.finished)


def test_wrk_and_the_lua_script_write_fresh_records_through_the_service(live_server, template_file, requests_in_flight):
    assert shutil.which("wrk"), "wrk is not installed: scripts/test and python -m bench install it"
    result = wrk_run(url=live_server.url, templates=template_file, concurrency=2, duration_s=1, threads=1)
    assert requests_in_flight.wait_idle()
    assert result.requests > 0
    assert (result.non2xx, result.socket_errors, result.timeouts) == (0, 0, 0)
    names = [row.name for kind in AuditKind for row in AUDIT_MODELS[kind].objects.all()]
    assert len(names) == len(set(names)) >= result.requests  # every request a new record


def test_the_summary_line_puts_cached_beside_the_ceiling():
    rows = [
        {"scenario": "cached", "concurrency": 16, "requests": 100, "writes_per_s": 512.34, "p50_ms": 20.0,
         "p95_ms": 40.5, "p99_ms": 60.25, "non2xx": 0, "errors": 0, "postgres_cpu_pct": 30.0,
         "workers": [{"pid": 1, "cpu_pct": 80.0, "peak_rss_mb": 120.0}]},
        {"scenario": "ceiling", "concurrency": 16, "requests": 900, "writes_per_s": 1024.68, "p50_ms": 5.0,
         "p95_ms": 9.0, "p99_ms": 12.0, "non2xx": None, "errors": 0},
    ]  # fmt: skip
    assert summary_line(rows) == (
        "scenario=cached writes_per_s=512.3 p50_ms=20.0 p95_ms=40.5 p99_ms=60.2 ceiling_writes_per_s=1024.7 ratio=0.50"
    )
    lines = table(rows).splitlines()
    assert len(lines) == 4
    assert "80%/120MB" in lines[2]
