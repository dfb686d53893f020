"""The batch scenario's pieces on a tiny run: its bodies, wrk posting them, the summary line."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest

from audit.models import AUDIT_MODELS, AuditKind
from bench.report import summary_line, table
from bench.workload import BATCH_ENDPOINT, batch_templates, templates, templates_write
from bench.wrk import wrk_run

pytestmark = pytest.mark.django_db(transaction=True)


def stored_names() -> list[str]:
    return [row.name for kind in AuditKind for row in AUDIT_MODELS[kind].objects.all()]


def test_batch_bodies_mix_the_kinds_and_give_each_record_its_own_ids():
    rows = templates(count=8, fresh=False)
    [(endpoint, body)] = batch_templates(rows, size=6, count=1)
    assert endpoint == BATCH_ENDPOINT
    records = orjson.loads(body)["records"]
    assert [item["kind"] for item in records] == [kind.value for kind in AuditKind] + ["remediation", "aianalysis"]
    names = [item["record"]["name"] for item in records]
    assert len(set(names)) == 6
    assert all("@ID@-" in name for name in names)


def test_wrk_posts_batches_that_the_service_stores_whole(live_server, tmp_path: Path):
    assert shutil.which("wrk"), "wrk is not installed: scripts/test and python -m bench install it"
    bodies = batch_templates(templates(count=8, fresh=False), size=5, count=2)
    path = templates_write(tmp_path / "batches.tsv", bodies)

    result = wrk_run(url=live_server.url, templates=path, concurrency=2, duration_s=1, threads=1)

    assert result.requests > 0
    assert (result.non2xx, result.socket_errors, result.timeouts) == (0, 0, 0)
    names = stored_names()
    assert len(names) == len(set(names)) >= 5 * result.requests  # every record of every batch, new


def test_the_summary_line_puts_each_batch_size_beside_the_ceiling():
    rows = [
        {"scenario": "ceiling", "concurrency": 16, "requests": 900, "writes_per_s": 3000.0, "records_per_s": 3000.0,
         "p50_ms": 5.0, "p95_ms": 9.0, "p99_ms": 12.0, "non2xx": None, "errors": 0},
        {"scenario": "batch-50", "concurrency": 16, "requests": 40, "batch_size": 50, "writes_per_s": 36.0,
         "records_per_s": 1800.0, "p50_ms": 400.0, "p95_ms": 520.5, "p99_ms": 600.0, "non2xx": 0, "errors": 0},
    ]  # fmt: skip
    line = summary_line(rows)
    assert "ceiling_writes_per_s=3000.0" in line
    assert line.endswith("batch50_records_per_s=1800.0 batch50_p95_ms=520.5 batch50_ratio=0.60")
    assert "1800" in table(rows).splitlines()[3]
