"""Write the evidence bundle of one correlation id: a file a third party checks offline."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.integrity.evidence import EvidenceError, evidence_bundle
from kubernaut_integrity.evidence import evidence_dumps
from kubernaut_integrity.files import atomic_write


def _moment(text: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


class Command(BaseCommand):
    help = (
        "Write one JSON file proving the records of a correlation id (within [--from, --to), default all): "
        "each record's canonical line with its inclusion proof in its window's sealed table tree, the signed "
        "seals with their inclusion proofs in the seal log, the log's checkpoints with consistency proofs to "
        "the latest, their RFC 3161 time anchors and witness cosignatures. Records no checkpoint covers yet "
        "are listed as unsealed. Check it anywhere with: python -m kubernaut_integrity evidence FILE "
        "--public-key SEAL_PEM --log-key VKEY [--tsa-root PEM]. Read-only; exit status 1 when rows no "
        "longer hash to what their seal signed (the file is written, and its check fails)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--correlation-id", required=True, metavar="ID")
        parser.add_argument("--from", dest="time_from", type=_moment, default=None, metavar="T", help="ISO 8601")
        parser.add_argument("--to", dest="time_to", type=_moment, default=None, metavar="T", help="ISO 8601")
        parser.add_argument("--out", type=Path, required=True, metavar="FILE", help="the bundle to write")
        parser.add_argument(
            "--consistent-from",
            type=int,
            action="append",
            default=[],
            metavar="SIZE",
            help="also prove the latest checkpoint extends the log's tree of SIZE seals (the size of a checkpoint "
            "an auditor kept); repeatable",
        )

    def handle(
        self,
        *args: Any,
        correlation_id: str,
        time_from: dt.datetime | None,
        time_to: dt.datetime | None,
        out: Path,
        consistent_from: list[int],
        **options: Any,
    ) -> None:
        try:
            evidence = evidence_bundle(
                correlation_id=correlation_id, time_from=time_from, time_to=time_to, consistent_from=consistent_from
            )
        except EvidenceError as exc:
            raise CommandError(str(exc)) from exc
        data = evidence_dumps(evidence.bundle)
        atomic_write(out, data)
        bundle = evidence.bundle
        self.stdout.write(
            f"{out}: {evidence.records} record(s) with proofs, {evidence.unsealed} not sealed yet,"
            f" {len(bundle['seals'])} seal(s), {len(bundle['checkpoints'])} checkpoint(s),"
            f" {len(bundle['anchors'])} anchor(s), {len(data):,} bytes"
        )
        for problem in evidence.problems:
            self.stderr.write(problem)
        if evidence.problems:
            raise CommandError(f"{len(evidence.problems)} table part(s) no longer match their seals")
