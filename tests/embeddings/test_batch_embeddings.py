"""Embeddings of a batch: one cache round trip, misses in as few provider calls as allowed, deferral.

Observed where it happens: Redis' own command statistics, the OpenAI-compatible server's
requests, the local provider's call histogram, and the rows PostgreSQL holds.
"""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
import pytest
import redis

from audit.models import AUDIT_MODELS, AuditKind
from embeddings.cache import RedisEmbeddingCache
from embeddings.models import EmbeddingBacklog, IncidentEmbedding
from embeddings.services import OPENAI_MAX_BATCH, embedding_runtime, embeddings_for_texts
from testutils.audit_rows import post_audit, table_counts
from testutils.batches import MIXED_KINDS, batch_of, post_batch
from testutils.embedding_settings import LOCAL_MODEL, OPENAI_MODEL, text_for, use_redis
from testutils.factories import VALID_BODIES
from testutils.metrics import MetricDelta
from testutils.openai_server import OpenAICompatibleServer, deterministic_vector
from testutils.redis_server import RedisServer

pytestmark = pytest.mark.django_db

LATENCY = "kubernaut_embedding_duration_seconds_count"
DEFERRALS = "kubernaut_embedding_deferrals_total"
CACHE = "kubernaut_embedding_cache_total"


def distinct_batch(count: int) -> dict[str, Any]:
    """`count` remediation records whose embedding texts all differ."""
    body = batch_of([AuditKind.REMEDIATION] * count)
    for number, item in enumerate(body["records"]):
        item["record"]["reason"] = f"distinct incident text {number} {uuid.uuid4().hex[:8]}"
    return body


def command_calls(client: Any, command: str) -> int:
    return int(client.info("commandstats").get(f"cmdstat_{command}", {}).get("calls", 0))


def test_a_batch_asks_redis_once_for_every_text_and_the_provider_once_for_the_misses(
    api: Any, settings: Any, openai_primary: OpenAICompatibleServer
) -> None:
    with RedisServer() as own_redis:
        use_redis(settings, own_redis.url, prefix="batch")
        assert isinstance(embedding_runtime().cache, RedisEmbeddingCache)
        client = redis.Redis.from_url(own_redis.url)
        body = distinct_batch(12)
        reads = {command: command_calls(client, command) for command in ("mget", "get", "set")}

        response = post_batch(api, body)

        assert response.status_code == 201, response.content
        assert command_calls(client, "mget") - reads["mget"] == 1
        assert command_calls(client, "get") - reads["get"] == 0
        assert command_calls(client, "set") - reads["set"] == 12  # one pipeline of 12 SETs
        assert openai_primary.request_count == 1
        assert len(openai_primary.bodies[0]["input"]) == 12

        # The same texts again: every one from the cache in one MGET, no provider call.
        metrics = MetricDelta((CACHE, {"result": "hit"}))
        again = post_batch(api, {"records": [{**item, "record": {**item["record"], "correlationId": f"c-{n}"}}
                                             for n, item in enumerate(body["records"])]})  # fmt: skip
        assert again.status_code == 201
        assert command_calls(client, "mget") - reads["mget"] == 2
        assert openai_primary.request_count == 1
        assert metrics.of(CACHE, result="hit") == 12
        client.close()

    for item, result in zip(body["records"], response.json()["results"], strict=True):
        row = IncidentEmbedding.objects.get(id=result["embeddingId"])
        expected = deterministic_vector(OPENAI_MODEL, text_for(AuditKind.REMEDIATION, item["record"]))
        np.testing.assert_array_equal(np.asarray(row.embedding, dtype=np.float32), expected)


def test_misses_go_to_the_openai_provider_in_calls_of_its_batch_limit(openai_primary: OpenAICompatibleServer) -> None:
    texts = [f"text number {n}" for n in range(OPENAI_MAX_BATCH + 6)]

    embedded = embeddings_for_texts(texts=[*texts, texts[0]])

    assert [len(body["input"]) for body in openai_primary.bodies] == [OPENAI_MAX_BATCH, 6]
    assert embedded.deferral_reason == ""
    assert len(embedded.embeddings) == len(texts) + 1
    for text, embedding in zip([*texts, texts[0]], embedded.embeddings, strict=True):
        assert embedding is not None
        assert embedding.model == OPENAI_MODEL
        np.testing.assert_array_equal(embedding.vector, deterministic_vector(OPENAI_MODEL, text))


def test_the_local_model_embeds_all_misses_of_a_batch_in_one_call(api: Any) -> None:
    metrics = MetricDelta((LATENCY, {"provider": "local"}))

    response = post_batch(api, distinct_batch(40))

    assert response.status_code == 201, response.content
    assert metrics.of(LATENCY, provider="local") == 1
    ids = [result["embeddingId"] for result in response.json()["results"]]
    assert IncidentEmbedding.objects.filter(id__in=ids, model=LOCAL_MODEL).count() == 40


def test_provider_down_stores_every_record_as_pending_and_says_so(
    api: Any, settings: Any, openai_primary: OpenAICompatibleServer
) -> None:
    settings.EMBEDDING_FALLBACK = "none"
    openai_primary.stop()  # connection refused: a real outage
    metrics = MetricDelta((DEFERRALS, {}))
    body = batch_of(MIXED_KINDS)
    before = table_counts()

    response = post_batch(api, body)

    assert response.status_code == 201, response.content
    results = response.json()["results"]
    assert [(r["embeddingStatus"], r["embeddingId"]) for r in results] == [("pending", None)] * len(MIXED_KINDS)
    after = table_counts()
    assert after["embeddings"] == before["embeddings"]
    assert after["backlog"] - before["backlog"] == len(MIXED_KINDS)
    for item, result in zip(body["records"], results, strict=True):
        kind = AuditKind(item["kind"])
        assert AUDIT_MODELS[kind].objects.get(id=result["id"]).payload == item["record"]
        backlog = EmbeddingBacklog.objects.get(audit_type=kind.value, audit_id=result["id"])
        assert "connection error" in backlog.reason
    assert metrics.of(DEFERRALS) == len(MIXED_KINDS)


def test_with_the_provider_down_cached_texts_are_stored_and_the_rest_pending(
    api: Any, settings: Any, openai_primary: OpenAICompatibleServer
) -> None:
    settings.EMBEDDING_FALLBACK = "none"
    seen = VALID_BODIES[AuditKind.REMEDIATION]()
    assert post_audit(api, AuditKind.REMEDIATION, seen).json()["embeddingStatus"] == "stored"
    openai_primary.stop()
    body = distinct_batch(3)
    body["records"][1]["record"] = VALID_BODIES[AuditKind.REMEDIATION]()  # the cached text

    results = post_batch(api, body).json()["results"]

    assert [result["embeddingStatus"] for result in results] == ["pending", "stored", "pending"]
    stored = IncidentEmbedding.objects.get(id=results[1]["embeddingId"])
    assert (stored.audit_id, stored.model) == (results[1]["id"], OPENAI_MODEL)
    pending = {row.audit_id for row in EmbeddingBacklog.objects.filter(audit_type="remediation")}
    assert pending == {results[0]["id"], results[2]["id"]}


def test_a_dead_redis_costs_a_batch_one_failed_lookup_then_bypasses(settings: Any) -> None:
    with RedisServer() as own_redis:
        use_redis(settings, own_redis.url, prefix="dead")
        cache = embedding_runtime().cache
        own_redis.kill()
        metrics = MetricDelta((CACHE, {"result": "error"}), (CACHE, {"result": "bypass"}))

        assert cache.get_many(["a", "b", "c"]) == [None, None, None]
        assert cache.get_many(["d", "e"]) == [None, None]
        cache.set_many({"f": deterministic_vector("m", "f", 8)})  # skipped while bypassed

    assert (metrics.of(CACHE, result="error"), metrics.of(CACHE, result="bypass")) == (3, 2)


def test_a_batch_can_hold_vectors_of_two_models(api: Any, openai_primary: OpenAICompatibleServer) -> None:
    # A text cached from the primary, and a new one while the primary fails: the fallback's.
    seen = VALID_BODIES[AuditKind.REMEDIATION]()
    assert post_audit(api, AuditKind.REMEDIATION, seen).json()["embeddingStatus"] == "stored"
    openai_primary.set_mode("error500")
    body = distinct_batch(2)
    body["records"][0]["record"] = VALID_BODIES[AuditKind.REMEDIATION]()

    results = post_batch(api, body).json()["results"]

    rows = [IncidentEmbedding.objects.get(id=result["embeddingId"]) for result in results]
    assert [(row.model, row.dimensions) for row in rows] == [(OPENAI_MODEL, 1536), (LOCAL_MODEL, 384)]
    assert [row.audit_id for row in rows] == [result["id"] for result in results]


def test_once_a_call_fell_back_the_rest_of_the_batch_goes_to_the_fallback_at_once(
    openai_primary: OpenAICompatibleServer,
) -> None:
    # The primary answers 500s: the first call waits out its retries and falls back; the
    # other misses must not wait them out again, chunk after chunk.
    openai_primary.set_mode("error500")
    metrics = MetricDelta((LATENCY, {"provider": "local"}))
    texts = [f"text number {n}" for n in range(2 * OPENAI_MAX_BATCH + 6)]

    embedded = embeddings_for_texts(texts=texts)

    assert openai_primary.request_count == 4  # one chunk's try and three retries, not three chunks'
    assert metrics.of(LATENCY, provider="local") == 2  # the first chunk, then all the rest
    assert [embedding.model if embedding else None for embedding in embedded.embeddings] == [LOCAL_MODEL] * len(texts)
    assert embedded.deferral_reason == ""


def test_with_no_fallback_a_failed_call_defers_the_rest_without_another_wait(
    settings: Any, openai_primary: OpenAICompatibleServer
) -> None:
    settings.EMBEDDING_FALLBACK = "none"
    openai_primary.set_mode("error500")
    texts = [f"text number {n}" for n in range(OPENAI_MAX_BATCH + 6)]

    embedded = embeddings_for_texts(texts=texts)

    assert openai_primary.request_count == 4
    assert embedded.embeddings == [None] * len(texts)
    assert "HTTP 500" in embedded.deferral_reason
