"""The seal log as the database keeps it (docs/INTEGRITY.md): one RFC 6962 tree whose leaf n - 1
is the exact signed body of seal n, appended in the transaction that stores the seals, and its
checkpoints, signed in that same transaction by the log's own note key(s).

Each seal's row keeps, in `log_hashes`, the hashes of the complete subtrees its leaf completes
(`kubernaut_integrity.tlog`: slot 0 its leaf hash, slot k node (k, i >> k); about 64 bytes a
seal), so a tree head, an inclusion or a consistency proof is one query of O(log n) point reads
of the seals' primary key. Retention never touches the seals, so nor the log.

The files beside the seal files: `checkpoint` (the latest checkpoint with its cosignatures) and
`checkpoints/checkpoint-<size, 12 digits>` (each one) with `.tsr` (its RFC 3161 anchor, when it
has one), written after the commit (`log_publication.py`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from django.db import connection

from audit.models import AuditCheckpoint, AuditCheckpointCosignature
from kubernaut_integrity.checkpoint import (
    Checkpoint,
    checkpoint_consistency_check,
    checkpoint_open,
    checkpoint_parse,
    checkpoint_sign,
)
from kubernaut_integrity.files import FileRefusedError, read_bounded
from kubernaut_integrity.keys import KEY_FILE_MAX_BYTES
from kubernaut_integrity.note import (
    Ed25519Signer,
    Note,
    NoteError,
    Signature,
    note_parse,
    note_with_signatures,
    signer_from_skey,
)
from kubernaut_integrity.tlog import (
    HASH_SIZE,
    HashReader,
    Node,
    ProofError,
    consistency_proof,
    node_home,
    slot_hash,
    tree_hash,
)

CHECKPOINT_FILE = "checkpoint"
CHECKPOINTS_DIR = "checkpoints"
#: A checkpoint note is a few hundred bytes, and some cosignature lines.
NOTE_MAX_BYTES = 64 * 1024

_Result = TypeVar("_Result")


def checkpoint_file_name(size: int) -> str:
    return f"checkpoint-{size:012d}"


# --- reading the stored hashes ----------------------------------------------------------------


def stored_hashes_read(nodes: Sequence[Node]) -> list[bytes]:
    """The log's HashReader on the database: the rows of the seals holding `nodes`, one query."""
    if not nodes:
        return []
    homes = sorted({node_home(node)[0] for node in nodes})
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT sequence, log_hashes FROM audit_seals WHERE sequence = ANY(%s)", [[home + 1 for home in homes]]
        )
        stored = {sequence - 1: bytes(hashes) for sequence, hashes in cursor.fetchall()}
    hashes = []
    for node in nodes:
        row, slot = node_home(node)
        digest = slot_hash(stored.get(row, b""), slot)
        if len(digest) != HASH_SIZE:
            raise ProofError(f"seal {row + 1} stores no hash of subtree {node}: the seal log is damaged")
        hashes.append(digest)
    return hashes


def proofs_batched(make: Callable[[HashReader], _Result]) -> _Result:
    """`make(read)` with one database read for all it asks: made once to learn which stored hashes
    it needs (which depends on tree sizes and indexes only, never on hash values), then again."""
    wanted: set[Node] = set()

    def noting(nodes: Sequence[Node]) -> list[bytes]:
        wanted.update(nodes)
        return [bytes(HASH_SIZE)] * len(nodes)

    make(noting)
    ordered = sorted(wanted)
    known = dict(zip(ordered, stored_hashes_read(ordered), strict=True))
    return make(lambda nodes: [known[node] for node in nodes])


# --- signing checkpoints ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LogSigning:
    """The log's origin and its note signing key(s): two during a rotation's overlap."""

    origin: str
    signers: tuple[Ed25519Signer, ...]


def log_signing_load(paths: Iterable[Path], *, origin: str) -> LogSigning:
    """The signer keys (audit_keygen's `log-signing-key`), each named for `origin`; raises
    ValueError naming the file that is not one."""
    signers = []
    for path in paths:
        try:
            signer = signer_from_skey(read_bounded(path, KEY_FILE_MAX_BYTES).decode("utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as error:
            raise ValueError(f"{path}: {error}") from error
        if signer.name != origin:
            raise ValueError(f"{path}: a key of log {signer.name!r}, not of AUDIT_LOG_ORIGIN {origin!r}")
        signers.append(signer)
    return LogSigning(origin=origin, signers=tuple(signers))


class SealLogError(Exception):
    """The stored log contradicts a checkpoint signed before: its history changed since."""


def checkpoint_of_note(note: bytes) -> Checkpoint:
    """The checkpoint a stored note states (its signatures are ours: checked by audit_verify)."""
    return checkpoint_parse(note_parse(note).text)


def checkpoint_sign_stored(
    *, signing: LogSigning, seal_dir: Path, size: int, now: dt.datetime
) -> AuditCheckpoint | None:
    """Within the sealing transaction: sign and store a checkpoint of the first `size` seals,
    unless the latest checkpoint has that size already. Before signing, the new tree is checked
    to extend the latest stored checkpoint and the latest one written outside the database:
    raises SealLogError (and signs nothing) when it does not."""
    previous = AuditCheckpoint.objects.order_by("-size").first()
    if size == 0 or (previous is not None and previous.size == size):
        return None
    new = Checkpoint(origin=signing.origin, size=size, root=tree_hash(size=size, read=stored_hashes_read))
    earlier = [("the latest stored checkpoint", checkpoint_of_note(previous.note.encode()))] if previous else []
    outside = _checkpoint_outside(seal_dir, signing)
    if outside is not None:
        earlier.append((f"{CHECKPOINT_FILE} in {seal_dir}", outside))
    for where, old in earlier:
        try:
            if old.size > size:
                raise ProofError(f"the log has {size} seals, fewer than checkpoint {old.size}")
            proof = consistency_proof(old_size=old.size, new_size=size, read=stored_hashes_read)
            checkpoint_consistency_check(old=old, new=new, proof=proof)
        except ProofError as error:
            raise SealLogError(
                f"refusing to sign checkpoint {size}: it does not extend checkpoint {old.size} ({where}): {error}."
                " The seals or their log hashes changed after that checkpoint was signed: run audit_verify"
            ) from error
    note = checkpoint_sign(new, signing.signers)
    return AuditCheckpoint.objects.create(size=size, root=new.root, note=note.encode().decode(), created_at=now)


def _checkpoint_outside(seal_dir: Path, signing: LogSigning) -> Checkpoint | None:
    """The latest checkpoint written to the seal directory, when it is one of ours."""
    try:
        data = read_bounded(seal_dir / CHECKPOINT_FILE, NOTE_MAX_BYTES)
        return checkpoint_open(
            data, origin=signing.origin, verifiers=[signer.verifier for signer in signing.signers]
        ).checkpoint
    except (FileRefusedError, NoteError):
        # None yet, or not signed by a current key (written before a rotation ended): the
        # database's checkpoint is checked alone, and the file is replaced after the commit.
        return None


# --- the note as served: log signatures and cosignatures -------------------------------------


def cosignatures_of(row: AuditCheckpoint) -> list[Signature]:
    return [
        Signature(name=cosignature.witness_name, key_hash=cosignature.key_hash, signature=bytes(cosignature.signature))
        for cosignature in AuditCheckpointCosignature.objects.filter(checkpoint=row).order_by("id")
    ]


def checkpoint_note_full(row: AuditCheckpoint, cosignatures: Iterable[Signature] | None = None) -> Note:
    """The checkpoint's note with every stored cosignature appended."""
    signatures = cosignatures_of(row) if cosignatures is None else cosignatures
    return note_with_signatures(note_parse(row.note.encode()), signatures)
