"""The fault-injection suite's short form (`python -m bench faults --short`), as CI runs it.

It runs as its own process, with its own PostgreSQL (.data/faults-postgres), Redis, embedding
API and two gunicorns, because it stops and starts them: never the test database's server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.faults.injection import FAULTS

ROOT = Path(__file__).resolve().parent.parent.parent


def test_short_fault_suite_loses_nothing_and_clients_see_only_201_or_503(tmp_path: Path):
    output = tmp_path / "faults.json"
    # The suite configures its own service; the test run's database and Redis must not leak in.
    leaking = ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL")
    env = {key: value for key, value in os.environ.items() if key not in leaking}
    done = subprocess.run(
        [sys.executable, "-m", "bench", "faults", "--short", "--output", str(output)],
        cwd=ROOT,
        env={**env, "KUBERNAUT_BENCH_BOOTSTRAPPED": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    rows = {row["fault"]: row for row in json.loads(output.read_text())["faults"]}
    assert set(rows) == {"baseline"} | {fault.name for fault in FAULTS if fault.short_duration_s is not None}
    for row in rows.values():
        assert (row["verdict"], row["problems"]) == ("pass", [])
        assert row["acknowledged"] == row["records"] > 0
        assert row["lost"] == row["duplicated"] == row["pending_after_backfill"] == row["violations"] == 0

    # Each fault really happened and was seen by the clients or the service.
    postgres = rows["postgres-5s"]
    assert postgres["attempts"]["503"] > 0
    assert postgres["effect"]["restarted_by_someone_else"] is False
    assert postgres["ready_after_s"] is not None
    assert rows["slow-statements"]["attempts"]["503"] > 0
    assert rows["slow-statements"]["effect"]["statements_waiting_peak"] > 0
    for name in ("embedding-500", "embedding-429", "embedding-hang", "embedding-vanish"):
        # The instance without a fallback deferred records; the backfill embedded them all.
        assert rows[name]["pending"] > 0, name
        assert rows[name]["effect"]["primary_used_again_after_s"] is not None, name
    assert rows["redis"]["effect"]["cache_used_again_after_s"] is not None
    sigterm = rows["sigterm"]["effect"]
    assert sigterm["exit_code"] == 0
    assert sigterm["unrouted_after_s"] is not None
    assert rows["sigkill-worker"]["effect"]["respawned_after_s"] is not None
