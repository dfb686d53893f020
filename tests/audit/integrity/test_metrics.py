"""The sealing metrics on the metrics endpoint's registry: seal lag and the last verification."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from prometheus_client import CollectorRegistry

from audit.integrity.metrics import SealCollector, seal_lag
from audit.models import AuditVerification
from testutils.admin_rows import remediation_chain
from testutils.integrity import key_files, seal_now


def _sample(registry: CollectorRegistry, name: str) -> float | None:
    return registry.get_sample_value(name)


@pytest.mark.django_db(transaction=True)
def test_lag_and_last_verification_are_exported(tmp_path: Path, settings: Any) -> None:
    settings.AUDIT_SEAL_WINDOW_SECONDS = 1
    registry = CollectorRegistry()
    registry.register(SealCollector())
    assert _sample(registry, "kubernaut_audit_seal_lag_seconds") == 0.0  # nothing written, nothing owed
    assert _sample(registry, "kubernaut_audit_verify_last_clean") is None

    remediation_chain()
    private, _ = key_files(tmp_path / "keys")
    seal_now(private, tmp_path / "seals", ahead_seconds=1)
    assert _sample(registry, "kubernaut_audit_seal_lag_seconds") == 0.0

    AuditVerification.objects.create(finished_at=timezone.now(), passed=False, findings=3, rows=10, seals=2)
    assert _sample(registry, "kubernaut_audit_verify_last_clean") == 0.0
    assert _sample(registry, "kubernaut_audit_verify_last_findings") == 3.0
    assert _sample(registry, "kubernaut_audit_verify_last_run_timestamp_seconds") == pytest.approx(
        timezone.now().timestamp(), abs=30
    )


def test_seal_lag_is_the_age_of_the_oldest_closed_unsealed_window() -> None:
    now = dt.datetime(2026, 12, 2, 12, 10, tzinfo=dt.UTC)
    sealed_until = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)
    # [12:00, 12:01) closed at 12:01 and is still unsealed at 12:10: 9 minutes.
    assert seal_lag(now=now, last_sealed_end=sealed_until, earliest=None, window_seconds=60) == 540.0
    assert seal_lag(now=sealed_until, last_sealed_end=sealed_until, earliest=None, window_seconds=60) == 0.0
    assert seal_lag(now=now, last_sealed_end=None, earliest=None, window_seconds=60) == 0.0
    first_row = dt.datetime(2026, 12, 2, 12, 5, 30, tzinfo=dt.UTC)
    assert seal_lag(now=now, last_sealed_end=None, earliest=first_row, window_seconds=60) == 240.0
