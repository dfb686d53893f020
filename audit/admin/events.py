"""The auditors' read-only admin over upstream Kubernaut's audit events (docs/UPSTREAM.md).

Newest first; filters on category, type and outcome (exact values, each answered by its
`(column, recorded_at)` index) and search by an exact correlation id; an event's page shows its
payload and unknown top-level keys as received, and a link to its correlation timeline, where
events stand beside the typed records.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.safestring import SafeString

from audit.admin.display import correlation_link, pretty_json
from audit.admin.seals import covering_seal_html
from audit.admin.support import ReadOnlyAdmin, choices_filter, exact_value_filter
from audit.event_types import EventCategory, EventOutcome
from audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("recorded_at", "event_type", "event_category", "event_outcome", "correlation", "actor_id", "actor")
    list_filter = (
        choices_filter("event_category", "category", EventCategory.values),
        choices_filter("event_outcome", "outcome", EventOutcome.values),
        # 142 types: a box for an exact type rather than a list as long as the page.
        exact_value_filter("event_type", "type"),
    )
    list_deferred_fields = ("event_data", "extra_fields", "error_message", "content_sha256")
    # Only orderings an index serves.
    sortable_by = ("recorded_at",)
    search_fields = ("correlation_id",)  # shows the box; get_search_results does the work
    search_help_text = "An exact correlation id."
    readonly_fields = ("correlation", "event_data_html", "extra_fields_html", "seal_html")
    fieldsets = [
        (
            None,
            {"fields": ["event_id", "event_type", "event_category", "event_action", "event_outcome", "correlation"]},
        ),
        ("Times (UTC)", {"fields": ["event_timestamp", "recorded_at", "id"]}),
        ("Who and what", {"fields": ["actor_type", "actor_id", "actor_ip", "resource_type", "resource_id"]}),
        (
            "Context",
            {
                "fields": [
                    "namespace",
                    "cluster_id",
                    "severity",
                    "duration_ms",
                    "parent_event_id",
                    "parent_event_date",
                    "error_code",
                    "error_message",
                    "retention_days",
                    "is_sensitive",
                    "version",
                ]
            },
        ),
        ("Payload as received", {"fields": ["event_data_html"], "classes": ["wide"]}),
        ("Unknown top-level keys, as received", {"fields": ["extra_fields_html"], "classes": ["wide"]}),
        ("Integrity", {"fields": ["actor", "request_id", "content_sha256", "seal_html"]}),
    ]

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        # Exact: the (correlation_id, recorded_at) index answers it; Django's own search would
        # run UPPER(col) LIKE '%term%' over every row.
        term = search_term.strip()
        return (queryset.filter(correlation_id=term), False) if term else (queryset, False)

    @admin.display(description="correlation id")
    def correlation(self, obj: AuditEvent) -> SafeString:
        return correlation_link(obj.correlation_id)

    @admin.display(description="event_data")
    def event_data_html(self, obj: AuditEvent) -> SafeString:
        return pretty_json(obj.event_data)

    @admin.display(description="extra fields")
    def extra_fields_html(self, obj: AuditEvent) -> SafeString | str:
        return pretty_json(obj.extra_fields) if obj.extra_fields is not None else "-"

    @admin.display(description="sealed by")
    def seal_html(self, obj: AuditEvent) -> SafeString:
        return covering_seal_html(obj.recorded_at)
