"""Re-check archives written by audit_retention against their manifests and seals (read-only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from kubernaut_integrity.archive import MANIFEST_SUFFIX, ArchiveVerificationError, manifest_verify
from kubernaut_integrity.archive_verification import archive_verify
from kubernaut_integrity.arguments import public_key_argument
from kubernaut_integrity.keys import public_keys_load
from kubernaut_integrity.seal_files import seal_files


class Command(BaseCommand):
    help = (
        "Verify partition archives against their manifests: the SHA-256 of each .jsonl.zst (or older .jsonl.gz) file, "
        "that every line is JSON, and that the line count equals the manifest's row_count. With trusted "
        "public keys (--public-key, or AUDIT_SEAL_PUBLIC_KEY_FILES), every archived row is also checked "
        "against the signed seal files beside the archives, naming each modified, deleted or inserted "
        "row (what `python -m kubernaut_integrity` does for a third party). Takes manifest files or "
        "directories of them (default: AUDIT_ARCHIVE_DIR). Changes nothing; exits non-zero if any "
        "archive fails, e.g. after copying archives to long-term storage."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="*", type=Path, help="*.manifest.json files or directories")
        public_key_argument(parser, default="AUDIT_SEAL_PUBLIC_KEY_FILES")

    def handle(self, *args: Any, paths: list[Path], public_keys: list[Path] | None, **options: Any) -> None:
        manifests: list[Path] = []
        for path in paths or [Path(settings.AUDIT_ARCHIVE_DIR)]:
            manifests.extend(sorted(path.glob(f"*{MANIFEST_SUFFIX}")) if path.is_dir() else [path])
        if not manifests:
            raise CommandError("no manifest found")
        failed = 0
        for manifest_path in manifests:
            try:
                manifest = manifest_verify(manifest_path)
            except ArchiveVerificationError as exc:
                failed += 1
                self.stdout.write(self.style.ERROR(f"FAILED {manifest_path.name}: {exc}"))
                continue
            self.stdout.write(f"ok {manifest.partition}: {manifest.row_count} rows, sha256 matches")
        key_files = public_keys or [Path(name) for name in settings.AUDIT_SEAL_PUBLIC_KEY_FILES]
        findings = 0
        if key_files:
            try:
                trusted = public_keys_load(key_files)
            except (OSError, ValueError) as exc:
                raise CommandError(f"cannot load a public key: {exc}") from exc
            for directory in sorted({manifest.parent for manifest in manifests}):
                if not seal_files(directory):
                    self.stdout.write(
                        self.style.WARNING(f"no seal files in {directory}: rows not checked against seals")
                    )
                    continue
                report = archive_verify(directory, trusted)
                for finding in report.findings:
                    self.stdout.write(self.style.ERROR(str(finding)))
                findings += len(report.findings)
                self.stdout.write(
                    f"{directory}: {report.rows} row(s) against {report.seals} seal(s): "
                    + ("clean" if report.clean else f"{len(report.findings)} finding(s)")
                )
        if failed or findings:
            raise CommandError(
                f"{failed} of {len(manifests)} archive(s) failed verification, {findings} seal finding(s)"
            )
        self.stdout.write(self.style.SUCCESS(f"{len(manifests)} archive(s) verified."))
