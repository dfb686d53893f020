"""`python -m bench prometheus-cost` (docs/PERFORMANCE.md), its smoke form."""

from __future__ import annotations

import re

from testutils.bench_runs import bench_run


def test_prometheus_cost_measures_every_variant():
    out = bench_run(["-m", "bench", "prometheus-cost", "--smoke"])

    variants = re.findall(
        r"^(\w+)\s+([0-9.]+) Python calls per write .* CPU best ([0-9.]+) ms", out, flags=re.MULTILINE
    )
    assert [name for name, _, _ in variants] == ["none", "middleware", "database", "both"]
    # Five writes a variant only show that each is measured, not what it costs.
    assert all(float(calls) > 0 and float(cpu) > 0 for _, calls, cpu in variants)
