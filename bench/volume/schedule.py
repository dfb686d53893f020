"""The jobs of `python -m bench volume` in order, with the writes measured alone between them.

    alone₀ · seal · alone₁ · verify · alone₂ · retention · alone₃ · …

A job's ratio is the write rate during it over the mean of the alone windows just before and
after it: interleaved, so that the machine's drift (it is shared) falls on both sides alike.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from bench import stack
from bench.volume.fill import FillResult
from bench.volume.jobs import JobRun, job_run, manage
from bench.volume.report import RATES, month_hours
from bench.volume.writers import Writers

#: Rows one write adds to the sealed tables: its audit row and its embedding row.
ROWS_PER_WRITE = 2


class Schedule:
    def __init__(
        self,
        *,
        args: argparse.Namespace,
        db: stack.BenchDatabase,
        work_dir: Path,
        results_dir: Path,
        stamp: dt.datetime,
        log: Callable[[str], None],
    ) -> None:
        self.args = args
        self.db = db
        self.log = log
        self.results_dir = results_dir
        self.stamp = stamp
        self.seal_dir = work_dir / "seals"
        self.archive_dir = work_dir / "archives"
        self.private_key, self.public_key = _keys(work_dir / "keys")
        self.env = {
            **db.env(),
            "AUDIT_SEAL_DIR": str(self.seal_dir),
            "AUDIT_ARCHIVE_DIR": str(self.archive_dir),
            "AUDIT_SEAL_PRIVATE_KEY_FILE": str(self.private_key),
            "AUDIT_SEAL_PUBLIC_KEY_FILES": str(self.public_key),
            "LOG_LEVEL": "WARNING",
        }
        if args.seal_window_seconds:
            self.env["AUDIT_SEAL_WINDOW_SECONDS"] = str(args.seal_window_seconds)
        self.work_dir = work_dir
        self.alone_windows: list[dict[str, Any]] = []
        self.service_text = ""

    def run(self, jobs: list[str], *, filled: FillResult) -> list[dict[str, Any]]:
        service = writers = None
        if self.args.writer_rate > 0:
            service = stack.Service(
                db=self.db,
                env={
                    **self.env,
                    "LOG_LEVEL": "INFO",
                    "EMBEDDING_OPENAI_API_KEY": "",
                    "OPENAI_API_KEY": "",
                    "GUNICORN_WORKERS": str(self.args.service_workers),
                },
                log_path=self.work_dir / "gunicorn.log",
            ).start()
            self.service_text = (
                f"writes beside the jobs: {self.args.writer_rate:g} writes/s from {self.args.writer_threads} clients,"
                f" gunicorn (production config, {self.args.service_workers} workers, the local model);"
                f" alone windows of {self.args.alone:g} s between the jobs"
            )
            writers = Writers(
                url=service.url,
                rate=self.args.writer_rate,
                threads=self.args.writer_threads,
                salt=f"v{self.stamp:%H%M%S}",
            ).start()
            self.log(f"writes: {self.args.writer_rate:g}/s through {service.url}; warming up {self.args.warmup:g} s")
            time.sleep(self.args.warmup)
        try:
            previous = self._alone(writers)
            rows = []
            for job in jobs:
                self.log(f"job {job}")
                row = self._job(job, filled=filled)
                after = self._alone(writers)
                if writers is not None:
                    row["writes"] = _ratio(writers.window(row.pop("_started"), row.pop("_ended")), previous, after)
                else:
                    row.pop("_started"), row.pop("_ended")
                previous = after
                rate = row.get("rows_per_s")
                self.log(
                    f"  {job}: {row.get('rows') or 0:,} rows in {row['seconds']:.1f} s"
                    + (f" = {rate:,.0f} rows/s" if rate else "")
                    + (f"; writes during/alone {row['writes']['ratio']}" if row.get("writes") else "")
                )
                rows.append(row)
            return rows
        finally:
            if writers is not None:
                writers.stop()
            if service is not None:
                service.stop()

    def _alone(self, writers: Writers | None) -> dict[str, Any] | None:
        if writers is None:
            return None
        started = time.monotonic()
        time.sleep(self.args.alone)
        window = writers.window(started, time.monotonic())
        self.alone_windows.append(window)
        return window

    def _job(self, job: str, *, filled: FillResult) -> dict[str, Any]:
        commands: dict[str, Callable[[], tuple[list[str], Callable[[JobRun], dict[str, Any]]]]] = {
            "seal": self._seal,
            "verify": self._verify,
            "retention": self._retention,
            "archive-verify": self._archive_verify,
            "index-build": self._index_build,
            "partitions": self._partitions,
        }
        command, outcome = commands[job]()
        profile = self.results_dir / f"volume-profile-{job}-{self.stamp:%Y%m%dT%H%M%SZ}.txt"
        run = job_run(
            job,
            command,
            env=self.env,
            data_dir=self.db.data_dir,
            profile_to=profile if job in self.args.profile else None,
        )
        if run.returncode not in (0, 1):
            raise RuntimeError(f"{job} failed ({run.returncode}): {run.stdout[-2000:]}{run.stderr[-2000:]}")
        details = outcome(run)
        rows = details.pop("rows", None)
        rows_per_write = details.pop("rows_per_write", ROWS_PER_WRITE)
        rate = rows / run.seconds if rows and run.seconds else None
        return {
            "job": job,
            "command": " ".join(command[1:]),
            "exit_code": run.returncode,
            "rows": rows,
            "seconds": round(run.seconds, 2),
            "rows_per_s": round(rate) if rate else None,
            "cpu_s": round(run.cpu_s, 1),
            "postgres_cpu_s": round(run.postgres_cpu_s, 1),
            "peak_rss_mb": round(run.peak_rss_mb, 1),
            "month_hours": {
                str(rate_): _round(month_hours(rows_per_s=rate, rows_per_write=rows_per_write, rate=rate_))
                for rate_ in RATES
            },
            **({"profile": str(profile.relative_to(stack.ROOT))} if job in self.args.profile else {}),
            **details,
            "_started": run.started,
            "_ended": run.ended,
        }

    # -- the jobs: (command, what its run tells) ----------------------------------------------

    def _seal(self) -> tuple[list[str], Callable[[JobRun], dict[str, Any]]]:
        command = [
            manage()[0], "-m", "bench.volume.seal_history", "--private-key", str(self.private_key),
            "--seal-dir", str(self.seal_dir), "--step-hours", str(self.args.seal_step_hours),
        ]  # fmt: skip

        def outcome(run: JobRun) -> dict[str, Any]:
            report = _last_json(run)
            return {"rows": report["rows"], "seals": report["seals"], "audit_seal_runs": report["runs"]}

        return command, outcome

    def _verify(self) -> tuple[list[str], Callable[[JobRun], dict[str, Any]]]:
        command = manage(
            "audit_verify", "--public-key", str(self.public_key), "--seal-dir", str(self.seal_dir), "--json",
            "--no-progress",
        )  # fmt: skip

        def outcome(run: JobRun) -> dict[str, Any]:
            report = json.loads(run.stdout)
            kinds = sorted({finding["kind"] for finding in report["findings"]})
            return {"rows": report["rows"], "seals": report["seals"], "clean": report["clean"], "findings": kinds}

        return command, outcome

    def _retention(self) -> tuple[list[str], Callable[[JobRun], dict[str, Any]]]:
        command = manage(
            "audit_retention",
            "--older-than",
            str(self.args.months - 1),
            "--archive-dir",
            str(self.archive_dir),
            "--yes",
        )

        def outcome(run: JobRun) -> dict[str, Any]:
            if run.returncode != 0:
                raise RuntimeError(f"audit_retention failed: {run.stdout[-2000:]}{run.stderr[-2000:]}")
            manifests = [json.loads(path.read_text()) for path in sorted(self.archive_dir.glob("*.manifest.json"))]
            return {
                "rows": sum(manifest["row_count"] for manifest in manifests),
                "partitions": [manifest["partition"] for manifest in manifests],
                "archive_bytes": sum(manifest["archive_bytes"] for manifest in manifests),
                "seal_files_exported": len(list(self.archive_dir.glob("seal-*"))),
            }

        return command, outcome

    def _archive_verify(self) -> tuple[list[str], Callable[[JobRun], dict[str, Any]]]:
        command = [
            manage()[0],
            "-m",
            "kubernaut_integrity",
            str(self.archive_dir),
            "--public-key",
            str(self.public_key),
            "--json",
        ]

        def outcome(run: JobRun) -> dict[str, Any]:
            report = json.loads(run.stdout)
            return {"rows": report["rows"], "clean": report["clean"], "findings": len(report["findings"])}

        return command, outcome

    def _index_build(self) -> tuple[list[str], Callable[[JobRun], dict[str, Any]]]:
        vectors = self._closed_month_vectors()

        def outcome(run: JobRun) -> dict[str, Any]:
            built = re.findall(r"built (\S+) on (\S+) ", run.stdout)
            with psycopg.connect(self.db.conninfo) as conn:
                size = sum(
                    int(conn.execute(sql.SQL("SELECT pg_relation_size({})").format(sql.Literal(name))).fetchone()[0])  # type: ignore[index]
                    for name, _ in built
                )
            count = sum(vectors.get(partition, 0) for _, partition in built)
            return {
                "rows": count,
                "rows_per_write": 1,
                "indexes": [name for name, _ in built],
                "index_bytes": size,
                "index_bytes_per_vector": round(size / count) if count else None,
            }

        return manage("embeddings_index_build"), outcome

    def _partitions(self) -> tuple[list[str], Callable[[JobRun], dict[str, Any]]]:
        def outcome(run: JobRun) -> dict[str, Any]:
            return {"output": run.stdout.strip().splitlines()[-1:]}

        return manage("audit_partitions_ensure", "--months-ahead", "3"), outcome

    def _closed_month_vectors(self) -> dict[str, int]:
        """Vectors in each partition of incident_embeddings, by partition (counted before the
        build, outside its time)."""
        with psycopg.connect(self.db.conninfo) as conn:
            partitions = [
                name
                for (name,) in conn.execute(
                    "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'incident_embeddings'::regclass"
                ).fetchall()
            ]
            return {
                name: int(conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(name))).fetchone()[0])  # type: ignore[index]
                for name in partitions
            }


def _keys(directory: Path) -> tuple[Path, Path]:
    """A fresh seal key pair, made by `audit_keygen` as an operator would."""
    from django.core.management import call_command

    out = io.StringIO()
    call_command("audit_keygen", out=directory, stdout=out)
    paths = dict(re.findall(r"^(?:seal )?(signing key|public key)[^:]*:\s*(\S+)$", out.getvalue(), flags=re.MULTILINE))
    return Path(paths["signing key"]), Path(paths["public key"])


def _ratio(during: dict[str, Any], before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, Any]:
    windows = [window for window in (before, after) if window and window["writes_per_s"]]
    alone = sum(window["writes_per_s"] for window in windows) / len(windows) if windows else None
    p95s = [window["p95_ms"] for window in windows if window["p95_ms"] is not None]
    return {
        "during": during,
        "alone": {
            "writes_per_s": round(alone, 2) if alone else None,
            "p95_ms": round(sum(p95s) / len(p95s), 1) if p95s else None,
        },
        "ratio": round(during["writes_per_s"] / alone, 3) if alone and during["writes_per_s"] is not None else None,
    }


def _last_json(run: JobRun) -> dict[str, Any]:
    line = run.stdout.strip().splitlines()[-1]
    result: dict[str, Any] = json.loads(line)
    return result


def _round(value: float | None) -> float | None:
    return round(value, 2) if value is not None else None
