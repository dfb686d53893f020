"""Writing a retention archive in segments that survive a crash, and checking it before anything
is dropped.

The archive is the `jsonl+zstd` format of `archive.py`, written as a series of Zstandard frames
(RFC 8878 allows any number; every reader, `zstdcat` and `archive_lines` included, reads them as
one stream). Each frame is a segment of rows: once it is complete, the file is fsynced and
the segment recorded in a journal (`<partition>.journal.json`, beside the archive) with the
archive's length and SHA-256 up to its end and the SHA-256 of its lines as the database sent
them. A run that dies mid-archive leaves the file and the journal; the next run cuts the file
back to the last recorded segment (after checking its bytes against the journal) and goes on
from the row after that segment's last id, so rows already archived are not read again.

The segment boundaries depend only on the rows (every SEGMENT_ROWS rows), and the compressor's
output only on its input, so the same rows give the same bytes, resumed or not.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

import zstandard

from kubernaut_integrity.archive import ARCHIVE_FORMAT, ArchiveVerificationError
from kubernaut_integrity.files import atomic_write

#: Zstandard level 1, measured on the canonical lines of the volume bench (384-d embeddings, ~3.4
#: KB a row), one core of this machine under load: zstd 1 compresses 526 MB/s to 1/5.0, zstd 3
#: 288 MB/s to 1/4.8; gzip 1 192 MB/s to 1/3.9, gzip 3 111 MB/s to 1/4.2, gzip 9 (the archives
#: before) about 40 MB/s to 1/4.7. With gzip 1, compressing was still the largest part of
#: retiring a partition (18 s of 40 s, and its re-read check 8 s more).
COMPRESS_LEVEL = 1
#: Rows per segment: what a crash can cost (~170 MB of lines, ~45 MB archived at 384-d) and how
#: often the archive is fsynced and the journal rewritten (about once a second at full speed).
SEGMENT_ROWS = 50_000
_CHUNK = 1 << 20
JOURNAL_SUFFIX = ".journal.json"


@dataclass(frozen=True, slots=True)
class Segment:
    rows: int  # rows in the archive up to the end of this segment
    last_id: int  # id of its last row (0 for an empty archive's one empty segment)
    end: int  # archive bytes up to its end
    sha256: str  # SHA-256 of the archive bytes up to its end
    lines_sha256: str  # SHA-256 of this segment's lines, uncompressed, as the database sent them


def journal_path(archive: Path) -> Path:
    return archive.with_name(archive.name.split(".", 1)[0] + JOURNAL_SUFFIX)


def journal_read(path: Path) -> list[Segment]:
    """The segments a journal records; none when it is missing, unreadable or of an archive in
    another format (start over)."""
    try:
        document = json.loads(path.read_bytes())
        if document.get("format") != ARCHIVE_FORMAT:
            return []
        return [Segment(**segment) for segment in document["segments"]]
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return []


def _compressor() -> zstandard.ZstdCompressionObj:
    return zstandard.ZstdCompressor(level=COMPRESS_LEVEL, write_checksum=True).compressobj()


class SegmentedArchiveWriter:
    """Appends lines to an archive segment by segment; `segments` is what is durable so far."""

    def __init__(self, *, archive: Path, segments: list[Segment]) -> None:
        self.archive = archive
        self.journal = journal_path(archive)
        self.segments = segments
        self._file: BinaryIO = archive.open("r+b" if segments else "wb")
        self._sha256 = hashlib.sha256()
        self._size = 0
        if segments:
            self._resume(segments[-1])
        self._member: zstandard.ZstdCompressionObj | None = None
        self._lines_sha256: hashlib._Hash | None = None
        self._rows = self.rows
        self._last_id = self.last_id

    @classmethod
    def resumed(cls, *, archive: Path) -> SegmentedArchiveWriter:
        """A writer that goes on after the last segment the journal records if the archive's
        bytes match it, else one starting over. Whether the database still holds exactly those
        rows is the caller's check (`start_over` when it does not)."""
        segments = journal_read(journal_path(archive))
        if segments and not _prefix_matches(archive, segments[-1]):
            segments = []
        return cls(archive=archive, segments=segments)

    @property
    def rows(self) -> int:
        return self.segments[-1].rows if self.segments else 0

    @property
    def last_id(self) -> int:
        return self.segments[-1].last_id if self.segments else 0

    def start_over(self) -> None:
        self._file.seek(0)
        self._file.truncate()
        self._sha256, self._size, self.segments = hashlib.sha256(), 0, []
        self._rows, self._last_id = 0, 0
        self.journal.unlink(missing_ok=True)

    def write(self, lines: bytes, *, rows: int, last_id: int) -> None:
        """Append `rows` newline-terminated canonical lines, the last with id `last_id`; ends
        the segment when it holds SEGMENT_ROWS rows."""
        if self._member is None:
            self._member = _compressor()
            self._lines_sha256 = hashlib.sha256()
        assert self._lines_sha256 is not None
        self._lines_sha256.update(lines)
        self._out(self._member.compress(lines))
        self._rows += rows
        self._last_id = last_id
        if self._rows - self.rows >= SEGMENT_ROWS:
            self.segment_end()

    def segment_end(self) -> None:
        """Close the current frame, make it durable and record it."""
        if self._member is None:
            return
        assert self._lines_sha256 is not None
        self._out(self._member.flush())
        self._file.flush()
        os.fsync(self._file.fileno())
        segment = Segment(
            self._rows, self._last_id, self._size, self._sha256.hexdigest(), self._lines_sha256.hexdigest()
        )
        self.segments.append(segment)
        journal = {"format": ARCHIVE_FORMAT, "segments": [asdict(each) for each in self.segments]}
        atomic_write(self.journal, json.dumps(journal).encode())
        self._member = self._lines_sha256 = None

    def finish(self) -> list[Segment]:
        """End the last segment (an empty archive gets one empty frame) and close the file."""
        if self._member is None and not self.segments:
            self.write(b"", rows=0, last_id=0)
        self.segment_end()
        self._file.close()
        return self.segments

    def close(self) -> None:
        self._file.close()

    def _out(self, data: bytes) -> None:
        if data:
            self._sha256.update(data)
            self._size += len(data)
            self._file.write(data)

    def _resume(self, last: Segment) -> None:
        self._file.truncate(last.end)
        self._file.seek(last.end)
        with self.archive.open("rb") as file:
            for chunk in iter(lambda: file.read(_CHUNK), b""):
                self._sha256.update(chunk)
        self._size = last.end


def _prefix_matches(archive: Path, last: Segment) -> bool:
    digest, size = hashlib.sha256(), 0
    try:
        with archive.open("rb") as file:
            while size < last.end and (chunk := file.read(min(_CHUNK, last.end - size))):
                digest.update(chunk)
                size += len(chunk)
    except OSError:
        return False
    return size == last.end and digest.hexdigest() == last.sha256


def archive_segments_check(*, archive: Path, segments: list[Segment], expected_rows: int) -> None:
    """Read the archive back from disk: its length and SHA-256 as written, each segment one whole
    Zstandard frame whose lines are, byte for byte, those the database sent (their SHA-256) and as
    many as it sent; and `expected_rows` rows in all. Raises ArchiveVerificationError."""
    if not segments:
        raise ArchiveVerificationError(f"{archive.name}: nothing written")
    digest, start = hashlib.sha256(), 0
    rows_before = 0
    with archive.open("rb") as file:
        for number, segment in enumerate(segments, start=1):
            member, lines, rows = zstandard.ZstdDecompressor().decompressobj(), hashlib.sha256(), 0
            remaining = segment.end - start
            while remaining > 0:
                chunk = file.read(min(_CHUNK, remaining))
                if not chunk:
                    raise ArchiveVerificationError(f"{archive.name}: shorter than its segment {number}")
                remaining -= len(chunk)
                digest.update(chunk)
                if member.eof:
                    raise ArchiveVerificationError(f"{archive.name}: segment {number} is not one whole frame")
                # The output of what this run compressed itself: a few times the chunk.
                plain = member.decompress(chunk)
                lines.update(plain)
                rows += plain.count(b"\n")
            if not member.eof or member.unused_data:
                raise ArchiveVerificationError(f"{archive.name}: segment {number} is not one whole frame")
            if lines.hexdigest() != segment.lines_sha256 or rows != segment.rows - rows_before:
                raise ArchiveVerificationError(f"{archive.name}: segment {number} is not the lines the database sent")
            if digest.hexdigest() != segment.sha256:
                raise ArchiveVerificationError(f"{archive.name}: SHA-256 up to segment {number} is not as written")
            start, rows_before = segment.end, segment.rows
        if file.read(1):
            raise ArchiveVerificationError(f"{archive.name}: bytes after its last segment")
    if rows_before != expected_rows:
        raise ArchiveVerificationError(
            f"{archive.name}: {rows_before} lines in the archive, {expected_rows} rows in the partition"
        )
