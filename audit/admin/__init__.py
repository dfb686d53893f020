"""The auditors' read-only admin over the four audit tables (docs/ADMIN.md).

Lists are newest first, filtered and searched only through indexes; a record's page shows its
labels, its payload as received, the records it references, a link to its correlation
timeline, and the stored incidents most similar to it.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils.safestring import SafeString

# Registers the embeddings' admin, which belongs here because it links vectors to records, and
# the audit events' admin.
from audit.admin import embeddings, events  # noqa: F401
from audit.admin.display import (
    correlation_link,
    labels_table,
    pretty_json,
    record_similar_incidents_html,
    related_records_html,
)
from audit.admin.seals import covering_seal_html
from audit.admin.support import ReadOnlyAdmin, choices_filter, exact_value_filter
from audit.choices import SIGNAL_TYPES, TARGET_TYPES
from audit.models import AIAnalysisAudit, AuditRecord, ExecutionAudit, RemediationAudit, WorkflowAudit

admin.site.site_header = "Kubernaut audit trail"
admin.site.site_title = "Kubernaut audit trail"
admin.site.index_title = "Audit records (read-only)"
admin.site.site_url = None  # no public site to "view": the service has only an API

NamespaceFilter = exact_value_filter("namespace", "namespace")


class AuditRecordAdmin(ReadOnlyAdmin):
    """What the four audit admins share: columns, filters, search and the record page layout."""

    list_deferred_fields: tuple[str, ...] = ("payload", "labels", "message", "content_sha256")
    # Only orderings an index serves; sorting a million rows by another column is a full sort.
    sortable_by = ("recorded_at",)
    search_fields = ("correlation_id", "name")  # shows the box; get_search_results does the work
    search_help_text = "An exact correlation id, a name prefix, or namespace/name-prefix."
    readonly_fields = (
        "kind_label",
        "correlation",
        "labels_html",
        "payload_html",
        "related_html",
        "similar_html",
        "seal_html",
    )
    #: The type-specific columns on the record page, after the common ones.
    type_fields: tuple[str, ...] = ()

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        return [
            # What it is and where it belongs first; then the detail; the evidence last.
            (None, {"fields": ["kind_label", "correlation", "namespace", "name", "phase", "message"]}),
            ("Related records", {"fields": ["related_html"]}),
            ("Times (UTC)", {"fields": ["created_at", "started_at", "completed_at", "recorded_at"]}),
            (f"{self.model._meta.verbose_name.capitalize()} fields", {"fields": list(self.type_fields)}),
            ("Similar incidents", {"fields": ["similar_html"]}),
            ("Labels", {"fields": ["labels_html"]}),
            ("Payload as received", {"fields": ["payload_html"], "classes": ["wide"]}),
            ("Integrity", {"fields": ["actor", "request_id", "content_sha256", "seal_html"]}),
        ]

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        # Django's own search would run UPPER(col) LIKE '%term%', which no index serves.
        # Ours is exact or prefix, case-sensitive, so the correlation_id, (namespace, name)
        # and name pattern indexes answer it.
        term = search_term.strip()
        if not term:
            return queryset, False
        condition = Q(correlation_id=term) | Q(name__startswith=term)
        namespace, slash, name = term.partition("/")
        if slash and namespace:
            condition |= Q(namespace=namespace, name__startswith=name)
        return queryset.filter(condition), False

    @admin.display(description="type")
    def kind_label(self, obj: AuditRecord) -> str:
        return str(obj.kind.label)

    @admin.display(description="correlation id")
    def correlation(self, obj: AuditRecord) -> SafeString:
        return correlation_link(obj.correlation_id)

    @admin.display(description="labels")
    def labels_html(self, obj: AuditRecord) -> SafeString:
        return labels_table(obj.labels)

    @admin.display(description="payload")
    def payload_html(self, obj: AuditRecord) -> SafeString:
        return pretty_json(obj.payload)

    @admin.display(description="references")
    def related_html(self, obj: AuditRecord) -> SafeString:
        return related_records_html(obj)

    @admin.display(description="sealed by")
    def seal_html(self, obj: AuditRecord) -> SafeString:
        return covering_seal_html(obj.recorded_at)

    @admin.display(description="nearest by embedding")
    def similar_html(self, obj: AuditRecord) -> SafeString:
        return record_similar_incidents_html(obj)


COMMON_FILTERS: tuple[Any, ...] = ("phase", ("recorded_at", admin.DateFieldListFilter), NamespaceFilter)
COMMON_COLUMNS = ("recorded_at", "correlation", "namespace", "name", "phase")


@admin.register(RemediationAudit)
class RemediationAuditAdmin(AuditRecordAdmin):
    list_display = (*COMMON_COLUMNS, "signal_type", "signal_name", "target", "priority", "environment")
    list_filter = (
        *COMMON_FILTERS,
        choices_filter("signal_type", "signal type", SIGNAL_TYPES),
        choices_filter("target_type", "target type", TARGET_TYPES),
        choices_filter("priority", "priority", ["P0", "P1", "P2", "P3"]),
        choices_filter("environment", "environment", ["production", "staging", "development"]),
    )
    type_fields = (
        "signal_type",
        "signal_name",
        "signal_namespace",
        "target_type",
        "target_name",
        "target_namespace",
        "priority",
        "environment",
        "fingerprint",
    )

    @admin.display(description="target")
    def target(self, obj: RemediationAudit) -> str:
        return f"{obj.target_type} {obj.target_namespace}/{obj.target_name}"


@admin.register(AIAnalysisAudit)
class AIAnalysisAuditAdmin(AuditRecordAdmin):
    list_display = (
        *COMMON_COLUMNS,
        "remediation_request_ref",
        "llm",
        "confidence",
        "recommended_action",
        "requires_approval",
    )
    list_filter = (
        *COMMON_FILTERS,
        choices_filter("signal_type", "signal type", SIGNAL_TYPES),
        "requires_approval",
    )
    list_deferred_fields = (*AuditRecordAdmin.list_deferred_fields, "root_cause")
    type_fields = (
        "remediation_request_ref",
        "signal_type",
        "llm_provider",
        "llm_model",
        "root_cause",
        "confidence",
        "recommended_action",
        "requires_approval",
    )

    @admin.display(description="LLM")
    def llm(self, obj: AIAnalysisAudit) -> str:
        return f"{obj.llm_provider} {obj.llm_model}".strip()


@admin.register(WorkflowAudit)
class WorkflowAuditAdmin(AuditRecordAdmin):
    list_display = (*COMMON_COLUMNS, "workflow_name", "steps", "remediation_request_ref")
    list_filter = COMMON_FILTERS
    type_fields = (
        "remediation_request_ref",
        "ai_analysis_ref",
        "workflow_name",
        "step_count",
        "completed_count",
        "failed_count",
    )

    @admin.display(description="steps done / failed / total")
    def steps(self, obj: WorkflowAudit) -> str:
        def shown(value: int | None) -> str:
            return "-" if value is None else str(value)

        return f"{shown(obj.completed_count)} / {shown(obj.failed_count)} / {shown(obj.step_count)}"


@admin.register(ExecutionAudit)
class ExecutionAuditAdmin(AuditRecordAdmin):
    list_display = (*COMMON_COLUMNS, "action_type", "step_name", "target", "is_rolled_back")
    list_filter = (
        *COMMON_FILTERS,
        choices_filter("target_type", "target type", TARGET_TYPES),
        "is_rolled_back",
    )
    list_deferred_fields = (*AuditRecordAdmin.list_deferred_fields, "action_result")
    type_fields = (
        "workflow_execution_ref",
        "step_name",
        "action_type",
        "target_type",
        "target_name",
        "target_namespace",
        "action_result",
        "is_rolled_back",
    )

    @admin.display(description="target")
    def target(self, obj: ExecutionAudit) -> str:
        if not obj.target_type:
            return ""
        return f"{obj.target_type} {obj.target_namespace}/{obj.target_name}"
