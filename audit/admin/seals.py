"""The seals in the read-only admin: the list of seals and verification runs, and on each
record's page the seal that covers it (docs/INTEGRITY.md)."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from audit.admin.display import pretty_json
from audit.admin.support import ReadOnlyAdmin
from audit.models import AuditSeal, AuditVerification


def covering_seal_html(recorded_at: Any) -> SafeString:
    """The seal whose window holds `recorded_at`, linked; or "not yet sealed"."""
    seal = (
        AuditSeal.objects.filter(window_start__lte=recorded_at, window_end__gt=recorded_at)
        .only("sequence", "window_start", "window_end", "key_id", "root")
        .first()
    )
    if seal is None:
        return SafeString("<em>not yet sealed</em>")
    return format_html(
        '<a href="{}">seal {}</a>, window [{}, {}) UTC, root <code>{}</code>, key <code>{}</code>',
        reverse("admin:audit_auditseal_change", args=[seal.sequence]),
        seal.sequence,
        f"{seal.window_start:%Y-%m-%d %H:%M:%S}",
        f"{seal.window_end:%Y-%m-%d %H:%M:%S}",
        seal.root[:16] + "…",
        seal.key_id[:24] + "…",
    )


@admin.register(AuditSeal)
class AuditSealAdmin(ReadOnlyAdmin):
    list_display = ("sequence", "window_start", "window_end", "row_count", "key_id", "sealed_at")
    list_deferred_fields = ("body", "signature")
    sortable_by = ("sequence",)
    fields = ("sequence", "window_start", "window_end", "row_count", "root", "key_id", "sealed_at", "body_html")
    readonly_fields = ("body_html",)

    @admin.display(description="signed body")
    def body_html(self, obj: AuditSeal) -> SafeString:
        return pretty_json(json.loads(obj.body))


@admin.register(AuditVerification)
class AuditVerificationAdmin(ReadOnlyAdmin):
    list_display = ("finished_at", "passed", "findings", "rows", "seals")
    sortable_by = ("finished_at",)
    ordering = ("-finished_at",)
