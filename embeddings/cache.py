"""The embedding cache: SHA-256 of (model, text) → compact float32 bytes, 5 min TTL.

Two backends behind one tiny interface: Redis through django-redis when REDIS_URL is set
(shared by every worker and pod), else Django's local-memory cache as a bounded LRU. The cache is an
optimisation only: every failure is caught, counted and answered as "not cached", so a
Redis outage can slow writes down but never fail one.

Lookups are counted in EMBEDDING_CACHE by result: ``hit``, ``miss``, ``error`` (Redis failed
or timed out: the lookup or store cost up to one socket timeout) and ``bypass`` (Redis was
skipped because it failed moments ago: free). Each write makes one counted lookup (a batch:
one per distinct text, all in one round trip), plus an error in the rare case Redis fails
between its lookup and its store, so the hit rate is hit / (hit + miss + error + bypass).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
from django.core.cache.backends.base import BaseCache

from embeddings.providers.base import Vector
from kubernaut_storage.observability.metrics import EMBEDDING_CACHE

logger = logging.getLogger(__name__)

#: How long Redis is left alone after it failed. Short enough that a restarted Redis is used
#: again within seconds; long enough that a dead one costs one timeout per few hundred writes,
#: not one per write.
REDIS_RETRY_AFTER_S = 5.0


def embedding_cache_key(*, model: str, text: str) -> str:
    """SHA-256 of (model, text): the same text embedded by two models is two entries.

    The NUL separator keeps ("a", "bc") and ("ab", "c") apart.
    """
    return hashlib.sha256(f"{model}\x00{text}".encode()).hexdigest()


def vector_to_bytes(vector: Vector) -> bytes:
    """Little-endian float32: 4 bytes per dimension, nothing else (1.5 KiB at 384-d)."""
    return np.asarray(vector, dtype="<f4").tobytes()


def vector_from_bytes(raw: bytes) -> Vector:
    if not raw or len(raw) % 4:
        raise ValueError(f"a cached vector is a whole number of float32s, got {len(raw)} bytes")
    # frombuffer views immutable bytes; copy so callers own writable memory
    vector: Vector = np.frombuffer(raw, dtype="<f4").astype(np.float32, copy=True)
    return vector


class EmbeddingCache(Protocol):
    def get(self, key: str) -> Vector | None:
        """The cached vector, or None on a miss or any failure (counted)."""
        ...

    def set(self, key: str, vector: Vector) -> None:
        """Remember `vector` for the TTL; failures are counted and swallowed."""
        ...

    def get_many(self, keys: Sequence[str]) -> list[Vector | None]:
        """`get` of every key, in order, in one round trip; each key counts as one lookup."""
        ...

    def set_many(self, vectors: Mapping[str, Vector]) -> None:
        """`set` of every key, in one round trip."""
        ...


class NoEmbeddingCache:
    """EMBEDDING_CACHE_TTL_S = 0: every lookup is a miss, nothing is stored."""

    def get(self, key: str) -> Vector | None:
        EMBEDDING_CACHE.labels("miss").inc()
        return None

    def set(self, key: str, vector: Vector) -> None:
        return None

    def get_many(self, keys: Sequence[str]) -> list[Vector | None]:
        EMBEDDING_CACHE.labels("miss").inc(len(keys))
        return [None] * len(keys)

    def set_many(self, vectors: Mapping[str, Vector]) -> None:
        return None


class LocalMemoryEmbeddingCache:
    """The process's own memory (no REDIS_URL), through Django's local-memory cache backend.

    Configured in settings (CACHES["embeddings_memory"]) as a bounded LRU: at MAX_ENTRIES each
    new entry evicts the least recently used one. Values are the vectors' bytes, so a caller
    never holds (and can never mutate) a cached array.
    """

    def __init__(self, *, cache: BaseCache, ttl_s: float) -> None:
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        self._cache = cache
        self._ttl_s = ttl_s

    def get(self, key: str) -> Vector | None:
        raw = self._cache.get(key)
        if raw is None:
            EMBEDDING_CACHE.labels("miss").inc()
            return None
        EMBEDDING_CACHE.labels("hit").inc()
        return vector_from_bytes(raw)

    def set(self, key: str, vector: Vector) -> None:
        self._cache.set(key, vector_to_bytes(vector), timeout=self._ttl_s)

    def get_many(self, keys: Sequence[str]) -> list[Vector | None]:
        return [self.get(key) for key in keys]

    def set_many(self, vectors: Mapping[str, Vector]) -> None:
        for key, vector in vectors.items():
            self.set(key, vector)


class RedisEmbeddingCache:
    """Redis through django-redis' connection pool, storing raw float32 bytes (no pickle).

    After a failure Redis is skipped for `retry_after_s` (a small circuit breaker): a dead or
    unreachable Redis then costs one socket timeout per interval per process instead of one
    per write. The first call after the interval tries again.
    """

    def __init__(
        self,
        *,
        client: Any,
        ttl_s: float,
        prefix: str = "",
        retry_after_s: float = REDIS_RETRY_AFTER_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        self._client = client
        self._ttl_ms = max(1, round(ttl_s * 1000))
        self._prefix = f"{prefix}:" if prefix else ""
        self.retry_after_s = retry_after_s
        self._clock = clock
        # monotonic time before which Redis is not asked; a float store is atomic under the GIL
        self._down_until = 0.0

    @classmethod
    def from_django_cache(cls, *, alias: str, ttl_s: float) -> RedisEmbeddingCache:
        """Use the pool and the socket timeouts configured in CACHES[alias] (settings)."""
        from django.conf import settings
        from django_redis import get_redis_connection

        prefix = str(settings.CACHES[alias].get("KEY_PREFIX", ""))
        return cls(client=get_redis_connection(alias), ttl_s=ttl_s, prefix=prefix)

    def get(self, key: str) -> Vector | None:
        if self._bypassed():
            return None
        try:
            raw = self._client.get(self._prefix + key)
        except Exception as exc:  # any client failure: connection, timeout, protocol
            self._failed("get", exc)
            return None
        if self._down_until:
            logger.info("embedding cache (Redis) answers again")
            self._down_until = 0.0
        return self._vector(raw)

    @staticmethod
    def _vector(raw: bytes | None) -> Vector | None:
        """One looked-up value as a vector, counted as a hit or a miss."""
        if raw is None:
            EMBEDDING_CACHE.labels("miss").inc()
            return None
        try:
            vector = vector_from_bytes(raw)
        except ValueError as exc:
            # a foreign or truncated value under our key: treat as a miss, the set replaces it
            logger.warning("ignoring a malformed cached embedding: %s", exc)
            EMBEDDING_CACHE.labels("miss").inc()
            return None
        EMBEDDING_CACHE.labels("hit").inc()
        return vector

    def set(self, key: str, vector: Vector) -> None:
        if self._clock() < self._down_until:
            return  # the lookup was bypassed (and counted) already
        try:
            self._client.set(self._prefix + key, vector_to_bytes(vector), px=self._ttl_ms)
        except Exception as exc:
            self._failed("set", exc)

    def get_many(self, keys: Sequence[str]) -> list[Vector | None]:
        if not keys:
            return []
        if self._bypassed(len(keys)):
            return [None] * len(keys)
        try:
            raws = self._client.mget([self._prefix + key for key in keys])
        except Exception as exc:
            self._failed("mget", exc, lookups=len(keys))
            return [None] * len(keys)
        if self._down_until:
            logger.info("embedding cache (Redis) answers again")
            self._down_until = 0.0
        return [self._vector(raw) for raw in raws]

    def set_many(self, vectors: Mapping[str, Vector]) -> None:
        if not vectors or self._clock() < self._down_until:
            return
        # A pipeline without MULTI: one round trip, and each SET keeps its own TTL.
        pipeline = self._client.pipeline(transaction=False)
        for key, vector in vectors.items():
            pipeline.set(self._prefix + key, vector_to_bytes(vector), px=self._ttl_ms)
        try:
            pipeline.execute()
        except Exception as exc:
            self._failed("set", exc)

    def _bypassed(self, lookups: int = 1) -> bool:
        if self._clock() < self._down_until:
            EMBEDDING_CACHE.labels("bypass").inc(lookups)
            return True
        return False

    def _failed(self, operation: str, exc: Exception, *, lookups: int = 1) -> None:
        EMBEDDING_CACHE.labels("error").inc(lookups)
        if self._down_until == 0.0:
            # once per outage, not once per write
            logger.warning(
                "embedding cache (Redis) %s failed, skipping it for %.0f s: %s",
                operation,
                self.retry_after_s,
                exc,
            )
        self._down_until = self._clock() + self.retry_after_s
