"""The retention archive of one partition and its manifest: written here, read here.

- `<partition>.jsonl.gz`: one line per row in id order, each the row's canonical form
  (`canonical.py`), i.e. exactly the bytes its seal hashed; gzip without a file name and with
  mtime 0, so the same rows always give the same bytes.
- `<partition>.manifest.json` beside it: table, partition, bounds, row count, the archive's
  SHA-256 and size, the format and when it was made.

`audit_retention` streams a partition's lines into `archive_writer` and checks the result with
`archive_reread` before it drops anything; `archive_verification.py` (the standalone verifier)
and `audit_archive_verify` read archives back with `manifest_read` and `archive_lines`.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from kubernaut_integrity.canonical import timestamp_parse
from kubernaut_integrity.files import atomic_file, atomic_write

ARCHIVE_FORMAT = "jsonl+gzip"
ARCHIVE_SUFFIX = ".jsonl.gz"
MANIFEST_SUFFIX = ".manifest.json"
_CHUNK = 1 << 20


class ArchiveVerificationError(Exception):
    """The archive on disk does not match its manifest or what was written: nothing is dropped."""


@dataclass(frozen=True, slots=True)
class Manifest:
    table: str
    partition: str
    starts: dt.datetime
    ends: dt.datetime
    row_count: int
    archive: str
    archive_sha256: str
    archive_bytes: int
    created_at: dt.datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "partition": self.partition,
            "bounds": {"from": self.starts.isoformat(), "to": self.ends.isoformat()},
            "row_count": self.row_count,
            "archive": self.archive,
            "archive_sha256": self.archive_sha256,
            "archive_bytes": self.archive_bytes,
            "format": ARCHIVE_FORMAT,
            "created_at": self.created_at.isoformat(),
        }

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> Manifest:
        return cls(
            table=document["table"],
            partition=document["partition"],
            starts=timestamp_parse(document["bounds"]["from"]),
            ends=timestamp_parse(document["bounds"]["to"]),
            row_count=document["row_count"],
            archive=document["archive"],
            archive_sha256=document["archive_sha256"],
            archive_bytes=document["archive_bytes"],
            created_at=timestamp_parse(document["created_at"]),
        )


def archive_paths(directory: Path, partition: str) -> tuple[Path, Path]:
    """The archive and the manifest of `partition` in `directory`."""
    return directory / f"{partition}{ARCHIVE_SUFFIX}", directory / f"{partition}{MANIFEST_SUFFIX}"


def manifest_write(path: Path, manifest: Manifest) -> None:
    atomic_write(path, json.dumps(manifest.as_json(), indent=2).encode() + b"\n")


def manifest_read(path: Path) -> Manifest:
    return Manifest.from_json(json.loads(path.read_text()))


# --- writing ---------------------------------------------------------------------------------


class _HashingWriter:
    """A binary file that hashes and counts what is written through it."""

    def __init__(self, file: BinaryIO) -> None:
        self.file = file
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self.file.write(data)

    def flush(self) -> None:
        self.file.flush()


class ArchiveWriter:
    """Compresses canonical lines into an archive, hashing and counting the bytes as they are
    written; `rows`, `sha256` and `size` are final once `archive_writer`'s block has ended."""

    def __init__(self, file: BinaryIO) -> None:
        self._hashing = _HashingWriter(file)
        self._compressed = gzip.GzipFile(filename="", mode="wb", fileobj=self._hashing, mtime=0)  # type: ignore[arg-type]
        self.rows = 0

    def write_line(self, line: str) -> None:
        self._compressed.write(line.encode("utf-8") + b"\n")
        self.rows += 1

    @property
    def sha256(self) -> str:
        return self._hashing.sha256.hexdigest()

    @property
    def size(self) -> int:
        return self._hashing.size


@contextmanager
def archive_writer(path: Path) -> Iterator[ArchiveWriter]:
    """An archive at `path`, whole or not at all (`files.atomic_file`)."""
    with atomic_file(path) as file:
        writer = ArchiveWriter(file)
        with writer._compressed:  # its trailer is written before the file is synced and renamed
            yield writer


# --- reading ---------------------------------------------------------------------------------


def archive_digest(path: Path) -> tuple[str, int]:
    """SHA-256 (hex) and size of a file, read a chunk at a time."""
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(_CHUNK), b""):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def archive_lines(path: Path) -> Iterator[str]:
    """The archive's lines, without their newline."""
    with gzip.open(path, "rt", encoding="utf-8", newline="\n") as lines:
        for line in lines:
            yield line.removesuffix("\n")


def archive_problem(manifest: Manifest, directory: Path) -> str | None:
    """Why the archive does not match its manifest (SHA-256, size), or None."""
    path = directory / manifest.archive
    if not path.is_file():
        return f"{path.name} is missing"
    sha256, size = archive_digest(path)
    if sha256 != manifest.archive_sha256 or size != manifest.archive_bytes:
        return f"{path.name}: SHA-256 {sha256} ({size} bytes) is not the manifest's"
    return None


def archive_reread(*, path: Path, row_count: int, sha256: str, expected_rows: int) -> None:
    """Read a written archive back from disk: its SHA-256, every line JSON, as many lines as
    rows were written and as `expected_rows` says. Raises ArchiveVerificationError."""
    digest, _ = archive_digest(path)
    if digest != sha256:
        raise ArchiveVerificationError(f"{path.name}: SHA-256 {digest} != {sha256}")
    lines = 0
    for line in archive_lines(path):
        json.loads(line)
        lines += 1
    if not lines == row_count == expected_rows:
        raise ArchiveVerificationError(
            f"{path.name}: {lines} lines in the archive, {row_count} rows written, {expected_rows} in the partition"
        )


def manifest_verify(manifest_path: Path) -> Manifest:
    """Re-check an archive against its manifest; returns the manifest. For operators and tests."""
    manifest = manifest_read(manifest_path)
    archive_reread(
        path=manifest_path.parent / manifest.archive,
        row_count=manifest.row_count,
        sha256=manifest.archive_sha256,
        expected_rows=manifest.row_count,
    )
    return manifest
