"""Create the monthly partitions that are missing, for this month and the next N."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from kubernaut_storage.database.partitioning import partitions_ensure


class Command(BaseCommand):
    help = (
        "Create missing monthly partitions of the audit and embedding tables for the current UTC "
        "month and the next --months-ahead months. Idempotent: run it from a daily CronJob. "
        "There is no DEFAULT partition, so a month without partitions rejects writes."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--months-ahead", type=int, default=2, help="months after the current one to cover (default 2)"
        )

    def handle(self, *args: Any, months_ahead: int, **options: Any) -> None:
        if months_ahead < 0:
            self.stderr.write("--months-ahead must be 0 or more")
            raise SystemExit(2)
        created = partitions_ensure(now=timezone.now(), months_ahead=months_ahead)
        for partition in created:
            self.stdout.write(f"created {partition.name} [{partition.starts:%Y-%m-%d}, {partition.ends:%Y-%m-%d})")
        self.stdout.write(self.style.SUCCESS(f"{len(created)} partition(s) created; all present."))
