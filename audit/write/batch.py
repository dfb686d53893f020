"""The batch write path: many audit records of any kinds, all or nothing, in one transaction.

    validated records ─► their texts ─► embeddings: one cache round trip, misses in as few
                         provider calls as the primary's batch limit allows
                      ─► one transaction: per kind present, one statement inserting every row of
                         that kind with its embedding (or backlog) row; then the idempotency key
                         (audit/write/commit.py)

A batch takes no lock another batch could hold: its rows are new ids, and the only shared row
is the Idempotency-Key, claimed last with ON CONFLICT DO NOTHING (a transaction that waits for
it holds nothing the other needs).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from audit.models import BATCH_SCOPE, AuditKind
from audit.write.commit import AuditWrite, PreparedWrite, audit_write_commit
from audit.write.statements import RecordRow, record_content_sha256, records_insert_statement
from audit.write.texts import audit_text
from embeddings.services import embeddings_for_texts, text_sha256

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BatchRecord:
    """One record of a batch: its kind, its validated data and its body as received."""

    kind: AuditKind
    data: Mapping[str, Any]
    payload: Mapping[str, Any]


def audit_batch_create(
    *,
    records: Sequence[BatchRecord],
    payload: Mapping[str, Any],
    actor: str,
    request_id: str,
    idempotency_key: str | None = None,
) -> AuditWrite:
    """Store every record or none; the body is `{"results": [...]}`, one single-write 201
    body per record, in the order of `records`.

    `payload` is the whole batch body as received, hashed for the Idempotency-Key.
    """

    def prepare() -> PreparedWrite:
        texts = [audit_text(kind=record.kind, data=record.data) for record in records]
        embedded = embeddings_for_texts(texts=texts)
        if embedded.deferral_reason:
            # Never lose an audit: store them now, embed them later (`embeddings_backfill`).
            logger.warning("embedding deferred for records of a batch: %s", embedded.deferral_reason)
        recorded_at = timezone.now()
        statements = [
            records_insert_statement(
                kind=kind,
                rows=[
                    RecordRow(
                        index=index,
                        data=records[index].data,
                        payload=records[index].payload,
                        embedding=embedded.embeddings[index],
                        input_sha256=text_sha256(texts[index]),
                        content_sha256=record_content_sha256(
                            payload=records[index].payload, recorded_at=recorded_at, actor=actor
                        ),
                    )
                    for index in indexes
                ],
                actor=actor,
                request_id=request_id,
                recorded_at=recorded_at,
                deferral_reason=embedded.deferral_reason,
            )
            for kind, indexes in _indexes_by_kind(records).items()
        ]
        return PreparedWrite(
            statements=statements,
            recorded_at=recorded_at,
            correlation_ids=[record.data["correlation_id"] for record in records],
            answer=lambda results: {"results": results},
            deferred=sum(1 for embedding in embedded.embeddings if embedding is None),
        )

    return audit_write_commit(
        scope=BATCH_SCOPE,
        actor=actor,
        idempotency_key=idempotency_key,
        payload=payload,
        prepare=prepare,
    )


def _indexes_by_kind(records: Sequence[BatchRecord]) -> dict[AuditKind, list[int]]:
    """Positions of each kind's records, kinds in a fixed order."""
    by_kind: dict[AuditKind, list[int]] = {kind: [] for kind in AuditKind}
    for index, record in enumerate(records):
        by_kind[record.kind].append(index)
    return {kind: indexes for kind, indexes in by_kind.items() if indexes}
