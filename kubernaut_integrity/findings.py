"""What verification finds, and the checks shared by the database and the archive verifiers."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kubernaut_integrity.merkle import merkle_root
from kubernaut_integrity.seals import GENESIS_PREVIOUS, Leaves, MalformedSealError, Seal, body_parse

#: Every kind of finding, as reported (`--json` and the metric's docs use these names).
ROW_MODIFIED = "row_modified"
ROW_DELETED = "row_deleted"
ROW_INSERTED = "row_inserted"
WINDOW_MISMATCH = "window_mismatch"
SEAL_MISSING = "seal_missing"
SEAL_DUPLICATED = "seal_duplicated"
SEAL_REORDERED = "seal_reordered"
SEAL_CHAIN_BROKEN = "seal_chain_broken"
SEAL_BAD_SIGNATURE = "seal_bad_signature"
SEAL_UNKNOWN_KEY = "seal_unknown_key"
SEAL_MALFORMED = "seal_malformed"
SEAL_ANCHOR_MISMATCH = "seal_anchor_mismatch"
UNSEALED_LAG = "unsealed_lag"
PARTITION_MISSING = "partition_missing"
ARCHIVE_CORRUPT = "archive_corrupt"
# The seal log (audit_verify) and evidence bundles (python -m kubernaut_integrity evidence).
LOG_HASHES_MISMATCH = "log_hashes_mismatch"
CHECKPOINT_INVALID = "checkpoint_invalid"
CHECKPOINT_INCONSISTENT = "checkpoint_inconsistent"
CHECKPOINT_MISSING = "checkpoint_missing"
ANCHOR_INVALID = "anchor_invalid"
ANCHOR_LATE = "anchor_late"
COSIGNATURE_INVALID = "cosignature_invalid"
COSIGNATURE_MISSING = "cosignature_missing"
WITNESS_INCONSISTENT = "witness_inconsistent"
SEAL_NOT_IN_LOG = "seal_not_in_log"
RECORD_UNPROVEN = "record_unproven"
EVIDENCE_MALFORMED = "evidence_malformed"


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str
    detail: str
    table: str | None = None
    row_id: int | None = None
    seal: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "table": self.table, "id": self.row_id, "seal": self.seal, "detail": self.detail}

    def __str__(self) -> str:
        where = " ".join(
            part
            for part in (
                f"seal {self.seal}" if self.seal is not None else "",
                self.table or "",
                f"id {self.row_id}" if self.row_id is not None else "",
            )
            if part
        )
        return f"{self.kind}: {where}: {self.detail}" if where else f"{self.kind}: {self.detail}"


@dataclass
class Report:
    """What a verification found and how much it covered; clean when it found nothing."""

    findings: list[Finding] = field(default_factory=list)
    seals: int = 0
    rows: int = 0

    @property
    def clean(self) -> bool:
        return not self.findings

    def as_json(self) -> dict[str, Any]:
        return {"clean": self.clean, **self.coverage(), "findings": [finding.as_json() for finding in self.findings]}

    def coverage(self) -> dict[str, Any]:
        """What was checked, in the order `as_json` prints it."""
        return {"seals": self.seals, "rows": self.rows}


def seals_check(seals: Iterable[Seal], trusted: Mapping[str, Ed25519PublicKey]) -> tuple[list[Seal], list[Finding]]:
    """Each seal on its own: well-formed, of a known format, signed by a trusted key. Returns the
    well-formed seals, the only ones the chain, coverage and row checks may read, and the
    findings."""
    checked: list[Seal] = []
    findings: list[Finding] = []
    for seal in seals:
        try:
            sequence = body_parse(seal.body_bytes)["sequence"]
        except MalformedSealError as exc:
            findings.append(Finding(SEAL_MALFORMED, str(exc), seal=exc.sequence))
            continue
        checked.append(seal)
        problem = seal.signature_check(trusted)
        if problem is not None:
            kind = SEAL_UNKNOWN_KEY if problem.startswith("signed with unknown key") else SEAL_BAD_SIGNATURE
            findings.append(Finding(kind, problem, seal=sequence))
    return checked, findings


def chain_check(seals: Sequence[Seal], *, before: Seal | None = None, excerpt: bool = False) -> list[Finding]:
    """Links between consecutive seals (in sequence order): no number or time missing, each
    names its predecessor's hash, windows strictly follow each other. `before` is the seal just
    before the first, when the check starts mid-chain. An `excerpt` (the seals exported with an
    archive) may skip sequence numbers: only the links between neighbours present are checked."""
    findings: list[Finding] = []
    seen_windows: dict[tuple[str, str], int] = {}
    previous = before
    for seal in seals:
        body = seal.body
        sequence, start, end = body["sequence"], body["window"]["start"], body["window"]["end"]
        if start >= end:
            findings.append(Finding(SEAL_MALFORMED, f"empty or inverted window [{start}, {end})", seal=sequence))
        if (start, end) in seen_windows:
            findings.append(
                Finding(
                    SEAL_DUPLICATED,
                    f"window [{start}, {end}) already sealed by {seen_windows[(start, end)]}",
                    seal=sequence,
                )
            )
        seen_windows.setdefault((start, end), sequence)
        if previous is None:
            if excerpt:  # an export may start anywhere in the chain
                pass
            elif sequence != 1:
                findings.append(
                    Finding(SEAL_MISSING, f"the chain starts at {sequence}: seal(s) before it missing", seal=sequence)
                )
            elif body["previous"] != GENESIS_PREVIOUS:
                findings.append(Finding(SEAL_CHAIN_BROKEN, "seal 1 names a predecessor", seal=sequence))
        else:
            before_body = previous.body
            expected = before_body["sequence"] + 1
            if sequence > expected and not excerpt:
                missing = f"{expected}" if sequence == expected + 1 else f"{expected}..{sequence - 1}"
                findings.append(Finding(SEAL_MISSING, f"seal(s) {missing} missing from the chain", seal=sequence))
            elif sequence < expected:
                findings.append(Finding(SEAL_DUPLICATED, f"sequence {sequence} repeats", seal=sequence))
            if seen_windows[(start, end)] == sequence and (sequence == expected or not excerpt):
                if start < before_body["window"]["end"]:
                    findings.append(
                        Finding(
                            SEAL_REORDERED,
                            f"window starts {start}, before seal {before_body['sequence']} ended",
                            seal=sequence,
                        )
                    )
                elif start > before_body["window"]["end"]:
                    findings.append(
                        Finding(
                            SEAL_MISSING,
                            f"nothing seals [{before_body['window']['end']}, {start})",
                            seal=sequence,
                        )
                    )
            if sequence == expected and body["previous"] != previous.hash:
                findings.append(
                    Finding(
                        SEAL_CHAIN_BROKEN,
                        f"previous {body['previous'][:16]}… is not seal {expected - 1}'s hash",
                        seal=sequence,
                    )
                )
        previous = seal
    return findings


def leaves_check(*, seal: Seal, table: str, actual: Leaves, sealed_leaves: Leaves | None) -> list[Finding]:
    """A table's rows in a seal's window against the seal; names each differing row when the
    seal file's leaves rebuild the signed root, and reports leaves that do not."""
    body = seal.body
    sequence = body["sequence"]
    entry = body["tables"][table]
    root = merkle_root([digest for _, digest in actual]).hex()
    if len(actual) == entry["count"] and root == entry["root"]:
        if sealed_leaves is not None and sealed_leaves != actual:
            # Other leaves than these rows cannot rebuild the same root: they are junk.
            return [
                Finding(SEAL_MALFORMED, "the seal file's leaves do not rebuild its root", table=table, seal=sequence)
            ]
        return []
    if sealed_leaves is None or merkle_root([digest for _, digest in sealed_leaves]).hex() != entry["root"]:
        return [
            Finding(
                WINDOW_MISMATCH,
                f"{len(actual)} rows hash to {root[:16]}…, the seal has {entry['count']} rows, {entry['root'][:16]}…"
                " (no trustworthy seal file to name the rows)",
                table=table,
                seal=sequence,
            )
        ]
    sealed, found = dict(sealed_leaves), dict(actual)
    findings = [
        Finding(ROW_MODIFIED, "row differs from the sealed row", table=table, row_id=row_id, seal=sequence)
        for row_id, digest in found.items()
        if row_id in sealed and sealed[row_id] != digest
    ]
    findings += [
        Finding(ROW_DELETED, "sealed row is gone", table=table, row_id=row_id, seal=sequence)
        for row_id in sealed
        if row_id not in found
    ]
    findings += [
        Finding(
            ROW_INSERTED,
            "row in a sealed window that the seal does not contain",
            table=table,
            row_id=row_id,
            seal=sequence,
        )
        for row_id in found
        if row_id not in sealed
    ]
    return sorted(findings, key=lambda finding: (finding.row_id or 0, finding.kind))


class WindowIndex:
    """Which window holds a canonical timestamp: windows given as (start, end, key), not
    overlapping; timestamps compare as text because the canonical form has a fixed width."""

    def __init__(self, windows: Iterable[tuple[str, str, int]]) -> None:
        ordered = sorted(windows)
        self.starts = [start for start, _, _ in ordered]
        self.ends = [end for _, end, _ in ordered]
        self.keys = [key for _, _, key in ordered]

    @classmethod
    def of_seals(cls, seals: Iterable[Seal]) -> WindowIndex:
        bodies = (seal.body for seal in seals)
        return cls((body["window"]["start"], body["window"]["end"], body["sequence"]) for body in bodies)

    def key_of(self, timestamp: str) -> int | None:
        position = bisect.bisect_right(self.starts, timestamp) - 1
        if position >= 0 and timestamp < self.ends[position]:
            return self.keys[position]
        return None
