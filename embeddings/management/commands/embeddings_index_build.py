"""Build the HNSW indexes of the months of incident_embeddings that have closed.

    manage.py embeddings_index_build              # every closed month that lacks its indexes
    manage.py embeddings_index_build --dry-run    # list them, build nothing
    manage.py embeddings_index_build --recheck    # also look for models added to indexed months

The month being written has no ANN index, on purpose: maintaining HNSW on every write would
cost more than the rest of the write (docs/PERFORMANCE.md), and similar-incident queries scan
that month exactly. Once a month has closed, this command gives its partition one HNSW index
per model it holds (embeddings/ann_indexes.py), built CONCURRENTLY: writes and reads go on.
A 1536-d month of ~50,000 vectors takes about a minute on two cores.

While a build runs it prints a line every --progress-seconds (30): PostgreSQL's phase and
tuple counts (pg_stat_progress_create_index), so a slow build is told from a stuck one. Its
memory is bounded by --maintenance-work-mem (1GB) per build, one build at a time; when the
graph outgrows it, pgvector goes on on disk, several times slower, and the command says so.

Idempotent: run it daily from a CronJob, after audit_partitions_ensure; a month is indexed
the first night after it closes. An interrupted build leaves an invalid index, which the next
run drops and builds again. It only adds indexes, so it needs no --yes.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from embeddings.ann_indexes import (
    HNSW_EF_CONSTRUCTION,
    HNSW_M,
    MAINTENANCE_WORK_MEM,
    BuildProgress,
    ann_index_build,
    ann_indexes_missing,
)


class Command(BaseCommand):
    help = (
        "Build, CONCURRENTLY, the per-model HNSW indexes that the closed months of incident_embeddings "
        "lack. The current month stays unindexed (cheap writes, exact search). Idempotent: run it daily."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="list the missing indexes, build nothing")
        parser.add_argument(
            "--recheck", action="store_true", help="read every closed month again for models it gained later"
        )
        parser.add_argument("--m", type=int, default=HNSW_M, help=f"HNSW m (default {HNSW_M})")
        parser.add_argument(
            "--ef-construction",
            type=int,
            default=HNSW_EF_CONSTRUCTION,
            help=f"HNSW ef_construction (default {HNSW_EF_CONSTRUCTION})",
        )
        parser.add_argument(
            "--maintenance-work-mem",
            default=MAINTENANCE_WORK_MEM,
            help=f"for the builds; a graph larger than this builds much slower (default {MAINTENANCE_WORK_MEM})",
        )
        parser.add_argument(
            "--progress-seconds",
            type=float,
            default=30.0,
            help="a progress line this often while an index builds (default 30)",
        )

    def handle(
        self,
        *args: Any,
        dry_run: bool,
        recheck: bool,
        m: int,
        ef_construction: int,
        maintenance_work_mem: str,
        progress_seconds: float,
        **options: Any,
    ) -> None:
        if m < 2 or ef_construction < 2 * m:
            self.stderr.write("--m must be at least 2 and --ef-construction at least twice --m")
            raise SystemExit(2)
        if progress_seconds <= 0:
            self.stderr.write("--progress-seconds must be positive")
            raise SystemExit(2)
        missing = ann_indexes_missing(now=timezone.now(), recheck=recheck)
        for index in missing:
            what = f"{index.name} on {index.partition} ({index.model}, {index.dimensions}-d)"
            if dry_run:
                self.stdout.write(f"would build {what}")
                continue
            self.stdout.write(f"building {what}; memory bound: maintenance_work_mem {maintenance_work_mem}")
            built = ann_index_build(
                index,
                m=m,
                ef_construction=ef_construction,
                maintenance_work_mem=maintenance_work_mem,
                on_progress=self._progress_write,
                progress_seconds=progress_seconds,
            )
            spill = (
                f"; the graph outgrew maintenance_work_mem after {built.graph_spilled_after:,} vectors"
                if built.graph_spilled_after is not None
                else ""
            )
            self.stdout.write(f"built {what} in {built.seconds:.1f} s{spill}")
        if dry_run:
            self.stdout.write(f"{len(missing)} index(es) to build.")
        else:
            self.stdout.write(self.style.SUCCESS(f"{len(missing)} index(es) built; every closed month is indexed."))

    def _progress_write(self, progress: BuildProgress) -> None:
        counts = ""
        if progress.tuples_total:
            share = 100 * progress.tuples_done / progress.tuples_total
            counts = f", vectors {progress.tuples_done:,} of {progress.tuples_total:,} ({share:.0f} %)"
        elif progress.blocks_total:
            share = 100 * progress.blocks_done / progress.blocks_total
            counts = f", blocks {progress.blocks_done:,} of {progress.blocks_total:,} ({share:.0f} %)"
        spill = "; graph on disk (over maintenance_work_mem)" if progress.graph_spilled_after is not None else ""
        self.stdout.write(f"  {progress.seconds:.0f} s: {progress.phase}{counts}{spill}")
