"""`python -m bench profile` (docs/PERFORMANCE.md's CPU per write), its smoke form."""

from __future__ import annotations

import re

from testutils.bench_runs import bench_run


def test_profile_reports_the_cost_of_a_write_and_where_it_goes():
    out = bench_run(["-m", "bench", "profile", "--smoke"])

    cost = re.search(r"cached \(single\): .* ([0-9.]+) \(([0-9.]+)\) ms CPU and ([0-9.]+) ms wall per record", out)
    assert cost, out
    assert float(cost.group(1)) > 0
    # pyinstrument's report, down to the write path.
    assert "audit_record_create" in out
