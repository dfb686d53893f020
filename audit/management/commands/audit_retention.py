"""Archive and drop the monthly partitions older than N months (dry run unless --yes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError
from django.utils import timezone
from tqdm import tqdm

from audit.integrity.retention import expired_partitions, partitions_retire, retention_cutoff
from kubernaut_integrity.archive import ArchiveVerificationError, archive_paths


class Command(BaseCommand):
    help = (
        "Archive every monthly partition of the audit tables and incident_embeddings that lies "
        "entirely before the month N months ago, then detach and drop it. Each partition is "
        "written to <archive-dir>/<partition>.jsonl.zst (Zstandard JSON Lines, one row per line) with "
        "<partition>.manifest.json (table, partition, bounds, row count, SHA-256 of the archive, "
        "created at) and the seal files covering its rows (from AUDIT_SEAL_DIR); the archive is "
        "re-read and verified before the partition is dropped, in the transaction that locked it. "
        "--parallel partitions are retired at once, each on its own database connection. A run that "
        "stops mid-archive leaves <partition>.journal.json: the next run goes on from the last complete "
        "segment. The current month and newer are never touched. Without --yes it only prints the plan."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            type=int,
            required=True,
            metavar="MONTHS",
            help="retire partitions that end on or before the first day of the month MONTHS months ago (>= 1)",
        )
        parser.add_argument(
            "--archive-dir",
            type=Path,
            default=None,
            help=f"where archives and manifests go (default: AUDIT_ARCHIVE_DIR, {settings.AUDIT_ARCHIVE_DIR})",
        )
        parser.add_argument(
            "--lock-timeout",
            type=float,
            default=10.0,
            metavar="SECONDS",
            help="give up on a partition whose locks are not granted within this time (default 10)",
        )
        parser.add_argument(
            "--parallel",
            type=int,
            default=2,
            metavar="N",
            help="partitions retired at once, each on its own connection (default 2: one per core here, "
            "PostgreSQL writing the lines and this process compressing them)",
        )
        parser.add_argument("--yes", action="store_true", help="really archive and drop (default: dry run)")

    def handle(
        self,
        *args: Any,
        older_than: int,
        archive_dir: Path | None,
        lock_timeout: float,
        parallel: int,
        yes: bool,
        **options: Any,
    ) -> None:
        if older_than < 1:
            raise CommandError("--older-than must be at least 1 month")
        if parallel < 1:
            raise CommandError("--parallel must be at least 1")
        archive_dir = archive_dir or Path(settings.AUDIT_ARCHIVE_DIR)
        now = timezone.now()
        cutoff = retention_cutoff(now=now, older_than_months=older_than)
        expired = expired_partitions(now=now, older_than_months=older_than)
        self.stdout.write(f"Partitions entirely before {cutoff:%Y-%m-%d} (older than {older_than} month(s)):")
        if not expired:
            self.stdout.write("  none")
            return
        for stats in expired:
            partition = stats.partition
            archive, _ = archive_paths(archive_dir, partition.name)
            self.stdout.write(
                f"  {partition.name}  [{partition.starts:%Y-%m-%d}, {partition.ends:%Y-%m-%d})"
                f"  ~{stats.estimated_rows} rows  -> {archive}"
            )
        if not yes:
            self.stdout.write(
                self.style.WARNING(
                    f"Dry run: nothing archived or dropped. Run again with --yes to archive, verify, "
                    f"detach and drop these {len(expired)} partition(s)."
                )
            )
            return

        with tqdm(
            total=sum(stats.estimated_rows for stats in expired) or None,
            unit="rows",
            file=self.stderr,
            disable=None,  # only on a terminal
        ) as progress:
            outcomes = partitions_retire(
                partitions=[stats.partition for stats in expired],
                workers=parallel,
                archive_dir=archive_dir,
                seal_dir=Path(settings.AUDIT_SEAL_DIR),
                now=now,
                lock_timeout_s=lock_timeout,
                on_rows=progress.update,
            )
        kept: list[str] = []
        for partition, outcome in outcomes:
            if isinstance(outcome, ArchiveVerificationError):
                kept.append(f"{partition.name} kept: archive verification failed: {outcome}")
            elif isinstance(outcome, DatabaseError):
                # A lock not granted in time, typically: the partition is untouched; rerun later.
                kept.append(f"{partition.name} kept: {outcome}")
            elif isinstance(outcome, Exception):
                raise outcome
            else:
                self.stdout.write(
                    f"retired {partition.name}: {outcome.row_count} rows, sha256 {outcome.archive_sha256}, "
                    f"{outcome.archive_bytes} bytes"
                )
        retired = len(outcomes) - len(kept)
        if kept:
            raise CommandError(f"{retired} partition(s) retired; " + "; ".join(kept))
        self.stdout.write(self.style.SUCCESS(f"{retired} partition(s) archived, verified, detached and dropped."))
