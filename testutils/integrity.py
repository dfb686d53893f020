"""Shared pieces of the sealing tests and benchmarks: keys, sealing "later", tampering as the
superuser, a scratch database emptied for a benchmark."""

from __future__ import annotations

import datetime as dt
import io
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from audit.integrity.seal_log import LogSigning, log_signing_load
from audit.integrity.sealing import seal_pending
from audit.models import AuditSeal
from kubernaut_integrity.keys import key_pair_write, log_key_write, private_key_load
from kubernaut_storage.database.partitioning import partitions_ensure

WINDOW_SECONDS = 1
LOG_ORIGIN = "kubernaut-storage.test/audit-seals"


def key_files(directory: Path) -> tuple[Path, Path]:
    private, public, _ = key_pair_write(directory)
    return private, public


def log_signing(directory: Path, origin: str = LOG_ORIGIN) -> tuple[LogSigning, Path]:
    """A new log note key in `directory` (as audit_keygen writes it): the signing, and the vkey file."""
    private, public, _ = log_key_write(directory, origin)
    return log_signing_load([private], origin=origin), public


def seal_now(
    private: Path,
    seal_dir: Path,
    *,
    ahead_seconds: float = 3,
    log: LogSigning | None = None,
    now: dt.datetime | None = None,
) -> list[Any]:
    """Seal every window up to a moment `ahead_seconds` from now, or up to `now` (settle 0, 1 s
    windows): what the CronJob does once those windows are old enough; with `log`, a checkpoint
    too."""
    return seal_pending(
        window_seconds=WINDOW_SECONDS,
        settle_seconds=0,
        private_key=private_key_load(private),
        seal_dir=seal_dir,
        now=now or timezone.now() + dt.timedelta(seconds=ahead_seconds),
        log=log,
    )


def verify(*public_keys: Path, seal_dir: Path, extra: tuple[str, ...] = ()) -> tuple[bool, dict[str, Any]]:
    """Run `audit_verify --json`; (clean, report)."""
    out = io.StringIO()
    arguments = [arg for key in public_keys for arg in ("--public-key", str(key))]
    try:
        call_command("audit_verify", *arguments, "--seal-dir", str(seal_dir), "--json", *extra, stdout=out)
        clean = True
    except CommandError:
        clean = False
    report: dict[str, Any] = json.loads(out.getvalue())
    assert report["clean"] is clean
    return clean, report


def findings_of(report: dict[str, Any]) -> set[tuple[Any, ...]]:
    return {(f["kind"], f["table"], f["id"], f["seal"]) for f in report["findings"]}


@contextmanager
def triggers_bypassed() -> Iterator[Any]:
    """A cursor on the superuser connection with every trigger off: what a DBA can do."""
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        try:
            yield cursor
        finally:
            cursor.execute("SET session_replication_role = origin")


def scratch_database_emptied(*, now: dt.datetime) -> None:
    """Migrate a benchmark's database, make its partitions up to next month and empty the sealed
    tables and the seals. Exits unless the database's name ends in `_bench`: a benchmark never
    empties the test database, nor production."""
    name = settings.DATABASES["default"]["NAME"]
    if not str(name).endswith("_bench"):
        sys.exit(f"refusing to empty {name!r}: set EMBEDDED_POSTGRES_DATABASE to a scratch *_bench database")
    call_command("migrate", verbosity=0)
    partitions_ensure(now=now, months_ahead=1)
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE audit_seals, audit_checkpoints, audit_checkpoint_cosignatures, audit_anchors,"
            " audit_witness_state, audit_remediation, audit_aianalysis, audit_workflow, audit_execution,"
            " audit_events, incident_embeddings"
        )


def seal_row_ahead(*, now: dt.datetime, ahead: dt.timedelta = dt.timedelta(minutes=1)) -> AuditSeal:
    """A bare seal row whose window ends `ahead` of `now`: what a write still in flight meets once
    the sealing job has sealed past its recorded_at (only the trigger reads it; it is unsigned)."""
    return AuditSeal.objects.create(
        sequence=1,
        window_start=now - dt.timedelta(hours=1),
        window_end=now + ahead,
        row_count=0,
        root="0" * 64,
        key_id="test",
        sealed_at=now,
        body="{}",
        signature=b"",
    )
