"""`python -m bench faults`: the service under steady load while its dependencies fail.

Two instances of the service (gunicorn with the production config, as two pods; the second
with EMBEDDING_FALLBACK=none, so embedding faults leave records pending) behind a
balancer that routes like a Kubernetes Service (bench/faults/load.py), their own PostgreSQL
(.data/faults-postgres, the runtime role's 5 s statement and idle-in-transaction timeouts
set on the database), their own redis-server and an OpenAI-compatible embedding API
answering in 20 ms. Clients post fresh records (every write needs an embedding) and retry
503s and dropped connections with the same Idempotency-Key.

For each fault (bench/faults/injection.py): steady load, the fault, its removal, the wait
until every instance is ready and writes succeed again, the clients finish their records;
then the database is checked (bench/faults/checks.py) — every acknowledged record stored
exactly once under its id, with its embedding or pending — `embeddings_backfill` runs and
must leave nothing pending, and every answer a client saw must have been a 201 or a 503 with
Retry-After (or, for the killed worker only, a connection closed without an answer).

The time to recover is measured from the fault's removal: until every instance is ready
again, and until the last failed attempt. Exit status 1 when any fault's verdict is "fail".
`--short` is the form CI runs (tests/bench/test_faults.py): every fault but the 60 s outage,
shorter.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import math
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from bench import stack
from bench.cli import log
from bench.faults.checks import backfill_run, records_check, stored_state
from bench.faults.injection import FAULTS, FAULTS_BY_NAME, Fault, FaultStack, Injected
from bench.faults.load import CLIENT_TIMEOUT_S, READY, Attempt, Balancer, Instance, Load, outcome_counts

FAULTS_DATA_DIR = stack.ROOT / ".data" / "faults-postgres"
FAULTS_DATABASE = "kubernaut_faults"
WORK_DIR = stack.ROOT / ".data" / "faults"
RESULTS_DIR = stack.ROOT / "bench" / "results"
#: A record still undelivered this long after its first attempt is given up (it outlasts the
#: longest outage and its recovery).
GIVE_UP_S = 150.0
#: After a fault is removed, recovery is awaited this long at most.
RECOVERY_TIMEOUT_S = 90.0
EMBEDDER_DELAY_S = 0.02
BASELINE = Fault("baseline", lambda fault, duration_s: _no_fault(), 0, 0, "no fault: the steady state")


def _no_fault() -> Injected:
    now = time.monotonic()
    return Injected(started=now, removed=now)


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench faults", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    names = ", ".join(fault.name for fault in FAULTS)
    parser.add_argument("--faults", help=f"comma-separated, of: {names} (default: all; --short: all but postgres-60s)")
    parser.add_argument("--short", action="store_true", help="the CI form: shorter faults and steady phases")
    parser.add_argument("--clients", type=int, default=8, help="client threads (default 8)")
    parser.add_argument("--think-ms", type=float, default=50.0, help="mean pause between a client's records")
    parser.add_argument("--instances", type=int, default=2, help="service instances behind the balancer (default 2)")
    parser.add_argument("--workers", type=int, default=2, help="GUNICORN_WORKERS per instance (default 2)")
    parser.add_argument("--steady", type=float, help="seconds of load before each fault (default 5; --short: 2)")
    parser.add_argument("--output", type=Path, help="JSON results file (default bench/results/faults-<time>.json)")
    args = parser.parse_args(argv)
    if args.faults:
        args.faults = [name.strip() for name in args.faults.split(",") if name.strip()]
        unknown = set(args.faults) - set(FAULTS_BY_NAME)
        if unknown:
            parser.error(f"unknown faults: {', '.join(sorted(unknown))}")
    else:
        args.faults = [fault.name for fault in FAULTS if not args.short or fault.short_duration_s is not None]
    if args.steady is None:
        args.steady = 2.0 if args.short else 5.0
    return args


def main(argv: list[str]) -> None:
    run = faults_run(_arguments(argv))
    sys.exit(0 if run["passed"] else 1)


def faults_run(args: argparse.Namespace) -> dict[str, Any]:
    import psycopg
    from psycopg import sql

    logging.basicConfig(level=logging.WARNING)
    started_at = dt.datetime.now(dt.UTC)
    log(f"starting PostgreSQL in {FAULTS_DATA_DIR.relative_to(stack.ROOT)}")
    db = stack.bench_database_start(database=FAULTS_DATABASE, data_dir=FAULTS_DATA_DIR)
    with psycopg.connect(host=db.socket_dir, user="postgres", dbname="postgres", autocommit=True) as connection:
        # As k8s/sql/roles.sql bounds the runtime role: no statement or idle transaction
        # holds a pooled connection for more than 5 s.
        for setting in ("statement_timeout", "idle_in_transaction_session_timeout"):
            connection.execute(
                sql.SQL("ALTER DATABASE {} SET {} = '5s'").format(sql.Identifier(db.name), sql.Identifier(setting))
            )
    os.environ.update(db.env())
    import django

    django.setup()
    from bench.workload import templates
    from testutils.openai_server import OpenAICompatibleServer
    from testutils.redis_server import RedisServer

    redis = RedisServer().start()
    embedder = OpenAICompatibleServer(mode="slow", delay_s=EMBEDDER_DELAY_S).start()
    env = _service_env(args, redis_url=redis.url, embedder_url=embedder.base_url)
    instances = [
        Instance(
            name=f"pod-{number}",
            service=stack.Service(
                db=db,
                env={**env, **_fallback(number, args.instances)},
                log_path=WORK_DIR / f"gunicorn-pod-{number}.log",
            ),
        )
        for number in range(args.instances)
    ]
    balancer = Balancer(instances)
    faults = [BASELINE, *(FAULTS_BY_NAME[name] for name in args.faults)]
    rows = []
    try:
        for instance in instances:
            instance.service.start()
        balancer.start()
        fault_stack = FaultStack(
            db=db,
            redis=redis,
            embedder=embedder,
            instances=instances,
            balancer=balancer,
        )
        bodies = templates(count=200, fresh=True)
        tag = f"f{started_at:%H%M%S}"
        for fault in faults:
            duration_s = fault.short_duration_s if args.short else fault.duration_s
            log(f"{fault.name}: {fault.description}")
            row = _phase(fault, duration_s or 0.0, fault_stack, bodies=bodies, tag=tag, args=args, env=env)
            rows.append(row)
            log("  " + _row_line(row))
    finally:
        balancer.stop()
        for instance in instances:
            instance.service.stop()
        embedder.stop()
        redis.stop()

    run = {
        "command": "python -m bench " + shlex.join(sys.argv[1:]),
        "started_at": started_at.isoformat(),
        "machine": {"cpus": os.cpu_count(), "loadavg": os.getloadavg()},
        "options": {key: value for key, value in vars(args).items() if key != "output"},
        "faults": rows,
        "passed": all(row["verdict"] == "pass" for row in rows),
    }
    from bench.report import results_write

    path = args.output or RESULTS_DIR / f"faults-{started_at:%Y%m%dT%H%M%SZ}.json"
    results_write(path, run)
    print()
    print(faults_table(rows))
    print()
    print(f"results: {path.relative_to(stack.ROOT) if path.is_relative_to(stack.ROOT) else path}")
    print("PASSED" if run["passed"] else "FAILED: " + ", ".join(r["fault"] for r in rows if r["verdict"] != "pass"))
    return run


def _service_env(args: argparse.Namespace, *, redis_url: str, embedder_url: str) -> dict[str, str]:
    return {
        "REDIS_URL": redis_url,
        "EMBEDDING_OPENAI_API_KEY": "faults-key",
        "EMBEDDING_OPENAI_BASE_URL": embedder_url,
        "OPENAI_API_KEY": "",
        "GUNICORN_WORKERS": str(args.workers),
        # The balancer polls /readyz every 0.1 s: two seconds of "draining" take an instance
        # out of rotation long before gunicorn stops accepting.
        "GUNICORN_DRAIN_DELAY_SECONDS": "2",
    }


def _fallback(number: int, instances: int) -> dict[str, str]:
    """The last of several instances defers instead of using the local model (a supported
    configuration: every vector is then the primary's), so that the embedding faults leave
    pending records for `embeddings_backfill` as well as fallback vectors."""
    return {"EMBEDDING_FALLBACK": "none" if instances > 1 and number == instances - 1 else "local"}


def _phase(
    fault: Fault,
    duration_s: float,
    fault_stack: FaultStack,
    *,
    bodies: list[tuple[str, bytes]],
    tag: str,
    args: argparse.Namespace,
    env: dict[str, str],
) -> dict[str, Any]:
    prefix = f"{tag}-{fault.name}"
    load = Load(
        balancer=fault_stack.balancer,
        templates=bodies,
        tag=prefix,
        clients=args.clients,
        think_s=args.think_ms / 1000,
        give_up_s=GIVE_UP_S,
    ).start()
    fault_stack.load = load
    began = time.monotonic()
    time.sleep(args.steady)
    injected = fault.inject(fault_stack, duration_s)
    _recovery_wait(load, fault_stack.balancer, removed=injected.removed, quiet_s=1.0 if args.short else 2.0)
    finished = load.stop(timeout_s=GIVE_UP_S + CLIENT_TIMEOUT_S)
    ended = time.monotonic()

    correlation_prefix = f"corr-{prefix}-"
    check = records_check(load.records, stored_state(fault_stack.db.conninfo, correlation_prefix=correlation_prefix))
    backfill_s = backfill_run(fault_stack.db, env=env)
    after_backfill = records_check(
        load.records, stored_state(fault_stack.db.conninfo, correlation_prefix=correlation_prefix)
    )
    attempts = load.attempts()
    violations = [attempt for attempt in attempts if not _allowed(attempt, fault)]
    failures = [attempt for attempt in attempts if attempt.outcome != "201"]
    during = (injected.started, max(injected.removed, injected.started + 0.001))
    before = (began, injected.started)
    verdict_problems = [
        name
        for name, bad in (
            ("lost", check["lost"]),
            ("duplicated", check["duplicated"]),
            ("wrong_id", check["wrong_id"]),
            ("unembedded", check["unembedded"]),
            ("pending_after_backfill", after_backfill["pending"] + after_backfill["unembedded"]),
            ("violations", len(violations)),
            ("clients_unfinished", not finished),
            ("undelivered", check["records"] - check["acknowledged"]),
        )
        if bad
    ]
    return {
        "fault": fault.name,
        "description": fault.description,
        "duration_s": duration_s,
        "fault_s": round(injected.removed - injected.started, 2),
        "effect": injected.effect,
        "phase_s": round(ended - began, 1),
        **{key: value for key, value in check.items() if key != "examples"},
        "examples": check["examples"],
        "backfill_s": round(backfill_s, 2),
        "pending_after_backfill": after_backfill["pending"] + after_backfill["unembedded"],
        "attempts": outcome_counts(attempts),
        "attempts_without_retry_after": sum(1 for a in attempts if a.outcome == "503" and not a.retry_after),
        "violations": len(violations),
        "violation_examples": [_attempt_json(attempt) for attempt in violations[:5]],
        "writes_per_s_before": _rate(attempts, before),
        "writes_per_s_during": _rate(attempts, during),
        "p99_ms_during": _p99_ms(attempts, during),
        # 0: no attempt failed after the fault was removed (those under way got their 201).
        "failing_until_s": round(max(0.0, max(a.ended for a in failures) - injected.removed), 2) if failures else None,
        "ready_after_s": _ready_after(fault_stack.balancer, injected),
        "first_201_after_s": _first_201_after(attempts, injected.removed),
        "verdict": "fail" if verdict_problems else "pass",
        "problems": verdict_problems,
        "timeline": _timeline(attempts, origin=injected.started),
    }


def _allowed(attempt: Attempt, fault: Fault) -> bool:
    if attempt.outcome == "201" or attempt.outcome in fault.also_allowed:
        return True
    return attempt.outcome == "503" and bool(attempt.retry_after)


def _recovery_wait(load: Load, balancer: Balancer, *, removed: float, quiet_s: float) -> None:
    """Until every instance is ready and the last `quiet_s` saw 201s and no failed attempt."""
    deadline = removed + RECOVERY_TIMEOUT_S
    while time.monotonic() < deadline:
        now = time.monotonic()
        attempts = [attempt for attempt in load.attempts() if attempt.ended >= now - quiet_s]
        calm = now - removed >= quiet_s and attempts and all(attempt.outcome == "201" for attempt in attempts)
        if calm and balancer.all_ready():
            return
        time.sleep(0.1)


def _rate(attempts: list[Attempt], window: tuple[float, float]) -> float | None:
    start, end = window
    if end - start < 0.5:
        return None
    created = sum(1 for attempt in attempts if attempt.outcome == "201" and start <= attempt.ended < end)
    return round(created / (end - start), 1)


def _p99_ms(attempts: list[Attempt], window: tuple[float, float]) -> float | None:
    start, end = window
    times = sorted(a.ended - a.started for a in attempts if a.outcome == "201" and start <= a.ended < end)
    if not times:
        return None
    return round(1000 * times[min(len(times) - 1, int(0.99 * len(times)))], 1)


def _ready_after(balancer: Balancer, injected: Injected) -> float | None:
    """Seconds from the fault's removal until every instance was ready again (0: none left the
    rotation, or all were back before the removal was complete); None: not all ready again."""
    states = {instance.name: READY for instance in balancer.instances}
    left, all_ready_since = False, injected.started
    for moment, name, state in balancer.transitions:
        states[name] = state
        if moment < injected.started:
            continue
        left = left or state != READY
        if all(value == READY for value in states.values()):
            all_ready_since = moment
    if not all(value == READY for value in states.values()):
        return None
    return round(max(0.0, all_ready_since - injected.removed), 2) if left else 0.0


def _timeline(attempts: list[Attempt], *, origin: float) -> list[dict[str, Any]]:
    """Attempts ended per second, by outcome, the second the fault began being 0."""
    seconds: dict[int, dict[str, int]] = {}
    for attempt in attempts:
        second = seconds.setdefault(math.floor(attempt.ended - origin), {})
        second[attempt.outcome] = second.get(attempt.outcome, 0) + 1
    return [{"second": second, **seconds[second]} for second in sorted(seconds)]


def _first_201_after(attempts: list[Attempt], removed: float) -> float | None:
    ends = [attempt.ended for attempt in attempts if attempt.outcome == "201" and attempt.started >= removed]
    return round(min(ends) - removed, 2) if ends else None


def _attempt_json(attempt: Attempt) -> dict[str, Any]:
    return {
        "outcome": attempt.outcome,
        "instance": attempt.instance,
        "retry_after": attempt.retry_after,
        "seconds": round(attempt.ended - attempt.started, 3),
        "detail": attempt.detail,
    }


def _row_line(row: dict[str, Any]) -> str:
    return (
        f"{row['verdict'].upper()}: {row['acknowledged']}/{row['records']} acknowledged, attempts {row['attempts']}, "
        f"lost {row['lost']}, duplicated {row['duplicated']}, "
        f"pending {row['pending']} → {row['pending_after_backfill']} after backfill, "
        f"ready after {row['ready_after_s']} s, failing until {row['failing_until_s']} s"
        + (f"; problems: {', '.join(row['problems'])}" if row["problems"] else "")
    )


def faults_table(rows: list[dict[str, Any]]) -> str:
    header = (
        "| fault | fault s | records acked | 503 | dropped | other | lost | dup | pending → after backfill "
        "| writes/s before → during | p99 during ms | ready after s | failing until s | verdict |"
    )
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for row in rows:
        attempts = row["attempts"]
        other = sum(count for outcome, count in attempts.items() if outcome not in ("201", "503", "dropped"))
        lines.append(
            f"| {row['fault']} | {row['fault_s']} | {row['acknowledged']}/{row['records']} | {attempts.get('503', 0)} "
            f"| {attempts.get('dropped', 0)} | {other} | {row['lost']} | {row['duplicated']} "
            f"| {row['pending']} → {row['pending_after_backfill']} "
            f"| {_number(row['writes_per_s_before'])} → {_number(row['writes_per_s_during'])} "
            f"| {_number(row['p99_ms_during'])} | {_number(row['ready_after_s'])} "
            f"| {_number(row['failing_until_s'])} | {row['verdict']} |"
        )
    return "\n".join(lines)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"
