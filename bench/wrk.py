"""Run wrk with bench/post.lua at a fixed concurrency and read its result line."""

from __future__ import annotations

import json
import random
import shutil
import string
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LUA_SCRIPT = Path(__file__).resolve().parent / "post.lua"
RESULT_PREFIX = "BENCH_RESULT "
#: A request slower than this counts as a timeout error, well beyond any target.
TIMEOUT_S = 10


@dataclass(frozen=True, slots=True)
class HttpResult:
    """What one wrk run measured: completed requests and their latency (closed loop)."""

    requests: int
    seconds: float
    non2xx: int
    socket_errors: int
    timeouts: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float

    @property
    def per_s(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def parse_wrk_output(stdout: str) -> HttpResult:
    """The BENCH_RESULT line that post.lua's done() prints, as an HttpResult."""
    for line in stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            raw: dict[str, Any] = json.loads(line[len(RESULT_PREFIX) :])
            break
    else:
        raise ValueError(f"no {RESULT_PREFIX.strip()} line in wrk's output:\n{stdout[-2000:]}")
    return HttpResult(
        requests=raw["requests"],
        seconds=raw["duration_us"] / 1e6,
        non2xx=raw["non2xx"],
        socket_errors=raw["errors_connect"] + raw["errors_read"] + raw["errors_write"],
        timeouts=raw["errors_timeout"],
        p50_ms=raw["latency_p50_us"] / 1000,
        p95_ms=raw["latency_p95_us"] / 1000,
        p99_ms=raw["latency_p99_us"] / 1000,
        max_ms=raw["latency_max_us"] / 1000,
        mean_ms=raw["latency_mean_us"] / 1000,
    )


def wrk_run(*, url: str, templates: Path, concurrency: int, duration_s: float, threads: int = 2) -> HttpResult:
    """Drive `url` with `concurrency` keep-alive connections for `duration_s` seconds."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed (python -m bench installs it)")
    salt = "".join(random.choices(string.ascii_lowercase, k=6))
    completed = subprocess.run(
        [
            wrk,
            f"-t{min(threads, concurrency)}",
            f"-c{concurrency}",
            f"-d{max(1, round(duration_s))}s",
            f"--timeout={TIMEOUT_S}s",
            "-s",
            str(LUA_SCRIPT),
            url,
            "--",
            str(templates),
            salt,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return parse_wrk_output(completed.stdout)
