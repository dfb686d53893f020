"""What `audit_seal` does after its commit, never holding the seal lock over the network:
witnesses asked to cosign the latest checkpoint, an RFC 3161 authority asked to time-stamp it
(once every AUDIT_ANCHOR_INTERVAL_SECONDS), and the checkpoint files written to AUDIT_SEAL_DIR.

None of it can block sealing. An unreachable witness or authority is a lag (the metrics show it
and the next run tries again); a witness that holds a tree this log does not extend is an
inconsistency: recorded for the metrics and `audit_verify`, and `audit_seal` fails loudly.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from django.db import transaction
from django.utils import timezone

from audit.integrity.seal_log import (
    CHECKPOINT_FILE,
    CHECKPOINTS_DIR,
    checkpoint_file_name,
    checkpoint_note_full,
    checkpoint_of_note,
    proofs_batched,
)
from audit.models import AuditAnchor, AuditCheckpoint, AuditCheckpointCosignature, AuditWitnessState
from kubernaut_integrity.cosignature import CosignatureVerifier, cosignature_time
from kubernaut_integrity.files import atomic_write
from kubernaut_integrity.note import note_parse
from kubernaut_integrity.timestamps import TimestampError, timestamp_fetch, timestamp_query, timestamp_verify
from kubernaut_integrity.tlog import consistency_proof
from kubernaut_integrity.witness import (
    WitnessInconsistentError,
    WitnessRefusedError,
    WitnessUnavailableError,
    witness_cosign,
)

#: One witness or authority call: the job runs every 2 minutes and waits for each in turn.
CALL_TIMEOUT_SECONDS = 10.0
#: After a crash between the commit and the files, the next run writes the missing ones: at
#: most this many, newest first (a run that writes files at all leaves none behind).
FILES_CATCH_UP = 1000


@dataclass(frozen=True, slots=True)
class Witness:
    url: str
    verifier: CosignatureVerifier

    @property
    def key(self) -> str:
        return f"{self.verifier.name}+{self.verifier.key_hash:08x}"


@dataclass(frozen=True, slots=True)
class Authority:
    url: str
    roots: Sequence[x509.Certificate]
    interval_seconds: int


@dataclass
class Publication:
    """What the run after the commit did; `problems` are lines for the operator."""

    checkpoint: int | None = None
    cosigned_by: list[str] = field(default_factory=list)
    anchored_at: dt.datetime | None = None
    problems: list[str] = field(default_factory=list)
    #: A witness refused (our configuration of it is wrong) or holds another history.
    failed: bool = False


def log_publish(
    *, seal_dir: Path, witnesses: Sequence[Witness], authority: Authority | None, now: dt.datetime | None = None
) -> Publication:
    publication = Publication()
    latest = AuditCheckpoint.objects.order_by("-size").first()
    if latest is None:
        return publication
    now = now or timezone.now()
    publication.checkpoint = latest.size
    for witness in witnesses:
        _cosign(witness, latest, now, publication)
    if authority is not None:
        _anchor(authority, latest, now, publication)
    checkpoint_files_write(seal_dir, latest)
    return publication


def _cosign(witness: Witness, latest: AuditCheckpoint, now: dt.datetime, publication: Publication) -> None:
    state = AuditWitnessState.objects.filter(witness=witness.key).first()
    if state is not None and state.outcome == AuditWitnessState.Outcome.COSIGNED and state.cosigned_size == latest.size:
        return
    # A size beyond ours (a database rolled back) is not sent: the witness names its own (409).
    old_size = state.cosigned_size if state is not None and state.cosigned_size <= latest.size else 0
    note = latest.note.encode()
    checkpoint = checkpoint_of_note(note)
    outcome, detail, cosigned_size = AuditWitnessState.Outcome.COSIGNED, "", old_size
    try:
        cosigned = witness_cosign(
            url=witness.url,
            note=note,
            checkpoint=checkpoint,
            old_size=old_size,
            proof_from=lambda size: proofs_batched(
                lambda read: consistency_proof(old_size=size, new_size=latest.size, read=read)
            ),
            verifiers=[witness.verifier],
            timeout=CALL_TIMEOUT_SECONDS,
        )
    except WitnessUnavailableError as error:
        outcome, detail = AuditWitnessState.Outcome.UNAVAILABLE, str(error)
        publication.problems.append(f"witness {witness.key} unavailable (the next run retries): {error}")
    except WitnessRefusedError as error:
        outcome, detail = AuditWitnessState.Outcome.REFUSED, str(error)
        publication.problems.append(f"witness {witness.key} refused: {error}")
        publication.failed = True
    except WitnessInconsistentError as error:
        outcome, detail = AuditWitnessState.Outcome.INCONSISTENT, str(error)
        publication.problems.append(f"witness {witness.key} holds a history this log does not extend: {error}")
        publication.failed = True
    else:
        cosigned_size = latest.size
        AuditCheckpointCosignature.objects.bulk_create(
            [
                AuditCheckpointCosignature(
                    checkpoint=latest,
                    witness_name=signature.name,
                    key_hash=signature.key_hash,
                    signature=signature.signature,
                    cosigned_at=dt.datetime.fromtimestamp(cosignature_time(signature), tz=dt.UTC),
                    received_at=now,
                )
                for signature in cosigned.signatures
            ],
            ignore_conflicts=True,
        )
        publication.cosigned_by.append(witness.key)
    AuditWitnessState.objects.update_or_create(
        witness=witness.key,
        defaults={
            "url": witness.url,
            "cosigned_size": cosigned_size,
            "outcome": outcome,
            "detail": detail[:2000],
            "attempted_at": now,
        },
    )


def _anchor(authority: Authority, latest: AuditCheckpoint, now: dt.datetime, publication: Publication) -> None:
    newest = AuditAnchor.objects.order_by("-checkpoint_id").first()
    if newest is not None and (
        newest.checkpoint_id == latest.size
        or newest.requested_at > now - dt.timedelta(seconds=authority.interval_seconds)
    ):
        return
    body = note_parse(latest.note.encode()).text.encode()
    query = timestamp_query(body)
    try:
        response = timestamp_fetch(url=authority.url, query=query, timeout=CALL_TIMEOUT_SECONDS)
        anchor = timestamp_verify(response=response, body=body, roots=authority.roots, nonce=query.nonce)
    except TimestampError as error:
        publication.problems.append(f"checkpoint {latest.size} not time-stamped (the next run retries): {error}")
        return
    with transaction.atomic():
        AuditAnchor.objects.create(
            checkpoint=latest,
            authority_url=authority.url,
            response=response,
            gen_time=anchor.gen_time,
            requested_at=now,
        )
    publication.anchored_at = anchor.gen_time


def checkpoint_files_write(seal_dir: Path, latest: AuditCheckpoint) -> None:
    """The latest checkpoint's files, and those of earlier ones a crash left unwritten."""
    directory = seal_dir / CHECKPOINTS_DIR
    directory.mkdir(parents=True, exist_ok=True)
    _files_write(directory, latest)
    missing = []
    for size in (
        AuditCheckpoint.objects.filter(size__lt=latest.size)
        .order_by("-size")
        .values_list("size", flat=True)[:FILES_CATCH_UP]
    ):
        if (directory / checkpoint_file_name(size)).exists():
            break
        missing.append(size)
    for row in AuditCheckpoint.objects.filter(size__in=missing):
        _files_write(directory, row)
    atomic_write(seal_dir / CHECKPOINT_FILE, checkpoint_note_full(latest).encode())


def _files_write(directory: Path, row: AuditCheckpoint) -> None:
    atomic_write(directory / checkpoint_file_name(row.size), checkpoint_note_full(row).encode())
    anchor = AuditAnchor.objects.filter(checkpoint=row).first()
    if anchor is not None:
        atomic_write(directory / (checkpoint_file_name(row.size) + ".tsr"), bytes(anchor.response))
