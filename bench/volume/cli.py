"""`python -m bench volume`: the jobs that follow the writes, timed on months of history.

Starts its own embedded PostgreSQL (.data/volume-postgres, --smoke .data/volume-smoke-postgres;
database recreated, migrated),
fills it with --rows rows by COPY (bench/volume/fill.py: whole remediation chains of the four
audit kinds, each record with its embedding, plus upstream events when that table exists,
spread evenly over the --months closed months before this one and this month up to an hour
ago), reports bytes per row and per record, then times, each as its own process with the real
CLI, in this order:

- seal:            `audit_seal` catching up on the history, a day per run (bench/volume/seal_history.py)
- verify:          `audit_verify` of everything sealed
- retention:       `audit_retention --yes` of the oldest month (archives, seals beside them, drop)
- archive-verify:  `python -m kubernaut_integrity` on those archives, offline, public key only
- index-build:     `embeddings_index_build` of the closed month that is left
- partitions:      `audit_partitions_ensure` creating a month of partitions ahead
- admin:           the auditors' list, filter, search, timeline and detail pages (in process)

Throughout, the real service (gunicorn, production config, the local model) takes a light,
steady write load (bench/volume/writers.py); its rate is measured alone between the jobs and
during each, and each job gets the ratio (during / mean of the alone windows around it).
Prints rows/s per job, with the hours a month written at 100 and 500 writes/s would take at
that rate, and writes everything to bench/results/volume-<time>.json. The database and the
seals and archives are removed at the end unless --keep.

Disk: the default 10 M rows take ~21 GB at 384-d (~2.1 KB a row) plus the month's HNSW index,
archives and seal files; the run checks the free space first and refuses to start without
the estimate plus DISK_HEADROOM_GB to spare (the disk is shared).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from bench import stack

ROOT = stack.ROOT
RESULTS_DIR = ROOT / "bench" / "results"
#: Where a run's PostgreSQL, seals, archives and logs live. The smoke form has its own, so that
#: the test suite never drops the database of a long run going on beside it.
PLACES = {
    False: (ROOT / ".data" / "volume-postgres", ROOT / ".data" / "volume", "kubernaut_volume"),
    True: (ROOT / ".data" / "volume-smoke-postgres", ROOT / ".data" / "volume-smoke", "kubernaut_volume_smoke"),
}
JOBS = ("seal", "verify", "retention", "archive-verify", "index-build", "partitions", "admin")
#: Free space the run leaves to everyone else on the disk, beyond its own estimate.
DISK_HEADROOM_GB = 10.0
SMOKE = {
    "rows": 2400,
    "alone": 1.0,
    "warmup": 0.5,
    "writer_rate": 8.0,
    "writer_threads": 2,
    "service_workers": 1,
    "admin_repeat": 1,
    # Day-long seal windows: a smoke history of two months is 70 seals, not 100,000.
    "seal_window_seconds": 86400,
}


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench volume", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows to fill, all tables (default 10,000,000)")
    parser.add_argument("--months", type=int, default=2, help="closed months of history before this one (>= 2)")
    parser.add_argument("--dimensions", type=int, choices=(384, 1536), default=384, help="vector dimensions")
    parser.add_argument("--jobs", default=",".join(JOBS), help=f"comma-separated, of {','.join(JOBS)}; 'none'")
    parser.add_argument("--writer-rate", type=float, default=20.0, help="writes/s of the load beside the jobs; 0: none")
    parser.add_argument("--writer-threads", type=int, default=8, help="clients sharing --writer-rate")
    parser.add_argument("--service-workers", type=int, default=2, help="gunicorn workers of the write service")
    parser.add_argument("--alone", type=float, default=20.0, help="seconds the writes are measured alone between jobs")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds of writes before the first measurement")
    parser.add_argument("--seal-step-hours", type=float, default=24.0, help="history sealed per audit_seal run")
    parser.add_argument("--seal-window-seconds", type=int, default=None, help="AUDIT_SEAL_WINDOW_SECONDS for the jobs")
    parser.add_argument("--admin-repeat", type=int, default=5)
    parser.add_argument("--profile", default="", help="jobs to run under pyinstrument, comma-separated")
    parser.add_argument("--keep", action="store_true", help="keep the database, seals and archives afterwards")
    parser.add_argument("--force", action="store_true", help="start even when the disk looks too small")
    parser.add_argument("--smoke", action="store_true", help=f"a quick check of the harness: {SMOKE}")
    parser.add_argument("--output", type=Path, help="JSON results (default bench/results/volume-<time>.json)")
    args = parser.parse_args(argv)
    if args.smoke:
        for key, value in SMOKE.items():
            setattr(args, key, value)
    args.jobs = [] if args.jobs == "none" else [job.strip() for job in args.jobs.split(",") if job.strip()]
    args.profile = [job.strip() for job in args.profile.split(",") if job.strip()]
    unknown = (set(args.jobs) | set(args.profile)) - set(JOBS)
    if unknown:
        parser.error(f"unknown jobs: {', '.join(sorted(unknown))}")
    if args.months < 2:
        parser.error("--months must be at least 2: retention retires the oldest month, the index build the next")
    return args


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def estimated_bytes(*, rows: int, dimensions: int) -> int:
    """Tables, indexes and their side effects (WAL, the month's HNSW, archives, seal files):
    measured ~2,200 B an audit row, ~1,000 an event, ~850 + 4 a dimension an embedding row,
    12 rows a chain; a quarter more for the rest."""
    per_chain = 5 * 2200 + 2 * 1000 + 5 * (850 + 4 * dimensions)
    return int(rows / 12 * per_chain * 1.25)


def main(argv: list[str]) -> None:
    run(_arguments(argv))


def run(args: argparse.Namespace) -> dict[str, Any]:
    started_at = dt.datetime.now(dt.UTC)
    data_dir, work_dir, database = PLACES[args.smoke]
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    needed = estimated_bytes(rows=args.rows, dimensions=args.dimensions)
    free = shutil.disk_usage(data_dir.parent).free
    log(f"disk: {free / 1e9:.1f} GB free, this run needs ~{needed / 1e9:.1f} GB")
    if free - needed < DISK_HEADROOM_GB * 1e9 and not args.force:
        sys.exit(
            f"python -m bench volume: ~{needed / 1e9:.1f} GB needed and {DISK_HEADROOM_GB:.0f} GB left to others,"
            f" {free / 1e9:.1f} GB free: use fewer --rows (or --force)"
        )
    db = stack.bench_database_start(database=database, data_dir=data_dir)
    os.environ.update(db.env())
    import django

    django.setup()
    shutil.rmtree(work_dir, ignore_errors=True)
    work_dir.mkdir(parents=True)
    results: dict[str, Any] = {
        "command": "python -m bench volume "
        + shlex.join(sys.argv[2:] if sys.argv[1:2] == ["volume"] else sys.argv[1:]),
        "started_at": started_at.isoformat(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "loadavg_before": _loadavg()},
        "options": {key: value for key, value in vars(args).items() if key not in ("output",) and value is not None},
    }
    try:
        results.update(_measure(args, db, started_at, work_dir))
    finally:
        if not args.keep:
            _remove(db, work_dir)
    results["machine"]["loadavg_after"] = _loadavg()
    path = args.output or RESULTS_DIR / f"volume-{started_at:%Y%m%dT%H%M%SZ}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    _print(results)
    print(f"\nresults: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return results


def _measure(
    args: argparse.Namespace, db: stack.BenchDatabase, started_at: dt.datetime, work_dir: Path
) -> dict[str, Any]:
    import psycopg

    from bench.volume.fill import fill
    from bench.volume.sizes import bytes_per_record, table_sizes

    log(f"filling {args.rows:,} rows ({args.dimensions}-d vectors, {args.months} closed months and this one)")
    filled = fill(db.conninfo, rows=args.rows, months=args.months, dimensions=args.dimensions, now=started_at, log=log)
    log(f"filled {filled.total_rows:,} rows in {filled.copy_s:.0f} s (+ VACUUM ANALYZE {filled.vacuum_s:.0f} s)")
    with psycopg.connect(db.conninfo) as conn:
        sizes = table_sizes(conn, filled.rows)
    measured: dict[str, Any] = {
        "fill": filled.as_json(),
        "sizes": sizes,
        "bytes_per_record": bytes_per_record(sizes),
        "jobs": [],
    }
    jobs = [job for job in args.jobs if job != "admin"]
    if jobs:
        from bench.volume.schedule import Schedule

        schedule = Schedule(args=args, db=db, work_dir=work_dir, results_dir=RESULTS_DIR, stamp=started_at, log=log)
        measured["jobs"] = schedule.run(jobs, filled=filled)
        measured["writes_alone"] = schedule.alone_windows
        measured["service"] = schedule.service_text
    if "admin" in args.jobs:
        from bench.volume.admin_pages import admin_pages_time

        log("admin pages")
        measured["admin_pages"] = admin_pages_time(repeat=args.admin_repeat)
    return measured


def _remove(db: stack.BenchDatabase, work_dir: Path) -> None:
    import psycopg
    from django.db import connections
    from psycopg import sql

    connections.close_all()
    with psycopg.connect(host=db.socket_dir, user="postgres", dbname="postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db.name)))
    shutil.rmtree(work_dir, ignore_errors=True)


def _print(results: dict[str, Any]) -> None:
    from bench.volume.report import jobs_table, pages_table, sizes_table

    print()
    fill = results.get("fill")
    if fill:
        print(
            f"fill: {fill['total_rows']:,} rows, {fill['chains']:,} chains, {fill['first_recorded_at'][:10]} .."
            f" {fill['last_recorded_at'][:16]}, COPY {fill['copy_s']} s ({fill['copy_rows_per_s']:,} rows/s),"
            f" VACUUM ANALYZE {fill['vacuum_analyze_s']} s"
        )
        print()
        print(sizes_table(results["sizes"], results["bytes_per_record"]))
    if results.get("jobs"):
        print()
        print(results.get("service", ""))
        print(jobs_table(results["jobs"]))
    if results.get("admin_pages"):
        print()
        print(pages_table(results["admin_pages"]))


def _loadavg() -> list[float]:
    with open("/proc/loadavg") as file:
        return [float(value) for value in file.read().split()[:3]]
