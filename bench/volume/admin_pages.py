"""The auditors' pages on the filled database: list, filters, search, timeline, detail.

As bench/scripts/admin.py measures them: Django's test client, logged in as an auditor, in
this process (the whole server-side cost: middleware, the admin guard and its statement
timeout, queries, templates; no network), one warm-up request, then `repeat` timed ones; the
status of each (a page over the admin's statement timeout answers an error, which is a
result too) and its query count.
"""

from __future__ import annotations

import statistics
import time
from typing import Any


def admin_pages_time(*, repeat: int) -> list[dict[str, Any]]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = _auditor_client()
    rows = []
    for label, url in _pages().items():
        client.get(url)  # warm-up
        timings, statuses = [], set()
        for _ in range(repeat):
            started = time.perf_counter()
            response = client.get(url)
            timings.append((time.perf_counter() - started) * 1000)
            statuses.add(response.status_code)
        with CaptureQueriesContext(connection) as captured:
            client.get(url)
        rows.append(
            {
                "page": label,
                "url": url,
                "status": sorted(statuses),
                "min_ms": round(min(timings), 1),
                "median_ms": round(statistics.median(timings), 1),
                "max_ms": round(max(timings), 1),
                "queries": len(captured.captured_queries),
            }
        )
    return rows


def _auditor_client() -> Any:
    from django.contrib.auth.models import User
    from django.test import Client

    from audit.admin.auditors import auditors_group_ensure

    user, created = User.objects.get_or_create(username="bench-volume-auditor", defaults={"is_staff": True})
    if created:
        user.groups.add(auditors_group_ensure())
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    return client


def _pages() -> dict[str, str]:
    import datetime as dt

    from django.db import connection
    from django.urls import reverse
    from django.utils import timezone

    with connection.cursor() as cursor:
        # A remediation with an embedding a thousand back from the newest: neither the hottest
        # page nor the coldest.
        cursor.execute(
            "SELECT r.id, r.correlation_id, r.name, r.namespace FROM audit_remediation r JOIN ("
            "  SELECT audit_id, audit_recorded_at FROM incident_embeddings WHERE audit_type = 'remediation'"
            "  ORDER BY audit_recorded_at DESC LIMIT 1 OFFSET 1000"
            ") e ON r.id = e.audit_id AND r.recorded_at = e.audit_recorded_at"
        )
        found = cursor.fetchone()
        if found is None:  # a smoke run's few chains
            cursor.execute(
                "SELECT id, correlation_id, name, namespace FROM audit_remediation ORDER BY recorded_at LIMIT 1"
            )
            found = cursor.fetchone()
        remediation_id, correlation_id, name, namespace = found
    remediations = reverse("admin:audit_remediationaudit_changelist")
    week_ago = (timezone.now() - dt.timedelta(days=7)).replace(microsecond=0).isoformat().replace("+", "%2B")
    return {
        "list, newest page": remediations,
        "list, page 20": f"{remediations}?p=20",
        "filter phase=Failed": f"{remediations}?phase__exact=Failed",
        f"filter namespace={namespace}": f"{remediations}?namespace={namespace}",
        "filter past 7 days": f"{remediations}?recorded_at__gte={week_ago}",
        "search correlation id": f"{remediations}?q={correlation_id}",
        "search name prefix": f"{remediations}?q={name[:-1]}",
        "timeline": reverse("audit-timeline", args=[correlation_id]),
        "detail, remediation (similar)": reverse("admin:audit_remediationaudit_change", args=[remediation_id]),
        "embeddings list": reverse("admin:embeddings_incidentembedding_changelist"),
    }
