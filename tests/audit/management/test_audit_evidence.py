"""`audit_keygen`'s log key and `audit_evidence`'s command line: the bundle written whole, its
summary, what it refuses, and rows that no longer match their seal (exit status 1)."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from kubernaut_integrity.evidence_verification import evidence_check
from kubernaut_integrity.note import signer_from_skey, verifier_from_vkey
from testutils.admin_rows import remediation_chain
from testutils.evidence import next_window, sealed_history
from testutils.integrity import triggers_bypassed

pytestmark = pytest.mark.django_db


def test_keygen_writes_the_log_key_named_for_the_origin(tmp_path: Path) -> None:
    out = io.StringIO()
    call_command("audit_keygen", "--out", str(tmp_path), "--origin", "audit.example.com/prod", stdout=out)
    signing = tmp_path / "log-signing-key"
    assert stat.S_IMODE(signing.stat().st_mode) == 0o600
    signer = signer_from_skey(signing.read_text())
    vkey = (tmp_path / "log-key.vkey").read_text().strip()
    assert signer.name == "audit.example.com/prod"
    assert verifier_from_vkey(vkey) == signer.verifier
    assert vkey in out.getvalue()
    # Any one of the four files already there stops it before it writes anything.
    for name in ("seal-signing-key.pem", "seal-public-key.pem", "log-key.vkey"):
        (tmp_path / name).unlink()
    with pytest.raises(CommandError, match="log-signing-key exists: refusing to overwrite"):
        call_command("audit_keygen", "--out", str(tmp_path), stdout=io.StringIO())
    assert not (tmp_path / "seal-signing-key.pem").exists()
    with pytest.raises(CommandError, match="without spaces or"):
        call_command("audit_keygen", "--out", str(tmp_path / "x"), "--origin", "a b", stdout=io.StringIO())


def test_the_bundle_is_written_with_a_summary(tmp_path: Path) -> None:
    history = sealed_history(tmp_path)
    correlation_id = remediation_chain()["correlation_id"]
    next_window()
    history.seal()
    remediation_chain(correlation_id=correlation_id)
    out = io.StringIO()
    call_command("audit_evidence", "--correlation-id", correlation_id, "--out", str(tmp_path / "e.json"), stdout=out)
    data = (tmp_path / "e.json").read_bytes()
    assert out.getvalue().startswith(f"{tmp_path / 'e.json'}: 5 record(s) with proofs, 5 not sealed yet, ")
    assert f"{len(data):,} bytes" in out.getvalue()
    bundle = json.loads(data)
    assert (len(bundle["records"]), len(bundle["unsealed"])) == (5, 5)
    assert evidence_check(data, keys=history.auditor_keys()).clean
    # A range leaves the others out, and says so in the bundle.
    first = json.loads(bundle["records"][0]["line"])["recorded_at"]
    call_command(
        "audit_evidence",
        "--correlation-id",
        correlation_id,
        "--to",
        first.replace("Z", "+00:00"),
        "--out",
        str(tmp_path / "none.json"),
        stdout=io.StringIO(),
    )
    empty = json.loads((tmp_path / "none.json").read_bytes())
    assert (empty["records"], empty["unsealed"], empty["to"]) == ([], [], first)


def test_no_bundle_without_a_checkpoint_or_beyond_the_log(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="no checkpoint yet"):
        call_command("audit_evidence", "--correlation-id", "x", "--out", str(tmp_path / "e.json"))
    history = sealed_history(tmp_path)
    remediation_chain()
    history.seal(ahead_seconds=2)
    with pytest.raises(CommandError, match="--consistent-from 1000000: the latest checkpoint has"):
        call_command(
            "audit_evidence", "--correlation-id", "x", "--consistent-from", "1000000", "--out", str(tmp_path / "e.json")
        )
    assert not (tmp_path / "e.json").exists()


def test_rows_changed_since_sealing_fail_the_command_and_their_check(tmp_path: Path) -> None:
    history = sealed_history(tmp_path)
    chain = remediation_chain()
    next_window()
    history.seal()
    with triggers_bypassed() as cursor:
        cursor.execute("UPDATE audit_workflow SET message = 'x' WHERE id = %s", [chain["workflow"].id])
    err = io.StringIO()
    with pytest.raises(CommandError, match="1 table part"):
        call_command(
            "audit_evidence",
            "--correlation-id",
            chain["correlation_id"],
            "--out",
            str(tmp_path / "e.json"),
            stdout=io.StringIO(),
            stderr=err,
        )
    assert "rows of audit_workflow in its window no longer hash to the" in err.getvalue()
    report = evidence_check((tmp_path / "e.json").read_bytes(), keys=history.auditor_keys())
    assert [(finding.kind, finding.table, finding.row_id) for finding in report.findings] == [
        ("record_unproven", "audit_workflow", chain["workflow"].id)
    ]
