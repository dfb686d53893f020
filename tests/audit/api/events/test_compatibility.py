"""Proof of compatibility with upstream Kubernaut's controllers, in our own words: one valid
event of every event type accepted in one batch and read back unchanged, and every answer
shaped as upstream's document describes its responses (our own written expectations)."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
from django.db import connection

from audit.event_types import EVENT_TYPE_LIST
from audit.models import AuditEvent
from testutils.events import EVENTS_PATH, event_body, every_type_batch, post_events

pytestmark = pytest.mark.django_db

#: RFC 3339 date-time, as upstream's document types `event_timestamp`.
DATE_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def _assert_uuid(value: Any) -> None:
    assert isinstance(value, str)
    assert str(uuid.UUID(value)) == value.lower()


def assert_audit_event_response(body: Any) -> None:
    """AuditEventResponse: required event_id (uuid), event_timestamp (date-time), message."""
    assert isinstance(body, dict)
    assert {"event_id", "event_timestamp", "message"} <= set(body)
    _assert_uuid(body["event_id"])
    assert DATE_TIME.match(body["event_timestamp"])
    assert isinstance(body["message"], str)


def assert_batch_audit_event_response(body: Any, *, count: int) -> None:
    """BatchAuditEventResponse: event_ids (uuids, one per event sent, in order) and message."""
    assert isinstance(body, dict)
    assert isinstance(body["event_ids"], list)
    assert len(body["event_ids"]) == count
    for event_id in body["event_ids"]:
        _assert_uuid(event_id)
    assert body["message"] == f"{count} audit events created successfully"


def assert_rfc7807_problem(body: Any, *, status: int) -> None:
    """RFC7807Problem: required type, title (strings) and status (integer); detail and instance
    strings; field_errors, when present, a map of strings."""
    assert isinstance(body, dict)
    assert isinstance(body["type"], str)
    assert body["type"].startswith("https://kubernaut.ai/problems/")
    assert isinstance(body["title"], str)
    assert body["status"] == status
    assert isinstance(body.get("detail", ""), str)
    assert isinstance(body.get("instance", ""), str)
    assert all(isinstance(key, str) and isinstance(value, str) for key, value in body.get("field_errors", {}).items())


def _jsonb_text(value: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::jsonb::text", [value])
        return str(cursor.fetchone()[0])


def test_one_event_of_every_type_is_accepted_in_one_batch_and_read_back_unchanged(api):
    batch = every_type_batch()
    assert len(batch) == len(EVENT_TYPE_LIST) == 142
    raw = json.dumps(batch)

    response = post_events(api, raw.encode())

    assert response.status_code == 201, response.content[:500]
    assert response["Content-Type"] == "application/json"
    assert_batch_audit_event_response(response.json(), count=142)
    event_ids = response.json()["event_ids"]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT event_id::text, event_type, event_data::text FROM audit_events WHERE event_id = ANY(%s::uuid[])",
            [event_ids],
        )
        stored = {event_id: (event_type, data) for event_id, event_type, data in cursor.fetchall()}
    assert len(stored) == 142
    for event_id, sent in zip(event_ids, batch, strict=True):
        event_type, data = stored[event_id]
        assert event_type == sent["event_type"]
        # Byte-equal once both are in PostgreSQL's canonical jsonb text.
        assert data == _jsonb_text(json.dumps(sent["event_data"]))


def test_a_single_events_answer_is_an_audit_event_response(api):
    response = post_events(api, event_body("aiagent.session.started"), path=EVENTS_PATH)
    assert response.status_code == 201
    assert response["Content-Type"] == "application/json"
    assert_audit_event_response(response.json())
    assert AuditEvent.objects.filter(event_id=response.json()["event_id"]).exists()


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ([], 400),
        ([{"version": "1.0"}], 400),
        (b"[{", 400),
        ("not a list", 400),
    ],
)
def test_every_refusal_is_an_rfc7807_problem(api, body, status):
    response = post_events(api, body)
    assert response["Content-Type"] == "application/problem+json"
    assert_rfc7807_problem(response.json(), status=status)
