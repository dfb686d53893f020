"""/readyz runs its checks at most once per READYZ_CACHE_SECONDS per process."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from kubernaut_storage.observability import health


@pytest.fixture
def _fresh_cache():
    health._cached_checks = None
    yield
    health._cached_checks = None


@pytest.mark.django_db
@pytest.mark.usefixtures("_fresh_cache")
def test_probes_within_the_window_reuse_one_result(client, settings):
    settings.READYZ_CACHE_SECONDS = 60.0
    with CaptureQueriesContext(connection) as first:
        assert client.get("/readyz").status_code == 200
    with CaptureQueriesContext(connection) as again:
        answers = [client.get("/readyz") for _ in range(20)]
    assert len(first.captured_queries) >= 3
    assert len(again.captured_queries) == 0
    assert {answer.status_code for answer in answers} == {200}


@pytest.mark.django_db
@pytest.mark.usefixtures("_fresh_cache")
def test_a_result_older_than_the_window_is_recomputed(client, settings):
    settings.READYZ_CACHE_SECONDS = 0.0
    client.get("/readyz")
    with CaptureQueriesContext(connection) as again:
        client.get("/readyz")
    assert len(again.captured_queries) >= 3
