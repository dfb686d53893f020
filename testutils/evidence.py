"""A sealed history with a seal log, for the evidence tests and benchmarks: keys as audit_keygen
writes them, sealing runs with checkpoints, a witness and a time-stamp authority after each, and
what an auditor passes to `python -m kubernaut_integrity evidence`."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.utils import timezone

from audit.integrity.evidence import CORRELATED_TABLES, evidence_bundle, window_leaves
from audit.integrity.log_publication import Authority, Publication, Witness, log_publish
from audit.integrity.seal_log import LogSigning, log_signing_load
from audit.models import AuditSeal
from kubernaut_integrity.arguments import log_verifiers_load
from kubernaut_integrity.evidence import evidence_dumps
from kubernaut_integrity.evidence_verification import AuditorKeys
from kubernaut_integrity.keys import key_pair_write, log_key_write, public_keys_load
from kubernaut_integrity.timestamps import tsa_roots_load
from testutils.integrity import LOG_ORIGIN, WINDOW_SECONDS, seal_now
from testutils.tlog_witness import TlogWitness
from testutils.tsa import TimestampAuthority


@dataclass
class SealedHistory:
    """Keys and directories of one sealed history, and the outside services it publishes to."""

    directory: Path
    seal_private: Path
    seal_public: Path
    log: LogSigning
    log_vkey: Path
    witness: TlogWitness | None = None
    authority: TimestampAuthority | None = None

    @property
    def seal_dir(self) -> Path:
        return self.directory / "seals"

    def seal(self, *, ahead_seconds: float = 0, now: dt.datetime | None = None) -> tuple[list[Any], Publication]:
        """What one run of `audit_seal` does: seal the closed windows (up to `ahead_seconds` from
        now, or `now`; with a checkpoint), then cosign, time-stamp (every run: an interval of 0)
        and write the checkpoint files."""
        sealed = seal_now(self.seal_private, self.seal_dir, ahead_seconds=ahead_seconds, log=self.log, now=now)
        witnesses = [Witness(url=self.witness.url, verifier=self.witness.verifier)] if self.witness else []
        authority = (
            Authority(url=self.authority.url, roots=tsa_roots_load([self.authority.ca_pem]), interval_seconds=0)
            if self.authority
            else None
        )
        return sealed, log_publish(seal_dir=self.seal_dir, witnesses=witnesses, authority=authority)

    def auditor_keys(self) -> AuditorKeys:
        return AuditorKeys(
            seal_keys=public_keys_load([self.seal_public]),
            log_verifiers=log_verifiers_load([str(self.log_vkey)]),
            origin=LOG_ORIGIN,
            witness_verifiers=[self.witness.verifier] if self.witness else [],
            tsa_roots=tsa_roots_load([self.authority.ca_pem]) if self.authority else [],
        )

    def auditor_arguments(self) -> list[str]:
        """The offline check's key arguments: only what an auditor was handed."""
        arguments = ["--public-key", str(self.seal_public), "--log-key", str(self.log_vkey)]
        if self.witness is not None:
            arguments += ["--witness-key", self.witness.verifier.vkey]
        if self.authority is not None:
            arguments += ["--tsa-root", str(self.authority.ca_pem)]
        return arguments

    def bundle(self, correlation_id: str, **options: Any) -> bytes:
        return evidence_dumps(evidence_bundle(correlation_id=correlation_id, **options).bundle)


@dataclass(frozen=True)
class EvidenceCase:
    """A history's bundle of one correlation id, and a checkpoint an auditor kept before it."""

    history: SealedHistory
    correlation_id: str
    bundle: bytes
    #: The `checkpoint` file after the first run, as an auditor pulled it then.
    kept_checkpoint: bytes
    kept_size: int
    #: Every seal body, in sequence order: the seal log's leaves.
    log_bodies: list[str] = field(default_factory=list)
    #: The row hashes of each (seal, table) of a correlated table: its tree's leaves.
    window_leaves: dict[tuple[int, str], list[bytes]] = field(default_factory=dict)


def sealed_history(
    directory: Path, *, witness: bool = False, authority: TimestampAuthority | None = None
) -> SealedHistory:
    """Keys for a new history; with `witness`, a loopback witness trusting its log key (stop it
    with `history.witness.__exit__`, or use it as a context manager)."""
    keys = directory / "keys"
    seal_private, seal_public, _ = key_pair_write(keys)
    log_private, log_vkey, _ = log_key_write(keys, LOG_ORIGIN)
    log = log_signing_load([log_private], origin=LOG_ORIGIN)
    history = SealedHistory(directory, seal_private, seal_public, log, log_vkey, authority=authority)
    if witness:
        history.witness = TlogWitness(
            name="witness.test/w1", logs={LOG_ORIGIN: [signer.verifier for signer in log.signers]}
        ).__enter__()
    return history


def next_window() -> None:
    """Wait until the current sealing window has closed (a little after, for the clock's sake)."""
    now = timezone.now()
    end = now.replace(microsecond=0) + dt.timedelta(seconds=WINDOW_SECONDS)
    time.sleep((end - now).total_seconds() + 0.05)


def log_contents() -> tuple[list[str], dict[tuple[int, str], list[bytes]]]:
    """Every seal body in sequence order, and each (seal, correlated table)'s row hashes."""
    seals = list(AuditSeal.objects.order_by("sequence"))
    leaves = {
        (seal.sequence, table): [
            digest for _, digest in window_leaves(table=table, start=seal.window_start, end=seal.window_end)
        ]
        for seal in seals
        for table in CORRELATED_TABLES
    }
    return [seal.body for seal in seals], leaves
