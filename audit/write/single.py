"""The write path of one audit record: its text, its embedding, its one statement.

    validated body ─► semantic text ─► embedding (outside any transaction: it may take 100 ms)
                   ─► one statement: audit row + embedding row (or backlog row), with the
                      idempotency key claim in its transaction (audit/write/commit.py)

If every embedding provider fails the record is still stored, as pending: `embeddings_backfill`
embeds it later.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django.utils import timezone

from audit.models import AuditKind
from audit.write.commit import AuditWrite, PreparedWrite, audit_write_commit
from audit.write.statements import RecordRow, record_content_sha256, record_insert_statement
from audit.write.texts import audit_text
from embeddings.providers.base import Embedding, EmbeddingProviderError
from embeddings.services import embedding_for_text, text_sha256

logger = logging.getLogger(__name__)


def audit_record_create(
    *,
    kind: AuditKind,
    data: Mapping[str, Any],
    payload: Mapping[str, Any],
    actor: str,
    request_id: str,
    idempotency_key: str | None = None,
) -> AuditWrite:
    """Validate-free core of every audit POST.

    `data` is the serializer's validated_data (snake_case, typed); `payload` the request body
    as received (camelCase), stored verbatim and hashed for idempotency.
    """

    def prepare() -> PreparedWrite:
        text = audit_text(kind=kind, data=data)
        embedding: Embedding | None
        try:
            embedding = embedding_for_text(text=text)
            deferral_reason = ""
        except EmbeddingProviderError as exc:
            # Never lose an audit: store it now, embed it later (`embeddings_backfill`).
            logger.warning("embedding deferred for a %s audit: %s", kind, exc)
            embedding, deferral_reason = None, str(exc) or type(exc).__name__
        recorded_at = timezone.now()
        row = RecordRow(
            index=0,
            data=data,
            payload=payload,
            embedding=embedding,
            input_sha256=text_sha256(text),
            content_sha256=record_content_sha256(payload=payload, recorded_at=recorded_at, actor=actor),
        )
        statement = record_insert_statement(
            kind=kind,
            row=row,
            actor=actor,
            request_id=request_id,
            recorded_at=recorded_at,
            deferral_reason=deferral_reason,
        )
        return PreparedWrite(
            statements=[statement],
            recorded_at=recorded_at,
            correlation_ids=[data["correlation_id"]],
            answer=lambda results: results[0],
            deferred=0 if embedding is not None else 1,
        )

    return audit_write_commit(
        scope=kind.value,
        actor=actor,
        idempotency_key=idempotency_key,
        payload=payload,
        prepare=prepare,
    )
