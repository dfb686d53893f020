"""Delete claimed Idempotency-Keys older than N hours, in batches (dry run unless --yes)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from tqdm import tqdm

from audit.models import IdempotencyKey
from audit.write.housekeeping import idempotency_keys_prune

#: Keys are kept at least 24 h, so a retry within a day is always a replay.
MIN_AGE_HOURS = 24


class Command(BaseCommand):
    help = (
        "Delete claimed Idempotency-Keys older than --older-than-hours (default and minimum 24: "
        "a client retrying within a day must get its replay, never a second record). Deletes in "
        "batches of --batch-size, one short transaction each, so the write path never waits long. "
        "Audit records are not touched. Without --yes it only counts what it would delete."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than-hours",
            type=int,
            default=MIN_AGE_HOURS,
            metavar="HOURS",
            help=f"delete keys claimed more than HOURS ago (default and minimum {MIN_AGE_HOURS})",
        )
        parser.add_argument("--batch-size", type=int, default=5000, help="keys deleted per transaction (default 5000)")
        parser.add_argument("--yes", action="store_true", help="really delete (default: dry run)")

    def handle(self, *args: Any, older_than_hours: int, batch_size: int, yes: bool, **options: Any) -> None:
        if older_than_hours < MIN_AGE_HOURS:
            raise CommandError(f"--older-than-hours must be at least {MIN_AGE_HOURS}")
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        cutoff = timezone.now() - dt.timedelta(hours=older_than_hours)
        expired = IdempotencyKey.objects.filter(created_at__lt=cutoff).count()
        self.stdout.write(f"{expired} idempotency key(s) claimed before {cutoff:%Y-%m-%d %H:%M:%S} UTC.")
        if not yes:
            self.stdout.write(self.style.WARNING("Dry run: nothing deleted. Run again with --yes to delete them."))
            return
        with tqdm(total=expired, unit="keys", file=self.stderr, disable=None) as progress:
            deleted = idempotency_keys_prune(cutoff=cutoff, batch_size=batch_size, on_batch=progress.update)
        self.stdout.write(self.style.SUCCESS(f"{deleted} idempotency key(s) deleted."))
