"""django-prometheus' database series reach port 9090 summed over the workers."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection

from audit.models import AuditKind
from testutils.factories import VALID_BODIES
from testutils.gunicorn import database_url, running_gunicorn

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


def test_every_write_statement_is_counted_and_timed(gunicorn, transactional_db):
    before = gunicorn.samples()
    for _ in range(WRITES):
        response = gunicorn.request("POST", "/api/v1/audit/execution", body=VALID_BODIES[AuditKind.EXECUTION]())
        assert response.status == 201
    after = gunicorn.samples()

    def grew(name: str, **labels: str) -> float:
        return _sum(after, name, **labels) - _sum(before, name, **labels)

    # Each write runs at least its INSERT, sent through the instrumented server-binding cursor.
    assert grew("django_db_execute_total", alias="default", vendor="postgresql") >= WRITES
    assert grew("django_db_query_duration_seconds_count", alias="default") >= WRITES
    assert _sum(after, "django_db_new_connections_total", alias="default") >= 1
    # Requests are measured by our own middleware only.
    assert not any(name.startswith("django_http_") for name, _ in after)
