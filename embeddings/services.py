"""Embedding services: turn a text into a vector, and store a record's vector."""

from __future__ import annotations

import datetime as dt
import hashlib

from embeddings.models import EmbeddingBacklog, IncidentEmbedding
from embeddings.providers.base import Embedding
from embeddings.providers.local import get_local_provider


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def embedding_for_text(*, text: str) -> Embedding:
    """The vector for `text`. Raises EmbeddingProviderError when no provider can make one."""
    provider = get_local_provider()
    [vector] = provider.embed([text])
    return Embedding(vector=vector, model=provider.model)


def incident_embedding_create(
    *,
    audit_type: str,
    audit_id: int,
    audit_recorded_at: dt.datetime,
    seed: dict[str, str],
    embedding: Embedding,
    input_sha256: str,
    recorded_at: dt.datetime,
) -> IncidentEmbedding:
    """Store one audit record's vector. Call inside the audit row's transaction."""
    return IncidentEmbedding.objects.create(
        audit_type=audit_type,
        audit_id=audit_id,
        audit_recorded_at=audit_recorded_at,
        model=embedding.model,
        dimensions=embedding.dimensions,
        input_sha256=input_sha256,
        embedding=embedding.vector,
        recorded_at=recorded_at,
        **seed,
    )


def embedding_backlog_add(
    *, audit_type: str, audit_id: int, audit_recorded_at: dt.datetime, reason: str, created_at: dt.datetime
) -> EmbeddingBacklog:
    """Remember an audit row whose embedding was deferred. Call inside its transaction."""
    return EmbeddingBacklog.objects.create(
        audit_type=audit_type,
        audit_id=audit_id,
        audit_recorded_at=audit_recorded_at,
        reason=reason[:1000],
        created_at=created_at,
    )
