"""django-prometheus' request and database series reach port 9090 summed over the workers."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection

from audit.models import AuditKind
from tests.factories import VALID_BODIES
from tests.support.gunicorn import database_url, running_gunicorn

WRITES = 12


@pytest.fixture(scope="module")
def gunicorn(django_db_setup: Any, django_db_blocker: Any) -> Any:
    with django_db_blocker.unblock():
        url = database_url(connection.settings_dict)
    with running_gunicorn(DATABASE_URL=url) as server:
        yield server


def _sum(samples: dict[Any, float], name: str, **labels: str) -> float:
    return sum(
        value
        for (sample, sample_labels), value in samples.items()
        if sample == name and set(labels.items()) <= set(sample_labels)
    )


def test_request_and_database_series_count_every_write(gunicorn, transactional_db):
    before = gunicorn.samples()
    for _ in range(WRITES):
        response = gunicorn.request("POST", "/api/v1/audit/execution", body=VALID_BODIES[AuditKind.EXECUTION]())
        assert response.status == 201
    after = gunicorn.samples()

    def grew(name: str, **labels: str) -> float:
        return _sum(after, name, **labels) - _sum(before, name, **labels)

    by_view = "django_http_requests_latency_seconds_by_view_method_count"
    assert grew(by_view, method="POST") == WRITES
    assert grew("django_http_responses_total_by_status_total", status="201") == WRITES
    # Each write runs at least its INSERT; the count comes from the instrumented cursor.
    assert grew("django_db_execute_total", alias="default", vendor="postgresql") >= WRITES
    assert grew("django_db_query_duration_seconds_count", alias="default") >= WRITES
    # Probes are answered before the middleware: they never show up as views.
    assert gunicorn.request("GET", "/healthz").status == 200
    assert _sum(gunicorn.samples(), by_view, view="healthz") == 0
