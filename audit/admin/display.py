"""HTML fragments of the record pages: labels, payload, references, similar incidents, links.

Everything user-supplied goes through `format_html` / template autoescaping: audit payloads are
written by controllers, and an auditor's browser must never run what a payload contains.
"""

from __future__ import annotations

import json
from typing import Any

from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from audit.models import AUDIT_MODELS, AuditEvent, AuditKind, AuditRecord
from audit.selectors import TimelineEventKind, related_records
from embeddings.models import IncidentEmbedding
from embeddings.selectors import record_embedding, similar_incidents


def audit_change_url(kind: AuditKind | str, audit_id: int) -> str:
    model = AuditEvent if kind == TimelineEventKind.EVENT else AUDIT_MODELS[AuditKind(kind)]
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_change", args=[audit_id])


def timeline_url(correlation_id: str) -> str:
    return reverse("audit-timeline", args=[correlation_id])


def correlation_link(correlation_id: str) -> SafeString:
    return format_html(
        '<a href="{}" title="Every record of this correlation id">{}</a>', timeline_url(correlation_id), correlation_id
    )


def labels_table(labels: dict[str, Any]) -> SafeString:
    return SafeString(render_to_string("admin/audit/includes/labels.html", {"labels": sorted(labels.items())}))


def pretty_json(value: Any) -> SafeString:
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
    return format_html('<pre class="audit-json" style="white-space: pre-wrap; margin: 0;">{}</pre>', text)


def related_records_html(record: AuditRecord) -> SafeString:
    groups = [
        {
            "label": group.label,
            "namespace": group.namespace,
            "name": group.name,
            "records": [(audit_change_url(group.kind, related.id), related) for related in group.records],
        }
        for group in related_records(record=record)
    ]
    return SafeString(
        render_to_string(
            "admin/audit/includes/related.html",
            {"groups": groups, "timeline_url": timeline_url(record.correlation_id), "record": record},
        )
    )


def similar_incidents_html(embedding: IncidentEmbedding | None) -> SafeString:
    """The nearest stored incidents of the same model; two queries at most."""
    rows = []
    if embedding is not None:
        rows = [
            {
                "url": audit_change_url(neighbour.embedding.audit_type, neighbour.embedding.audit_id),
                "distance": neighbour.distance,
                "row": neighbour.embedding,
            }
            for neighbour in similar_incidents(embedding=embedding)
        ]
    return SafeString(render_to_string("admin/audit/includes/similar.html", {"embedding": embedding, "rows": rows}))


def record_similar_incidents_html(record: AuditRecord) -> SafeString:
    embedding = record_embedding(audit_type=record.kind, audit_id=record.id, audit_recorded_at=record.recorded_at)
    return similar_incidents_html(embedding)
