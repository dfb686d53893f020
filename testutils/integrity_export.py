"""An exported month as `audit_retention` leaves it, made without a database: one archive of
remediation rows, its manifest and the seal covering the month, with its leaves. The archive
and manifest are written here by hand, not by the code under test, so a test of the readers
does not rest on the writer."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zstandard

from kubernaut_integrity.canonical import SEALED_TABLES
from kubernaut_integrity.keys import key_pair_write, private_key_load
from kubernaut_integrity.seal_files import seal_file_write
from kubernaut_integrity.seals import seal_make, table_entry

MONTH_START, MONTH_END = "2026-01-01T00:00:00.000000Z", "2026-02-01T00:00:00.000000Z"
PARTITION = "audit_remediation_p2026_01"
TABLES = SEALED_TABLES


@dataclass(frozen=True)
class Export:
    directory: Path
    public_key: Path
    private_key: Path
    lines: list[str]

    @property
    def seal_file(self) -> Path:
        return self.directory / "seal-000000000001.json"

    @property
    def archive(self) -> Path:
        return self.directory / f"{PARTITION}.jsonl.gz"

    @property
    def manifest(self) -> Path:
        return self.directory / f"{PARTITION}.manifest.json"

    def seal_document(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.seal_file.read_text())
        return document

    def seal_document_write(self, document: dict[str, Any], *, padding: str = "") -> None:
        self.seal_file.write_text(json.dumps(document, indent=1) + padding + "\n")

    def archive_replace(self, data: bytes) -> None:
        """Replace the archive and update its manifest to match, as someone rewriting both would."""
        self.archive.write_bytes(data)
        manifest = json.loads(self.manifest.read_text())
        manifest.update(archive_sha256=hashlib.sha256(data).hexdigest(), archive_bytes=len(data))
        self.manifest.write_text(json.dumps(manifest, indent=2) + "\n")


def remediation_line(row_id: int, recorded_at: str) -> str:
    """A canonical line as PostgreSQL writes it (shortened to the members a verifier reads)."""
    return (
        f'{{"form" : 1, "table" : "audit_remediation", "id" : {row_id}, "recorded_at" : "{recorded_at}",'
        f' "name" : "rr-{row_id}", "namespace" : "payments"}}'
    )


def export_write(directory: Path, *, rows: int = 3) -> Export:
    private, public, _ = key_pair_write(directory / "keys")
    export_dir = directory / "export"
    export_dir.mkdir()
    lines = [remediation_line(row_id, f"2026-01-{row_id:02d}T10:00:00.000000Z") for row_id in range(1, rows + 1)]
    leaves = [(row_id, hashlib.sha256(line.encode()).digest()) for row_id, line in enumerate(lines, start=1)]
    tables = {table: table_entry([], []) for table in TABLES} | {"audit_remediation": table_entry(leaves, [PARTITION])}
    seal = seal_make(
        sequence=1,
        window_start=MONTH_START,
        window_end=MONTH_END,
        tables=tables,
        previous="0" * 64,
        sealed_at=MONTH_END,
        private_key=private_key_load(private),
    )
    seal_file_write(export_dir, seal, {"audit_remediation": leaves})
    export = Export(directory=export_dir, public_key=public, private_key=private, lines=lines)
    data = gzip.compress("".join(line + "\n" for line in lines).encode(), mtime=0)
    export.archive.write_bytes(data)
    manifest = {
        "table": "audit_remediation",
        "partition": PARTITION,
        "bounds": {"from": "2026-01-01T00:00:00+00:00", "to": "2026-02-01T00:00:00+00:00"},
        "row_count": rows,
        "archive": export.archive.name,
        "archive_sha256": hashlib.sha256(data).hexdigest(),
        "archive_bytes": len(data),
        "format": "jsonl+gzip",
        "created_at": "2026-04-01T00:00:00+00:00",
    }
    export.manifest.write_text(json.dumps(manifest, indent=2) + "\n")
    return export


def junk_leaves(count: int) -> str:
    """Base64 of `count` well-formed leaves that belong to no row."""
    return base64.b64encode(b"".join(row_id.to_bytes(8, "big") + b"\x5a" * 32 for row_id in range(count))).decode()


def zstd_decompress(data: bytes) -> bytes:
    """The whole content of a Zstandard stream of any number of frames (a retention archive)."""
    return zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True).read()


def zstd_compress(data: bytes) -> bytes:
    return zstandard.ZstdCompressor(level=1, write_checksum=True).compress(data)
