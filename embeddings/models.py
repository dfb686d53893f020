"""Embedding storage: one pgvector row per embedded audit record, plus the deferral backlog.

The rows name their audit record by (`audit_type`, `audit_id`, `audit_recorded_at`) only: what
the kinds are and what a record's text is belong to the `audit` app, which depends on this one
and never the other way round.
"""

from __future__ import annotations

from django.db import models
from pgvector.django import VectorField


class IncidentEmbedding(models.Model):
    """The vector of one audit record's semantic text.

    Partitioned by month on `audit_recorded_at` exactly like the audit tables, so retention
    drops an audit month and its embeddings together. The `embedding` column has no fixed
    dimension: each vector is stored at its model's native size, named in `model` and
    `dimensions`, and vectors of different models are never compared. The ANN indexes are
    per-model expression indexes.
    """

    id = models.BigAutoField(primary_key=True)
    audit_type = models.CharField(max_length=16)
    audit_id = models.BigIntegerField()
    audit_recorded_at = models.DateTimeField(help_text="The audit row's recorded_at; the partition key.")
    remediation_request_id = models.CharField(max_length=253, blank=True, default="")
    namespace = models.CharField(max_length=63)
    target_type = models.CharField(max_length=32, blank=True, default="")
    target_name = models.CharField(max_length=253, blank=True, default="")
    signal_type = models.CharField(max_length=32, blank=True, default="")
    root_cause = models.TextField(blank=True, default="")
    model = models.CharField(max_length=128)
    dimensions = models.PositiveIntegerField()
    input_sha256 = models.CharField(max_length=64, help_text="SHA-256 of the embedded text.")
    embedding = VectorField()
    recorded_at = models.DateTimeField(help_text="When this vector was stored.")

    class Meta:
        db_table = "incident_embeddings"
        constraints = [
            # Includes the partition key, as PostgreSQL requires of unique constraints on
            # partitioned tables; one vector per audit row and model.
            models.UniqueConstraint(
                fields=["audit_type", "audit_id", "audit_recorded_at", "model"],
                name="incident_embeddings_audit_model_uniq",
            ),
        ]
        # The admin's list (newest first) and its filters, as for the audit tables: a
        # (column, audit_recorded_at) index reads exactly one page whatever the value's rarity.
        indexes = [
            models.Index(fields=["audit_recorded_at"], name="incident_emb_recorded_idx"),
            models.Index(fields=["audit_type", "audit_recorded_at"], name="incident_emb_type_rec_idx"),
            models.Index(fields=["model", "audit_recorded_at"], name="incident_emb_model_rec_idx"),
            # Sealing reads a window of when vectors were stored (docs/INTEGRITY.md), which the
            # partitioning (by the audit row's time) cannot narrow down.
            models.Index(fields=["recorded_at"], name="incident_emb_stored_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.audit_type} #{self.audit_id} ({self.model})"


class EmbeddingBacklog(models.Model):
    """An audit row written without its embedding because every provider failed.

    Inserted in the audit row's own transaction (so no deferred audit is ever forgotten) and
    deleted by `embeddings_backfill` in the transaction that stores the embedding.
    """

    id = models.BigAutoField(primary_key=True)
    audit_type = models.CharField(max_length=16)
    audit_id = models.BigIntegerField()
    audit_recorded_at = models.DateTimeField()
    reason = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        db_table = "embedding_backlog"
        constraints = [
            models.UniqueConstraint(fields=["audit_type", "audit_id"], name="embedding_backlog_audit_uniq"),
        ]

    def __str__(self) -> str:
        return f"pending {self.audit_type} #{self.audit_id}"
