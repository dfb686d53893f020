"""The seal log in the database: appended in the sealing transaction, read back in one query per
proof, checkpoints signed (by every key of a rotation) only after the new tree is shown to
extend the last one signed, and the migration that gives existing seals their log hashes."""

from __future__ import annotations

import datetime as dt
import importlib
import json
from pathlib import Path

import pytest
from django.db import ProgrammingError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.integrity.seal_log import (
    SealLogError,
    checkpoint_of_note,
    log_signing_load,
    proofs_batched,
    stored_hashes_read,
)
from audit.integrity.sealing import seal_pending
from audit.models import AuditCheckpoint, AuditSeal
from kubernaut_integrity.checkpoint import Checkpoint, checkpoint_open, checkpoint_sign
from kubernaut_integrity.evidence_verification import AuditorKeys, evidence_check
from kubernaut_integrity.keys import log_key_write, private_key_load
from kubernaut_integrity.note import note_parse
from kubernaut_integrity.tlog import MemoryLog, consistency_proof, inclusion_proof, tree_hash
from testutils.admin_rows import remediation_chain
from testutils.evidence import next_window, sealed_history
from testutils.integrity import LOG_ORIGIN, seal_now, triggers_bypassed

pytestmark = pytest.mark.django_db


def _rebuilt() -> MemoryLog:
    log = MemoryLog()
    for body in AuditSeal.objects.order_by("sequence").values_list("body", flat=True):
        log.append(body.encode())
    return log


def test_each_seal_stores_its_log_hashes_and_each_run_a_checkpoint(tmp_path: Path) -> None:
    history = sealed_history(tmp_path)
    remediation_chain()
    first = seal_now(history.seal_private, history.seal_dir, ahead_seconds=2, log=history.log)
    later = timezone.now() + dt.timedelta(seconds=6)
    second = seal_now(history.seal_private, history.seal_dir, log=history.log, now=later)
    assert first
    assert second
    log = _rebuilt()
    stored = [bytes(hashes) for hashes in AuditSeal.objects.order_by("sequence").values_list("log_hashes", flat=True)]
    assert stored == log.leaves
    checkpoints = list(AuditCheckpoint.objects.order_by("size"))
    assert [row.size for row in checkpoints] == [first[-1].sequence, second[-1].sequence]
    verifiers = [signer.verifier for signer in history.log.signers]
    for row in checkpoints:
        opened = checkpoint_open(row.note.encode(), origin=LOG_ORIGIN, verifiers=verifiers)
        assert opened.checkpoint.root == bytes(row.root) == tree_hash(size=row.size, read=log.read)
    # A run that seals nothing signs nothing new.
    seal_now(history.seal_private, history.seal_dir, log=history.log, now=later)
    assert AuditCheckpoint.objects.count() == 2


def test_a_proof_is_one_query_and_matches_the_rebuilt_log(tmp_path: Path) -> None:
    history = sealed_history(tmp_path)
    remediation_chain()
    seal_now(history.seal_private, history.seal_dir, ahead_seconds=40, log=history.log)
    size = AuditSeal.objects.count()
    assert size >= 37
    log = _rebuilt()
    with CaptureQueriesContext(connection) as queries:
        proof = proofs_batched(lambda read: inclusion_proof(index=5, size=size, read=read))
    assert len(queries) == 1
    assert proof == inclusion_proof(index=5, size=size, read=log.read)
    with CaptureQueriesContext(connection) as queries:
        proofs = proofs_batched(
            lambda read: [consistency_proof(old_size=old, new_size=size, read=read) for old in range(1, size + 1)]
        )
    assert len(queries) == 1
    assert proofs == [consistency_proof(old_size=old, new_size=size, read=log.read) for old in range(1, size + 1)]
    assert tree_hash(size=size, read=stored_hashes_read) == tree_hash(size=size, read=log.read)


def test_the_log_key_signs_the_whole_log_when_it_is_first_configured(tmp_path: Path) -> None:
    history = sealed_history(tmp_path)
    remediation_chain()
    seal_now(history.seal_private, history.seal_dir, ahead_seconds=2)
    assert not AuditCheckpoint.objects.exists()
    before = AuditSeal.objects.count()
    seal_now(history.seal_private, history.seal_dir, ahead_seconds=2, log=history.log)
    # One checkpoint over every seal, those sealed before the key was there included.
    assert list(AuditCheckpoint.objects.values_list("size", flat=True)) == [AuditSeal.objects.count()]
    assert AuditSeal.objects.count() >= before


def test_a_rotation_overlap_signs_with_both_keys_and_each_verifies(tmp_path: Path) -> None:
    history = sealed_history(tmp_path)
    new_private, new_vkey, _ = log_key_write(tmp_path / "new", LOG_ORIGIN)
    old_private = history.log_vkey.parent / "log-signing-key"
    both = log_signing_load([old_private, new_private], origin=LOG_ORIGIN)
    correlation_id = remediation_chain()["correlation_id"]
    next_window()
    seal_now(history.seal_private, history.seal_dir, log=both)
    note = AuditCheckpoint.objects.get().note
    assert len(note_parse(note.encode()).signatures) == 2
    for signer in both.signers:
        checkpoint_open(note.encode(), origin=LOG_ORIGIN, verifiers=[signer.verifier])
    keys = history.auditor_keys()
    bundle = history.bundle(correlation_id)
    both_keys = AuditorKeys(keys.seal_keys, [signer.verifier for signer in both.signers], LOG_ORIGIN)
    assert evidence_check(bundle, keys=both_keys).clean
    # An auditor given only one key of the overlap is told to give every key of the rotation.
    report = evidence_check(bundle, keys=AuditorKeys(keys.seal_keys, keys.log_verifiers, LOG_ORIGIN))
    assert not report.clean
    assert "give every key of a rotation" in report.findings[0].detail
    assert new_vkey.read_text().startswith(LOG_ORIGIN + "+")


def test_a_log_key_of_another_origin_is_refused(tmp_path: Path) -> None:
    private, _, _ = log_key_write(tmp_path, "another.example/log")
    with pytest.raises(ValueError, match=r"a key of log 'another\.example/log'"):
        log_signing_load([private], origin=LOG_ORIGIN)


def test_no_checkpoint_is_signed_over_log_hashes_changed_since_the_last_one(tmp_path: Path) -> None:
    history = sealed_history(tmp_path)
    remediation_chain()
    seal_now(history.seal_private, history.seal_dir, ahead_seconds=2, log=history.log)
    signed = AuditSeal.objects.count()
    with triggers_bypassed() as cursor:
        # The last signed seal's hashes: the new tree's proof from the signed one reads them.
        cursor.execute(
            "UPDATE audit_seals SET log_hashes = decode(repeat('01', length(log_hashes)), 'hex') WHERE sequence = %s",
            [signed],
        )
    with pytest.raises(SealLogError, match=f"does not extend checkpoint {signed} \\(the latest stored checkpoint\\)"):
        seal_now(history.seal_private, history.seal_dir, ahead_seconds=5, log=history.log)
    # Nothing of the refused run is stored: no seal, no checkpoint.
    assert AuditSeal.objects.count() == signed
    assert list(AuditCheckpoint.objects.values_list("size", flat=True)) == [signed]


def test_no_checkpoint_is_signed_that_the_checkpoint_outside_the_database_contradicts(tmp_path: Path) -> None:
    """The database's checkpoints rewritten along with the seals (whoever holds the database and
    the log key): the `checkpoint` file in AUDIT_SEAL_DIR still stops the next run."""
    history = sealed_history(tmp_path)
    remediation_chain()
    seal_now(history.seal_private, history.seal_dir, ahead_seconds=2, log=history.log)
    history.seal()  # writes the checkpoint files
    signed = AuditCheckpoint.objects.get()
    forged = checkpoint_sign(Checkpoint(LOG_ORIGIN, signed.size, b"\x02" * 32), history.log.signers)
    (history.seal_dir / "checkpoint").write_bytes(forged.encode())
    with pytest.raises(SealLogError, match=f"checkpoint {signed.size} \\(checkpoint in "):
        seal_now(history.seal_private, history.seal_dir, ahead_seconds=5, log=history.log)


def test_the_migration_gives_existing_seals_their_log_hashes(tmp_path: Path) -> None:
    history = sealed_history(tmp_path)
    remediation_chain()
    seal_pending(
        window_seconds=1,
        settle_seconds=0,
        private_key=private_key_load(history.seal_private),
        seal_dir=history.seal_dir,
        now=timezone.now() + dt.timedelta(seconds=3),
    )
    expected = [bytes(h) for h in AuditSeal.objects.order_by("sequence").values_list("log_hashes", flat=True)]
    with triggers_bypassed() as cursor:
        cursor.execute("UPDATE audit_seals SET log_hashes = ''")
    migration = importlib.import_module("audit.migrations.0009_seal_log")
    with connection.schema_editor() as editor:
        migration.log_hashes_backfill(None, editor)
    stored = [bytes(h) for h in AuditSeal.objects.order_by("sequence").values_list("log_hashes", flat=True)]
    assert stored == expected
    assert len(stored) >= 3
    # The append-only trigger is back on.
    with pytest.raises(ProgrammingError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_seals SET log_hashes = '' WHERE sequence = 1")


def test_the_migration_refuses_a_chain_with_a_gap(tmp_path: Path) -> None:
    history = sealed_history(tmp_path)
    remediation_chain()
    seal_now(history.seal_private, history.seal_dir, ahead_seconds=3)
    with triggers_bypassed() as cursor:
        cursor.execute("DELETE FROM audit_seals WHERE sequence = 2")
    migration = importlib.import_module("audit.migrations.0009_seal_log")
    with pytest.raises(RuntimeError, match="seal 3 follows seal 1"), connection.schema_editor() as editor:
        migration.log_hashes_backfill(None, editor)


def test_the_checkpoint_states_what_a_note_of_it_states(tmp_path: Path) -> None:
    history = sealed_history(tmp_path)
    remediation_chain()
    seal_now(history.seal_private, history.seal_dir, ahead_seconds=2, log=history.log)
    row = AuditCheckpoint.objects.get()
    assert checkpoint_of_note(row.note.encode()) == Checkpoint(LOG_ORIGIN, row.size, bytes(row.root))
    assert json.loads(AuditSeal.objects.get(sequence=1).body)["sequence"] == 1
