"""Seal a filled history as the sealing CronJob would have, run by `python -m bench volume`.

    python -m bench.volume.seal_history --private-key FILE --seal-dir DIR [--step-hours 24]

In production `audit_seal` runs every few minutes and each run seals the few windows that
closed since the last. A database filled with months of rows at once has none sealed, and a
single `audit_seal` would put everything but the last hour into one genesis window (sealing.py
does that on purpose for a database that predates sealing). To time the steady state, this
catches up the way the CronJob would have kept up: `audit_seal` again and again, each time
with `--settle-seconds` set so that it seals the next `--step-hours` of windows, the first
time so that the genesis window holds at most a minute. The last run uses the default settle
margin, as the CronJob does. Prints one JSON object: runs, seals, rows, seconds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kubernaut_storage.settings.local")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--private-key", type=Path, required=True)
    parser.add_argument("--seal-dir", type=Path, required=True)
    parser.add_argument("--step-hours", type=float, default=24.0, help="history sealed per audit_seal run")
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.db.models import Sum

    from audit.models import AuditSeal

    with connection.cursor() as cursor:
        cursor.execute("SELECT min(recorded_at) FROM incident_embeddings")
        earliest = cursor.fetchone()[0]
    if earliest is None:
        sys.exit("nothing to seal: the embeddings table is empty")
    # A run seals every window ending before now - settle: this first target leaves the
    # genesis window (everything older than the last 60 windows) at most a minute long.
    target = earliest + dt.timedelta(seconds=61 * settings.AUDIT_SEAL_WINDOW_SECONDS)
    step = dt.timedelta(hours=args.step_hours)
    runs = 0
    started = time.perf_counter()
    while True:
        with connection.cursor() as cursor:
            cursor.execute("SELECT statement_timestamp()")
            now = cursor.fetchone()[0]
        settle = (now - target).total_seconds()
        last = settle <= settings.AUDIT_SEAL_SETTLE_SECONDS
        options = {} if last else {"settle_seconds": settle}
        call_command(
            "audit_seal", private_key=args.private_key, seal_dir=args.seal_dir, stdout=io.StringIO(), **options
        )
        runs += 1
        if last:
            break
        target += step
    seconds = time.perf_counter() - started
    totals = AuditSeal.objects.aggregate(rows=Sum("row_count"))
    print(
        json.dumps(
            {
                "runs": runs,
                "seals": AuditSeal.objects.count(),
                "rows": int(totals["rows"] or 0),
                "seconds": round(seconds, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
