"""bench/scripts/record_size.py (docs/SCALING.md's bytes per record) on a scratch database."""

from __future__ import annotations

import json

from testutils.bench_runs import bench_run, scratch_database


def test_record_size_reports_each_part_of_a_record_and_each_models_index():
    with scratch_database("size") as env:
        out = bench_run(["bench/scripts/record_size.py", "--records", "100"], env=env)

    report = json.loads(out[out.index("{") :])
    assert report["records"] == report["primary_vectors"] + report["local_vectors"] == 100
    parts = report["bytes_per_record"]
    summed = parts["audit_row_with_indexes"] + parts["embedding_row_with_indexes"] + parts["hnsw_of_a_closed_month"]
    assert parts["total"] > 0
    assert abs(parts["total"] - summed) <= 2  # each part rounded on its own
    assert set(report["hnsw"]) == {"text-embedding-3-small", "all-MiniLM-L6-v2"}
    assert all(index["index_bytes"] > 0 for index in report["hnsw"].values())
