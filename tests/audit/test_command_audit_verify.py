"""`audit_seal` + `audit_verify` on the real database: clean history verifies clean, and every
kind of tampering a superuser can do is named precisely."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from audit.models import AuditSeal
from tests.audit.integrity_support import findings_of, key_files, seal_now, triggers_bypassed, verify
from tests.support.admin_rows import remediation_chain

pytestmark = pytest.mark.django_db


@pytest.fixture
def sealed(tmp_path: Path) -> dict[str, Any]:
    """Two remediation chains (10 audit rows, 10 embeddings), sealed."""
    private, public = key_files(tmp_path / "keys")
    seal_dir = tmp_path / "seals"
    chains = [remediation_chain(), remediation_chain()]
    made = seal_now(private, seal_dir)
    assert made
    assert sum(window.rows for window in made) == 20
    return {"private": private, "public": public, "seal_dir": seal_dir, "chains": chains}


def test_clean_history_verifies_clean(sealed: dict[str, Any]) -> None:
    clean, report = verify(sealed["public"], seal_dir=sealed["seal_dir"])
    assert clean, report["findings"]
    assert report["rows"] == 20
    assert report["seals"] == AuditSeal.objects.count() >= 1


def test_one_field_changed_is_named(sealed: dict[str, Any]) -> None:
    row = sealed["chains"][0]["remediation"]
    with triggers_bypassed() as cursor:
        cursor.execute("UPDATE audit_remediation SET phase = 'Failed' WHERE id = %s", [row.id])
    clean, report = verify(sealed["public"], seal_dir=sealed["seal_dir"])
    assert not clean
    assert {(kind, table, row_id) for kind, table, row_id, _ in findings_of(report)} == {
        ("row_modified", "audit_remediation", row.id)
    }
