"""Findings and the standalone verifier's report: what `--json` prints, member for member."""

from __future__ import annotations

import json

from kubernaut_integrity.archive_verification import ArchiveReport
from kubernaut_integrity.findings import ROW_MODIFIED, SEAL_MISSING, Finding


def test_a_finding_names_where_it_is() -> None:
    finding = Finding(ROW_MODIFIED, "row differs from the sealed row", table="audit_workflow", row_id=7, seal=3)
    assert str(finding) == "row_modified: seal 3 audit_workflow id 7: row differs from the sealed row"
    assert str(Finding(SEAL_MISSING, "nothing seals it")) == "seal_missing: nothing seals it"
    assert finding.as_json() == {
        "kind": "row_modified",
        "table": "audit_workflow",
        "id": 7,
        "seal": 3,
        "detail": "row differs from the sealed row",
    }


def test_archive_report_as_json() -> None:
    report = ArchiveReport(seals=3, rows=30, archives=5, not_checkable=1)
    assert json.dumps(report.as_json()) == (
        '{"clean": true, "archives": 5, "seals": 3, "rows": 30, "table_parts_not_checkable": 1, "findings": []}'
    )
