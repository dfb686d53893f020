"""Embedding the rows the write path could not embed, and re-embedding a fallback's rows.

Both work in batches of audit rows, oldest first, each batch one provider call and one
transaction. A batch commits its embeddings together with the removal of its backlog rows, so
a crash or a failing provider loses nothing: the next run starts where this one stopped.
Audit rows are only read (the tables are append-only); the text is rebuilt from the stored
payload with the current builders, or for an audit event from the event (`event_text`).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from audit.models import AUDIT_MODELS, EVENT_AUDIT_TYPE, AuditEvent, AuditKind, AuditRecord
from audit.write.events import event_embedding_seed, event_text
from audit.write.statements import audit_embedding_seed
from audit.write.texts import audit_text, payload_as_data
from embeddings.chain import ProviderChain
from embeddings.models import EmbeddingBacklog, IncidentEmbedding
from embeddings.services import embedding_backfill_chain, embedding_primary_chain, text_sha256

Progress = Callable[[int], None]


@dataclass
class BackfillOutcome:
    """What a run did: rows embedded per model, and rows skipped because their audit row is gone."""

    embedded: Counter[str] = field(default_factory=Counter)
    #: (audit_type, audit_id) of rows whose audit row no longer exists (its partition was dropped)
    orphans: list[tuple[str, int]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.embedded.values())


class _AuditRef(Protocol):
    id: int
    audit_type: str
    audit_id: int
    audit_recorded_at: dt.datetime


def embedding_backlog_count() -> int:
    return EmbeddingBacklog.objects.count()


def embedding_backlog_backfill(
    *, batch_size: int, limit: int | None = None, progress: Progress | None = None
) -> BackfillOutcome:
    """Embed pending audit rows with the provider chain (primary, then fallback).

    Raises EmbeddingProviderError when the chain fails; the batches before it are committed.
    """
    chain = embedding_backfill_chain()
    outcome = BackfillOutcome()
    pending = EmbeddingBacklog.objects.order_by("id")
    for batch in _batches(pending, batch_size=batch_size, limit=limit):
        records = _audit_records(batch, outcome)
        model, vectors = _embed(chain, [records[row.id] for row in batch if row.id in records])
        with transaction.atomic():
            # Rows another backfill holds or already did are left to it: no double insert.
            mine = set(
                EmbeddingBacklog.objects.select_for_update(skip_locked=True)
                .filter(id__in=[row.id for row in batch])
                .values_list("id", flat=True)
            )
            todo = [row for row in batch if row.id in mine and row.id in records]
            _embeddings_insert(todo, records, model, vectors)
            EmbeddingBacklog.objects.filter(id__in=[row.id for row in todo]).delete()
        outcome.embedded[model] += len(todo)
        if progress is not None:
            progress(len(batch))
    return outcome


def embeddings_reembed_pending(*, model: str, target_model: str) -> QuerySet[IncidentEmbedding]:
    """Rows made by `model` whose audit row has no `target_model` vector yet."""
    done = IncidentEmbedding.objects.filter(
        audit_type=OuterRef("audit_type"),
        audit_id=OuterRef("audit_id"),
        audit_recorded_at=OuterRef("audit_recorded_at"),
        model=target_model,
    )
    return IncidentEmbedding.objects.filter(model=model).exclude(Exists(done)).order_by("id")


def embeddings_reembed(
    *, model: str, batch_size: int, limit: int | None = None, progress: Progress | None = None
) -> BackfillOutcome:
    """Add a primary-model vector to every audit row whose vector `model` made.

    The old rows stay (see the `embeddings_backfill` command for why). Resumable without a
    backlog: a row counts as done once its primary vector exists. Uses the primary alone and
    raises EmbeddingProviderError when it fails.
    """
    chain = embedding_primary_chain()
    if model == chain.primary.model:
        raise ValueError(f"{model} is the primary's model: its rows cannot be re-embedded with it")
    outcome = BackfillOutcome()
    rows = embeddings_reembed_pending(model=model, target_model=chain.primary.model)
    for batch in _batches(rows, batch_size=batch_size, limit=limit):
        records = _audit_records(batch, outcome)
        made_by, vectors = _embed(chain, [records[row.id] for row in batch if row.id in records])
        todo = [row for row in batch if row.id in records]
        with transaction.atomic():
            # ignore_conflicts: a concurrent run may have added the same vector meanwhile.
            _embeddings_insert(todo, records, made_by, vectors, ignore_conflicts=True)
        outcome.embedded[made_by] += len(todo)
        if progress is not None:
            progress(len(batch))
    return outcome


def _batches(rows: QuerySet[Any], *, batch_size: int, limit: int | None) -> Iterable[list[Any]]:
    """Keyset pages by id, so skipped rows (orphans) are passed over rather than re-read."""
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    last_id, remaining = 0, limit
    while remaining is None or remaining > 0:
        size = batch_size if remaining is None else min(batch_size, remaining)
        batch = list(rows.filter(id__gt=last_id)[:size])
        if not batch:
            return
        yield batch
        last_id = batch[-1].id
        if remaining is not None:
            remaining -= len(batch)


@dataclass(frozen=True, slots=True)
class _Source:
    record: AuditRecord | AuditEvent
    text: str
    #: The denormalised columns of its embedding row.
    seed: dict[str, str]


def _audit_records(batch: Sequence[_AuditRef], outcome: BackfillOutcome) -> dict[int, _Source]:
    """The audit row behind each batch row (keyed by the batch row's id), with its text."""
    found: dict[int, _Source] = {}
    for kind in AuditKind:
        refs = [row for row in batch if row.audit_type == kind]
        if not refs:
            continue
        # recorded_at lets PostgreSQL prune to the partitions that hold these rows.
        records = AUDIT_MODELS[kind]._default_manager.filter(
            id__in=[row.audit_id for row in refs],
            recorded_at__in={row.audit_recorded_at for row in refs},
        )
        by_key = {(record.id, record.recorded_at): record for record in records}
        for row in refs:
            record = by_key.get((row.audit_id, row.audit_recorded_at))
            if record is None:
                outcome.orphans.append((row.audit_type, row.audit_id))
                continue
            data = payload_as_data(record.payload)
            found[row.id] = _Source(
                record=record, text=audit_text(kind=kind, data=data), seed=audit_embedding_seed(kind=kind, data=data)
            )
    refs = [row for row in batch if row.audit_type == EVENT_AUDIT_TYPE]
    if refs:
        events = AuditEvent.objects.filter(
            id__in=[row.audit_id for row in refs], recorded_at__in={row.audit_recorded_at for row in refs}
        )
        events_by_key = {(event.id, event.recorded_at): event for event in events}
        for row in refs:
            event = events_by_key.get((row.audit_id, row.audit_recorded_at))
            if event is None:
                outcome.orphans.append((row.audit_type, row.audit_id))
                continue
            found[row.id] = _Source(record=event, text=event_text(event), seed=event_embedding_seed(event))
    return found


def _embed(chain: ProviderChain, sources: list[_Source]) -> tuple[str, dict[str, Any]]:
    """One provider call for the batch's distinct texts: similar incidents share a text."""
    texts = sorted({source.text for source in sources})
    if not texts:
        return chain.primary.model, {}
    result = chain.embed(texts)
    return result.model, dict(zip(texts, result.vectors, strict=True))


def _embeddings_insert(
    rows: Sequence[_AuditRef],
    sources: dict[int, _Source],
    model: str,
    vectors: dict[str, Any],
    *,
    ignore_conflicts: bool = False,
) -> None:
    now = timezone.now()
    objects = []
    for row in rows:
        source = sources[row.id]
        vector = vectors[source.text]
        objects.append(
            IncidentEmbedding(
                audit_type=row.audit_type,
                audit_id=row.audit_id,
                audit_recorded_at=row.audit_recorded_at,
                model=model,
                dimensions=int(vector.shape[0]),
                input_sha256=text_sha256(source.text),
                embedding=vector,
                recorded_at=now,
                **source.seed,
            )
        )
    IncidentEmbedding.objects.bulk_create(objects, ignore_conflicts=ignore_conflicts)
