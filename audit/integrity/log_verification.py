"""`audit_verify`'s checks of the seal log (docs/INTEGRITY.md). The log is rebuilt from every
stored seal body, in sequence order, and everything that states something about it is matched
against the rebuilt tree:

1. each seal's stored `log_hashes` (what proofs and new checkpoints are made from);
2. each checkpoint, in the database and in AUDIT_SEAL_DIR (`checkpoint`, `checkpoints/`):
   signed by a trusted log key, for this log's origin, with the root the rebuilt log has at its
   size. One that differs was signed over another history: a finding naming its size and the
   latest checkpoint's, which then no longer extends it;
3. each RFC 3161 anchor (database and `.tsr` files): over its checkpoint's body, chaining to a
   trusted root (when roots are given), so an anchored checkpoint that differs is a rewrite
   after a time no key holder controls;
4. each stored witness cosignature by a configured witness, and each witness that reported a
   history this log does not extend.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from django.db import connection

from audit.integrity.seal_log import CHECKPOINT_FILE, CHECKPOINTS_DIR, NOTE_MAX_BYTES, checkpoint_of_note
from audit.models import AuditAnchor, AuditCheckpoint, AuditCheckpointCosignature, AuditWitnessState
from kubernaut_integrity.canonical import timestamp_canonical
from kubernaut_integrity.checkpoint import Checkpoint, checkpoint_open
from kubernaut_integrity.cosignature import CosignatureVerifier
from kubernaut_integrity.files import FileRefusedError, read_bounded
from kubernaut_integrity.findings import (
    ANCHOR_INVALID,
    CHECKPOINT_INCONSISTENT,
    CHECKPOINT_INVALID,
    CHECKPOINT_MISSING,
    COSIGNATURE_INVALID,
    LOG_HASHES_MISMATCH,
    WITNESS_INCONSISTENT,
    Finding,
)
from kubernaut_integrity.note import NoteError, Verifier
from kubernaut_integrity.timestamps import TimestampError, timestamp_verify
from kubernaut_integrity.tlog import HASH_SIZE, MemoryLog, tree_hash

#: Seals read per query while rebuilding the log.
BATCH = 5_000
#: An anchor answer with its certificate is a few kilobytes.
TOKEN_MAX_BYTES = 256 * 1024
_CHECKPOINT_NAME = re.compile(r"checkpoint-(\d{12})")


@dataclass(frozen=True, slots=True)
class LogTrust:
    """What the log checks trust: the log's origin and note keys, the witnesses' keys, the time-
    stamp authorities' roots (none: anchors are matched to their checkpoints, not verified)."""

    origin: str
    log_verifiers: Sequence[Verifier]
    witness_verifiers: Sequence[CosignatureVerifier] = ()
    tsa_roots: Sequence[x509.Certificate] = ()


class _Checks:
    def __init__(self, trust: LogTrust) -> None:
        self.trust = trust
        self.findings: list[Finding] = []
        self.log = MemoryLog()
        #: The largest stored checkpoint that matches the rebuilt log: what a differing one is
        #: named against.
        self.reference: int | None = None

    def rebuild(self) -> bool:
        """The log from every seal body; False when a gap in the sequence stops it."""
        log = self.log
        with connection.cursor() as cursor:
            while True:
                cursor.execute(
                    "SELECT sequence, body, log_hashes FROM audit_seals WHERE sequence > %s ORDER BY sequence LIMIT %s",
                    [log.size, BATCH],
                )
                rows = cursor.fetchall()
                for sequence, body, stored in rows:
                    if sequence != log.size + 1:
                        self.findings.append(
                            Finding(
                                LOG_HASHES_MISMATCH,
                                f"the seal log cannot be rebuilt past seal {log.size}: the next stored seal is"
                                f" {sequence}",
                                seal=sequence,
                            )
                        )
                        return False
                    rebuilt = log.append(body.encode())
                    if rebuilt != bytes(stored):
                        self.findings.append(
                            Finding(
                                LOG_HASHES_MISMATCH, _hashes_difference(sequence, rebuilt, bytes(stored)), seal=sequence
                            )
                        )
                if len(rows) < BATCH:
                    return True

    def root_at(self, size: int) -> bytes | None:
        return tree_hash(size=size, read=self.log.read) if size <= self.log.size else None

    def opened(self, data: bytes, where: str) -> Checkpoint | None:
        try:
            return checkpoint_open(data, origin=self.trust.origin, verifiers=self.trust.log_verifiers).checkpoint
        except NoteError as error:
            self.findings.append(Finding(CHECKPOINT_INVALID, f"{where}: {error}"))
            return None

    def against_log(self, checkpoint: Checkpoint, where: str, anchored: str = "") -> bool:
        root = self.root_at(checkpoint.size)
        if root == checkpoint.root:
            return True
        latest = f"checkpoint {self.reference}" if self.reference is not None else f"the log's {self.log.size} seals"
        state = (
            f"the log has {self.log.size} seals, fewer"
            if root is None
            else f"the stored seals give root {root.hex()[:16]}…, it says {checkpoint.root.hex()[:16]}…"
        )
        self.findings.append(
            Finding(
                CHECKPOINT_INCONSISTENT,
                f"checkpoint {checkpoint.size} ({where}{anchored}) is not a prefix of {latest}: {state}."
                " The history it signed was rewritten",
            )
        )
        return False

    def stored_checkpoints(self) -> dict[int, Checkpoint]:
        stored: dict[int, Checkpoint] = {}
        rows = list(AuditCheckpoint.objects.order_by("size").values_list("size", "root", "note"))
        for size, root, note in reversed(rows):
            if self.root_at(size) == bytes(root) and checkpoint_of_note(note.encode()).root == bytes(root):
                self.reference = size
                break
        for size, root, note in rows:
            where = f"stored checkpoint {size}"
            checkpoint = self.opened(note.encode(), where)
            if checkpoint is None:
                # Its signature is the finding; its anchors and cosignatures are still matched to it.
                stored[size] = checkpoint_of_note(note.encode())
                continue
            if checkpoint.size != size or checkpoint.root != bytes(root):
                self.findings.append(Finding(CHECKPOINT_INVALID, f"{where}: its columns differ from its signed note"))
            self.against_log(checkpoint, "in the database")
            stored[size] = checkpoint
        return stored

    def anchors(self, stored: dict[int, Checkpoint]) -> None:
        for size, response in AuditAnchor.objects.order_by("checkpoint_id").values_list("checkpoint_id", "response"):
            checkpoint = stored.get(size)
            if checkpoint is None:
                self.findings.append(Finding(ANCHOR_INVALID, f"anchor of checkpoint {size}: no such checkpoint"))
                continue
            self.anchor_check(bytes(response), checkpoint, f"anchor of stored checkpoint {size}")

    def anchor_check(self, response: bytes, checkpoint: Checkpoint, where: str) -> str:
        """`, time-stamped <time>` when the anchor verifies (or "" without roots); a finding else."""
        if not self.trust.tsa_roots:
            return ""
        try:
            anchor = timestamp_verify(response=response, body=checkpoint.body.encode(), roots=self.trust.tsa_roots)
        except TimestampError as error:
            self.findings.append(
                Finding(ANCHOR_INVALID, f"{where}: {error} (the checkpoint changed after it was time-stamped?)")
            )
            return ""
        return f", time-stamped {timestamp_canonical(anchor.gen_time)}"

    def files(self, seal_dir: Path, stored: dict[int, Checkpoint]) -> None:
        directory = seal_dir / CHECKPOINTS_DIR
        on_disk: set[int] = set()
        if directory.is_dir():
            for path in sorted(directory.iterdir()):
                match = _CHECKPOINT_NAME.fullmatch(path.name)
                if match is None:
                    continue
                size = int(match.group(1))
                on_disk.add(size)
                where = f"{CHECKPOINTS_DIR}/{path.name}"
                checkpoint = self._file_read(path, where)
                if checkpoint is None:
                    continue
                if checkpoint.size != size:
                    self.findings.append(Finding(CHECKPOINT_INVALID, f"{where}: holds checkpoint {checkpoint.size}"))
                anchored = ""
                token = path.with_name(path.name + ".tsr")
                if token.is_file():
                    try:
                        anchored = self.anchor_check(read_bounded(token, TOKEN_MAX_BYTES), checkpoint, where + ".tsr")
                    except FileRefusedError as error:
                        self.findings.append(Finding(ANCHOR_INVALID, f"{where}.tsr: {error}"))
                if self.against_log(checkpoint, where, anchored) and checkpoint.size not in stored:
                    self.findings.append(
                        Finding(CHECKPOINT_MISSING, f"{where} exists outside the database, which lost it")
                    )
        for size in sorted(stored.keys() - on_disk):
            self.findings.append(
                Finding(CHECKPOINT_MISSING, f"stored checkpoint {size} has no file {CHECKPOINTS_DIR}/ outside")
            )
        latest = seal_dir / CHECKPOINT_FILE
        if latest.exists():
            checkpoint = self._file_read(latest, CHECKPOINT_FILE)
            if checkpoint is not None:
                self.against_log(checkpoint, CHECKPOINT_FILE)

    def _file_read(self, path: Path, where: str) -> Checkpoint | None:
        try:
            data = read_bounded(path, NOTE_MAX_BYTES)
        except FileRefusedError as error:
            self.findings.append(Finding(CHECKPOINT_INVALID, f"{where}: {error}"))
            return None
        return self.opened(data, where)

    def cosignatures(self, stored: dict[int, Checkpoint]) -> None:
        witnesses = {(verifier.name, verifier.key_hash): verifier for verifier in self.trust.witness_verifiers}
        cosignatures = AuditCheckpointCosignature.objects.order_by("checkpoint_id", "id").values_list(
            "checkpoint_id", "witness_name", "key_hash", "signature"
        )
        for size, name, key_hash, signature in cosignatures:
            verifier = witnesses.get((name, key_hash))
            checkpoint = stored.get(size)
            if verifier is None or checkpoint is None:
                continue
            if not verifier.verify(checkpoint.body.encode(), bytes(signature)):
                self.findings.append(
                    Finding(
                        COSIGNATURE_INVALID,
                        f"stored cosignature of checkpoint {size} by witness {name}+{key_hash:08x} does not verify",
                    )
                )
        for witness, detail in AuditWitnessState.objects.filter(
            outcome=AuditWitnessState.Outcome.INCONSISTENT
        ).values_list("witness", "detail"):
            self.findings.append(Finding(WITNESS_INCONSISTENT, f"witness {witness}: {detail}"))


def _hashes_difference(sequence: int, rebuilt: bytes, stored: bytes) -> str:
    """Which of a seal's stored log hashes differ from those rebuilt from the bodies, in words."""
    if rebuilt[:HASH_SIZE] != stored[:HASH_SIZE]:
        return "its body is not the one the seal log holds (leaf hash differs)"
    for slot in range(1, max(len(rebuilt), len(stored)) // HASH_SIZE):
        if rebuilt[slot * HASH_SIZE : (slot + 1) * HASH_SIZE] != stored[slot * HASH_SIZE : (slot + 1) * HASH_SIZE]:
            first = sequence - (1 << slot) + 1
            return f"its stored hash of seals {first}..{sequence} differs from the one their bodies give"
    return f"it stores {len(stored)} bytes of log hashes, the log needs {len(rebuilt)}"


def seal_log_check(*, trust: LogTrust, seal_dir: Path | None) -> list[Finding]:
    """Every check of the seal log, within the caller's snapshot; the findings."""
    checks = _Checks(trust)
    if not checks.rebuild():
        return checks.findings
    stored = checks.stored_checkpoints()
    checks.anchors(stored)
    if seal_dir is not None:
        checks.files(seal_dir, stored)
    checks.cosignatures(stored)
    return checks.findings
