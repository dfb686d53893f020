"""`audit_keygen` and `audit_seal`: keys, idempotent sealing of closed windows only (empty ones
too), the write-lag bound, concurrent writers, and a key rotation in the middle of a chain."""

from __future__ import annotations

import datetime as dt
import io
import itertools
import json
import stat
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from audit.integrity.sealing import seal_pending
from audit.models import AUDIT_MODELS, AuditKind, AuditSeal
from embeddings.models import IncidentEmbedding
from kubernaut_integrity.keys import key_id, private_key_load, public_keys_load
from kubernaut_integrity.seal_files import seal_file_read
from kubernaut_integrity.seals import Seal
from testutils.admin_rows import remediation_chain, write
from testutils.factories import remediation_body
from testutils.integrity import WINDOW_SECONDS, findings_of, key_files, seal_now, verify

pytestmark = pytest.mark.django_db


def test_keygen_writes_a_pair_and_refuses_to_overwrite(tmp_path: Path) -> None:
    out = io.StringIO()
    call_command("audit_keygen", "--out", str(tmp_path), stdout=out)
    private = tmp_path / "seal-signing-key.pem"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert key_id(private_key_load(private).public_key()) in out.getvalue()
    assert b"PUBLIC KEY" in (tmp_path / "seal-public-key.pem").read_bytes()
    with pytest.raises(CommandError, match="refusing to overwrite"):
        call_command("audit_keygen", "--out", str(tmp_path), stdout=io.StringIO())


@pytest.mark.real_clock
def test_seal_command_seals_closed_windows_once(tmp_path: Path, settings: Any) -> None:
    private, public = key_files(tmp_path / "keys")
    settings.AUDIT_SEAL_PRIVATE_KEY_FILE = str(private)
    settings.AUDIT_SEAL_DIR = str(tmp_path / "seals")
    settings.AUDIT_SEAL_WINDOW_SECONDS = WINDOW_SECONDS
    remediation_chain()
    time.sleep(1.1)  # the rows' window closes
    out = io.StringIO()
    call_command("audit_seal", "--settle-seconds", "0", stdout=out)
    assert "sealed" in out.getvalue()
    first = AuditSeal.objects.count()
    assert first >= 1
    # Never an open window: the last seal ends at or before the current window's start.
    assert AuditSeal.objects.order_by("-sequence")[0].window_end <= timezone.now()
    out = io.StringIO()
    call_command("audit_seal", "--settle-seconds", "0", stdout=out)
    assert AuditSeal.objects.count() - first <= 1  # at most the window that closed meanwhile
    files = sorted((tmp_path / "seals").glob("seal-*.json"))
    assert len(files) == AuditSeal.objects.count()
    stored = AuditSeal.objects.get(sequence=1)
    copy = seal_file_read(files[0], trusted=public_keys_load([public]))
    assert copy.seal == Seal(stored.body.encode(), bytes(stored.signature))
    assert copy.leaves is not None
    assert copy.leaves_problem is None


def test_seal_command_needs_a_key(settings: Any) -> None:
    settings.AUDIT_SEAL_PRIVATE_KEY_FILE = ""
    with pytest.raises(CommandError, match="no signing key"):
        call_command("audit_seal", stdout=io.StringIO())


def test_empty_windows_are_sealed_with_a_count_of_zero(tmp_path: Path) -> None:
    private, public = key_files(tmp_path / "keys")
    remediation_chain()
    seal_now(private, tmp_path / "seals", ahead_seconds=6)
    bodies = [json.loads(seal.body) for seal in AuditSeal.objects.order_by("sequence")]
    assert len(bodies) >= 5
    empty = [body for body in bodies if all(entry["count"] == 0 for entry in body["tables"].values())]
    assert empty
    for earlier, later in itertools.pairwise(bodies):
        assert later["window"]["start"] == earlier["window"]["end"]
    clean, report = verify(public, seal_dir=tmp_path / "seals")
    assert clean, report["findings"]


def test_settle_margin_leaves_recent_windows_open(tmp_path: Path) -> None:
    private, _ = key_files(tmp_path / "keys")
    remediation_chain()
    now = timezone.now()
    sealed = seal_pending(
        window_seconds=60, settle_seconds=120, private_key=private_key_load(private), seal_dir=tmp_path, now=now
    )
    assert all(window.end <= now - dt.timedelta(seconds=120) for window in sealed)
    newest = AUDIT_MODELS[AuditKind.REMEDIATION].objects.order_by("-recorded_at")[0].recorded_at
    assert not AuditSeal.objects.filter(window_end__gt=newest).exists()


def test_the_database_refuses_a_write_later_than_the_max_lag() -> None:
    """kubernaut.audit_max_write_lag (AUDIT_WRITE_MAX_LAG_SECONDS) bounds how far recorded_at may
    lie behind the INSERT: a write that waited longer fails instead of entering a settled window."""
    row = write(AuditKind.REMEDIATION, remediation_body())
    fields = type(row)._meta.concrete_fields
    columns = ", ".join(f.column for f in fields if f.column not in ("id", "recorded_at"))
    with connection.cursor() as cursor:
        cursor.execute("SET kubernaut.audit_max_write_lag = '5s'")
        try:
            cursor.execute(
                f"INSERT INTO audit_remediation (recorded_at, {columns})"
                f" SELECT statement_timestamp() - interval '1 second', {columns} FROM audit_remediation WHERE id = %s",
                [row.id],
            )
            with pytest.raises(IntegrityError, match="behind the statement"), transaction.atomic():
                cursor.execute(
                    f"INSERT INTO audit_remediation (recorded_at, {columns})"
                    f" SELECT statement_timestamp() - interval '6 seconds', {columns}"
                    " FROM audit_remediation WHERE id = %s",
                    [row.id],
                )
        finally:
            cursor.execute("RESET kubernaut.audit_max_write_lag")


@pytest.mark.real_clock
def test_key_rotation_in_the_middle_of_the_chain_verifies_clean(tmp_path: Path) -> None:
    old_private, old_public = key_files(tmp_path / "old")
    new_private, new_public = key_files(tmp_path / "new")
    seal_dir = tmp_path / "seals"
    remediation_chain()
    time.sleep(1.1)  # the rows' window closes and the old key seals it
    seal_pending(
        window_seconds=WINDOW_SECONDS,
        settle_seconds=0,
        private_key=private_key_load(old_private),
        seal_dir=seal_dir,
        now=timezone.now(),
    )
    remediation_chain()
    seal_now(new_private, seal_dir)
    keys = {json.loads(seal.body)["key_id"] for seal in AuditSeal.objects.all()}
    assert len(keys) == 2
    clean, report = verify(old_public, new_public, seal_dir=seal_dir)
    assert clean, report["findings"]
    assert report["rows"] == 20
    # Trusting only the old key, every seal of the new one is named.
    clean, report = verify(old_public, seal_dir=seal_dir)
    new_key = key_id(private_key_load(new_private).public_key())
    new_seals = {seal.sequence for seal in AuditSeal.objects.all() if json.loads(seal.body)["key_id"] == new_key}
    assert {seal for kind, _, _, seal in findings_of(report) if kind == "seal_unknown_key"} == new_seals


@pytest.mark.real_clock
@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_while_sealing_verify_clean(tmp_path: Path) -> None:
    """Four threads write through the real write path while the sealer runs every 0.2 s with
    1 s windows and a 1.5 s settle margin; afterwards every row is sealed and nothing is found."""
    private, public = key_files(tmp_path / "keys")
    seal_dir = tmp_path / "seals"
    key = private_key_load(private)
    stop = threading.Event()
    written: list[int] = []
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            while not stop.is_set():
                write(AuditKind.REMEDIATION, remediation_body())
                written.append(1)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 4
    sealed_while_writing = 0
    while time.monotonic() < deadline:
        sealed_while_writing += len(
            seal_pending(window_seconds=WINDOW_SECONDS, settle_seconds=1.5, private_key=key, seal_dir=seal_dir)
        )
        time.sleep(0.2)
    stop.set()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert sealed_while_writing >= 2
    time.sleep(2.6)
    seal_pending(window_seconds=WINDOW_SECONDS, settle_seconds=1.5, private_key=key, seal_dir=seal_dir)
    clean, report = verify(public, seal_dir=seal_dir)
    assert clean, report["findings"]
    assert report["rows"] == 2 * len(written) == 2 * IncidentEmbedding.objects.count()
