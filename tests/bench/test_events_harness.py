"""The events-batch scenario's pieces on a tiny run: its bodies, wrk posting them, the ceiling's
statements storing the same events."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest
from django.db import connection

from audit.event_types import EVENT_TYPE_LIST
from audit.models import AuditEvent
from bench.ceiling import ceiling_run, event_ceiling_statements
from bench.workload import EVENTS_BATCH_ENDPOINT, event_batch_templates, templates_write
from bench.wrk import wrk_run

pytestmark = pytest.mark.django_db(transaction=True)


def test_event_batch_bodies_mix_the_types_and_give_each_event_its_own_correlation_id():
    [(endpoint, body)] = event_batch_templates(size=150, count=1)
    assert endpoint == EVENTS_BATCH_ENDPOINT
    events = orjson.loads(body)
    assert [event["event_type"] for event in events[:142]] == list(EVENT_TYPE_LIST)
    assert len({event["correlation_id"] for event in events}) == 150
    assert all(event["correlation_id"].startswith("rr-@ID@-") for event in events)


def test_wrk_posts_event_batches_that_the_service_stores_whole(live_server, tmp_path: Path):
    assert shutil.which("wrk"), "wrk is not installed: scripts/test and python -m bench install it"
    path = templates_write(tmp_path / "events.tsv", event_batch_templates(size=20, count=2))

    result = wrk_run(url=live_server.url, templates=path, concurrency=2, duration_s=1, threads=1)

    assert result.requests > 0
    assert (result.non2xx, result.socket_errors) == (0, 0)
    # Every request stored its 20 events, each under a correlation id of its own.
    stored = list(AuditEvent.objects.values_list("correlation_id", flat=True))
    assert len(stored) == len(set(stored)) >= 20 * result.requests


def test_the_ceiling_sends_the_services_insert_for_the_same_batches(tmp_path: Path):
    path = templates_write(tmp_path / "events.tsv", event_batch_templates(size=10, count=2))
    statements = event_ceiling_statements(path, count=2)
    conninfo = " ".join(
        f"{key}={value}"
        for key, value in {
            "dbname": connection.settings_dict["NAME"],
            "host": connection.settings_dict["HOST"],
            "user": connection.settings_dict["USER"],
        }.items()
        if value
    )

    result = ceiling_run(conninfo, statements, connections=1, duration_s=0.5, warmup_s=0)

    assert result.errors == 0
    assert len(result.latencies_s) > 0
    assert AuditEvent.objects.filter(request_id__startswith="ceiling-").count() >= 10
