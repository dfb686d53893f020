"""Delete the keys audit-event bodies were recognised by once their window has passed (dry run
unless --yes)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from audit.models import EVENTS_BODY_SCOPE, IdempotencyKey
from audit.write.housekeeping import idempotency_keys_prune


class Command(BaseCommand):
    help = (
        "Delete the keys the service made from audit-event bodies (a byte-identical re-post is a "
        "retry) once they are older than twice AUDIT_EVENTS_DEDUPE_SECONDS, when no retry can "
        "match them any more. A batch's key holds its answer, every event id: run this every few "
        "minutes to keep the table small. Keys clients sent are left to idempotency_keys_prune. "
        "Without --yes it only counts what it would delete."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=5000, help="keys deleted per transaction (default 5000)")
        parser.add_argument("--yes", action="store_true", help="really delete (default: dry run)")

    def handle(self, *args: Any, batch_size: int, yes: bool, **options: Any) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        # Twice the window: a body's key is matched in its own bucket and the next.
        cutoff = timezone.now() - dt.timedelta(seconds=2 * settings.AUDIT_EVENTS_DEDUPE_SECONDS)
        expired = IdempotencyKey.objects.filter(scope=EVENTS_BODY_SCOPE, created_at__lt=cutoff).count()
        self.stdout.write(f"{expired} audit-event body key(s) made before {cutoff:%Y-%m-%d %H:%M:%S} UTC.")
        if not yes:
            self.stdout.write(self.style.WARNING("Dry run: nothing deleted. Run again with --yes to delete them."))
            return
        deleted = idempotency_keys_prune(cutoff=cutoff, batch_size=batch_size, scope=EVENTS_BODY_SCOPE)
        self.stdout.write(self.style.SUCCESS(f"{deleted} audit-event body key(s) deleted."))
