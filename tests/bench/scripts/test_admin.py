"""bench/scripts/admin.py (docs/ADMIN.md's figures), its smoke form on a scratch database."""

from __future__ import annotations

import re

from testutils.bench_runs import bench_run, scratch_database


def test_admin_benchmark_loads_months_old_rows_and_times_every_page():
    """The load writes rows dated months back, which the write-lag trigger of the `local`
    settings refuses to any session that does not turn the triggers off for it."""
    with scratch_database("admin") as env:
        out = bench_run(["bench/scripts/admin.py", "smoke"], env=env)

    lines = out.splitlines()
    loaded = [line.split(":")[0] for line in lines if line.endswith(" s") and line.startswith(("audit_", "incident"))]
    assert loaded == [
        "audit_remediation",
        "audit_aianalysis",
        "audit_workflow",
        "audit_execution",
        "incident_embeddings",
    ]
    timed = [line.split("|")[1].strip() for line in lines if line.startswith("| ") and "---" not in line]
    pages = [page for page in timed if page != "page"]
    # Every page, timed before and after the HNSW index.
    assert len(pages) == 2 * 14
    assert {"timeline", "search correlation id", "detail, remediation (similar)"} <= set(pages)
    # The indexes the service builds, and the similar-incidents query able to use them.
    assert "every closed month is indexed" in out
    assert re.search(r"Index Scan using incident_embeddings_p\d{4}_\d{2}_[0-9a-f]{8}_hnsw", out)
