"""`audit_verify`'s report: what `--json` prints, member for member."""

from __future__ import annotations

import json

from audit.integrity.verification import VerifyReport
from kubernaut_integrity.findings import SEAL_MISSING, Finding


def test_audit_verify_report_as_json() -> None:
    report = VerifyReport(seals=2, rows=300, seconds=1.5)
    assert json.dumps(report.as_json()) == (
        '{"clean": true, "seals": 2, "rows": 300, "seconds": 1.5, "rows_per_second": 200, "findings": []}'
    )
    report.findings.append(Finding(SEAL_MISSING, "gone", seal=2))
    assert not report.clean
    assert report.as_json()["findings"] == [
        {"kind": "seal_missing", "table": None, "id": None, "seal": 2, "detail": "gone"}
    ]
