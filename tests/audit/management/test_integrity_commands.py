"""The integrity management commands' command lines: help, keys required, ranges, human output, lag."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command, get_commands, load_command_class
from django.core.management.base import CommandError
from django.utils import timezone

from audit.integrity.verification import audit_verify
from audit.models import AuditSeal, AuditVerification
from kubernaut_integrity.keys import public_keys_load
from testutils.admin_rows import remediation_chain
from testutils.integrity import key_files, seal_now, verify

COMMANDS = {
    "audit_keygen": ["--out", "Ed25519", "Secret", "rotation", "log-key.vkey", "AUDIT_LOG_ORIGIN"],
    "audit_seal": [
        "AUDIT_SEAL_WINDOW_SECONDS",
        "--settle-seconds",
        "AUDIT_SEAL_DIR",
        "Ed25519",
        "Idempotent",
        "AUDIT_LOG_PRIVATE_KEY_FILE",
        "AUDIT_TSA_URL",
        "AUDIT_WITNESSES",
    ],
    "audit_verify": ["--from", "--to", "--public-key", "--log-key", "--tsa-root", "--json", "Exit status 1"],
    "audit_evidence": ["--correlation-id", "--from", "--to", "--out", "--consistent-from", "unsealed", "--log-key"],
    "audit_archive_verify": ["--public-key", "seal"],
}


@pytest.mark.parametrize(("name", "phrases"), COMMANDS.items())
def test_help_documents_the_command(name: str, phrases: list[str]) -> None:
    command = load_command_class(get_commands()[name], name)
    text = " ".join(command.create_parser("manage.py", name).format_help().split())
    for phrase in phrases:
        assert phrase.lower() in text.lower(), (name, phrase)


@pytest.mark.django_db
def test_verify_needs_a_trusted_key(settings: Any) -> None:
    settings.AUDIT_SEAL_PUBLIC_KEY_FILES = []
    with pytest.raises(CommandError, match="no trusted public key"):
        call_command("audit_verify", stdout=io.StringIO())


@pytest.mark.django_db
def test_human_output_and_recorded_outcome(tmp_path: Path, settings: Any) -> None:
    private, public = key_files(tmp_path / "keys")
    settings.AUDIT_SEAL_PUBLIC_KEY_FILES = [str(public)]
    remediation_chain()
    seal_now(private, tmp_path / "seals")
    out = io.StringIO()
    call_command("audit_verify", "--seal-dir", str(tmp_path / "seals"), "--no-progress", stdout=out)
    assert out.getvalue().startswith("clean: ")
    assert "10 row(s)" in out.getvalue()
    run = AuditVerification.objects.get()
    assert run.passed
    assert run.rows == 10


@pytest.mark.django_db
def test_a_range_checks_only_its_windows(tmp_path: Path) -> None:
    private, public = key_files(tmp_path / "keys")
    remediation_chain()
    seal_now(private, tmp_path / "seals")
    seal = AuditSeal.objects.filter(row_count__gt=0).order_by("sequence")[0]
    clean, report = verify(
        public,
        seal_dir=tmp_path / "seals",
        extra=("--from", seal.window_start.isoformat(), "--to", seal.window_end.isoformat()),
    )
    assert clean, report["findings"]
    assert report["seals"] == 1
    assert report["rows"] == seal.row_count


@pytest.mark.django_db
def test_closed_windows_left_unsealed_are_reported(tmp_path: Path) -> None:
    _, public = key_files(tmp_path / "keys")
    remediation_chain()
    report = audit_verify(
        trusted=public_keys_load([public]),
        seal_dir=None,
        archive_dir=tmp_path / "archives",
        window_seconds=1,
        max_lag_seconds=0,
        # The rows' window closed more than a second before this moment, and nothing sealed it.
        now=timezone.now() + dt.timedelta(seconds=2.1),
    )
    assert not report.clean
    assert {finding.kind for finding in report.findings} == {"unsealed_lag"}
