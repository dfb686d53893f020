"""Write new keys for sealing the audit history: the seal key pair and the seal log's note key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from kubernaut_integrity.keys import key_pair_write, log_key_write
from kubernaut_integrity.note import name_valid


class Command(BaseCommand):
    help = (
        "Write new Ed25519 keys to DIR. The seal key pair: seal-signing-key.pem (PKCS#8, mode 0600; put it in the "
        "Secret the audit_seal CronJob mounts as AUDIT_SEAL_PRIVATE_KEY_FILE, and nowhere else) and "
        "seal-public-key.pem (give it to verifiers and auditors). The seal log's note key, named for the log's "
        "origin (AUDIT_LOG_ORIGIN, or --origin): log-signing-key (mode 0600; its own Secret, mounted as "
        "AUDIT_LOG_PRIVATE_KEY_FILE) and log-key.vkey (the verifier key auditors and witnesses are given). "
        "Prints the seal key id and the log's verifier key. Refuses to overwrite existing key files. For a "
        "rotation, keep every old public key: verification accepts a set of them."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="directory for the key files")
        parser.add_argument(
            "--origin",
            default=None,
            help=f"the log's origin, the log key's name (default AUDIT_LOG_ORIGIN, {settings.AUDIT_LOG_ORIGIN})",
        )

    def handle(self, *args: Any, out: Path, origin: str | None, **options: Any) -> None:
        origin = origin or settings.AUDIT_LOG_ORIGIN
        if not name_valid(origin):
            raise CommandError(f"--origin {origin!r}: a log's origin is non-empty, without spaces or '+'")
        for name in ("seal-signing-key.pem", "seal-public-key.pem", "log-signing-key", "log-key.vkey"):
            if (out / name).exists():
                raise CommandError(f"{out / name} exists: refusing to overwrite a key")
        private_path, public_path, kid = key_pair_write(out)
        log_private_path, log_public_path, vkey = log_key_write(out, origin)
        self.stdout.write(f"seal signing key (secret): {private_path}")
        self.stdout.write(f"seal public key:           {public_path}")
        self.stdout.write(f"seal key id:               {kid}")
        self.stdout.write(f"log signing key (secret):  {log_private_path}")
        self.stdout.write(f"log verifier key:          {log_public_path}")
        self.stdout.write(f"                           {vkey}")
