"""The embedding cache: real Redis (and a Redis that dies), and the in-process LRU.

"No provider call" is observed where it happens: the OpenAI-compatible server's request count.
"""

from __future__ import annotations

import time
import uuid
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import redis
from django.core.cache.backends.locmem import LocMemCache

from audit.models import AuditKind
from embeddings.cache import (
    LocalMemoryEmbeddingCache,
    RedisEmbeddingCache,
    embedding_cache_key,
    vector_from_bytes,
    vector_to_bytes,
)
from embeddings.models import IncidentEmbedding
from embeddings.services import embedding_runtime
from testutils.audit_rows import post_audit
from testutils.embedding_settings import OPENAI_MODEL, text_for, use_memory_cache, use_redis
from testutils.factories import VALID_BODIES
from testutils.metrics import MetricDelta
from testutils.openai_server import OpenAICompatibleServer, deterministic_vector
from testutils.redis_server import RedisServer

KIND = AuditKind.REMEDIATION
CACHE = "kubernaut_embedding_cache_total"
RESULTS = ("hit", "miss", "error", "bypass")


def cache_metrics() -> MetricDelta:
    return MetricDelta(*[(CACHE, {"result": result}) for result in RESULTS])


def counts(metrics: MetricDelta) -> dict[str, float]:
    return {result: metrics.of(CACHE, result=result) for result in RESULTS}


def post_created(api: Any, body: dict[str, Any]) -> dict[str, Any]:
    response = post_audit(api, KIND, body)
    assert response.status_code == 201, response.content[:300]
    created: dict[str, Any] = response.json()
    assert created["embeddingStatus"] == "stored"
    return created


def same_incident_elsewhere() -> dict[str, Any]:
    """The factory's incident, with every identifier fresh: its text is the same."""
    suffix = uuid.uuid4().hex[:6]
    return VALID_BODIES[KIND](name=f"rr-{suffix}", namespace=f"ns-{suffix}", targetName=f"api-{suffix}")


# --- keys and values ----------------------------------------------------------------------------


def test_key_is_sha256_of_model_and_text() -> None:
    key = embedding_cache_key(model="m", text="t")
    assert len(key) == 64
    assert key != embedding_cache_key(model="other", text="t")
    assert embedding_cache_key(model="a", text="bc") != embedding_cache_key(model="ab", text="c")


def test_value_is_compact_float32() -> None:
    vector = deterministic_vector(OPENAI_MODEL, "x", 384)
    raw = vector_to_bytes(vector)
    assert len(raw) == 384 * 4
    np.testing.assert_array_equal(vector_from_bytes(raw), vector)
    with pytest.raises(ValueError, match="float32"):
        vector_from_bytes(raw[:-1])


# --- Redis ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_redis_hit_within_the_ttl_makes_no_provider_call(
    api: Any, settings: Any, redis_url: str, openai_primary: OpenAICompatibleServer
) -> None:
    prefix = f"test-{uuid.uuid4().hex}"
    use_redis(settings, redis_url, prefix=prefix)
    assert isinstance(embedding_runtime().cache, RedisEmbeddingCache)
    metrics = cache_metrics()
    first_body, second_body = VALID_BODIES[KIND](), same_incident_elsewhere()
    text = text_for(KIND, first_body)
    assert text_for(KIND, second_body) == text

    first = post_created(api, first_body)
    second = post_created(api, second_body)

    assert openai_primary.request_count == 1
    assert counts(metrics) == {"hit": 1, "miss": 1, "error": 0, "bypass": 0}
    expected = deterministic_vector(OPENAI_MODEL, text)
    for created in (first, second):
        row = IncidentEmbedding.objects.get(id=created["embeddingId"])
        assert row.model == OPENAI_MODEL
        np.testing.assert_array_equal(np.asarray(row.embedding, dtype=np.float32), expected)
    # In Redis: raw float32 under prefix + SHA-256(model, text), expiring within 5 minutes.
    client = redis.Redis.from_url(redis_url)
    key = f"{prefix}:{embedding_cache_key(model=OPENAI_MODEL, text=text)}"
    assert client.get(key) == vector_to_bytes(expected)
    assert 0 < client.pttl(key) <= 300_000
    client.close()


@pytest.mark.real_clock
@pytest.mark.django_db
def test_redis_miss_after_the_ttl(
    api: Any, settings: Any, redis_url: str, openai_primary: OpenAICompatibleServer
) -> None:
    settings.EMBEDDING_CACHE_TTL_S = 0.3
    use_redis(settings, redis_url, prefix=f"test-{uuid.uuid4().hex}")
    metrics = cache_metrics()

    post_created(api, VALID_BODIES[KIND]())
    post_created(api, same_incident_elsewhere())
    assert openai_primary.request_count == 1
    time.sleep(0.5)
    post_created(api, same_incident_elsewhere())

    assert openai_primary.request_count == 2
    assert counts(metrics) == {"hit": 1, "miss": 2, "error": 0, "bypass": 0}


@pytest.mark.django_db
def test_redis_killed_mid_test_writes_still_succeed_and_errors_are_counted(
    api: Any, settings: Any, openai_primary: OpenAICompatibleServer
) -> None:
    with RedisServer() as own_redis:
        use_redis(settings, own_redis.url, prefix="outage")
        post_created(api, VALID_BODIES[KIND]())
        post_created(api, same_incident_elsewhere())
        assert openai_primary.request_count == 1  # the second was a hit
        metrics = cache_metrics()

        own_redis.kill()
        during = [post_created(api, same_incident_elsewhere()) for _ in range(3)]

    # The first lookup failed (counted), then the breaker skipped Redis: no timeout per write.
    assert counts(metrics) == {"hit": 0, "miss": 0, "error": 1, "bypass": 2}
    assert openai_primary.request_count == 4
    assert all(IncidentEmbedding.objects.get(id=c["embeddingId"]).model == OPENAI_MODEL for c in during)


def test_redis_breaker_retries_after_its_interval_and_recovers() -> None:
    now = [1000.0]
    with RedisServer() as own_redis:
        client = redis.Redis(host="127.0.0.1", port=own_redis.port, socket_connect_timeout=0.1, socket_timeout=0.1)
        cache = RedisEmbeddingCache(client=client, ttl_s=60, retry_after_s=5, clock=lambda: now[0])
        vector = deterministic_vector("m", "t", 8)
        cache.set("k", vector)
        np.testing.assert_array_equal(cache.get("k"), vector)
        metrics = cache_metrics()

        own_redis.kill()
        assert cache.get("k") is None  # error: Redis is gone
        now[0] += 4.9
        assert cache.get("k") is None  # bypass: still inside the interval
        cache.set("k", vector)  # skipped, not an error
        own_redis.start()  # same port, empty (no persistence)
        now[0] += 0.2
        assert cache.get("k") is None  # asked again: a plain miss now
        cache.set("k", vector)
        np.testing.assert_array_equal(cache.get("k"), vector)
        client.close()

    assert counts(metrics) == {"hit": 1, "miss": 1, "error": 1, "bypass": 1}


# --- in-process memory ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_memory_cache_hit_makes_no_provider_call(
    api: Any, settings: Any, openai_primary: OpenAICompatibleServer
) -> None:
    use_memory_cache(settings)
    assert isinstance(embedding_runtime().cache, LocalMemoryEmbeddingCache)
    metrics = cache_metrics()

    post_created(api, VALID_BODIES[KIND]())
    post_created(api, same_incident_elsewhere())

    assert openai_primary.request_count == 1
    assert counts(metrics) == {"hit": 1, "miss": 1, "error": 0, "bypass": 0}


def local_memory(monkeypatch: pytest.MonkeyPatch, *, now: list[float], max_entries: int = 100) -> LocMemCache:
    """A fresh Django local-memory cache (LRU as configured in settings) on a clock of ours."""
    clock = SimpleNamespace(time=lambda: now[0])
    monkeypatch.setattr("django.core.cache.backends.base.time", clock)
    monkeypatch.setattr("django.core.cache.backends.locmem.time", clock)
    options = {"MAX_ENTRIES": max_entries, "CULL_FREQUENCY": max_entries}
    return LocMemCache(f"test-{uuid.uuid4().hex}", {"OPTIONS": options})


def test_memory_cache_expires_after_the_ttl(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [0.0]
    backend = local_memory(monkeypatch, now=now)
    cache = LocalMemoryEmbeddingCache(cache=backend, ttl_s=300)
    vector = deterministic_vector("m", "t", 8)
    cache.set("k", vector)
    now[0] = 299.9
    np.testing.assert_array_equal(cache.get("k"), vector)
    now[0] = 300.0
    assert cache.get("k") is None
    assert not backend._cache  # the expired entry is gone, not just hidden


def test_memory_cache_evicts_the_least_recently_used(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = local_memory(monkeypatch, now=[0.0], max_entries=2)
    cache = LocalMemoryEmbeddingCache(cache=backend, ttl_s=300)
    a, b, c = (deterministic_vector("m", name, 8) for name in "abc")
    cache.set("a", a)
    cache.set("b", b)
    cache.get("a")  # a is now more recent than b
    cache.set("c", c)
    assert len(backend._cache) == 2
    assert cache.get("b") is None
    np.testing.assert_array_equal(cache.get("a"), a)
    np.testing.assert_array_equal(cache.get("c"), c)


def test_memory_cache_hands_out_copies(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = LocalMemoryEmbeddingCache(cache=local_memory(monkeypatch, now=[0.0]), ttl_s=300)
    cache.set("k", deterministic_vector("m", "t", 8))
    got = cache.get("k")
    assert got is not None
    got[:] = 0
    assert np.count_nonzero(cache.get("k")) == 8


@pytest.mark.django_db
def test_ttl_zero_turns_the_cache_off(api: Any, settings: Any, openai_primary: OpenAICompatibleServer) -> None:
    settings.EMBEDDING_CACHE_TTL_S = 0
    post_created(api, VALID_BODIES[KIND]())
    post_created(api, same_incident_elsewhere())
    assert openai_primary.request_count == 2
