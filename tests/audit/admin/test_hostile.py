"""The admin refuses undeclared lookups and NUL bytes (400/404, never 500), and bounds query time."""

from __future__ import annotations

import pytest
from django.db import OperationalError, connection
from django.http import HttpResponse
from django.test import RequestFactory

from kubernaut_storage.admin.guard import AdminGuardMiddleware

LISTS = "/admin/audit/remediationaudit/"
EMBEDDINGS = "/admin/embeddings/incidentembedding/"


@pytest.fixture
def auditor(admin_client):
    return admin_client


@pytest.mark.parametrize(
    "url",
    [
        f"{LISTS}?namespace=%00",
        f"{LISTS}?priority=%00",
        f"{LISTS}?q=%00",
        f"{LISTS}?request_id__iregex=[",
        f"{LISTS}?payload__icontains=x",
        f"{LISTS}?message__regex=a",
        f"{LISTS}?namespace__startswith=a",
        "/admin/timeline/%00/",
        f"{EMBEDDINGS}?model=%00",
        f"{EMBEDDINGS}?input_sha256__regex=(",
        "/admin/audit/remediationaudit/%00/change/",
    ],
)
def test_hostile_admin_urls_are_refused_not_500(auditor, url):
    assert auditor.get(url).status_code in (400, 404)


@pytest.mark.parametrize(
    "url",
    [
        f"{LISTS}?namespace=team-a&priority=P1&phase__exact=Running",
        f"{LISTS}?recorded_at__gte=2026-01-01+00:00:00%2B00:00&recorded_at__lt=2026-02-01+00:00:00%2B00:00",
        f"{LISTS}?q=team-a/web",
        "/admin/audit/aianalysisaudit/?requires_approval__exact=1",
        f"{EMBEDDINGS}?model=all-MiniLM-L6-v2&audit_type__exact=remediation",
    ],
)
def test_declared_filters_still_work(auditor, url):
    assert auditor.get(url).status_code == 200


@pytest.mark.django_db
def test_admin_queries_run_under_the_statement_timeout(settings):
    settings.ADMIN_STATEMENT_TIMEOUT_SECONDS = 0.2

    def slow_page(request):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(2)")
        return HttpResponse()

    with pytest.raises(OperationalError, match="statement timeout"):
        AdminGuardMiddleware(slow_page)(RequestFactory().get("/admin/audit/"))


@pytest.mark.django_db
def test_the_timeout_is_reset_and_not_set_outside_the_admin(settings):
    settings.ADMIN_STATEMENT_TIMEOUT_SECONDS = 3.0
    seen = []

    def page(request):
        with connection.cursor() as cursor:
            cursor.execute("SHOW statement_timeout")
            seen.append(cursor.fetchone()[0])
        return HttpResponse()

    AdminGuardMiddleware(page)(RequestFactory().get("/admin/audit/"))
    AdminGuardMiddleware(page)(RequestFactory().get("/api/v1/audit/remediation"))
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        after = cursor.fetchone()[0]
    assert seen == ["3s", "0"]
    assert after == "0"
