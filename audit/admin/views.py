"""Admin pages that are not one model's: the correlation timeline.

Served under the admin site's login (`admin.site.admin_view` in the URLconf): only active staff
reach it, and each audit type appears only to users who may view that type.
"""

from __future__ import annotations

import datetime as dt

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.template.response import TemplateResponse

from audit.admin.display import audit_change_url
from audit.models import AUDIT_MODELS, AuditEvent, AuditKind
from audit.selectors import TimelineEventKind, correlation_timeline


def _viewable_kinds(request: HttpRequest) -> list[AuditKind]:
    kinds = []
    for kind in AuditKind:
        model_admin = admin.site.get_model_admin(AUDIT_MODELS[kind])
        if model_admin.has_view_permission(request):
            kinds.append(kind)
    return kinds


def _elapsed(delta: dt.timedelta) -> str:
    seconds = delta.total_seconds()
    if seconds < 60:
        return f"+{seconds:.1f} s"
    return "+" + str(dt.timedelta(seconds=int(seconds)))


def correlation_timeline_view(request: HttpRequest, correlation_id: str) -> TemplateResponse:
    """Every record of one correlation id across the audit types and the audit events, oldest
    first."""
    kinds = _viewable_kinds(request)
    events = admin.site.get_model_admin(AuditEvent).has_view_permission(request)
    if not kinds and not events:
        raise PermissionDenied
    timeline = correlation_timeline(correlation_id=correlation_id, kinds=kinds, events=events)
    started = timeline.entries[0].recorded_at if timeline.entries else None
    rows = [
        {
            "entry": entry,
            "url": audit_change_url(entry.kind, entry.id),
            "elapsed": _elapsed(entry.recorded_at - started) if started else "",
        }
        for entry in timeline.entries
    ]
    context = {
        **admin.site.each_context(request),
        "title": f"Timeline of correlation id {correlation_id}",
        "subtitle": None,
        "timeline": timeline,
        "rows": rows,
        "kinds": [kind.label for kind in kinds] + ([TimelineEventKind.EVENT.label] if events else []),
    }
    return TemplateResponse(request, "admin/audit/timeline.html", context)
