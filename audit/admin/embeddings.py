"""Read-only admin over the stored embeddings and the deferral backlog (docs/ADMIN.md).

It lives in `audit`, not `embeddings`: it links every vector to its audit record.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString

from audit.admin.display import audit_change_url, similar_incidents_html
from audit.admin.support import ReadOnlyAdmin, exact_value_filter
from audit.models import EVENT_AUDIT_TYPE, AuditKind
from embeddings.models import EmbeddingBacklog, IncidentEmbedding


def _audit_link(audit_type: str, audit_id: int) -> SafeString:
    label = "Audit event" if audit_type == EVENT_AUDIT_TYPE else AuditKind(audit_type).label
    return format_html('<a href="{}">{} #{}</a>', audit_change_url(audit_type, audit_id), label, audit_id)


class AuditTypeFilter(admin.SimpleListFilter):
    """The four kinds and audit events by name, without asking the table which values it holds."""

    title = "audit type"
    parameter_name = "audit_type__exact"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(kind.value, str(kind.label)) for kind in AuditKind] + [(EVENT_AUDIT_TYPE, "Audit event")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset.filter(audit_type=value) if value else queryset


def _audit_id_search(queryset: QuerySet[Any], search_term: str) -> QuerySet[Any]:
    # An audit id is the only useful key here. `audit_id = n` is answered by the
    # (audit_type, audit_id, ...) unique index through PostgreSQL 18's skip scan over the four
    # audit types.
    term = search_term.strip()
    if not term:
        return queryset
    if not term.isdigit():
        return queryset.none()
    return queryset.filter(audit_id=int(term))


@admin.register(IncidentEmbedding)
class IncidentEmbeddingAdmin(ReadOnlyAdmin):
    list_display = (
        "audit_recorded_at",
        "audit_record",
        "model",
        "dimensions",
        "namespace",
        "target",
        "signal_type",
        "recorded_at",
    )
    list_filter = (
        AuditTypeFilter,
        ("audit_recorded_at", admin.DateFieldListFilter),
        exact_value_filter("model", "model"),
    )
    list_deferred_fields = ("embedding", "root_cause", "input_sha256")
    ordering = ("-audit_recorded_at",)
    sortable_by = ("audit_recorded_at",)
    search_fields = ("audit_id",)
    search_help_text = "An audit record id."
    readonly_fields = ("audit_record", "vector_summary", "similar_html")
    fieldsets = [
        (None, {"fields": ["audit_record", "audit_recorded_at", "model", "dimensions", "vector_summary"]}),
        (
            "Incident",
            {
                "fields": [
                    "remediation_request_id",
                    "namespace",
                    "target_type",
                    "target_name",
                    "signal_type",
                    "root_cause",
                ]
            },
        ),
        ("Similar incidents", {"fields": ["similar_html"]}),
        ("Integrity", {"fields": ["input_sha256", "recorded_at"]}),
    ]

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        return _audit_id_search(queryset, search_term), False

    @admin.display(description="audit record")
    def audit_record(self, obj: IncidentEmbedding) -> SafeString:
        return _audit_link(obj.audit_type, obj.audit_id)

    @admin.display(description="target")
    def target(self, obj: IncidentEmbedding) -> str:
        return f"{obj.target_type} {obj.target_name}".strip()

    @admin.display(description="vector")
    def vector_summary(self, obj: IncidentEmbedding) -> str:
        head = ", ".join(f"{value:.4f}" for value in list(obj.embedding[:6]))
        return f"{len(obj.embedding)} floats: [{head}, …]"

    @admin.display(description="nearest by embedding")
    def similar_html(self, obj: IncidentEmbedding) -> SafeString:
        return similar_incidents_html(obj)


@admin.register(EmbeddingBacklog)
class EmbeddingBacklogAdmin(ReadOnlyAdmin):
    """Audit records still waiting for their embedding (`embeddings_backfill` empties it)."""

    list_display = ("created_at", "audit_record", "reason")
    list_filter = (AuditTypeFilter,)
    ordering = ("-created_at",)
    sortable_by = ("created_at",)
    search_fields = ("audit_id",)
    search_help_text = "An audit record id."
    readonly_fields = ("audit_record",)
    fields = ("audit_record", "audit_recorded_at", "reason", "created_at")

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        return _audit_id_search(queryset, search_term), False

    @admin.display(description="audit record")
    def audit_record(self, obj: EmbeddingBacklog) -> SafeString:
        return _audit_link(obj.audit_type, obj.audit_id)
