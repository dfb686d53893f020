"""What each answer of the audit-event endpoints makes upstream Kubernaut's client do, as a
matrix: a valid batch is stored, or answered so that the client sends it again; only a batch
that can never be valid is answered with a status the client drops it on. No answer is one
the client turns into a duplicate (202, an undecodable 201).

The client's reading of a status, in our words: 201 with a decodable body is success; 202 or a
201 it cannot decode is a network error, retried, so stored twice; 401, 403 and 5xx are
retried (3 attempts); every other 4xx drops the batch.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from django.db import connection

from audit.models import AuditEvent
from audit.write.records_in_flight import records_in_flight
from testutils.events import event_batch, post_events
from testutils.tokenreview_server import FakeTokenReviewServer

pytestmark = pytest.mark.django_db

STORED, RETRIED, DROPPED, DUPLICATED = "stored", "retried", "dropped", "duplicated"
OWN_TOKEN = "storage-own-sa-token"
CONTROLLER = "system:serviceaccount:kubernaut-system:gateway"
CONTROLLER_TOKEN = "eyJhbGciOiJSUzI1NiJ9.gateway-token.c2lnbmF0dXJl"


def client_outcome(response: Any) -> str:
    """What upstream's client does with `response`."""
    status = response.status_code
    if status == 201:
        try:
            ids = response.json()["event_ids"]
            decodable = response["Content-Type"] == "application/json" and all(uuid.UUID(i) for i in ids)
        except (ValueError, KeyError):
            decodable = False
        return STORED if decodable else DUPLICATED
    if status == 202:
        return DUPLICATED
    if status in (401, 403) or status >= 500:
        return RETRIED
    return DROPPED


@pytest.fixture
def apiserver(settings: Any) -> Iterator[FakeTokenReviewServer]:
    with FakeTokenReviewServer(caller_token=OWN_TOKEN) as server:
        server.tokens[CONTROLLER_TOKEN] = (CONTROLLER, ["system:serviceaccounts"], [])
        settings.AUTH_MODE = "tokenreview"
        settings.KUBERNETES_TOKENREVIEW = {"api_url": server.url, "bearer_token": OWN_TOKEN}
        yield server


def _valid(api: Any, **headers: str) -> Any:
    return post_events(api, event_batch(["gateway.signal.received"] * 3), **headers)


def _stored(api: Any, settings: Any) -> Any:
    return _valid(api)


def _records_budget_full(api: Any, settings: Any) -> Any:
    settings.AUDIT_RECORDS_IN_FLIGHT = 5
    settings.AUDIT_EVENTS_ADMISSION_WAIT_SECONDS = 0.2
    with records_in_flight().admitted(5):
        return _valid(api)


def _table_locked(api: Any, settings: Any) -> Any:
    # Another session holds the table (DDL, a long maintenance statement): the write waits
    # lock_timeout and gives up without storing anything.
    with psycopg.connect(**_connection_params()) as other:
        other.execute("SET lock_timeout = '5s'")
        # SHARE: readers pass (the test's own transaction has read the table), inserts wait.
        other.execute("LOCK TABLE audit_events IN SHARE MODE")
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '200ms'")
        try:
            return _valid(api)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET lock_timeout")


def _statement_timeout(api: Any, settings: Any) -> Any:
    with psycopg.connect(**_connection_params()) as other:
        other.execute("SET lock_timeout = '5s'")
        # SHARE: readers pass (the test's own transaction has read the table), inserts wait.
        other.execute("LOCK TABLE audit_events IN SHARE MODE")
        with connection.cursor() as cursor:
            cursor.execute("SET statement_timeout = '200ms'")
        try:
            return _valid(api)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET statement_timeout")


def _no_token(api: Any, settings: Any) -> Any:
    with FakeTokenReviewServer(caller_token=OWN_TOKEN) as server:
        settings.AUTH_MODE = "tokenreview"
        settings.KUBERNETES_TOKENREVIEW = {"api_url": server.url, "bearer_token": OWN_TOKEN}
        return _valid(api)


def _not_allowed(api: Any, settings: Any) -> Any:
    with FakeTokenReviewServer(caller_token=OWN_TOKEN) as server:
        server.tokens[CONTROLLER_TOKEN] = (CONTROLLER, ["system:serviceaccounts"], [])
        settings.AUTH_MODE = "tokenreview"
        settings.KUBERNETES_TOKENREVIEW = {"api_url": server.url, "bearer_token": OWN_TOKEN}
        settings.AUDIT_WRITERS = {**settings.AUDIT_WRITERS, "events": ["system:serviceaccount:x:someone-else"]}
        return _valid(api, Authorization=f"Bearer {CONTROLLER_TOKEN}")


def _tokenreview_down(api: Any, settings: Any) -> Any:
    with FakeTokenReviewServer(caller_token=OWN_TOKEN) as server:
        server.fail_with_status = 500
        settings.AUTH_MODE = "tokenreview"
        settings.KUBERNETES_TOKENREVIEW = {"api_url": server.url, "bearer_token": OWN_TOKEN}
        return _valid(api, Authorization=f"Bearer {CONTROLLER_TOKEN}")


def _invalid_event(api: Any, settings: Any) -> Any:
    body = event_batch(["gateway.signal.received"] * 3)
    body[1]["event_outcome"] = "maybe"
    return post_events(api, body)


def _over_the_batch_limit(api: Any, settings: Any) -> Any:
    settings.AUDIT_EVENTS_BATCH_MAX = 2
    return _valid(api)


def _over_the_body_limit(api: Any, settings: Any) -> Any:
    settings.AUDIT_EVENTS_MAX_BODY_BYTES = 64
    return _valid(api)


def _connection_params() -> dict[str, Any]:
    params = connection.get_connection_params()
    return {
        key: value for key, value in params.items() if key not in ("cursor_factory", "context", "prepare_threshold")
    }


#: (situation, whether the batch is valid, what is answered, what the client then does)
MATRIX: list[tuple[Callable[[Any, Any], Any], bool, int, str]] = [
    (_stored, True, 201, STORED),
    (_records_budget_full, True, 503, RETRIED),
    (_table_locked, True, 503, RETRIED),
    (_statement_timeout, True, 503, RETRIED),
    (_no_token, True, 401, RETRIED),
    (_not_allowed, True, 403, RETRIED),
    (_tokenreview_down, True, 503, RETRIED),
    (_invalid_event, False, 400, DROPPED),
    (_over_the_batch_limit, False, 400, DROPPED),
    (_over_the_body_limit, False, 413, DROPPED),
]


@pytest.mark.parametrize(("situation", "valid", "status", "outcome"), MATRIX, ids=[m[0].__name__[1:] for m in MATRIX])
def test_status_and_client_outcome(api, settings, situation, valid, status, outcome):
    before = AuditEvent.objects.count()

    response = situation(api, settings)

    assert response.status_code == status, response.content[:300]
    assert client_outcome(response) == outcome
    if valid:
        assert outcome in (STORED, RETRIED)  # a valid batch is never lost nor doubled
    if response.status_code != 201:
        assert response["Content-Type"] == "application/problem+json"
        assert AuditEvent.objects.count() == before
    if response.status_code == 503:
        assert int(response["Retry-After"]) >= 1
