"""Concurrent writes against a slow embedding API: shared calls, and no connection held waiting."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from audit.models import AUDIT_MODELS, AuditKind
from embeddings.models import IncidentEmbedding
from testutils.audit_rows import post_audit
from testutils.factories import VALID_BODIES
from testutils.openai_server import OpenAICompatibleServer

KIND = AuditKind.REMEDIATION
API_DELAY_S = 0.5


def _concurrently(count: int, *, idempotency_keys: bool = False) -> list[Any]:
    """`count` POSTs of distinct records at once, each from its own thread and connection."""
    barrier = threading.Barrier(count)
    responses: list[Any] = []

    def send(index: int) -> None:
        body = VALID_BODIES[KIND]()
        body["message"] = f"distinct incident text {index}"  # a distinct embedding text each
        headers = {"Idempotency-Key": f"key-{index}"} if idempotency_keys else {}
        barrier.wait()
        try:
            responses.append(post_audit(Client(), KIND, body, **headers))
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return responses


@pytest.fixture
def slow_api(openai_primary: OpenAICompatibleServer, settings: Any) -> OpenAICompatibleServer:
    settings.EMBEDDING_OPENAI_MAX_IN_FLIGHT = 2
    openai_primary.set_mode("slow", delay_s=API_DELAY_S)
    return openai_primary


@pytest.fixture
def one_pooled_connection() -> Iterator[None]:
    """The whole process shares a pool of one connection; a thread waits 2 s for it at most."""
    options = connection.settings_dict["OPTIONS"]
    saved = options.get("pool")
    assert saved, "the pool is on by default (DATABASE_POOL_SIZE)"
    connection.close()
    options["pool"] = {**saved, "min_size": 1, "max_size": 1, "timeout": 2.0}
    connection.close_pool()
    yield
    connection.close()
    options["pool"] = saved
    connection.close_pool()


@pytest.mark.django_db(transaction=True)
def test_concurrent_writes_share_calls_to_the_embedding_api(slow_api):
    responses = _concurrently(8)
    assert sorted(response.status_code for response in responses) == [201] * 8
    ids = [response.json()["id"] for response in responses]
    assert AUDIT_MODELS[KIND].objects.filter(id__in=ids).count() == 8
    assert IncidentEmbedding.objects.filter(audit_id__in=ids, model=slow_api.bodies[0]["model"]).count() == 8
    # Two calls in flight at most: the rest queued and went out together.
    assert slow_api.request_count < 8
    assert sum(len(body["input"]) for body in slow_api.bodies) == 8


@pytest.mark.django_db(transaction=True)
def test_a_write_holds_no_pooled_connection_while_it_waits_for_its_embedding(slow_api, one_pooled_connection):
    # With Idempotency-Keys each write reads the key table before it embeds. Were the one
    # connection kept through the 0.5 s embedding, six writes would need 3 s of it in turn and
    # the last ones would give up after the pool's 2 s (503).
    responses = _concurrently(6, idempotency_keys=True)
    assert sorted(response.status_code for response in responses) == [201] * 6
