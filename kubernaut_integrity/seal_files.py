"""The seal file: a seal's copy outside the database, with the leaves that name changed rows.

`seal-<sequence, 12 digits>.json` holds the body (its exact text), the signature (base64) and
the leaves: per table, base64 of (id as signed 64-bit big-endian, 32-byte row hash) for every
row, in id order. The leaves are not signed themselves; they are trusted only when they
rebuild the signed roots, and then a verifier names the exact rows that changed. The members
come in this order; a copy made from the database alone (no file in AUDIT_SEAL_DIR) has no
leaves.

A verifier reads seal files as hostile input: never more bytes than an honest file of that
seal holds, never nested deeper than the format is, and anything else is a finding
(`seal_directory_read`), never an exception or a silent pass.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kubernaut_integrity.files import FileRefusedError, atomic_write, open_regular
from kubernaut_integrity.findings import SEAL_MALFORMED, Finding
from kubernaut_integrity.seals import (
    BODY_MAX_BYTES,
    LEAF_BYTES,
    Leaves,
    MalformedSealError,
    Seal,
    body_parse,
    leaves_pack,
    leaves_unpack,
    seal_tables,
)

_NAME = re.compile(r"seal-(\d{12})\.json")
_SIGNATURE_BYTES = 64
#: The part of a seal file before its leaves: the body as a JSON string (escaping makes at most
#: six characters of one byte, `\u00XX`), the signature (88 characters) and the members' names.
HEAD_MAX_BYTES = 6 * BODY_MAX_BYTES + 1024
#: What the leaves member holds besides its base64: five table names with their quotes,
#: separators and indentation (about 150 bytes as written), and whitespace a copy may add.
_LEAVES_FRAMING_BYTES = 4096
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_END = re.compile(r"[ \t\n\r]*\}[ \t\n\r]*")
_DECODER = json.JSONDecoder()


class SealFileError(ValueError):
    """A file that is not a seal file: nothing in it is used."""


def seal_file_name(sequence: int) -> str:
    return f"seal-{sequence:012d}.json"


def seal_file_write(directory: Path, seal: Seal, leaves: Mapping[str, Leaves] | None) -> Path:
    """Write the seal file, whole or not at all."""
    directory.mkdir(parents=True, exist_ok=True)
    document: dict[str, Any] = {
        "body": seal.body_bytes.decode(),
        "signature": base64.b64encode(seal.signature).decode(),
    }
    if leaves is not None:
        document["leaves"] = {table: leaves_pack(leaves.get(table, [])) for table in seal_tables(seal.body)}
    path = directory / seal_file_name(seal.body["sequence"])
    atomic_write(path, json.dumps(document, indent=1).encode() + b"\n")
    return path


def leaves_max_bytes(counts: Mapping[str, int]) -> int:
    """The most bytes the leaves member of a seal with these row counts can take: a 40-byte leaf
    per row, as base64 (4 characters per 3 bytes), plus the framing."""
    return sum(4 * -(-LEAF_BYTES * count // 3) for count in counts.values()) + _LEAVES_FRAMING_BYTES


@dataclass(frozen=True, slots=True)
class SealFile:
    seal: Seal
    #: Signed by a trusted key (checked when read).
    signed: bool
    leaves: dict[str, Leaves] | None
    #: Why the leaves were refused (the seal itself is still used), else None.
    leaves_problem: str | None = None


def seal_file_sequence(path: Path) -> int:
    match = _NAME.fullmatch(path.name)
    if match is None:
        raise SealFileError("not a seal file name (seal-<12 digits>.json)")
    return int(match.group(1))


def seal_file_read(path: Path, *, trusted: Mapping[str, Ed25519PublicKey]) -> SealFile:
    """A seal file, read with bounds: the body and signature within HEAD_MAX_BYTES, then the
    leaves only of a seal signed by a trusted key (so that its row counts can be believed), and
    only as many bytes as those counts need. So the largest file read is the largest honest
    one, whatever lies in the directory. Raises SealFileError for a file that is not a seal
    file at all; leaves that are refused leave the seal usable (`leaves_problem`)."""
    sequence = seal_file_sequence(path)
    try:
        with open_regular(path) as file:
            return _read(file, sequence, trusted)
    except FileRefusedError as exc:
        raise SealFileError(str(exc)) from None


def _read(file: BinaryIO, sequence: int, trusted: Mapping[str, Ed25519PublicKey]) -> SealFile:
    size = os.fstat(file.fileno()).st_size
    head = file.read(HEAD_MAX_BYTES)
    body_text, signature_text, leaves_at = _head_parse(head, whole=len(head) < HEAD_MAX_BYTES)
    try:
        seal = Seal(body_bytes=body_text.encode(), signature=base64.b64decode(signature_text, validate=True))
        body = body_parse(seal.body_bytes)
    except (UnicodeEncodeError, binascii.Error, MalformedSealError) as exc:
        raise SealFileError(str(exc)) from None
    if len(seal.signature) != _SIGNATURE_BYTES:
        raise SealFileError(f"a signature of {len(seal.signature)} bytes, not {_SIGNATURE_BYTES}")
    if body["sequence"] != sequence:
        raise SealFileError(f"holds seal {body['sequence']}")
    signed = seal.signature_check(trusted) is None
    if leaves_at is None or not signed:
        return SealFile(seal=seal, signed=signed, leaves=None)
    counts = {table: body["tables"][table]["count"] for table in seal_tables(body)}
    limit = leaves_max_bytes(counts)
    refused = f"leaves refused: more than the {leaves_at + limit} bytes a seal of {sum(counts.values())} rows takes"
    if size - leaves_at > limit:
        return SealFile(seal=seal, signed=signed, leaves=None, leaves_problem=f"{size} bytes, {refused}")
    file.seek(leaves_at)
    rest = file.read(limit + 1)
    if len(rest) > limit:  # it grew after its size was taken
        return SealFile(seal=seal, signed=signed, leaves=None, leaves_problem=refused)
    try:
        leaves = _leaves_parse(rest, counts)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested deeper than the interpreter allows
        return SealFile(seal=seal, signed=signed, leaves=None, leaves_problem=f"leaves refused: {exc}")
    return SealFile(seal=seal, signed=signed, leaves=leaves)


def _head_parse(head: bytes, *, whole: bool) -> tuple[str, str, int | None]:
    """The body and signature, and the byte offset of the leaves' value (None without leaves)."""
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=whole)
    except UnicodeDecodeError as exc:
        raise SealFileError(f"not UTF-8: {exc}") from None
    scanner = _Scanner(text)
    try:
        scanner.expect("{")
        body = scanner.member("body")
        scanner.expect(",")
        signature = scanner.member("signature")
    except ValueError as exc:
        if not whole:
            raise SealFileError(f"no body and signature within its first {HEAD_MAX_BYTES} bytes") from None
        raise SealFileError(f"not a seal file: {exc}") from None
    try:
        if scanner.next() == "}":
            scanner.expect("}")
            scanner.end()
            if not whole:
                raise ValueError("more follows the seal")
            return body, signature, None
        scanner.expect(",")
        scanner.name("leaves")
        scanner.skip()
    except ValueError as exc:
        raise SealFileError(f"not a seal file: {exc}") from None
    return body, signature, len(text[: scanner.position].encode())


def _leaves_parse(rest: bytes, counts: Mapping[str, int]) -> dict[str, Leaves]:
    text = rest.decode()
    packed, end = _DECODER.raw_decode(text)
    if _END.fullmatch(text, end) is None:
        raise ValueError("more follows the leaves")
    if not isinstance(packed, dict) or set(packed) != set(counts):
        raise ValueError(f"not the leaves of {', '.join(counts)}")
    leaves = {}
    for table in counts:
        if not isinstance(packed[table], str):
            raise ValueError(f"{table}: not a string")
        leaves[table] = leaves_unpack(packed[table])
        if len(leaves[table]) != counts[table]:
            raise ValueError(f"{len(leaves[table])} leaves of {table}, the seal counts {counts[table]}")
    return leaves


class _Scanner:
    """Reads the members before the leaves one at a time, so that nothing but those two strings
    is decoded: the leaves may be large, and are read only once their bound is known."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.position = 0

    def skip(self) -> None:
        match = _WHITESPACE.match(self.text, self.position)
        assert match is not None  # the pattern matches the empty string
        self.position = match.end()

    def next(self) -> str:
        self.skip()
        return self.text[self.position : self.position + 1]

    def expect(self, character: str) -> None:
        if self.next() != character:
            raise ValueError(f"{character!r} expected at character {self.position}")
        self.position += 1

    def string(self) -> str:
        if self.next() != '"':
            raise ValueError(f"a string expected at character {self.position}")
        value, self.position = _DECODER.raw_decode(self.text, self.position)
        assert isinstance(value, str)
        return value

    def name(self, expected: str) -> None:
        if self.string() != expected:
            raise ValueError(f'"{expected}" expected at character {self.position}')
        self.expect(":")

    def member(self, expected: str) -> str:
        self.name(expected)
        return self.string()

    def end(self) -> None:
        self.skip()
        if self.position != len(self.text):
            raise ValueError(f"more follows at character {self.position}")


@dataclass
class SealDirectory:
    """The seal files of a directory: the usable ones by sequence, a finding for each of the
    others, and the sequences whose file exists but is not usable."""

    files: dict[int, SealFile] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    unusable: set[int] = field(default_factory=set)


def seal_directory_read(
    directory: Path, *, trusted: Mapping[str, Ed25519PublicKey], wanted: Callable[[int], bool] | None = None
) -> SealDirectory:
    """Every seal file in `directory` (those whose sequence is `wanted`): each file that is not
    one, or whose leaves are refused, is a `seal_malformed` finding naming it."""
    found = SealDirectory()
    for path in seal_files(directory):
        try:
            sequence = seal_file_sequence(path)
        except SealFileError as exc:
            found.findings.append(Finding(SEAL_MALFORMED, f"{path.name}: {exc}"))
            continue
        if wanted is not None and not wanted(sequence):
            continue
        try:
            copy = seal_file_read(path, trusted=trusted)
        except SealFileError as exc:
            found.findings.append(Finding(SEAL_MALFORMED, f"{path.name}: {exc}", seal=sequence))
            found.unusable.add(sequence)
            continue
        if copy.leaves_problem is not None:
            found.findings.append(Finding(SEAL_MALFORMED, f"{path.name}: {copy.leaves_problem}", seal=sequence))
        found.files[sequence] = copy
    return found


def seal_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("seal-*.json")) if directory.is_dir() else []
