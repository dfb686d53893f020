"""bench/scripts/integrity.py (docs/INTEGRITY.md's figures): its smoke form on a scratch database."""

from __future__ import annotations

import re

from testutils.bench_runs import bench_run, scratch_database


def test_integrity_benchmark_seals_verifies_retires_and_checks_offline():
    with scratch_database("integrity") as env:
        out = bench_run(["bench/scripts/integrity.py", "--rows", "150"], env=env)

    # 150 remediations and their embeddings: every step handles all 300 rows.
    assert "loaded 300 rows" in out
    for step in ("audit_seal", "audit_verify", "audit_retention", "python -m kubernaut_integrity"):
        assert re.search(rf"^{re.escape(step)}:\s+300 (archived )?rows", out, flags=re.MULTILINE), (step, out)
