"""Embed the audit rows stored without an embedding; or re-embed a fallback model's rows.

    manage.py embeddings_backfill                                  # every pending row
    manage.py embeddings_backfill --limit 1000 --batch-size 128
    manage.py embeddings_backfill --reembed-model all-MiniLM-L6-v2 # after an outage of the primary
    manage.py embeddings_backfill --dry-run                        # count only

Pending rows are those the write path answered `"embeddingStatus": "pending"` for: every
provider failed, so it stored the audit row with a backlog row instead. Each batch embeds its
rows with one call of the provider chain (the primary, else the fallback) and commits the
vectors and the removal of their backlog rows together: stop it at any point, run it again,
and it resumes; nothing is embedded twice or lost. Safe to run while the service writes, and
from a CronJob: two runs at once split the rows between them.

--reembed-model NAME adds, for every audit row whose vector NAME made (typically the local
fallback, all-MiniLM-L6-v2, during an OpenAI outage), a vector made by the primary, so that
similarity search in the primary's model sees every incident. Only the primary is used: if it
fails the run stops, and the next one resumes.

The old vector is KEPT, not deleted:
  * the write's 201 answered its `embeddingId`; deleting it would turn an acknowledged id
    into a dangling one;
  * it is still a correct vector of its model (vectors of different models are never
    compared, so a second one per row cannot skew a search), and a deployment searching with
    the local model keeps finding the incident;
  * it costs ~1.6 KiB per row, and retention drops it with its month.
So nothing is deleted and the command needs no --yes. Exit status 1 when a provider failed.
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from audit.write.backfill import (
    BackfillOutcome,
    embedding_backlog_backfill,
    embedding_backlog_count,
    embeddings_reembed,
    embeddings_reembed_pending,
)
from embeddings.providers.base import EmbeddingProviderError
from embeddings.services import embedding_runtime

DEFAULT_BATCH_SIZE = 64


class Command(BaseCommand):
    help = (
        "Embed audit rows stored without an embedding (embeddingStatus 'pending'), in resumable "
        "batches; or, with --reembed-model NAME, add primary-model vectors to the rows NAME made."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--batch-size",
            type=int,
            default=DEFAULT_BATCH_SIZE,
            help=f"rows per provider call and per transaction (default {DEFAULT_BATCH_SIZE})",
        )
        parser.add_argument("--limit", type=int, default=None, help="stop after this many rows (default: all)")
        parser.add_argument(
            "--reembed-model",
            metavar="NAME",
            default=None,
            help="re-embed with the primary the rows whose vector model NAME made; keeps the old rows",
        )
        parser.add_argument("--dry-run", action="store_true", help="count the rows to do, change nothing")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar (none anyway without a TTY)")

    def handle(
        self,
        *args: Any,
        batch_size: int,
        limit: int | None,
        reembed_model: str | None,
        dry_run: bool,
        no_progress: bool,
        **options: Any,
    ) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be 1 or more")
        if limit is not None and limit < 1:
            raise CommandError("--limit must be 1 or more")
        primary_model = embedding_runtime().chain.primary.model
        if reembed_model is not None:
            if reembed_model == primary_model:
                raise CommandError(f"{reembed_model} is the primary's model: nothing to re-embed it with")
            total = embeddings_reembed_pending(model=reembed_model, target_model=primary_model).count()
            what = f"rows embedded by {reembed_model} without a {primary_model} vector"
        else:
            total = embedding_backlog_count()
            what = "pending rows"
        if limit is not None:
            total = min(total, limit)
        self.stdout.write(f"{total} {what} to do (primary model {primary_model}).")
        if dry_run or total == 0:
            return

        bar = tqdm(
            total=total,
            unit="row",
            file=sys.stderr,
            # a bar in a log file is noise: only on a terminal
            disable=no_progress or not sys.stderr.isatty(),
        )
        try:
            if reembed_model is not None:
                outcome = embeddings_reembed(
                    model=reembed_model, batch_size=batch_size, limit=limit, progress=bar.update
                )
            else:
                outcome = embedding_backlog_backfill(batch_size=batch_size, limit=limit, progress=bar.update)
        except EmbeddingProviderError as exc:
            raise CommandError(
                f"embedding failed, stopping: {str(exc).rstrip('.')}."
                " The batches before this one are stored; run again to resume."
            ) from exc
        finally:
            bar.close()
        self._report(outcome)

    def _report(self, outcome: BackfillOutcome) -> None:
        models = ", ".join(f"{count} by {model}" for model, count in sorted(outcome.embedded.items())) or "none"
        self.stdout.write(self.style.SUCCESS(f"embedded {outcome.total} row(s): {models}."))
        if outcome.orphans:
            # Their audit month was dropped by retention; the backlog rows are left for an
            # operator to look at rather than deleted behind their back.
            shown = ", ".join(f"{kind} #{audit_id}" for kind, audit_id in outcome.orphans[:10])
            self.stderr.write(f"skipped {len(outcome.orphans)} row(s) whose audit row no longer exists: {shown}")
