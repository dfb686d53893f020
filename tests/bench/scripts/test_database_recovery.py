"""bench/scripts/database_recovery.py (docs/RELIABILITY.md): one short outage of its private
PostgreSQL, this checkout's service recovering from it."""

from __future__ import annotations

import json

from testutils.bench_runs import ROOT, bench_run


def test_recovery_benchmark_times_readiness_and_writes_after_an_outage():
    out = bench_run(["bench/scripts/database_recovery.py", str(ROOT), "1"])

    [line] = [line for line in out.splitlines() if line.startswith("{")]
    outage = json.loads(line)
    assert outage["outage_s"] == 1.0
    # -1 would mean never within the script's two minutes.
    assert outage["readyz_200_after_back_s"] >= 0
    assert outage["write_201_after_back_s"] >= 0
