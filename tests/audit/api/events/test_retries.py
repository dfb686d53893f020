"""A retry is not a second batch: the same bytes posted again (upstream's client, after a lost
201 or its 10 s timeout) get the first answer and are stored once; an Idempotency-Key is
honoured when a client sends one."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json

import pytest
from django.core.management import call_command
from django.utils import timezone

from audit.api.events.serializers import audit_events_validated
from audit.models import EVENTS_BODY_SCOPE, AuditEvent, IdempotencyKey
from audit.write.commit import AuditWrite
from audit.write.events import audit_events_create
from testutils.audit_rows import assert_problem
from testutils.events import EVENTS_PATH, event_batch, event_body, post_events

pytestmark = pytest.mark.django_db


def _body() -> bytes:
    return json.dumps(event_batch(["gateway.signal.received", "aiagent.llm.request"] * 5)).encode()


def test_the_same_bytes_posted_again_get_the_first_answer_and_are_stored_once(api):
    body = _body()
    first = post_events(api, body)  # its 201 is "lost": the client posts the same bytes again
    assert first.status_code == 201

    again = post_events(api, body)

    assert again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert again["Content-Type"] == "application/json"
    ids = first.json()["event_ids"]
    assert AuditEvent.objects.filter(event_id__in=ids).count() == len(ids) == 10
    assert AuditEvent.objects.filter(correlation_id__in=[e["correlation_id"] for e in json.loads(body)]).count() == 10
    assert IdempotencyKey.objects.filter(scope=EVENTS_BODY_SCOPE).count() == 1


def _posted_at(recorded_at: dt.datetime, body: bytes, *, window: int) -> AuditWrite:
    """The write service as the batch view calls it, for a body received at `recorded_at`."""
    return audit_events_create(
        events=audit_events_validated(data=json.loads(body), now=recorded_at),
        single=False,
        recorded_at=recorded_at,
        actor="system:serviceaccount:kubernaut-system:gateway",
        request_id="req-1",
        body_sha256=hashlib.sha256(body).hexdigest(),
        idempotency_key=None,
        dedupe_seconds=window,
    )


def test_a_retry_is_recognised_for_at_least_the_window_and_at_most_twice_it():
    window = 30
    start = timezone.now() - dt.timedelta(seconds=2 * window)
    body = json.dumps(event_batch(["gateway.crd.created"] * 3)).encode()
    first = _posted_at(start, body, window=window)

    # Exactly one window later is always the next bucket: still a retry.
    again = _posted_at(start + dt.timedelta(seconds=window), body, window=window)
    assert (again.replayed, again.body) == (True, first.body)

    # Two windows later is never: a new batch.
    later = _posted_at(start + dt.timedelta(seconds=2 * window), body, window=window)
    assert not later.replayed
    assert set(later.body["event_ids"]).isdisjoint(first.body["event_ids"])
    assert AuditEvent.objects.filter(event_id__in=first.body["event_ids"] + later.body["event_ids"]).count() == 6


def test_recognition_off_stores_the_same_bytes_twice(api, settings):
    settings.AUDIT_EVENTS_DEDUPE_SECONDS = 0
    body = _body()
    first, again = post_events(api, body), post_events(api, body)
    assert set(again.json()["event_ids"]).isdisjoint(first.json()["event_ids"])
    assert IdempotencyKey.objects.filter(scope=EVENTS_BODY_SCOPE).count() == 0


def test_bytes_that_differ_are_another_batch(api):
    events = event_batch(["gateway.crd.created"] * 2)
    first = post_events(api, json.dumps(events).encode())
    again = post_events(api, json.dumps(events, indent=1).encode())  # the same events, other bytes
    assert set(again.json()["event_ids"]).isdisjoint(first.json()["event_ids"])


def test_an_idempotency_key_replays_its_answer_and_refuses_another_body(api):
    event = event_body("gateway.crd.created")
    first = post_events(api, event, path=EVENTS_PATH, **{"Idempotency-Key": "k-1"})
    again = post_events(api, event, path=EVENTS_PATH, **{"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert AuditEvent.objects.filter(event_id=first.json()["event_id"]).count() == 1

    other = post_events(api, event_body("gateway.crd.failed"), path=EVENTS_PATH, **{"Idempotency-Key": "k-1"})
    assert_problem(other, 422)


def test_the_prune_command_deletes_body_keys_past_twice_the_window_only(api, settings):
    settings.AUDIT_EVENTS_DEDUPE_SECONDS = 60
    post_events(api, _body())
    post_events(api, event_body("gateway.crd.created"), path=EVENTS_PATH, **{"Idempotency-Key": "k-2"})
    old = timezone.now() - dt.timedelta(seconds=121)
    IdempotencyKey.objects.filter(scope=EVENTS_BODY_SCOPE).update(created_at=old)
    post_events(api, _body())  # a recent body's key stays

    out = io.StringIO()
    call_command("events_dedupe_prune", stdout=out)
    assert "1 audit-event body key(s)" in out.getvalue()
    assert IdempotencyKey.objects.filter(scope=EVENTS_BODY_SCOPE).count() == 2

    call_command("events_dedupe_prune", "--yes", stdout=out)
    assert IdempotencyKey.objects.filter(scope=EVENTS_BODY_SCOPE).count() == 1
    assert IdempotencyKey.objects.filter(key="k-2").count() == 1
