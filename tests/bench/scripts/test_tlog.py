"""bench/scripts/tlog.py: the seal log's primitives measured on small logs."""

from __future__ import annotations

from testutils.bench_runs import bench_run


def test_tlog_benchmark_measures_proofs_of_each_size():
    out = bench_run(["bench/scripts/tlog.py", "--sizes", "16", "300", "--proofs", "10"])

    sizes = [line.split()[0] for line in out.splitlines() if line.startswith("n=")]
    assert sizes == ["n="] * 2
    assert "n=       16" in out
    assert "n=      300" in out
    assert out.count("make one inclusion proof") == 2
    assert "open a checkpoint" in out
