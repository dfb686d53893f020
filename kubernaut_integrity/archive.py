"""The retention archive of one partition and its manifest: the format, and reading it.

- `<partition>.jsonl.gz`: one line per row in id order, each the row's canonical form
  (`canonical.py`), i.e. exactly the bytes its seal hashed; gzip without a file name and with
  mtime 0, so the same rows always give the same bytes. One gzip member or several (a reader
  reads them as one stream): archives written before retention wrote in segments are one
  member at level 9, those written since one member per segment at level 1; both are this
  format and read the same way.
- `<partition>.manifest.json` beside it: table, partition, bounds, row count, the archive's
  SHA-256 and size, the format and when it was made.

`audit_retention` writes archives with `archive_writing.py` and checks each before it drops
anything; `archive_verification.py` (the standalone verifier) and `audit_archive_verify` read
archives back with `manifest_read` and `archive_lines`. Those
readers take archives and manifests as hostile input: bounded in size, checked member by
member, and any fault is an ArchiveVerificationError naming it, never another exception.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernaut_integrity.canonical import SEALED_TABLES, timestamp_parse
from kubernaut_integrity.files import FileRefusedError, atomic_write, open_regular, read_bounded

ARCHIVE_FORMAT = "jsonl+gzip"
ARCHIVE_SUFFIX = ".jsonl.gz"
MANIFEST_SUFFIX = ".manifest.json"
#: A manifest is ten short members, about 500 bytes.
MANIFEST_MAX_BYTES = 64 * 1024
#: The longest line read. A line is one stored row: a record the API accepted (at most
#: AUDIT_MAX_BODY_BYTES, 1 MiB by default) whose form repeats part of it (the columns taken
#: from the payload) with jsonb's spacing, about 3 MiB at most; 8 MiB leaves room for a raised
#: body limit while one line is all a hostile archive can make a verifier hold.
LINE_MAX_BYTES = 8 * 1024 * 1024
_CHUNK = 1 << 20
_PARTITION = re.compile(r"[a-z][a-z0-9_]{0,62}")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


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
    def from_json(cls, document: Any) -> Manifest:
        """The manifest, each member checked: raises ArchiveVerificationError. Its archive must be
        `<partition>.jsonl.gz` beside it, so a manifest cannot send a reader elsewhere."""
        try:
            manifest = cls(
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
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ArchiveVerificationError(f"not a manifest: {exc!r}"[:200]) from None
        if document.get("format") != ARCHIVE_FORMAT:
            raise ArchiveVerificationError(f"format {ascii(document.get('format'))[:80]} unknown")
        problem = manifest._problem()
        if problem is not None:
            raise ArchiveVerificationError(f"not a manifest: {problem}")
        return manifest

    def _problem(self) -> str | None:
        if self.table not in SEALED_TABLES:
            return "no sealed table"
        if not isinstance(self.partition, str) or _PARTITION.fullmatch(self.partition) is None:
            return "no partition name"
        if self.archive != self.partition + ARCHIVE_SUFFIX:
            return f"the archive is not {self.partition}{ARCHIVE_SUFFIX}"
        if not self.starts < self.ends:
            return "empty or inverted bounds"
        if not all(type(count) is int and count >= 0 for count in (self.row_count, self.archive_bytes)):
            return "row_count or archive_bytes is not a count"
        if not isinstance(self.archive_sha256, str) or _SHA256_HEX.fullmatch(self.archive_sha256) is None:
            return "archive_sha256 is not a SHA-256 in hex"
        return None


def archive_paths(directory: Path, partition: str) -> tuple[Path, Path]:
    """The archive and the manifest of `partition` in `directory`."""
    return directory / f"{partition}{ARCHIVE_SUFFIX}", directory / f"{partition}{MANIFEST_SUFFIX}"


def manifest_write(path: Path, manifest: Manifest) -> None:
    atomic_write(path, json.dumps(manifest.as_json(), indent=2).encode() + b"\n")


def manifest_read(path: Path) -> Manifest:
    """Raises ArchiveVerificationError for anything but a manifest of at most MANIFEST_MAX_BYTES."""
    try:
        document = json.loads(read_bounded(path, MANIFEST_MAX_BYTES))
    except (ValueError, RecursionError) as exc:  # RecursionError: nested deeper than the interpreter allows
        raise ArchiveVerificationError(f"not a manifest: {str(exc)[:200]}") from None
    return Manifest.from_json(document)


# --- reading ---------------------------------------------------------------------------------


def archive_digest(path: Path) -> tuple[str, int]:
    """SHA-256 (hex) and size of a file, read a chunk at a time."""
    digest, size = hashlib.sha256(), 0
    try:
        with open_regular(path) as file:
            for chunk in iter(lambda: file.read(_CHUNK), b""):
                digest.update(chunk)
                size += len(chunk)
    except FileRefusedError as exc:
        raise ArchiveVerificationError(f"{path.name}: {exc}") from None
    return digest.hexdigest(), size


def archive_lines(path: Path) -> Iterator[str]:
    """The archive's lines, without their newline, each read with a bound (LINE_MAX_BYTES).
    Raises ArchiveVerificationError for a file that is not whole gzip, a line too long and a
    line that is not UTF-8."""
    number = 0
    try:
        with open_regular(path) as file, gzip.GzipFile(fileobj=file, mode="rb") as compressed:
            while line := compressed.readline(LINE_MAX_BYTES + 1):
                number += 1
                if len(line) > LINE_MAX_BYTES:
                    raise ArchiveVerificationError(f"{path.name}: line {number} is longer than {LINE_MAX_BYTES} bytes")
                yield line.decode().removesuffix("\n")
    except UnicodeDecodeError:
        raise ArchiveVerificationError(f"{path.name}: line {number} is not UTF-8") from None
    except (FileRefusedError, OSError, EOFError, zlib.error) as exc:
        raise ArchiveVerificationError(f"{path.name}: not a whole gzip file ({exc})") from None


def archive_problem(manifest: Manifest, directory: Path) -> str | None:
    """Why the archive does not match its manifest (SHA-256, size), or None."""
    path = directory / manifest.archive
    if not path.exists():
        return f"{path.name} is missing"
    try:
        sha256, size = archive_digest(path)
    except ArchiveVerificationError as exc:
        return str(exc)
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
        try:
            json.loads(line)
        except (ValueError, RecursionError):  # RecursionError: nested deeper than the interpreter allows
            raise ArchiveVerificationError(f"{path.name}: line {lines + 1} is not JSON") from None
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
