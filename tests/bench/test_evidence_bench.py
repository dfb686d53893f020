"""bench/scripts/evidence.py on a tiny log, so that it cannot rot: the COPY-filled seal log is
the one sealing would have made (its checkpoints and audit_verify's log checks agree), the
bundle checks clean, every figure is there. Timing targets live in the benchmark, never here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.scripts.evidence import history_make, measure
from testutils.tsa import TimestampAuthority

pytestmark = pytest.mark.django_db


def test_the_evidence_benchmark_runs_on_a_small_log(
    tmp_path: Path, time_stamp_authority: TimestampAuthority, settings: Any
) -> None:
    settings.AUDIT_SEAL_WINDOW_SECONDS = 1  # the records' three windows pass in seconds
    correlation_id, keys, arguments, _, witness = history_make(
        seals=40, rows_per_window=20, seals_per_run=3, directory=tmp_path, authority=time_stamp_authority
    )
    try:
        result = measure(
            correlation_id=correlation_id, keys=keys, arguments=arguments, repeat=2, directory=tmp_path
        ).as_json()
    finally:
        witness.__exit__(None, None, None)
    assert result["seals"] > 40
    assert (result["records"], result["unsealed"]) == (10, 0)
    assert 3 <= result["record_windows"] <= 4  # a window each, the first chain maybe in two
    assert 0 < result["bundle_bytes_without_tokens"] < result["bundle_bytes"]
    assert 32 <= result["log_hashes_bytes_per_seal"] <= 100
    assert set(result) >= {"generation_ms_p95", "check_ms_per_record", "process_check_ms", "log_check_s"}
