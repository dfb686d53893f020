"""Verify the sealed audit history: seal chain, signatures, copies outside the database, rows."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from tqdm import tqdm

from audit.integrity.incremental import Progress, audit_verify_incremental
from audit.integrity.log_verification import LogTrust
from audit.integrity.stored_seals import seals_in_range
from audit.integrity.verification import audit_verify
from audit.models import AuditVerification
from kubernaut_integrity.arguments import (
    log_key_argument,
    log_verifiers_load,
    public_key_argument,
    tsa_root_argument,
    witness_verifiers_load,
)
from kubernaut_integrity.keys import public_keys_load
from kubernaut_integrity.timestamps import tsa_roots_load


def _moment(text: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


class Command(BaseCommand):
    help = (
        "Recompute every row hash, Merkle root and seal link of the sealed windows overlapping "
        "[--from, --to) (default: all) and report, each by table and id or seal number: modified, "
        "deleted or inserted rows, duplicated, reordered or missing seals, bad signatures or unknown "
        "keys, seals that differ from their copies in AUDIT_SEAL_DIR, and closed windows still "
        "unsealed after AUDIT_SEAL_MAX_LAG_SECONDS. Without --from/--to, the seal log too, rebuilt "
        "from every seal: each seal's stored log hashes, each checkpoint in the database and in "
        "AUDIT_SEAL_DIR (signed by a --log-key, with the root the rebuilt log has at its size: one that "
        "differs is a rewritten history, named with both sizes), their RFC 3161 anchors (against "
        "--tsa-root) and witness cosignatures (AUDIT_WITNESSES). "
        "With --incremental (the CronJob): only the windows sealed since the last incremental run, "
        "and a rotating random share of the older ones, so that all history is checked again every "
        "AUDIT_VERIFY_PERIOD_DAYS; where it stands is kept in audit_verifications. "
        "Exit status 1 on any finding, 0 when clean. "
        "Read-only, apart from recording the outcome for the metrics."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--from", dest="time_from", type=_moment, default=None, metavar="T", help="ISO 8601")
        parser.add_argument("--to", dest="time_to", type=_moment, default=None, metavar="T", help="ISO 8601")
        public_key_argument(parser, default="AUDIT_SEAL_PUBLIC_KEY_FILES")
        log_key_argument(parser, default="AUDIT_LOG_PUBLIC_KEY_FILES")
        tsa_root_argument(parser, default="AUDIT_TSA_ROOT_FILES")
        parser.add_argument(
            "--seal-dir", type=Path, default=None, help=f"default AUDIT_SEAL_DIR ({settings.AUDIT_SEAL_DIR})"
        )
        parser.add_argument(
            "--incremental",
            action="store_true",
            help="the windows sealed since the last incremental run and the share of older ones due now",
        )
        parser.add_argument(
            "--parallel",
            type=int,
            default=2,
            metavar="N",
            help="database connections hashing the rows side by side, in one snapshot (default 2)",
        )
        parser.add_argument("--json", action="store_true", help="print the report as JSON")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar, even on a terminal")

    def handle(
        self,
        *args: Any,
        time_from: dt.datetime | None,
        time_to: dt.datetime | None,
        public_keys: list[Path] | None,
        log_keys: list[str] | None,
        tsa_roots: list[Path] | None,
        seal_dir: Path | None,
        incremental: bool,
        parallel: int,
        json: bool,
        no_progress: bool,
        **options: Any,
    ) -> None:
        key_files = public_keys or [Path(name) for name in settings.AUDIT_SEAL_PUBLIC_KEY_FILES]
        if not key_files:
            raise CommandError("no trusted public key: pass --public-key FILE or set AUDIT_SEAL_PUBLIC_KEY_FILES")
        try:
            trusted = public_keys_load(key_files)
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot load a public key: {exc}") from exc
        log_trust = self._log_trust(log_keys, tsa_roots)
        seal_dir = seal_dir or Path(settings.AUDIT_SEAL_DIR)
        if incremental and (time_from is not None or time_to is not None):
            raise CommandError("--incremental checks what is due itself: no --from or --to")
        arguments: dict[str, Any] = {
            "trusted": trusted,
            "seal_dir": seal_dir if seal_dir.is_dir() else None,
            "archive_dir": Path(settings.AUDIT_ARCHIVE_DIR),
            "window_seconds": settings.AUDIT_SEAL_WINDOW_SECONDS,
            "max_lag_seconds": settings.AUDIT_SEAL_MAX_LAG_SECONDS,
            "log_trust": log_trust,
            "workers": max(1, parallel),
        }
        progress: Progress | None = None
        if incremental:
            report, progress = audit_verify_incremental(
                period=dt.timedelta(days=settings.AUDIT_VERIFY_PERIOD_DAYS), now=timezone.now(), **arguments
            )
        else:
            expected = seals_in_range(time_from, time_to).values_list("row_count", flat=True)
            with tqdm(
                total=sum(expected) or None,
                unit="rows",
                file=self.stderr,
                disable=True if no_progress or json else None,
            ) as progress_bar:
                report = audit_verify(
                    time_from=time_from, time_to=time_to, now=timezone.now(), on_rows=progress_bar.update, **arguments
                )
        AuditVerification.objects.create(
            finished_at=timezone.now(),
            passed=report.clean,
            findings=len(report.findings),
            rows=report.rows,
            seals=report.seals,
            incremental=incremental,
            progress=progress.as_json() if progress is not None else None,
        )
        if json:
            self.stdout.write(_json_dumps(report.as_json()))
        else:
            for finding in report.findings:
                self.stdout.write(self.style.ERROR(str(finding)))
            rate = f", {report.rows / report.seconds:,.0f} rows/s" if report.seconds else ""
            summary = f"{report.seals} seal(s), {report.rows} row(s) in {report.seconds:.2f} s{rate}"
            if report.clean:
                self.stdout.write(self.style.SUCCESS(f"clean: {summary}"))
            else:
                self.stdout.write(self.style.ERROR(f"{len(report.findings)} finding(s): {summary}"))
        if not report.clean:
            raise CommandError(f"{len(report.findings)} finding(s)")

    def _log_trust(self, log_keys: list[str] | None, tsa_roots: list[Path] | None) -> LogTrust:
        try:
            return LogTrust(
                origin=settings.AUDIT_LOG_ORIGIN,
                log_verifiers=log_verifiers_load(log_keys or settings.AUDIT_LOG_PUBLIC_KEY_FILES),
                witness_verifiers=witness_verifiers_load(vkey for _, vkey in settings.AUDIT_WITNESSES),
                tsa_roots=tsa_roots_load(tsa_roots or [Path(name) for name in settings.AUDIT_TSA_ROOT_FILES]),
            )
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot load a log key or time-stamp root: {exc}") from exc


def _json_dumps(value: Any) -> str:
    return json.dumps(value, indent=2)
