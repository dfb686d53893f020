"""`python -m bench indexes` (docs/PERFORMANCE.md's index comparison), its smoke form."""

from __future__ import annotations

import json
from pathlib import Path

from testutils.bench_runs import bench_run


def test_index_comparison_builds_writes_and_queries_each_strategy(tmp_path: Path):
    output = tmp_path / "indexes.json"
    bench_run(["-m", "bench", "indexes", "--smoke", "--output", str(output)])

    [row] = json.loads(output.read_text())["strategies"]
    assert row["strategy"] == "halfvec-m16"
    assert row["vectors_in_partition"] > 0
    assert row["build_s"] is not None
    assert row["index_mb"] > 0
    assert row["writes_per_s"] > 0
    assert row["write_errors"] == 0
    # (On a few hundred vectors the planner rightly scans rather than use the index.)
    assert 0 < row["recall_at_10"] <= 1
