"""The archive format: what retention writes is what the verifiers read, byte for byte."""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import hashlib
import json
from pathlib import Path

import pytest

from kubernaut_integrity import archive_writing
from kubernaut_integrity.archive import (
    ArchiveVerificationError,
    Manifest,
    archive_lines,
    archive_paths,
    archive_reread,
    manifest_read,
    manifest_verify,
    manifest_write,
)
from kubernaut_integrity.archive_writing import SegmentedArchiveWriter, archive_segments_check
from testutils.integrity_export import remediation_line, zstd_decompress

LINES = [remediation_line(row_id, f"2026-01-0{row_id}T10:00:00.000000Z") for row_id in (1, 2, 3)]


def _write(directory: Path) -> tuple[Path, Path, Manifest]:
    directory.mkdir(exist_ok=True)
    archive, manifest_path = archive_paths(directory, "audit_remediation_p2026_01")
    writer = SegmentedArchiveWriter.resumed(archive=archive)
    writer.write("".join(line + "\n" for line in LINES).encode(), rows=len(LINES), last_id=3)
    last = writer.finish()[-1]
    manifest = Manifest(
        table="audit_remediation",
        partition="audit_remediation_p2026_01",
        starts=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        ends=dt.datetime(2026, 2, 1, tzinfo=dt.UTC),
        row_count=last.rows,
        archive=archive.name,
        archive_sha256=last.sha256,
        archive_bytes=last.end,
        created_at=dt.datetime(2026, 4, 1, tzinfo=dt.UTC),
    )
    manifest_write(manifest_path, manifest)
    return archive, manifest_path, manifest


def test_written_and_read_back(tmp_path: Path) -> None:
    archive, manifest_path, manifest = _write(tmp_path)
    assert archive.name == "audit_remediation_p2026_01.jsonl.zst"
    assert manifest.row_count == 3
    assert manifest.archive_sha256 == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert manifest.archive_bytes == archive.stat().st_size
    assert zstd_decompress(archive.read_bytes()).decode() == "".join(line + "\n" for line in LINES)
    assert list(archive_lines(archive)) == LINES
    assert manifest_read(manifest_path) == manifest
    assert manifest_verify(manifest_path) == manifest


def test_the_same_rows_give_the_same_bytes(tmp_path: Path) -> None:
    first, _, _ = _write(tmp_path / "a")
    second, _, _ = _write(tmp_path / "b")
    assert first.read_bytes() == second.read_bytes()


def test_a_reread_that_counts_otherwise_fails(tmp_path: Path) -> None:
    archive, _, manifest = _write(tmp_path)
    with pytest.raises(ArchiveVerificationError, match="3 lines in the archive, 3 rows written, 4 in the partition"):
        archive_reread(path=archive, row_count=3, sha256=manifest.archive_sha256, expected_rows=4)
    with pytest.raises(ArchiveVerificationError, match="SHA-256"):
        archive_reread(path=archive, row_count=3, sha256="0" * 64, expected_rows=3)


def _manifest_for(archive: Path, rows: int, archive_format: str = "jsonl+zstd") -> Path:
    data = archive.read_bytes()
    manifest = Manifest(
        table="audit_remediation",
        partition="audit_remediation_p2026_01",
        starts=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        ends=dt.datetime(2026, 2, 1, tzinfo=dt.UTC),
        row_count=rows,
        archive=archive.name,
        archive_sha256=hashlib.sha256(data).hexdigest(),
        archive_bytes=len(data),
        created_at=dt.datetime(2026, 4, 1, tzinfo=dt.UTC),
        format=archive_format,
    )
    _, manifest_path = archive_paths(archive.parent, "audit_remediation_p2026_01")
    manifest_write(manifest_path, manifest)
    return manifest_path


def test_an_archive_of_several_segments_reads_as_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archive_writing, "SEGMENT_ROWS", 1)
    archive, _ = archive_paths(tmp_path, "audit_remediation_p2026_01")
    writer = SegmentedArchiveWriter.resumed(archive=archive)
    for number, line in enumerate(LINES, start=1):
        writer.write(line.encode() + b"\n", rows=1, last_id=number)
    segments = writer.finish()

    assert len(segments) == 3
    assert archive.read_bytes().count(b"\x28\xb5\x2f\xfd") == 3  # three Zstandard frames
    assert list(archive_lines(archive)) == LINES
    assert zstd_decompress(archive.read_bytes()).decode() == "".join(line + "\n" for line in LINES)
    assert manifest_verify(_manifest_for(archive, 3)).row_count == 3


def test_an_archive_written_before_segments_still_verifies(tmp_path: Path) -> None:
    """jsonl+gzip, one member at level 9, as retention wrote archives before Zstandard segments."""
    archive, _ = archive_paths(tmp_path, "audit_remediation_p2026_01", "jsonl+gzip")
    archive.write_bytes(gzip.compress("".join(line + "\n" for line in LINES).encode(), compresslevel=9, mtime=0))

    assert archive.name == "audit_remediation_p2026_01.jsonl.gz"
    assert list(archive_lines(archive)) == LINES
    manifest_path = _manifest_for(archive, 3, "jsonl+gzip")
    assert json.loads(manifest_path.read_text())["format"] == "jsonl+gzip"
    assert manifest_verify(manifest_path).row_count == 3


def test_a_manifest_of_an_unknown_format_or_a_mismatched_name_is_refused(tmp_path: Path) -> None:
    _, manifest_path, _ = _write(tmp_path)
    document = json.loads(manifest_path.read_text())
    for changes in ({"format": "jsonl+brotli"}, {"format": "jsonl+gzip"}):  # .jsonl.zst is not gzip's name
        manifest_path.write_text(json.dumps(document | changes))
        with pytest.raises(ArchiveVerificationError):
            manifest_read(manifest_path)


def test_a_truncated_zstandard_frame_is_refused(tmp_path: Path) -> None:
    archive, _, _ = _write(tmp_path)
    archive.write_bytes(archive.read_bytes()[:-6])
    with pytest.raises(ArchiveVerificationError, match="not a whole Zstandard file"):
        list(archive_lines(archive))


def test_a_segment_that_is_not_what_the_database_sent_fails_the_check(tmp_path: Path) -> None:
    archive, _ = archive_paths(tmp_path, "audit_remediation_p2026_01")
    writer = SegmentedArchiveWriter.resumed(archive=archive)
    writer.write("".join(line + "\n" for line in LINES).encode(), rows=3, last_id=3)
    segments = writer.finish()
    archive_segments_check(archive=archive, segments=segments, expected_rows=3)

    forged = [dataclasses.replace(segments[0], lines_sha256="0" * 64)]
    with pytest.raises(ArchiveVerificationError, match="not the lines the database sent"):
        archive_segments_check(archive=archive, segments=forged, expected_rows=3)
    with pytest.raises(ArchiveVerificationError, match="3 lines in the archive, 4 rows in the partition"):
        archive_segments_check(archive=archive, segments=segments, expected_rows=4)
    archive.write_bytes(archive.read_bytes()[:-4])
    with pytest.raises(ArchiveVerificationError, match="shorter than its segment 1"):
        archive_segments_check(archive=archive, segments=segments, expected_rows=3)
