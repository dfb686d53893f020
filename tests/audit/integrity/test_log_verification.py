"""`audit_verify` and the seal log: rebuilt from the seal bodies, matched against every seal's
stored log hashes, every checkpoint (database and files), anchor and cosignature; a checkpoint
the log does not extend is named with both sizes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from audit.models import AuditAnchor, AuditCheckpoint, AuditCheckpointCosignature, AuditSeal
from kubernaut_integrity.checkpoint import Checkpoint, checkpoint_sign
from testutils.admin_rows import remediation_chain
from testutils.evidence import SealedHistory, sealed_history
from testutils.integrity import LOG_ORIGIN, triggers_bypassed, verify
from testutils.tsa import TimestampAuthority

pytestmark = pytest.mark.django_db


@pytest.fixture
def history(tmp_path: Path, time_stamp_authority: TimestampAuthority, settings: Any) -> Iterator[SealedHistory]:
    history = sealed_history(tmp_path, witness=True, authority=time_stamp_authority)
    assert history.witness is not None
    settings.AUDIT_LOG_ORIGIN = LOG_ORIGIN
    settings.AUDIT_LOG_PUBLIC_KEY_FILES = [str(history.log_vkey)]
    settings.AUDIT_TSA_ROOT_FILES = [str(time_stamp_authority.ca_pem)]
    settings.AUDIT_WITNESSES = [(history.witness.url, history.witness.verifier.vkey)]
    remediation_chain()
    history.seal(ahead_seconds=2)
    history.seal(ahead_seconds=5)
    try:
        yield history
    finally:
        history.witness.__exit__(None, None, None)


def _log_findings(report: dict[str, Any]) -> list[tuple[str, str]]:
    return [(finding["kind"], finding["detail"]) for finding in report["findings"]]


def test_a_history_with_checkpoints_anchors_and_cosignatures_verifies_clean(history: SealedHistory) -> None:
    assert AuditCheckpoint.objects.count() == 2
    assert AuditAnchor.objects.count() == 2
    assert AuditCheckpointCosignature.objects.count() == 2
    clean, report = verify(history.seal_public, seal_dir=history.seal_dir)
    assert clean, report["findings"]


def test_checkpoints_need_a_trusted_log_key(history: SealedHistory, settings: Any) -> None:
    settings.AUDIT_LOG_PUBLIC_KEY_FILES = []
    clean, report = verify(history.seal_public, seal_dir=history.seal_dir)
    assert not clean
    kinds = {kind for kind, _ in _log_findings(report)}
    assert kinds == {"checkpoint_invalid"}
    assert all("no signature by a trusted key" in detail for _, detail in _log_findings(report))


def test_a_stored_checkpoint_re_signed_over_another_root_is_named_with_both_sizes(history: SealedHistory) -> None:
    """Whoever holds the database and the log key re-signs an earlier checkpoint over another tree."""
    first, latest = AuditCheckpoint.objects.order_by("size")
    forged = checkpoint_sign(Checkpoint(LOG_ORIGIN, first.size, b"\x09" * 32), history.log.signers)
    with triggers_bypassed() as cursor:
        cursor.execute(
            "UPDATE audit_checkpoints SET note = %s, root = %s WHERE size = %s",
            [forged.encode().decode(), b"\x09" * 32, first.size],
        )
    clean, report = verify(history.seal_public, seal_dir=history.seal_dir)
    assert not clean
    inconsistent = [detail for kind, detail in _log_findings(report) if kind == "checkpoint_inconsistent"]
    assert inconsistent == [
        f"checkpoint {first.size} (in the database) is not a prefix of checkpoint {latest.size}: the stored seals"
        f" give root {bytes(first.root).hex()[:16]}…, it says {('09' * 8)}…. The history it signed was rewritten"
    ]
    # Its anchor, over the checkpoint as it was, no longer fits it either.
    assert any(kind == "anchor_invalid" and f"checkpoint {first.size}" in d for kind, d in _log_findings(report))


def test_changed_log_hashes_are_named_by_a_run_over_the_whole_history(history: SealedHistory) -> None:
    with triggers_bypassed() as cursor:
        cursor.execute("UPDATE audit_seals SET log_hashes = decode(repeat('00', 32), 'hex') WHERE sequence = 3")
    clean, report = verify(history.seal_public, seal_dir=history.seal_dir)
    assert not clean
    assert [(f["kind"], f["seal"]) for f in report["findings"]] == [("log_hashes_mismatch", 3)]
    # A range checks its windows only: the log is one tree over every seal, checked whole.
    seal = AuditSeal.objects.get(sequence=3)
    clean, report = verify(
        history.seal_public,
        seal_dir=history.seal_dir,
        extra=(
            "--from",
            (seal.window_start + dt.timedelta(microseconds=1)).isoformat(),
            "--to",
            seal.window_end.isoformat(),
        ),
    )
    assert clean, report["findings"]


def test_a_checkpoint_file_outside_of_another_history_is_named(history: SealedHistory) -> None:
    first = AuditCheckpoint.objects.order_by("size")[0]
    latest = AuditCheckpoint.objects.order_by("-size")[0]
    path = history.seal_dir / "checkpoints" / f"checkpoint-{first.size:012d}"
    path.write_bytes(checkpoint_sign(Checkpoint(LOG_ORIGIN, first.size, b"\x03" * 32), history.log.signers).encode())
    clean, report = verify(history.seal_public, seal_dir=history.seal_dir)
    assert not clean
    assert [kind for kind, _ in _log_findings(report)] == ["anchor_invalid", "checkpoint_inconsistent"]
    (detail,) = [detail for kind, detail in _log_findings(report) if kind == "checkpoint_inconsistent"]
    name = f"checkpoints/checkpoint-{first.size:012d}"
    assert detail.startswith(f"checkpoint {first.size} ({name}) is not a prefix of checkpoint {latest.size}")


def test_missing_checkpoint_files_are_named(history: SealedHistory) -> None:
    latest = AuditCheckpoint.objects.order_by("-size")[0]
    (history.seal_dir / "checkpoints" / f"checkpoint-{latest.size:012d}").unlink()
    clean, report = verify(history.seal_public, seal_dir=history.seal_dir)
    assert not clean
    assert _log_findings(report) == [
        ("checkpoint_missing", f"stored checkpoint {latest.size} has no file checkpoints/ outside")
    ]


def test_a_changed_anchor_or_cosignature_is_named(history: SealedHistory) -> None:
    anchor = AuditAnchor.objects.order_by("checkpoint_id")[0]
    response = bytearray(bytes(anchor.response))
    response[-10] ^= 0x01  # inside the authority's signature
    cosignature = AuditCheckpointCosignature.objects.order_by("id")[0]
    signature = bytearray(bytes(cosignature.signature))
    signature[-1] ^= 0x01
    with triggers_bypassed() as cursor:
        cursor.execute(
            "UPDATE audit_anchors SET response = %s WHERE checkpoint_size = %s", [bytes(response), anchor.checkpoint_id]
        )
        cursor.execute(
            "UPDATE audit_checkpoint_cosignatures SET signature = %s WHERE id = %s", [bytes(signature), cosignature.id]
        )
    clean, report = verify(history.seal_public, seal_dir=history.seal_dir)
    assert not clean
    kinds = [kind for kind, _ in _log_findings(report)]
    assert kinds == ["anchor_invalid", "cosignature_invalid"]
