"""Metrics on port 9090 add up across gunicorn workers (prometheus_client multiprocess mode).

A real gunicorn with the repo's config and two workers writes into the test database, so the
rows must be committed: these tests use `transactional_db`, which empties the tables after.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connection

from audit.models import AUDIT_MODELS, AuditKind
from testutils.factories import VALID_BODIES
from testutils.gunicorn import Gunicorn, database_url, running_gunicorn

METRICS_TOKEN = "scrape-secret-for-tests"
CLIENT_TOKEN = "client-token-that-must-not-be-logged"
CONCURRENCY = 8


@pytest.fixture(scope="module")
def gunicorn(django_db_setup: Any, django_db_blocker: Any) -> Any:
    with django_db_blocker.unblock():
        url = database_url(connection.settings_dict)
    with running_gunicorn(DATABASE_URL=url, METRICS_TOKEN=METRICS_TOKEN) as server:
        yield server


def _counter(samples: dict[Any, float], name: str, **labels: str) -> float:
    """The sum of `name` over every series whose labels include `labels`."""
    return sum(
        value
        for (sample, sample_labels), value in samples.items()
        if sample == name and set(labels.items()) <= set(sample_labels)
    )


def _access_pids(server: Gunicorn, status: int) -> set[int]:
    return {
        record["pid"]
        for record in server.log_records()
        if record.get("logger") == "kubernaut_storage.access" and record.get("status") == status
    }


def _post_batch(server: Gunicorn, bodies: list[dict[str, Any]]) -> list[int]:
    def post(body: dict[str, Any]) -> int:
        # Sent to show the access log never carries headers; AUTH_MODE=none ignores it.
        headers = {"Authorization": f"Bearer {CLIENT_TOKEN}"}
        return server.request("POST", "/api/v1/audit/remediation", body=body, headers=headers).status

    with ThreadPoolExecutor(CONCURRENCY) as pool:
        return list(pool.map(post, bodies))


def test_writes_counter_adds_up_exactly_across_workers(gunicorn, transactional_db):
    before = gunicorn.samples(token=METRICS_TOKEN)
    written = 0
    # New connections spread over both workers; keep writing until both have served some,
    # so the sum really is across processes.
    for _ in range(10):
        statuses = _post_batch(gunicorn, [VALID_BODIES[AuditKind.REMEDIATION]() for _ in range(2 * CONCURRENCY)])
        assert statuses == [201] * len(statuses)
        written += len(statuses)
        if len(_access_pids(gunicorn, 201)) >= 2:
            break
    assert len(_access_pids(gunicorn, 201)) >= 2, "every write landed on one worker"

    after = gunicorn.samples(token=METRICS_TOKEN)
    created = "kubernaut_audit_writes_total"
    assert (
        _counter(after, created, kind="remediation", outcome="created")
        - _counter(before, created, kind="remediation", outcome="created")
        == written
    )
    assert _counter(after, created) - _counter(before, created) == written
    latency = "kubernaut_http_request_duration_seconds_count"
    endpoint = {"endpoint": "/api/v1/audit/remediation", "method": "POST", "status": "2xx"}
    assert _counter(after, latency, **endpoint) - _counter(before, latency, **endpoint) == written
    assert AUDIT_MODELS[AuditKind.REMEDIATION].objects.count() == written


def test_validation_failures_are_counted_by_kind(gunicorn, transactional_db):
    before = gunicorn.samples(token=METRICS_TOKEN)
    invalid = [VALID_BODIES[AuditKind.WORKFLOW](phase="Exploded") for _ in range(5)]
    statuses = [gunicorn.request("POST", "/api/v1/audit/workflow", body=body).status for body in invalid]
    assert statuses == [400] * 5

    after = gunicorn.samples(token=METRICS_TOKEN)
    failures = "kubernaut_validation_failures_total"
    assert _counter(after, failures, kind="workflow") - _counter(before, failures, kind="workflow") == 5
    writes = "kubernaut_audit_writes_total"
    assert (
        _counter(after, writes, kind="workflow", outcome="invalid")
        - _counter(before, writes, kind="workflow", outcome="invalid")
        == 5
    )


def test_metrics_port_requires_the_token_when_one_is_configured(gunicorn):
    assert gunicorn.scrape().status == 401
    assert gunicorn.scrape(token="wrong").status == 401
    scraped = gunicorn.scrape(token=METRICS_TOKEN)
    assert scraped.status == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    # Unlabelled series exist before the first request (pytest-django may run this test first).
    assert b"# TYPE kubernaut_db_retries_total counter" in scraped.body


def test_the_master_serves_the_collectors_the_apps_register(gunicorn, transactional_db):
    # The audit app registers the seal metrics in its AppConfig.ready(), which the master runs
    # (django.setup() in on_starting) before it starts the metrics server.
    samples = gunicorn.samples(token=METRICS_TOKEN)
    assert samples[("kubernaut_audit_seal_lag_seconds", ())] == 0.0  # nothing written, nothing owed


def test_gunicorn_logs_are_json_lines_without_tokens(gunicorn, transactional_db):
    assert _post_batch(gunicorn, [VALID_BODIES[AuditKind.REMEDIATION]()]) == [201]

    lines = [line for line in gunicorn.lines if line.strip()]
    assert lines
    # Every line of master and workers alike is one JSON object: nothing interleaved.
    records = [line for line in lines if line.startswith("{")]
    assert records == lines, [line for line in lines if not line.startswith("{")]
    assert all(CLIENT_TOKEN not in line and METRICS_TOKEN not in line for line in lines)
    messages = [record["message"] for record in gunicorn.log_records()]
    assert any("AUTHENTICATION IS OFF" in message for message in messages)
