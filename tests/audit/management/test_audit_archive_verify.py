"""`audit_archive_verify` on an export it did not write: every malformed file is reported and
fails the command (CommandError, exit status 1), never an exception of another kind."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from testutils.integrity_export import PARTITION, Export, export_write, junk_leaves


@pytest.fixture
def export(tmp_path: Path) -> Export:
    return export_write(tmp_path)


def _archive_verify(export: Export, *, key: Path | None = None) -> str:
    out = io.StringIO()
    call_command(
        "audit_archive_verify", str(export.directory), "--public-key", str(key or export.public_key), stdout=out
    )
    return out.getvalue()


def test_an_intact_export_verifies(export: Export) -> None:
    output = _archive_verify(export)
    assert f"ok {PARTITION}: 3 rows, sha256 matches" in output
    assert "3 row(s) against 1 seal(s): clean" in output


def test_a_deeply_nested_manifest_fails_the_command(export: Export) -> None:
    export.manifest.write_text("[" * 20_000 + "]" * 20_000)
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 of 1 archive"):
        call_command("audit_archive_verify", str(export.directory), "--public-key", str(export.public_key), stdout=out)
    assert f"FAILED {PARTITION}.manifest.json: not a manifest: maximum recursion" in out.getvalue()


def test_megabytes_of_junk_leaves_fail_the_command(export: Export) -> None:
    document = export.seal_document()
    document["leaves"]["audit_remediation"] = junk_leaves(100_000)
    export.seal_document_write(document)
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 seal finding"):
        call_command("audit_archive_verify", str(export.directory), "--public-key", str(export.public_key), stdout=out)
    assert "seal_malformed: seal 1: seal-000000000001.json:" in out.getvalue()


def test_a_missing_key_file_is_a_command_error(export: Export) -> None:
    with pytest.raises(CommandError, match="cannot load a public key"):
        _archive_verify(export, key=export.directory / "nowhere.pem")
