"""`audit_verify --incremental`: new windows checked once, old ones in a rotating sample that
covers all history once per period, and where it stands kept between runs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from audit.integrity.incremental import audit_verify_incremental, blocks_due
from audit.models import AuditSeal, AuditVerification
from kubernaut_integrity.keys import public_keys_load
from testutils.admin_rows import remediation_chain
from testutils.evidence import next_window
from testutils.integrity import WINDOW_SECONDS, key_files, seal_now, triggers_bypassed

PERIOD = dt.timedelta(days=1)


def test_one_sweep_of_shares_visits_every_block_once() -> None:
    visits: list[int] = []
    cursor = 0.3
    for share in (0.1, 0.25, 0.05, 0.4, 0.2):  # the runs of one period, at uneven intervals
        visits += blocks_due(blocks=500, cursor=cursor % 1.0, share=share, salt="s")
        cursor += share
    assert sorted(visits) == list(range(500))


def test_a_new_salt_visits_the_blocks_in_another_order() -> None:
    first = blocks_due(blocks=500, cursor=0.0, share=0.1, salt="a")
    second = blocks_due(blocks=500, cursor=0.0, share=0.1, salt="b")
    assert 20 < len(first) < 80
    assert first != second


@pytest.fixture
def history(tmp_path: Path, db: Any) -> dict[str, Any]:
    private, public = key_files(tmp_path / "keys")
    seal_dir = tmp_path / "seals"
    chain = remediation_chain()
    next_window()
    assert seal_now(private, seal_dir, ahead_seconds=0)  # the current window stays open for more rows
    return {
        "private": private,
        "seal_dir": seal_dir,
        "chain": chain,
        "arguments": {
            "trusted": public_keys_load([public]),
            "seal_dir": seal_dir,
            "archive_dir": tmp_path / "archives",
            "window_seconds": WINDOW_SECONDS,
            "max_lag_seconds": 30 * 86400,  # the runs below jump days ahead
        },
    }


def _run(history: dict[str, Any], now: dt.datetime) -> tuple[bool, int, list[Any]]:
    """One incremental run at `now`, recorded as the command records it: (clean, seals, findings)."""
    report, progress = audit_verify_incremental(period=PERIOD, now=now, **history["arguments"])
    AuditVerification.objects.create(
        finished_at=now,
        passed=report.clean,
        findings=len(report.findings),
        rows=report.rows,
        seals=report.seals,
        incremental=True,
        progress=progress.as_json(),
    )
    return report.clean, report.seals, report.findings


def test_the_first_run_checks_everything_and_the_next_only_what_was_sealed_since(history):
    now = timezone.now() + dt.timedelta(seconds=10)
    clean, seals, findings = _run(history, now)
    assert clean, findings
    assert seals == AuditSeal.objects.count()
    head = AuditSeal.objects.order_by("-sequence").first()
    assert AuditVerification.objects.get().progress["sealed_through"] == head.sequence

    before = AuditSeal.objects.count()
    remediation_chain()
    next_window()
    assert seal_now(history["private"], history["seal_dir"], ahead_seconds=0)
    clean, seals, findings = _run(history, now + dt.timedelta(seconds=1))  # no sample due yet

    assert clean, findings
    assert seals == AuditSeal.objects.count() - before > 0


def test_a_changed_old_row_is_found_once_in_a_period_of_runs(history):
    now = timezone.now() + dt.timedelta(seconds=10)
    assert _run(history, now)[0]
    row = history["chain"]["remediation"]
    with triggers_bypassed() as cursor:
        cursor.execute("UPDATE audit_remediation SET phase = 'Failed' WHERE id = %s", [row.id])

    outcomes = [_run(history, now + PERIOD * quarter / 4) for quarter in range(1, 5)]

    found = [findings for clean, _, findings in outcomes if not clean]
    assert len(found) == 1  # the sample reached its block once in the period
    assert {(finding.kind, finding.table, finding.row_id) for finding in found[0]} == {
        ("row_modified", "audit_remediation", row.id)
    }


def test_a_changed_new_row_keeps_being_reported(history):
    now = timezone.now() + dt.timedelta(seconds=10)
    assert _run(history, now)[0]
    chain = remediation_chain()
    next_window()
    assert seal_now(history["private"], history["seal_dir"], ahead_seconds=0)
    with triggers_bypassed() as cursor:
        cursor.execute("UPDATE audit_remediation SET phase = 'Failed' WHERE id = %s", [chain["remediation"].id])

    first = _run(history, now + dt.timedelta(seconds=1))
    second = _run(history, now + dt.timedelta(seconds=2))

    assert not first[0]
    assert not second[0]  # the new windows stay due until they verify


def test_sealing_late_does_not_keep_the_checked_windows_due(history):
    history["arguments"]["max_lag_seconds"] = 0
    now = timezone.now() + dt.timedelta(hours=1)  # the windows since the last seal are late

    clean, _, findings = _run(history, now)

    assert not clean
    assert {finding.kind for finding in findings} == {"unsealed_lag"}
    head = AuditSeal.objects.order_by("-sequence").first()
    assert AuditVerification.objects.get().progress["sealed_through"] == head.sequence
