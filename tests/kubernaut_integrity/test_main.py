"""`python -m kubernaut_integrity DIR --public-key FILE`: an export checked by a third party, who
must treat every file in DIR as hostile. Each malformed input is a finding that names the file
(exit status 1), never a traceback, a hang or a false "clean"; a wrong command line exits 2."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kubernaut_integrity.__main__ import main
from testutils.integrity_export import PARTITION, Export, export_write, junk_leaves, remediation_line

REPOSITORY = Path(__file__).resolve().parents[2]
DEEP = "[" * 100_000 + "]" * 100_000
#: As deep as fits in a seal body's or a manifest's bound (64 KiB), far beyond any real nesting.
DEEP_WITHIN_BOUND = "[" * 20_000 + "]" * 20_000


@pytest.fixture
def export(tmp_path: Path) -> Export:
    return export_write(tmp_path)


def _verify(export: Export, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    status = main([str(export.directory), "--public-key", str(export.public_key), "--json"])
    return status, json.loads(capsys.readouterr().out)


def _kinds(report: dict[str, Any]) -> list[str]:
    return [finding["kind"] for finding in report["findings"]]


def test_an_intact_export_is_clean(export: Export, capsys: pytest.CaptureFixture[str]) -> None:
    status, report = _verify(export, capsys)
    assert status == 0, report["findings"]
    assert (report["archives"], report["seals"], report["rows"]) == (1, 1, 3)


# --- seal files --------------------------------------------------------------------------------


def _copy_named(name: str) -> Callable[[Export], None]:
    def attack(export: Export) -> None:
        (export.directory / name).write_bytes(export.seal_file.read_bytes())

    return attack


def _seal_member_dropped(member: str) -> Callable[[Export], None]:
    def attack(export: Export) -> None:
        document = export.seal_document()
        del document[member]
        export.seal_document_write(document)

    return attack


def _leaves_set(text: str) -> Callable[[Export], None]:
    def attack(export: Export) -> None:
        document = export.seal_document()
        document["leaves"]["audit_remediation"] = text
        export.seal_document_write(document)

    return attack


def _body_set(body: str) -> Callable[[Export], None]:
    def attack(export: Export) -> None:
        document = export.seal_document()
        document["body"] = body
        export.seal_document_write(document)

    return attack


def _seal_file_bytes(data: bytes) -> Callable[[Export], None]:
    def attack(export: Export) -> None:
        export.seal_file.write_bytes(data)

    return attack


def _seal_file_directory(export: Export) -> None:
    (export.directory / "seal-000000000002.json").mkdir()


SEAL_FILE_ATTACKS = {
    # attack: (how, what the finding says)
    "a name that is not seal-<12 digits>.json": (_copy_named("seal-1.json"), "seal-1.json: not a seal file name"),
    "a seal under another sequence's name": (_copy_named("seal-000000000002.json"), "holds seal 1"),
    "no signature": (_seal_member_dropped("signature"), "seal-000000000001.json: not a seal file"),
    "no body": (_seal_member_dropped("body"), "seal-000000000001.json: not a seal file"),
    "leaves that are not base64": (_leaves_set("*not base64*"), "leaves refused: not base64"),
    "leaves that are not whole": (_leaves_set("AAAA"), "leaves refused: 3 bytes are not whole leaves"),
    "nested JSON a hundred thousand deep": (_seal_file_bytes(DEEP.encode()), "seal-000000000001.json: not a seal file"),
    "a body nested twenty thousand deep": (_body_set(DEEP_WITHIN_BOUND), "unreadable seal body: maximum recursion"),
    "a body over 64 KiB": (_body_set(" " * 70_000 + "{}"), "a body of 70002 bytes, more than 65536"),
    "a body that is not an object": (_body_set("[]"), "not a JSON object"),
    "bytes that are not UTF-8": (_seal_file_bytes(b'{"body": "\xff\xfe"}'), "not UTF-8"),
    "a directory in a seal file's place": (_seal_file_directory, "not a regular file"),
}


@pytest.mark.parametrize("attack", SEAL_FILE_ATTACKS.keys())
def test_a_malformed_seal_file_is_a_finding(attack: str, export: Export, capsys: pytest.CaptureFixture[str]) -> None:
    make, detail = SEAL_FILE_ATTACKS[attack]
    make(export)
    status, report = _verify(export, capsys)
    assert status == 1
    assert "seal_malformed" in _kinds(report)
    assert any(detail in finding["detail"] for finding in report["findings"]), report["findings"]


def test_megabytes_of_junk_leaves_are_refused_by_size(export: Export, capsys: pytest.CaptureFixture[str]) -> None:
    """The seal counts 3 rows, so its file holds a few hundred bytes of leaves: 4 MiB of them is
    refused from the file's size, before any of it is read."""
    document = export.seal_document()
    document["leaves"]["audit_remediation"] = junk_leaves(100_000)
    export.seal_document_write(document)
    assert export.seal_file.stat().st_size > 4_000_000
    status, report = _verify(export, capsys)
    assert status == 1
    [finding] = report["findings"]
    assert finding["kind"] == "seal_malformed"
    assert finding["detail"].startswith(f"seal-000000000001.json: {export.seal_file.stat().st_size} bytes,")
    assert "leaves refused: more than the" in finding["detail"]
    assert "a seal of 3 rows takes" in finding["detail"]


def test_junk_leaves_of_the_right_count_are_a_finding(export: Export, capsys: pytest.CaptureFixture[str]) -> None:
    """Leaves that do not rebuild the signed root are junk even when every row matches its seal."""
    _leaves_set(junk_leaves(3))(export)
    status, report = _verify(export, capsys)
    assert status == 1
    assert [(f["kind"], f["table"], f["seal"]) for f in report["findings"]] == [
        ("seal_malformed", "audit_remediation", 1)
    ]
    assert "do not rebuild" in report["findings"][0]["detail"]


def test_a_fifo_in_a_seal_file_place_does_not_hang_the_verifier(export: Export) -> None:
    os.mkfifo(export.directory / "seal-000000000002.json")
    done = subprocess.run(
        [sys.executable, "-m", "kubernaut_integrity", str(export.directory), "--public-key", str(export.public_key)],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "seal_malformed: seal 2: seal-000000000002.json: not a regular file" in done.stdout
    assert "Traceback" not in done.stderr


# --- archives and manifests ----------------------------------------------------------------------


def _manifest_text(text: str) -> Callable[[Export], None]:
    def attack(export: Export) -> None:
        export.manifest.write_text(text)

    return attack


def _manifest_member(member: str, value: Any) -> Callable[[Export], None]:
    def attack(export: Export) -> None:
        manifest = json.loads(export.manifest.read_text())
        if value is None:
            del manifest[member]
        else:
            manifest[member] = value
        export.manifest.write_text(json.dumps(manifest))

    return attack


def _archive_outside(export: Export) -> None:
    """The manifest names an archive outside the export, where the rows are intact."""
    outside = export.directory.parent / "outside.jsonl.gz"
    export.archive.rename(outside)
    _manifest_member("archive", "../outside.jsonl.gz")(export)


def _manifest_padded(export: Export) -> None:
    export.manifest.write_text(export.manifest.read_text() + " " * (1 << 20))


def _archive_data(data: bytes) -> Callable[[Export], None]:
    def attack(export: Export) -> None:
        export.archive_replace(data)

    return attack


def _archive_lines(*lines: str) -> Callable[[Export], None]:
    return _archive_data(gzip.compress("".join(line + "\n" for line in lines).encode(), mtime=0))


def _archive_truncated(export: Export) -> None:
    export.archive_replace(export.archive.read_bytes()[:-12])


ARCHIVE_ATTACKS = {
    "a manifest nested twenty thousand deep": (_manifest_text(DEEP_WITHIN_BOUND), "not a manifest: maximum recursion"),
    "a manifest that is not JSON": (_manifest_text("{"), "not a manifest"),
    "a manifest without its archive": (_manifest_member("archive", None), "not a manifest: KeyError('archive')"),
    "a manifest of another format": (_manifest_member("format", "jsonl+zstd/9"), "format 'jsonl+zstd/9' unknown"),
    "a manifest naming an archive outside the export": (_archive_outside, "the archive is not"),
    "a manifest of a megabyte": (_manifest_padded, "more than the 65536 such a file can have"),
    "an archive that is not gzip": (_archive_data(b"not gzip at all"), "not a whole gzip file"),
    "an archive cut short": (_archive_truncated, "not a whole gzip file"),
    "a line that is not JSON": (_archive_lines("not json"), "line 1: not a JSON line"),
    "a line nested a hundred thousand deep": (_archive_lines(DEEP), "line 1: not a JSON line"),
    "a line longer than any row": (_archive_lines("x" * (9 << 20)), "line 1 is longer than 8388608 bytes"),
    "a line without recorded_at": (
        _archive_lines('{"form" : 1, "table" : "audit_remediation", "id" : 1}'),
        "line 1: a line without an id and a canonical recorded_at",
    ),
    "a line that is not UTF-8": (_archive_data(gzip.compress(b"\xff\xfe\n", mtime=0)), "line 1 is not UTF-8"),
}


@pytest.mark.parametrize("attack", ARCHIVE_ATTACKS.keys())
def test_a_malformed_archive_is_a_finding(attack: str, export: Export, capsys: pytest.CaptureFixture[str]) -> None:
    make, detail = ARCHIVE_ATTACKS[attack]
    make(export)
    status, report = _verify(export, capsys)
    assert status == 1
    assert _kinds(report) == ["archive_corrupt"], report["findings"]
    assert detail in report["findings"][0]["detail"]


def test_rows_of_a_broken_archive_are_one_finding(export: Export, capsys: pytest.CaptureFixture[str]) -> None:
    """An archive that breaks after its first row is reported once; the seal part needing it is
    not checked against the part that was read."""
    _archive_lines(export.lines[0], "not json")(export)
    status, report = _verify(export, capsys)
    assert status == 1
    assert [(f["kind"], f["table"]) for f in report["findings"]] == [("archive_corrupt", "audit_remediation")]
    assert report["findings"][0]["detail"] == f"{PARTITION}.jsonl.gz: line 2: not a JSON line: 'not json'"


def test_a_row_outside_every_window_is_named(export: Export, capsys: pytest.CaptureFixture[str]) -> None:
    _archive_lines(*export.lines, remediation_line(9, "2026-02-03T00:00:00.000000Z"))(export)
    status, report = _verify(export, capsys)
    assert status == 1
    assert [(f["kind"], f["id"]) for f in report["findings"]] == [("row_inserted", 9)]


# --- the command line ----------------------------------------------------------------------------


def test_a_missing_key_file_is_a_usage_error(export: Export, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([str(export.directory), "--public-key", str(export.directory / "nowhere.pem")])
    assert exited.value.code == 2
    assert "cannot load a public key" in capsys.readouterr().err


def test_a_key_file_that_is_not_a_key_is_a_usage_error(export: Export, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([str(export.directory), "--public-key", str(export.manifest)])
    assert exited.value.code == 2
    assert f"cannot load a public key: {export.manifest}:" in capsys.readouterr().err


def test_a_missing_directory_is_a_usage_error_not_a_clean_export(
    tmp_path: Path, export: Export, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([str(tmp_path / "nowhere"), "--public-key", str(export.public_key)])
    assert exited.value.code == 2
    assert "is not a directory" in capsys.readouterr().err
