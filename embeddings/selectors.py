"""Reads over stored embeddings: a record's own vector, and its nearest neighbours.

Vectors are compared only within one model. The nearest-neighbour query is shaped
for the per-model ANN index of each closed month (embeddings/ann_indexes.py),

    CREATE INDEX ... USING hnsw ((embedding::halfvec(384)) halfvec_cosine_ops)
        WHERE model = 'all-MiniLM-L6-v2' AND dimensions = 384

so that PostgreSQL can answer it from that index wherever one exists: it orders by
`embedding::halfvec(N) <=> <constant>` (the indexed expression, the index's operator) with
`model = '<literal>'` in the WHERE clause (which implies the partial index's predicate; Django
binds parameters client-side, so the planner sees the literal). Without such an index it is an
exact scan of that model's vectors. docs/ADMIN.md shows both plans.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models.functions import Cast
from pgvector.django import CosineDistance, HalfVectorField

from embeddings.models import IncidentEmbedding

#: Neighbours shown on a record's page.
SIMILAR_LIMIT = 10


@dataclass(frozen=True, slots=True)
class SimilarIncident:
    """One neighbour: the stored embedding row (without its vector) and its cosine distance."""

    embedding: IncidentEmbedding
    distance: float


def record_embedding(*, audit_type: str, audit_id: int, audit_recorded_at: dt.datetime) -> IncidentEmbedding | None:
    """The newest stored vector of one audit record, or None (deferred, not yet backfilled).

    The partition key narrows the lookup to one partition; the unique constraint's index
    (audit_type, audit_id, audit_recorded_at, model) answers it.
    """
    return (
        IncidentEmbedding.objects.filter(audit_type=audit_type, audit_id=audit_id, audit_recorded_at=audit_recorded_at)
        .order_by("-recorded_at")
        .first()
    )


def similar_incidents(*, embedding: IncidentEmbedding, limit: int = SIMILAR_LIMIT) -> list[SimilarIncident]:
    """The `limit` stored vectors of the same model nearest to `embedding`, nearest first.

    The record itself is left out. One query.
    """
    # The typmod must be a constant in the SQL text for the expression index to match; it
    # comes from our own row, an int, never from the request.
    # Distances in half precision, as the index computes them, in the hot month too: they
    # differ from full precision in the fourth decimal at most, so the order barely can.
    typed = HalfVectorField(dimensions=int(embedding.dimensions))
    distance = CosineDistance(Cast("embedding", typed), embedding.embedding)
    neighbours = (
        IncidentEmbedding.objects.filter(model=embedding.model, dimensions=embedding.dimensions)
        .exclude(audit_type=embedding.audit_type, audit_id=embedding.audit_id)
        .defer("embedding")
        .annotate(distance=distance)
        .order_by("distance")[:limit]
    )
    return [SimilarIncident(embedding=row, distance=float(row.distance)) for row in neighbours]
