"""Re-check archives written by audit_retention against their manifests (read-only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.retention import ArchiveVerificationError, manifest_verify


class Command(BaseCommand):
    help = (
        "Verify partition archives against their manifests: the SHA-256 of each .jsonl.gz file, "
        "that every line is JSON, and that the line count equals the manifest's row_count. Takes "
        "manifest files or directories of them (default: AUDIT_ARCHIVE_DIR). Changes nothing; exits "
        "non-zero if any archive fails, e.g. after copying archives to long-term storage."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="*", type=Path, help="*.manifest.json files or directories")

    def handle(self, *args: Any, paths: list[Path], **options: Any) -> None:
        manifests: list[Path] = []
        for path in paths or [Path(settings.AUDIT_ARCHIVE_DIR)]:
            manifests.extend(sorted(path.glob("*.manifest.json")) if path.is_dir() else [path])
        if not manifests:
            raise CommandError("no manifest found")
        failed = 0
        for manifest_path in manifests:
            try:
                manifest = manifest_verify(manifest_path)
            except (ArchiveVerificationError, OSError, ValueError, KeyError) as exc:
                failed += 1
                self.stdout.write(self.style.ERROR(f"FAILED {manifest_path.name}: {exc}"))
                continue
            self.stdout.write(f"ok {manifest['partition']}: {manifest['row_count']} rows, sha256 matches")
        if failed:
            raise CommandError(f"{failed} of {len(manifests)} archive(s) failed verification")
        self.stdout.write(self.style.SUCCESS(f"{len(manifests)} archive(s) verified."))
