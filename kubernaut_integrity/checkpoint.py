"""Checkpoints (C2SP tlog-checkpoint): a log's tree head as the text of a signed note.

    <origin>                         the log's identity, e.g. `example.com/audit`
    <tree size>                      decimal, no leading zeros (`0` for the empty tree)
    <root hash>                      base64 of the RFC 6962 root at that size
    [<extension line>...]            optional, non-empty, opaque

The log signs it with its note key, whose name should be the origin; witnesses add
cosignatures (`cosignature.py`). A log never signs a checkpoint inconsistent with one it
signed before: `checkpoint_consistency_check` is run between the two before signing.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from kubernaut_integrity.note import (
    Note,
    NoteError,
    OpenedNote,
    Signature,
    Signer,
    Verifier,
    b64decode_canonical,
    note_open,
    note_sign,
)
from kubernaut_integrity.tlog import HASH_SIZE, ProofError, consistency_verify

#: Tree sizes are int64 in Go's reader and in the witness protocol's implementations.
MAX_TREE_SIZE = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    @property
    def body(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode(), *self.extensions]
        return "".join(line + "\n" for line in lines)


def checkpoint_parse(text: str) -> Checkpoint:
    """A checkpoint from its note text (with the final newline); raises NoteError."""
    if not text.endswith("\n"):
        raise NoteError("a checkpoint ends with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3 or any(not line for line in lines):
        raise NoteError("a checkpoint is three or more non-empty lines: origin, tree size, root hash")
    origin, size_text, root_text, *extensions = lines
    if not size_text.isascii() or not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
        raise NoteError(f"tree size {size_text[:40]!r} is not a decimal without leading zeros")
    size = int(size_text)
    if size > MAX_TREE_SIZE:
        raise NoteError(f"tree size {size} is too large")
    root = b64decode_canonical(root_text)
    if len(root) != HASH_SIZE:
        raise NoteError(f"root hash is {len(root)} bytes, not {HASH_SIZE}")
    return Checkpoint(origin=origin, size=size, root=root, extensions=tuple(extensions))


def checkpoint_sign(checkpoint: Checkpoint, signers: Iterable[Signer], *, keep: Iterable[Signature] = ()) -> Note:
    """The checkpoint as a note signed by `signers` (a rotation overlap: the old and new log keys)."""
    if checkpoint_parse(checkpoint.body) != checkpoint:
        raise NoteError("a checkpoint's lines hold no newline")
    return note_sign(checkpoint.body, signers, keep=keep)


@dataclass(frozen=True, slots=True)
class OpenedCheckpoint:
    checkpoint: Checkpoint
    note: OpenedNote


def checkpoint_open(data: bytes, *, origin: str, verifiers: Iterable[Verifier]) -> OpenedCheckpoint:
    """A checkpoint note signed by a trusted log key, for the expected origin; raises NoteError."""
    opened = note_open(data, verifiers)
    checkpoint = checkpoint_parse(opened.text)
    if checkpoint.origin != origin:
        raise NoteError(f"checkpoint of origin {checkpoint.origin!r}, expected {origin!r}")
    return OpenedCheckpoint(checkpoint=checkpoint, note=opened)


def checkpoint_consistency_check(*, old: Checkpoint, new: Checkpoint, proof: Sequence[bytes]) -> None:
    """Raises ProofError unless `new` extends `old`: same origin, and `proof` proves the prefix."""
    if old.origin != new.origin:
        raise ProofError(f"checkpoints of two logs: {old.origin!r} and {new.origin!r}")
    consistency_verify(old_size=old.size, old_root=old.root, new_size=new.size, new_root=new.root, proof=proof)
