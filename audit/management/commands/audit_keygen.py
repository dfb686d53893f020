"""Write a new Ed25519 key pair for sealing the audit history."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from kubernaut_integrity.keys import key_pair_write


class Command(BaseCommand):
    help = (
        "Write a new Ed25519 key pair to DIR: seal-signing-key.pem (PKCS#8, mode 0600; put it in the "
        "Secret the audit_seal CronJob mounts as AUDIT_SEAL_PRIVATE_KEY_FILE, and nowhere else) and "
        "seal-public-key.pem (give it to verifiers and auditors). Prints the key id the seals will name. "
        "Refuses to overwrite existing key files. For a rotation, keep every old public key: "
        "verification accepts a set of them."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="directory for the two PEM files")

    def handle(self, *args: Any, out: Path, **options: Any) -> None:
        try:
            private_path, public_path, kid = key_pair_write(out)
        except FileExistsError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"signing key (secret): {private_path}")
        self.stdout.write(f"public key:           {public_path}")
        self.stdout.write(f"key id:               {kid}")
