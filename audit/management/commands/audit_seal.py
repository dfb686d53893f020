"""Seal every closed, settled window of the audit history not sealed yet (for a CronJob)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.integrity.sealing import seal_pending
from kubernaut_integrity.keys import private_key_load


class Command(BaseCommand):
    help = (
        "Seal every window of recorded_at (AUDIT_SEAL_WINDOW_SECONDS long) that ended more than the "
        "settle margin ago and is not sealed yet, empty windows included: per-table row counts and "
        "RFC 6962 Merkle roots, chained to the previous seal and signed with the Ed25519 key in "
        "AUDIT_SEAL_PRIVATE_KEY_FILE. Each seal is stored in the audit_seals table and written to "
        "AUDIT_SEAL_DIR. Idempotent: run it every few minutes."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--settle-seconds",
            type=float,
            default=None,
            help=f"seal only windows that ended this long ago (default AUDIT_SEAL_SETTLE_SECONDS, "
            f"{settings.AUDIT_SEAL_SETTLE_SECONDS})",
        )
        parser.add_argument("--private-key", type=Path, default=None, help="default AUDIT_SEAL_PRIVATE_KEY_FILE")
        parser.add_argument(
            "--seal-dir", type=Path, default=None, help=f"default AUDIT_SEAL_DIR ({settings.AUDIT_SEAL_DIR})"
        )

    def handle(
        self,
        *args: Any,
        settle_seconds: float | None,
        private_key: Path | None,
        seal_dir: Path | None,
        **options: Any,
    ) -> None:
        key_path = private_key or (
            Path(settings.AUDIT_SEAL_PRIVATE_KEY_FILE) if settings.AUDIT_SEAL_PRIVATE_KEY_FILE else None
        )
        if key_path is None:
            raise CommandError("no signing key: set AUDIT_SEAL_PRIVATE_KEY_FILE or pass --private-key")
        settle = settings.AUDIT_SEAL_SETTLE_SECONDS if settle_seconds is None else settle_seconds
        if settle < settings.AUDIT_WRITE_MAX_LAG_SECONDS:
            raise CommandError(
                "--settle-seconds below AUDIT_WRITE_MAX_LAG_SECONDS could seal a window a write still enters"
            )
        try:
            key = private_key_load(key_path)
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot load the signing key {key_path}: {exc}") from exc
        sealed = seal_pending(
            window_seconds=settings.AUDIT_SEAL_WINDOW_SECONDS,
            settle_seconds=settle,
            private_key=key,
            seal_dir=seal_dir or Path(settings.AUDIT_SEAL_DIR),
        )
        if not sealed:
            self.stdout.write("nothing to seal: every closed, settled window is sealed")
            return
        rows = sum(window.rows for window in sealed)
        self.stdout.write(
            self.style.SUCCESS(
                f"sealed {len(sealed)} window(s), seals {sealed[0].sequence}..{sealed[-1].sequence}, "
                f"[{sealed[0].start.isoformat()}, {sealed[-1].end.isoformat()}), {rows} row(s)"
            )
        )
