"""Seal every closed, settled window of the audit history not sealed yet (for a CronJob)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.integrity.log_publication import Authority, Publication, Witness, log_publish
from audit.integrity.seal_log import LogSigning, SealLogError, log_signing_load
from audit.integrity.sealing import seal_pending
from kubernaut_integrity.cosignature import cosigner_verifier_from_vkey
from kubernaut_integrity.keys import private_key_load
from kubernaut_integrity.timestamps import tsa_roots_load


class Command(BaseCommand):
    help = (
        "Seal every window of recorded_at (AUDIT_SEAL_WINDOW_SECONDS long) that ended more than the "
        "settle margin ago and is not sealed yet, empty windows included: per-table row counts and "
        "RFC 6962 Merkle roots, chained to the previous seal and signed with the Ed25519 key in "
        "AUDIT_SEAL_PRIVATE_KEY_FILE. Each seal is stored in the audit_seals table and written to "
        "AUDIT_SEAL_DIR, and appended to the seal log; with AUDIT_LOG_PRIVATE_KEY_FILE a checkpoint of the log "
        "is signed in the same transaction (refused when the log no longer extends the last one). After the "
        "commit: the witnesses of AUDIT_WITNESSES are asked to cosign it, AUDIT_TSA_URL to time-stamp it "
        "(every AUDIT_ANCHOR_INTERVAL_SECONDS), and the checkpoint files are written to AUDIT_SEAL_DIR. An "
        "unreachable witness or authority is only reported; exit status 1 when a witness refuses or holds "
        "another history. Idempotent: run it every few minutes."
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
        log = self._log_signing()
        seal_dir = seal_dir or Path(settings.AUDIT_SEAL_DIR)
        try:
            sealed = seal_pending(
                window_seconds=settings.AUDIT_SEAL_WINDOW_SECONDS,
                settle_seconds=settle,
                private_key=key,
                seal_dir=seal_dir,
                log=log,
            )
        except SealLogError as exc:
            raise CommandError(str(exc)) from exc
        if not sealed:
            self.stdout.write("nothing to seal: every closed, settled window is sealed")
        else:
            rows = sum(window.rows for window in sealed)
            self.stdout.write(
                self.style.SUCCESS(
                    f"sealed {len(sealed)} window(s), seals {sealed[0].sequence}..{sealed[-1].sequence}, "
                    f"[{sealed[0].start.isoformat()}, {sealed[-1].end.isoformat()}), {rows} row(s)"
                )
            )
        if log is None:
            self.stderr.write("no checkpoint signed: AUDIT_LOG_PRIVATE_KEY_FILE is not set")
            return
        self._report(log_publish(seal_dir=seal_dir, witnesses=self._witnesses(), authority=self._authority()))

    def _log_signing(self) -> LogSigning | None:
        if not settings.AUDIT_LOG_PRIVATE_KEY_FILE:
            return None
        try:
            return log_signing_load(
                [Path(name) for name in settings.AUDIT_LOG_PRIVATE_KEY_FILE], origin=settings.AUDIT_LOG_ORIGIN
            )
        except ValueError as exc:
            raise CommandError(f"cannot load the log key: {exc}") from exc

    def _witnesses(self) -> list[Witness]:
        return [Witness(url=url, verifier=cosigner_verifier_from_vkey(vkey)) for url, vkey in settings.AUDIT_WITNESSES]

    def _authority(self) -> Authority | None:
        if not settings.AUDIT_TSA_URL:
            return None
        try:
            roots = tsa_roots_load(Path(name) for name in settings.AUDIT_TSA_ROOT_FILES)
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot load AUDIT_TSA_ROOT_FILES: {exc}") from exc
        return Authority(
            url=settings.AUDIT_TSA_URL, roots=roots, interval_seconds=settings.AUDIT_ANCHOR_INTERVAL_SECONDS
        )

    def _report(self, publication: Publication) -> None:
        if publication.checkpoint is not None:
            parts = [f"checkpoint {publication.checkpoint}"]
            if publication.cosigned_by:
                parts.append(f"cosigned by {', '.join(publication.cosigned_by)}")
            if publication.anchored_at is not None:
                parts.append(f"time-stamped {publication.anchored_at.isoformat()}")
            self.stdout.write("; ".join(parts))
        for problem in publication.problems:
            self.stderr.write(problem)
        if publication.failed:
            raise CommandError("; ".join(publication.problems))
