"""The retention archive of one partition and its manifest: the format, and reading it.

- the archive: one line per row in id order, each the row's canonical form (`canonical.py`),
  i.e. exactly the bytes its seal hashed, compressed in one of two formats, both read here:
  - `jsonl+zstd`, `<partition>.jsonl.zst`, written since retention wrote in segments: one
    Zstandard frame (level 1, with its content checksum) per segment of rows;
  - `jsonl+gzip`, `<partition>.jsonl.gz`, the archives written before: one gzip member (level
    9, no file name, mtime 0).
  Either way the same rows give the same bytes, and several frames or members read as one
  stream.
- `<partition>.manifest.json` beside it: table, partition, bounds, row count, the archive's
  SHA-256 and size, the format and when it was made.

`audit_retention` writes archives with `archive_writing.py` and checks each before it drops
anything; `archive_verification.py` (the standalone verifier) and `audit_archive_verify` read
archives back with `manifest_read` and `archive_lines`. Those readers take archives and
manifests as hostile input: bounded in size, checked member by member, and any fault is an
ArchiveVerificationError naming it, never another exception. (A stream cut at a frame or member
boundary reads as a shorter whole: the manifest's SHA-256 and size, checked first, find it.)
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import io
import json
import os
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import zstandard

from kubernaut_integrity.canonical import SEALED_TABLES, timestamp_parse
from kubernaut_integrity.files import FileRefusedError, atomic_write, open_regular, read_bounded

#: Each format the readers know, and the suffix of its archives.
ARCHIVE_FORMATS = {"jsonl+zstd": ".jsonl.zst", "jsonl+gzip": ".jsonl.gz"}
#: The format retention writes.
ARCHIVE_FORMAT = "jsonl+zstd"
MANIFEST_SUFFIX = ".manifest.json"
#: A manifest is ten short members, about 500 bytes.
MANIFEST_MAX_BYTES = 64 * 1024
#: The longest line read. A line is one stored row: a record the API accepted (at most
#: AUDIT_MAX_BODY_BYTES, 1 MiB by default) whose form repeats part of it (the columns taken
#: from the payload) with jsonb's spacing, about 3 MiB at most; 8 MiB leaves room for a raised
#: body limit while one line is all a hostile archive can make a verifier hold.
LINE_MAX_BYTES = 8 * 1024 * 1024
#: The largest Zstandard window a reader accepts: level 1 uses 512 KiB; 8 MiB is zstd's default
#: limit for what a decoder must support, and all the memory a hostile frame can make it take.
ZSTD_MAX_WINDOW = 8 * 1024 * 1024
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
    format: str = ARCHIVE_FORMAT

    def as_json(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "partition": self.partition,
            "bounds": {"from": self.starts.isoformat(), "to": self.ends.isoformat()},
            "row_count": self.row_count,
            "archive": self.archive,
            "archive_sha256": self.archive_sha256,
            "archive_bytes": self.archive_bytes,
            "format": self.format,
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
                format=document.get("format"),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ArchiveVerificationError(f"not a manifest: {exc!r}"[:200]) from None
        if document.get("format") not in ARCHIVE_FORMATS:
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
        suffix = ARCHIVE_FORMATS[self.format]
        if self.archive != self.partition + suffix:
            return f"the archive is not {self.partition}{suffix}"
        if not self.starts < self.ends:
            return "empty or inverted bounds"
        if not all(type(count) is int and count >= 0 for count in (self.row_count, self.archive_bytes)):
            return "row_count or archive_bytes is not a count"
        if not isinstance(self.archive_sha256, str) or _SHA256_HEX.fullmatch(self.archive_sha256) is None:
            return "archive_sha256 is not a SHA-256 in hex"
        return None


def archive_paths(directory: Path, partition: str, archive_format: str = ARCHIVE_FORMAT) -> tuple[Path, Path]:
    """The archive (in `archive_format`) and the manifest of `partition` in `directory`."""
    return (
        directory / f"{partition}{ARCHIVE_FORMATS[archive_format]}",
        directory / f"{partition}{MANIFEST_SUFFIX}",
    )


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
    """The archive's lines, without their newline, each read with a bound (LINE_MAX_BYTES); the
    format is the file's suffix. Raises ArchiveVerificationError for a file that is not whole
    gzip or Zstandard, a line too long and a line that is not UTF-8."""
    number = 0
    zstd = path.name.endswith(ARCHIVE_FORMATS["jsonl+zstd"])
    try:
        with open_regular(path) as file, _decompressed(file, zstd=zstd) as lines:
            while line := lines.readline(LINE_MAX_BYTES + 1):
                number += 1
                if len(line) > LINE_MAX_BYTES:
                    raise ArchiveVerificationError(f"{path.name}: line {number} is longer than {LINE_MAX_BYTES} bytes")
                yield line.decode().removesuffix("\n")
    except UnicodeDecodeError:
        raise ArchiveVerificationError(f"{path.name}: line {number} is not UTF-8") from None
    except (FileRefusedError, OSError, EOFError, zlib.error, zstandard.ZstdError) as exc:
        kind = "Zstandard" if zstd else "gzip"
        raise ArchiveVerificationError(f"{path.name}: not a whole {kind} file ({exc})") from None


def _decompressed(file: BinaryIO, *, zstd: bool) -> BinaryIO:
    """`file` decompressed, read a buffer at a time (memory bounded whatever a frame claims)."""
    if zstd:
        _zstd_frames_check(file)
        reader = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW).stream_reader(
            file, read_across_frames=True
        )
        return io.BufferedReader(reader)  # type: ignore[arg-type]
    return gzip.GzipFile(fileobj=file, mode="rb")  # type: ignore[return-value]


_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_FCS_BYTES = (0, 2, 4, 8)  # by Frame_Content_Size_flag (0: 1 byte with Single_Segment_flag)
_DICTIONARY_ID_BYTES = (0, 1, 2, 4)


def _zstd_frames_check(file: BinaryIO) -> None:
    """That `file` is whole Zstandard frames and nothing else, walked by their headers (RFC 8878
    3.1.1) without decompressing: the stream reader takes a file cut short, even mid-frame, for
    a shorter whole. Raises zstandard.ZstdError. Leaves the file at its start."""
    size = os.fstat(file.fileno()).st_size
    position = 0
    while position < size:
        file.seek(position)
        header = file.read(6)
        if len(header) < 5 or header[:4] != _ZSTD_MAGIC:
            raise zstandard.ZstdError(f"no Zstandard frame at byte {position}")
        descriptor = header[4]
        if descriptor & 0x08:
            raise zstandard.ZstdError(f"reserved bit set in the frame at byte {position}")
        single_segment = bool(descriptor & 0x20)
        fcs = _FCS_BYTES[descriptor >> 6] or (1 if single_segment else 0)
        position += 5 + (0 if single_segment else 1) + _DICTIONARY_ID_BYTES[descriptor & 0x03] + fcs
        last = False
        while not last:
            file.seek(position)
            block = file.read(3)
            if len(block) < 3:
                raise zstandard.ZstdError(f"a frame cut short at byte {position}")
            value = int.from_bytes(block, "little")
            last, kind, block_size = bool(value & 1), (value >> 1) & 0x03, value >> 3
            if kind == 3:
                raise zstandard.ZstdError(f"a reserved block type at byte {position}")
            position += 3 + (1 if kind == 1 else block_size)
        position += 4 if descriptor & 0x04 else 0
    if position != size:
        raise zstandard.ZstdError(f"a frame cut short at byte {size}")
    file.seek(0)


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
