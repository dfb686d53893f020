"""Shared fixtures. Tests run against the real embedded PostgreSQL + pgvector and the real model."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from kubernaut_storage.partitioning import partitions_ensure


@pytest.fixture(scope="session", autouse=True)
def _partitions_current(request: pytest.FixtureRequest, django_db_setup: Any, django_db_blocker: Any) -> None:
    # pytest-django sets up the test database only when a collected test uses it; without one
    # the connection would still point at the development database.
    if not any(item.get_closest_marker("django_db") for item in request.session.items):
        return
    # --reuse-db keeps a test database across months; its partitions must follow the calendar.
    with django_db_blocker.unblock():
        partitions_ensure(now=timezone.now(), months_ahead=2)


@pytest.fixture
def api() -> Client:
    return Client()
