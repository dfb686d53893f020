"""The jobs `python -m bench volume` times, each as operators run it: its own process, the real CLI.

A job runs as a child process (`manage.py <command>`, or the sealing catch-up of
bench/volume/seal_history.py, which drives `audit_seal` itself), so that its CPU, peak memory
and the writes beside it are measured as in a CronJob's pod: the write service in its own
processes, PostgreSQL in its own. For each run: wall seconds, the job's own CPU seconds and
peak RSS (wait4), PostgreSQL's CPU seconds over the same time, and its output.

With `profile`, the child runs under pyinstrument, whose text report goes next to the results:
where the job's Python time goes (time spent waiting for PostgreSQL shows as the cursor's
fetch and execute calls).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench import stack

ROOT = stack.ROOT


@dataclass(frozen=True, slots=True)
class JobRun:
    name: str
    command: list[str]
    returncode: int
    started: float  # time.monotonic()
    ended: float
    cpu_s: float
    peak_rss_mb: float
    postgres_cpu_s: float
    stdout: str
    stderr: str

    @property
    def seconds(self) -> float:
        return self.ended - self.started


def manage(*arguments: str) -> list[str]:
    return [sys.executable, "manage.py", *arguments]


def job_run(
    name: str, command: list[str], *, env: dict[str, str], data_dir: Path, profile_to: Path | None = None
) -> JobRun:
    """Run `command` (a Python command line) in ROOT with `env`; measure it."""
    if profile_to is not None:
        command = [command[0], "-m", "pyinstrument", "--renderer", "text", "--outfile", str(profile_to), *command[1:]]
    postgres_before = stack.postgres_cpu_seconds(data_dir)
    started = time.monotonic()
    process = subprocess.Popen(
        command, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    # communicate() reaps the child itself and loses its rusage: read the pipes, then wait4.
    stdout, stderr = _drain(process)
    _, status, usage = os.wait4(process.pid, 0)
    ended = time.monotonic()
    process.returncode = os.waitstatus_to_exitcode(status)
    return JobRun(
        name=name,
        command=command,
        returncode=process.returncode,
        started=started,
        ended=ended,
        cpu_s=usage.ru_utime + usage.ru_stime,
        peak_rss_mb=usage.ru_maxrss / 1024,
        postgres_cpu_s=stack.postgres_cpu_seconds(data_dir) - postgres_before,
        stdout=stdout,
        stderr=stderr,
    )


def _drain(process: subprocess.Popen[str]) -> tuple[str, str]:
    import threading

    assert process.stdout is not None
    assert process.stderr is not None
    chunks: dict[str, str] = {}

    def read(name: str, stream: object) -> None:
        chunks[name] = stream.read()  # type: ignore[attr-defined]

    readers = [
        threading.Thread(target=read, args=("stdout", process.stdout)),
        threading.Thread(target=read, args=("stderr", process.stderr)),
    ]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join()
    return chunks["stdout"], chunks["stderr"]
