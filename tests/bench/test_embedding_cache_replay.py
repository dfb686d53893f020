"""bench/embedding_cache_replay.py (docs/EMBEDDINGS.md): a short replay on a scratch database."""

from __future__ import annotations

import json

from testutils.bench_runs import bench_run, scratch_database


def test_cache_replay_reports_the_hit_rate_and_both_latencies():
    with scratch_database("replay") as env:
        out = bench_run(
            ["bench/embedding_cache_replay.py", "--writes", "12", "--incidents", "2", "--latency-writes", "2"], env=env
        )

    report = json.loads(out[out.index("{") :])
    replay = report["replay"]
    assert replay["writes"] == 12
    # Two incidents in four kinds: at most 8 texts, so most of the 12 writes hit the cache.
    assert replay["distinct_texts"] <= 8
    assert replay["cache_counts"]["hit"] > 0
    assert 0 < replay["hit_rate"] <= 1
    assert [entry["n"] for entry in report["head_to_head"]] == [2, 2]
