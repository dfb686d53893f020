"""Shared fixtures. Tests run against the real embedded PostgreSQL + pgvector and the real model."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from kubernaut_storage.partitioning import partitions_ensure


@pytest.fixture(scope="session", autouse=True)
def _partitions_current(django_db_setup: Any, django_db_blocker: Any) -> None:
    # --reuse-db keeps a test database across months; its partitions must follow the calendar.
    with django_db_blocker.unblock():
        partitions_ensure(now=timezone.now(), months_ahead=2)


@pytest.fixture
def api() -> Client:
    return Client()
