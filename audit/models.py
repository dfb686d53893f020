"""The four audit tables.

Each is range-partitioned by month on `recorded_at` (the server's receive time) and keyed by
`(id, recorded_at)` in the database; Django sees `id` alone as the key because the admin
refuses composite keys. Rows are append-only: triggers reject UPDATE and DELETE (migration
0002), and retention removes whole partitions. The full validated request body is kept in
`payload`; the columns beside it are the ones auditors filter and search on.
"""

from __future__ import annotations

from django.db import models

from audit import limits
from audit.choices import AuditKind, Phase
from audit.event_ids import event_id_new
from audit.event_types import (
    ACTOR_IP_LENGTH,
    CORRELATION_ID_LENGTH,
    EVENT_ACTION_LENGTH,
    EVENT_CATEGORY_LENGTH,
    EVENT_TYPE_LENGTH,
    VERSION_LENGTH,
    EventCategory,
    EventOutcome,
)


class AuditRecord(models.Model):
    """Columns common to every audit type."""

    id = models.BigAutoField(primary_key=True)
    recorded_at = models.DateTimeField(help_text="Server receive time; the partition key.")
    name = models.CharField(max_length=limits.K8S_NAME_LENGTH)
    namespace = models.CharField(max_length=limits.K8S_NAMESPACE_LENGTH)
    phase = models.CharField(max_length=16, choices=Phase.choices)
    message = models.TextField(blank=True, default="")
    created_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    correlation_id = models.CharField(max_length=limits.CORRELATION_ID_LENGTH)
    labels = models.JSONField(default=dict, blank=True)
    actor = models.CharField(max_length=255, help_text="The authenticated caller that wrote the record.")
    request_id = models.CharField(max_length=128)
    # A write-time fingerprint of the request as received, not the row hash the seals are built
    # from (that covers every column and the id, which the write does not know before it
    # inserts; docs/INTEGRITY.md).
    content_sha256 = models.CharField(
        max_length=64, help_text="SHA-256 of the canonical payload, recorded_at and actor."
    )
    payload = models.JSONField(help_text="The validated request body, camelCase, as received.")

    kind: AuditKind

    class Meta:
        abstract = True
        ordering = ["-recorded_at"]
        # On the partitioned parent, so every monthly partition gets them.
        indexes = [
            models.Index(fields=["recorded_at"], name="%(class)s_recorded_idx"),
            models.Index(fields=["correlation_id"], name="%(class)s_corr_idx"),
            models.Index(fields=["namespace", "name"], name="%(class)s_ns_name_idx"),
            # The admin (docs/ADMIN.md): every list filter is `<column> = value ORDER BY
            # recorded_at DESC LIMIT n`, which a (column, recorded_at) index answers by reading
            # exactly n entries, however rare the value. The name index serves the prefix search
            # (`name LIKE 'x%'`), which a plain btree cannot under a non-C collation.
            models.Index(fields=["phase", "recorded_at"], name="%(class)s_phase_rec_idx"),
            models.Index(fields=["namespace", "recorded_at"], name="%(class)s_ns_rec_idx"),
            models.Index(fields=["name"], name="%(class)s_name_like_idx", opclasses=["varchar_pattern_ops"]),
        ]

    def __str__(self) -> str:
        return f"{self.kind.label} {self.namespace}/{self.name} ({self.phase})"


class RemediationAudit(AuditRecord):
    """A remediation request opened by the Remediation Processor / Gateway."""

    kind = AuditKind.REMEDIATION
    signal_type = models.CharField(max_length=32)
    signal_name = models.CharField(max_length=limits.NAME_TEXT_LENGTH)
    signal_namespace = models.CharField(max_length=limits.K8S_NAMESPACE_LENGTH)
    target_type = models.CharField(max_length=32)
    target_name = models.CharField(max_length=limits.K8S_NAME_LENGTH)
    target_namespace = models.CharField(max_length=limits.K8S_NAMESPACE_LENGTH)
    environment = models.CharField(max_length=16, blank=True, default="")
    priority = models.CharField(max_length=2, blank=True, default="")
    fingerprint = models.CharField(max_length=limits.FINGERPRINT_LENGTH, blank=True, default="")

    class Meta(AuditRecord.Meta):
        db_table = "audit_remediation"
        verbose_name = "remediation audit"
        indexes = [
            *AuditRecord.Meta.indexes,
            models.Index(fields=["signal_type", "recorded_at"], name="audit_rem_signal_rec_idx"),
            models.Index(fields=["target_type", "recorded_at"], name="audit_rem_target_rec_idx"),
            models.Index(fields=["environment", "recorded_at"], name="audit_rem_env_rec_idx"),
            models.Index(fields=["priority", "recorded_at"], name="audit_rem_prio_rec_idx"),
        ]


class AIAnalysisAudit(AuditRecord):
    """An AI analysis of a remediation request (AI Analysis controller)."""

    kind = AuditKind.AI_ANALYSIS
    remediation_request_ref = models.CharField(max_length=limits.K8S_NAME_LENGTH)
    signal_type = models.CharField(max_length=32, blank=True, default="")
    llm_provider = models.CharField(max_length=limits.PROVIDER_ID_LENGTH, blank=True, default="")
    llm_model = models.CharField(max_length=limits.NAME_TEXT_LENGTH, blank=True, default="")
    root_cause = models.TextField(blank=True, default="")
    confidence = models.FloatField(null=True, blank=True)
    recommended_action = models.CharField(max_length=limits.NAME_TEXT_LENGTH, blank=True, default="")
    requires_approval = models.BooleanField(null=True, blank=True)

    class Meta(AuditRecord.Meta):
        db_table = "audit_aianalysis"
        verbose_name = "AI analysis audit"
        indexes = [
            *AuditRecord.Meta.indexes,
            models.Index(fields=["signal_type", "recorded_at"], name="audit_ai_signal_rec_idx"),
            models.Index(fields=["requires_approval", "recorded_at"], name="audit_ai_approval_rec_idx"),
        ]


class WorkflowAudit(AuditRecord):
    """A workflow execution (Workflow Execution controller)."""

    kind = AuditKind.WORKFLOW
    remediation_request_ref = models.CharField(max_length=limits.K8S_NAME_LENGTH)
    ai_analysis_ref = models.CharField(max_length=limits.K8S_NAME_LENGTH, blank=True, default="")
    workflow_name = models.CharField(max_length=limits.NAME_TEXT_LENGTH)
    step_count = models.PositiveIntegerField(null=True, blank=True)
    completed_count = models.PositiveIntegerField(null=True, blank=True)
    failed_count = models.PositiveIntegerField(null=True, blank=True)

    class Meta(AuditRecord.Meta):
        db_table = "audit_workflow"
        verbose_name = "workflow audit"


class ExecutionAudit(AuditRecord):
    """One Kubernetes action run by the Kubernetes Executor."""

    kind = AuditKind.EXECUTION
    workflow_execution_ref = models.CharField(max_length=limits.K8S_NAME_LENGTH)
    step_name = models.CharField(max_length=limits.NAME_TEXT_LENGTH, blank=True, default="")
    action_type = models.CharField(max_length=limits.ACTION_TYPE_LENGTH)
    target_type = models.CharField(max_length=32, blank=True, default="")
    target_name = models.CharField(max_length=limits.K8S_NAME_LENGTH, blank=True, default="")
    target_namespace = models.CharField(max_length=limits.K8S_NAMESPACE_LENGTH, blank=True, default="")
    action_result = models.TextField(blank=True, default="")
    is_rolled_back = models.BooleanField(null=True, blank=True)

    class Meta(AuditRecord.Meta):
        db_table = "audit_execution"
        verbose_name = "execution audit"
        indexes = [
            *AuditRecord.Meta.indexes,
            models.Index(fields=["target_type", "recorded_at"], name="audit_exe_target_rec_idx"),
            models.Index(fields=["is_rolled_back", "recorded_at"], name="audit_exe_rollback_rec_idx"),
        ]


AUDIT_MODELS: dict[AuditKind, type[AuditRecord]] = {
    AuditKind.REMEDIATION: RemediationAudit,
    AuditKind.AI_ANALYSIS: AIAnalysisAudit,
    AuditKind.WORKFLOW: WorkflowAudit,
    AuditKind.EXECUTION: ExecutionAudit,
}


#: The Idempotency-Key scope of batches. Each single-record endpoint's scope is its kind: a key
#: used for a single record and for a batch names two different requests.
BATCH_SCOPE = "batch"
#: The scopes of the audit-event endpoints' keys (docs/UPSTREAM.md).
EVENTS_SCOPE = "events"
EVENTS_BATCH_SCOPE = "events-batch"
#: The `audit_type` of an audit event's embedding and backlog rows (beside the record kinds).
EVENT_AUDIT_TYPE = "event"
#: The scope of the keys the service makes itself from an audit-event body without an
#: Idempotency-Key: a byte-identical re-post is a retry (audit/write/events.py).
EVENTS_BODY_SCOPE = "events-body"


class IdempotencyKey(models.Model):
    """A claimed Idempotency-Key, scoped to caller + endpoint.

    Claimed in the same transaction as the audit row(s) it produced, so a key exists exactly
    when its rows do; replayed only when its `answer_hmac` verifies. Kept at least 24 h;
    `idempotency_keys_prune` removes older ones.
    """

    id = models.BigAutoField(primary_key=True)
    actor = models.CharField(max_length=255)
    # The column keeps its first name: renaming it would rewrite nothing but cost a lock.
    scope = models.CharField(
        max_length=16,
        db_column="kind",
        choices=[
            *AuditKind.choices,
            (BATCH_SCOPE, "Batch"),
            (EVENTS_SCOPE, "Audit event"),
            (EVENTS_BATCH_SCOPE, "Audit event batch"),
            (EVENTS_BODY_SCOPE, "Audit event body"),
        ],
        help_text="The endpoint the key was sent to (a record kind, batch, events, events-batch) or events-body.",
    )
    key = models.CharField(max_length=limits.IDEMPOTENCY_KEY_LENGTH)
    request_sha256 = models.CharField(max_length=64)
    response_body = models.JSONField()
    # The database role that claims keys cannot compute it (audit/write/idempotency.py). A
    # database default, so a pod of the previous version still claims keys during a rollout.
    answer_hmac = models.CharField(
        max_length=64,
        db_default="",
        help_text="HMAC-SHA256 under the service's secret key of scope, actor, key, request hash and answer.",
    )
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        db_table = "audit_idempotency_keys"
        constraints = [
            models.UniqueConstraint(fields=["actor", "scope", "key"], name="audit_idempotency_key_scope_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.scope}:{self.key}"


class AuditSeal(models.Model):
    """One sealed window of `recorded_at` (docs/INTEGRITY.md): the Ed25519-signed seal body and
    the columns the database and the admin look it up by.

    `body` is the exact signed text; the other columns repeat what it says, for indexes only:
    verification trusts the body and its signature, never them. Append-only like the audit
    tables; a copy of every seal is also written to AUDIT_SEAL_DIR, outside the database.
    """

    sequence = models.BigIntegerField(primary_key=True)
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    row_count = models.BigIntegerField(help_text="Rows of every sealed table in the window.")
    root = models.CharField(max_length=64, help_text="Merkle root of the window (hex).")
    key_id = models.CharField(max_length=80, help_text="The signing key: SHA-256 of the Ed25519 public key.")
    sealed_at = models.DateTimeField()
    body = models.TextField(help_text="The signed seal, canonical JSON.")
    signature = models.BinaryField(help_text="Ed25519 signature over the body.")
    # The seal log (audit/integrity/seal_log.py): seal n is leaf n - 1 of one RFC 6962 tree over
    # every seal body, and its row keeps the hashes of the complete subtrees its leaf completes.
    log_hashes = models.BinaryField(
        help_text="The seal log's subtree hashes this seal completes: 32 bytes each, its leaf hash first."
    )

    class Meta:
        db_table = "audit_seals"
        ordering = ["-sequence"]
        indexes = [models.Index(fields=["window_start"], name="audit_seals_window_start_idx")]

    def __str__(self) -> str:
        return f"seal {self.sequence} [{self.window_start:%Y-%m-%d %H:%M:%S}, {self.window_end:%H:%M:%S})"


class AuditVerification(models.Model):
    """The outcome of one `audit_verify` run, for the metrics (the command runs in a Job)."""

    id = models.BigAutoField(primary_key=True)
    finished_at = models.DateTimeField(db_index=True)
    passed = models.BooleanField(help_text="Nothing found.")
    findings = models.IntegerField()
    rows = models.BigIntegerField()
    seals = models.IntegerField()
    incremental = models.BooleanField(
        default=False,
        db_default=False,  # so that a job still running the code before this column inserts its row
        help_text="An incremental run: the newly sealed windows and a share of the old ones.",
    )
    progress = models.JSONField(
        null=True,
        blank=True,
        help_text="Where incremental verification stands, for the next incremental run "
        "(audit/integrity/incremental.py): the last seal checked and the rotating sample's position.",
    )

    class Meta:
        db_table = "audit_verifications"

    def __str__(self) -> str:
        return f"verification at {self.finished_at:%Y-%m-%d %H:%M:%S}: {'passed' if self.passed else self.findings}"


class AuditEvent(models.Model):
    """An audit event in upstream Kubernaut's unified shape (docs/UPSTREAM.md).

    Range-partitioned by month on `recorded_at` (the server's receive time) and append-only
    like the typed tables: triggers refuse UPDATE and DELETE, rows in a sealed window and rows
    recorded too far from the database's clock (migration 0008). Columns are as wide as
    upstream's API document allows, not as upstream's own narrower columns; an optional field
    the caller left out is NULL, so "absent" and an empty string stay apart. `event_data` is
    the payload as received; top-level keys the document does not name are kept in
    `extra_fields`.
    """

    # The table's key is (id, recorded_at); `id` is also the insertion sequence: rows of one
    # batch, and of one second, keep the order they were written in.
    id = models.BigAutoField(primary_key=True, help_text="Insertion sequence.")
    event_id = models.UUIDField(default=event_id_new, help_text="The id the API answered with.")
    recorded_at = models.DateTimeField(help_text="Server receive time; the partition key.")

    version = models.CharField(max_length=VERSION_LENGTH)
    event_type = models.CharField(max_length=EVENT_TYPE_LENGTH)
    event_timestamp = models.DateTimeField(help_text="When the event happened, as the caller says.")
    event_category = models.CharField(max_length=EVENT_CATEGORY_LENGTH, choices=EventCategory.choices)
    event_action = models.CharField(max_length=EVENT_ACTION_LENGTH)
    event_outcome = models.CharField(max_length=16, choices=EventOutcome.choices)
    # Optional strings are NULL when the caller left them out, so that an absent value and an
    # empty string (which the document allows) stay apart; Django's usual '' would merge them.
    actor_type = models.TextField(null=True, blank=True)  # noqa: DJ001
    actor_id = models.TextField(null=True, blank=True, help_text="Who the caller says acted.")  # noqa: DJ001
    actor_ip = models.CharField(max_length=ACTOR_IP_LENGTH, null=True, blank=True)  # noqa: DJ001
    resource_type = models.TextField(null=True, blank=True)  # noqa: DJ001
    resource_id = models.TextField(null=True, blank=True)  # noqa: DJ001
    correlation_id = models.CharField(max_length=CORRELATION_ID_LENGTH)
    parent_event_id = models.UUIDField(null=True, blank=True)
    parent_event_date = models.DateTimeField(null=True, blank=True)
    namespace = models.TextField(null=True, blank=True)  # noqa: DJ001
    cluster_id = models.TextField(null=True, blank=True)  # noqa: DJ001
    severity = models.TextField(null=True, blank=True)  # noqa: DJ001
    duration_ms = models.BigIntegerField(null=True, blank=True)
    error_code = models.TextField(null=True, blank=True)  # noqa: DJ001
    error_message = models.TextField(null=True, blank=True)  # noqa: DJ001
    retention_days = models.BigIntegerField(null=True, blank=True)
    is_sensitive = models.BooleanField(null=True, blank=True)
    event_data = models.JSONField(help_text="The payload, as received.")
    extra_fields = models.JSONField(
        null=True, blank=True, help_text="Top-level keys the document does not name, as received."
    )

    actor = models.CharField(max_length=255, help_text="The authenticated caller that wrote the event.")
    request_id = models.CharField(max_length=128)
    content_sha256 = models.CharField(
        max_length=64, help_text="SHA-256 of the event as received, recorded_at and actor."
    )

    class Meta:
        db_table = "audit_events"
        verbose_name = "audit event"
        ordering = ["-recorded_at", "-id"]
        # On the partitioned parent, so every monthly partition gets them. The (column,
        # recorded_at) pairs answer the admin's `column = value ORDER BY recorded_at DESC LIMIT n`
        # by reading n entries (docs/ADMIN.md); event_id finds a parent event and an answered id.
        indexes = [
            models.Index(fields=["recorded_at"], name="audit_events_recorded_idx"),
            models.Index(fields=["event_id"], name="audit_events_event_id_idx"),
            models.Index(fields=["correlation_id", "recorded_at"], name="audit_events_corr_rec_idx"),
            models.Index(fields=["event_type", "recorded_at"], name="audit_events_type_rec_idx"),
            models.Index(fields=["event_category", "recorded_at"], name="audit_events_cat_rec_idx"),
            models.Index(fields=["event_outcome", "recorded_at"], name="audit_events_outcome_rec_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id}"


class AuditCheckpoint(models.Model):
    """A checkpoint of the seal log (C2SP tlog-checkpoint): the RFC 6962 root of the first
    `size` seals, signed as a note by the log key(s) (AUDIT_LOG_PRIVATE_KEY_FILE) in the sealing
    transaction, after its consistency with the previous checkpoint was checked (docs/INTEGRITY.md).

    `note` is the exact signed text, log signatures only; witnesses' cosignatures are rows of
    their own, appended to the note wherever it is served. `root` repeats the note's root for
    lookups. Append-only; each is also written to AUDIT_SEAL_DIR/checkpoints/.
    """

    size = models.BigIntegerField(primary_key=True, help_text="Seals in the tree: seals 1 to size.")
    root = models.BinaryField(help_text="RFC 6962 root hash of the tree.")
    note = models.TextField(help_text="The checkpoint as a signed note, log signatures only.")
    created_at = models.DateTimeField()

    class Meta:
        db_table = "audit_checkpoints"
        ordering = ["-size"]

    def __str__(self) -> str:
        return f"checkpoint {self.size}"


class AuditCheckpointCosignature(models.Model):
    """A witness's cosignature (C2SP tlog-cosignature) of a checkpoint: the witness saw this tree,
    consistent with every tree of this log it saw before. Append-only."""

    id = models.BigAutoField(primary_key=True)
    checkpoint = models.ForeignKey(
        AuditCheckpoint, on_delete=models.PROTECT, db_column="checkpoint_size", related_name="cosignatures"
    )
    witness_name = models.CharField(max_length=255)
    key_hash = models.BigIntegerField(help_text="The note key hash of the witness key (4 bytes).")
    signature = models.BinaryField(help_text="Timestamp (8 bytes) and Ed25519 signature, as in the note line.")
    cosigned_at = models.DateTimeField(help_text="The time the cosignature states.")
    received_at = models.DateTimeField()

    class Meta:
        db_table = "audit_checkpoint_cosignatures"
        constraints = [
            models.UniqueConstraint(
                fields=["checkpoint", "witness_name", "key_hash"], name="audit_cosignatures_one_per_witness"
            )
        ]

    def __str__(self) -> str:
        return f"cosignature of checkpoint {self.checkpoint_id} by {self.witness_name}"


class AuditAnchor(models.Model):
    """An RFC 3161 time anchor: a time-stamp authority's signed statement that a checkpoint's
    body (and so every seal in its tree) existed at `gen_time`. Verified before it is stored.
    Append-only; also written to AUDIT_SEAL_DIR/checkpoints/ beside its checkpoint."""

    checkpoint = models.OneToOneField(
        AuditCheckpoint,
        primary_key=True,
        on_delete=models.PROTECT,
        db_column="checkpoint_size",
        related_name="anchor",
    )
    authority_url = models.CharField(max_length=2048)
    response = models.BinaryField(help_text="The authority's TimeStampResp, DER.")
    gen_time = models.DateTimeField(help_text="The time the authority states.")
    requested_at = models.DateTimeField()

    class Meta:
        db_table = "audit_anchors"
        ordering = ["-checkpoint_id"]

    def __str__(self) -> str:
        return f"anchor of checkpoint {self.checkpoint_id} at {self.gen_time:%Y-%m-%d %H:%M:%S}"


class AuditWitnessState(models.Model):
    """What `audit_seal` last heard from a configured witness: the size it last cosigned (where
    the next request starts) and the outcome of the last attempt. Bookkeeping, updated in place;
    the metrics (witness lag, inconsistency) and `audit_verify` read it."""

    class Outcome(models.TextChoices):
        COSIGNED = "cosigned"
        UNAVAILABLE = "unavailable"
        REFUSED = "refused"
        INCONSISTENT = "inconsistent"

    witness = models.CharField(primary_key=True, max_length=300, help_text="Key name + key hash.")
    url = models.CharField(max_length=2048)
    cosigned_size = models.BigIntegerField(default=0)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    detail = models.TextField(blank=True)
    attempted_at = models.DateTimeField()

    class Meta:
        db_table = "audit_witness_state"

    def __str__(self) -> str:
        return f"witness {self.witness}: {self.outcome}"
