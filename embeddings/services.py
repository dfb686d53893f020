"""Embedding services: turn texts into vectors (cache → provider chain), and the process's runtime.

The chain and the cache are built from settings once per process, on first use: a gunicorn
worker forked from a master that already built them builds its own, because the openai
client's connection pool and the local model's thread pools must not cross a fork.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

from embeddings.cache import (
    EmbeddingCache,
    LocalMemoryEmbeddingCache,
    NoEmbeddingCache,
    RedisEmbeddingCache,
    embedding_cache_key,
)
from embeddings.chain import ProviderChain
from embeddings.circuit import CircuitBreaker, CircuitState
from embeddings.coalescing import CoalescingProvider
from embeddings.providers.base import Embedding, EmbeddingProvider, EmbeddingProviderError, Vector
from embeddings.providers.local import LocalMiniLMProvider
from embeddings.providers.openai import OpenAIEmbeddingProvider
from kubernaut_storage.observability.metrics import (
    EMBEDDING_BATCH_TEXTS,
    EMBEDDING_CIRCUIT_STATE,
    EMBEDDING_FALLBACKS,
    EMBEDDING_LATENCY,
    EMBEDDING_RETRIES,
)

logger = logging.getLogger(__name__)

#: Texts per openai call at most: OpenAI takes 2,048 inputs and 300,000 tokens a request, and
#: 64 of our texts (at most ~3,000 tokens each) stay below both.
OPENAI_MAX_BATCH = 64

#: The CACHES alias that, when configured (REDIS_URL set), makes the cache Redis.
REDIS_CACHE_ALIAS = "embeddings"
#: The process-local cache used otherwise.
MEMORY_CACHE_ALIAS = "embeddings_memory"
FALLBACK_CHOICES = ("local", "none")


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class EmbeddingRuntime:
    """The process's provider chain and cache, tagged with the process that built them."""

    pid: int
    chain: ProviderChain
    cache: EmbeddingCache
    #: Texts one call to the primary may carry (None: any number, as one batch).
    batch_limit: int | None = None


@dataclass(frozen=True, slots=True)
class TextEmbeddings:
    """The embeddings of several texts, in order; None where no provider could embed one."""

    embeddings: list[Embedding | None]
    #: Why the None entries have no embedding; "" when every text has one.
    deferral_reason: str


def embedding_for_text(*, text: str) -> Embedding:
    """The vector for `text`, from the cache or the provider chain.

    The cache key names the model of the provider that would answer: the primary's. A vector
    the fallback made is stored under the fallback's model, so it can never be served as the
    primary's (vectors of different models are never compared). Raises EmbeddingProviderError
    (EmbeddingUnavailable) when no provider can embed.
    """
    runtime = embedding_runtime()
    model = runtime.chain.primary.model
    cached = runtime.cache.get(embedding_cache_key(model=model, text=text))
    if cached is not None:
        return Embedding(vector=cached, model=model)
    result = runtime.chain.embed([text])
    [vector] = result.vectors
    runtime.cache.set(embedding_cache_key(model=result.model, text=text), vector)
    return Embedding(vector=vector, model=result.model)


def embeddings_for_texts(*, texts: Sequence[str]) -> TextEmbeddings:
    """The vectors of many texts: one cache round trip, then the misses in as few provider
    calls as the primary's batch limit allows (the local model: one call).

    The same text twice is looked up and embedded once. An outage costs a batch one wait for
    the primary, not one per call: once a call fell back, the remaining misses go to the
    fallback in one call; once a call failed altogether (EmbeddingUnavailable), they are None.
    """
    runtime = embedding_runtime()
    chain = runtime.chain
    distinct = list(dict.fromkeys(texts))
    cached = runtime.cache.get_many([embedding_cache_key(model=chain.primary.model, text=text) for text in distinct])
    found = {
        text: Embedding(vector=vector, model=chain.primary.model)
        for text, vector in zip(distinct, cached, strict=True)
        if vector is not None
    }
    misses = [text for text in distinct if text not in found]
    step = runtime.batch_limit or max(1, len(misses))
    fresh: dict[str, Vector] = {}
    deferral_reason = ""
    start, fell_back = 0, False
    while start < len(misses):
        chunk = misses[start:] if fell_back else misses[start : start + step]
        try:
            result = chain.embed_with_fallback(chunk) if fell_back else chain.embed(chunk)
        except EmbeddingProviderError as exc:
            deferral_reason = str(exc) or type(exc).__name__
            break
        for text, vector in zip(chunk, result.vectors, strict=True):
            found[text] = Embedding(vector=vector, model=result.model)
            fresh[embedding_cache_key(model=result.model, text=text)] = vector
        start, fell_back = start + len(chunk), result.fell_back
    runtime.cache.set_many(fresh)
    return TextEmbeddings(embeddings=[found.get(text) for text in texts], deferral_reason=deferral_reason)


def embedding_runtime() -> EmbeddingRuntime:
    """This process's chain and cache, built on first use from settings."""
    global _runtime
    runtime = _runtime
    pid = os.getpid()
    if runtime is not None and runtime.pid == pid:
        return runtime
    with _runtime_lock:
        runtime = _runtime
        if runtime is None or runtime.pid != pid:
            # A runtime inherited from the parent is dropped, not closed: its sockets are
            # shared with the parent, which still uses them.
            chain = _chain_build()
            runtime = EmbeddingRuntime(
                pid=pid,
                chain=chain,
                cache=_cache_build(),
                batch_limit=chain.primary.max_batch if isinstance(chain.primary, CoalescingProvider) else None,
            )
            _runtime = runtime
            logger.info(
                "embeddings: primary %s (%s), fallback %s, cache %s",
                runtime.chain.primary.name,
                runtime.chain.primary.model,
                runtime.chain.fallback.name if runtime.chain.fallback else "none",
                type(runtime.cache).__name__,
            )
        return runtime


def embedding_circuit_report() -> dict[str, str] | None:
    """The primary's name and the state of this process's circuit breaker on it; None when
    there is none (the local model is the only provider) or no embedding was asked for yet
    (building the chain loads a model: a readiness probe must not)."""
    runtime = _runtime
    if runtime is None or runtime.pid != os.getpid() or runtime.chain.circuit is None:
        return None
    state = runtime.chain.circuit.state
    return {"provider": runtime.chain.primary.name, "state": state.name.lower().replace("_", "-")}


def embedding_backfill_chain() -> ProviderChain:
    """The process's chain without its circuit breaker: a backfill runs to reach the primary
    once it is back, so it asks it whatever the write path learned while it was down."""
    chain = embedding_runtime().chain
    return ProviderChain(chain.primary, chain.fallback, budget_s=chain.budget_s, on_event=_chain_event)


def embedding_primary_chain() -> ProviderChain:
    """The process's primary alone, with the same retries, budget and metrics: no fallback.

    For re-embedding rows a fallback made: falling back again would only make them again.
    """
    chain = embedding_runtime().chain
    return ProviderChain(chain.primary, None, budget_s=chain.budget_s, on_event=_chain_event)


def embedding_runtime_reset() -> None:
    """Forget the chain and cache; the next embedding rebuilds them from settings (tests)."""
    global _runtime
    with _runtime_lock:
        runtime, _runtime = _runtime, None
    if runtime is not None and runtime.pid == os.getpid():
        for provider in (runtime.chain.primary, runtime.chain.fallback):
            # Through the wrappers (coalescing, timing) to the openai client's pool.
            while provider is not None and not isinstance(provider, OpenAIEmbeddingProvider):
                provider = getattr(provider, "inner", None)
            if provider is not None:
                provider.close()


# --- building the runtime ---------------------------------------------------------------------


class TimedProvider:
    """A provider whose every call is observed in EMBEDDING_LATENCY under its name.

    Failed calls are observed too: during an outage the question is how long writes wait on
    the primary, and a histogram of successes only would hide exactly the timeouts.
    """

    def __init__(self, inner: EmbeddingProvider) -> None:
        self.inner = inner
        self.name = inner.name
        self.model = inner.model

    def embed(self, texts: Sequence[str]) -> list[Vector]:
        started = time.perf_counter()
        try:
            return self.inner.embed(texts)
        finally:
            EMBEDDING_LATENCY.labels(self.name).observe(time.perf_counter() - started)


def _chain_event(name: str, fields: dict[str, Any]) -> None:
    if name == "retry":
        EMBEDDING_RETRIES.labels(fields["provider"]).inc()
        logger.info("embedding retry %d of %s: %s", fields["attempt"], fields["provider"], fields["error"])
    elif name == "fallback":
        EMBEDDING_FALLBACKS.labels(fields["reason"]).inc()
        if fields["attempts"] == 0:
            # skipped by the open circuit: logged once when it opened, not once per write
            return
        logger.warning(
            "embedding fell back to %s after %d %s call(s) (%s): %s",
            fields["provider"],
            fields["attempts"],
            fields["primary"],
            fields["reason"],
            fields["error"],
        )
    # "unavailable" is counted where the write path defers (EMBEDDING_DEFERRALS), once per
    # stored record rather than once per failed chain call.


def _local_provider() -> LocalMiniLMProvider:
    """One local model per process and configuration: loading it takes memory and time, so a
    rebuilt chain (tests) reuses it."""
    threads, path = settings.EMBEDDING_LOCAL_THREADS, settings.EMBEDDING_LOCAL_MODEL_PATH
    with _local_lock:
        provider = _local_providers.get((threads, path))
        if provider is None:
            provider = LocalMiniLMProvider(intra_op_num_threads=threads, model_path=Path(path) if path else None)
            _local_providers[(threads, path)] = provider
        return provider


def _chain_build() -> ProviderChain:
    if settings.EMBEDDING_FALLBACK not in FALLBACK_CHOICES:
        raise ImproperlyConfigured(f"EMBEDDING_FALLBACK must be one of {', '.join(FALLBACK_CHOICES)}")
    # Not coalesced: batches of the local model ran no faster under load, with a worse p95 and
    # twice the memory per worker (docs/PERFORMANCE.md).
    local = TimedProvider(_local_provider())
    if not settings.EMBEDDING_OPENAI_API_KEY:
        # The local model is the only provider: nothing to fall back to.
        return ProviderChain(local, None, budget_s=settings.EMBEDDING_RETRY_BUDGET_S, on_event=_chain_event)
    primary = CoalescingProvider(
        TimedProvider(
            OpenAIEmbeddingProvider(
                base_url=settings.EMBEDDING_OPENAI_BASE_URL,
                api_key=settings.EMBEDDING_OPENAI_API_KEY,
                model=settings.EMBEDDING_OPENAI_MODEL,
                dimensions=settings.EMBEDDING_OPENAI_DIMENSIONS,
                timeout_s=settings.EMBEDDING_OPENAI_TIMEOUT_S,
            )
        ),
        max_in_flight=settings.EMBEDDING_OPENAI_MAX_IN_FLIGHT,
        max_batch=OPENAI_MAX_BATCH,
        # A slot frees within one call's timeout unless the API hangs; then the chain's
        # retries and fallback take over rather than another timeout in the queue.
        queue_timeout_s=settings.EMBEDDING_OPENAI_TIMEOUT_S,
        on_batch=EMBEDDING_BATCH_TEXTS.labels("openai").observe,
    )
    fallback = local if settings.EMBEDDING_FALLBACK == "local" else None
    return ProviderChain(
        primary,
        fallback,
        budget_s=settings.EMBEDDING_RETRY_BUDGET_S,
        on_event=_chain_event,
        circuit=circuit_breaker_build(provider=primary.name),
    )


def circuit_breaker_build(*, provider: str, clock: Callable[[], float] = time.monotonic) -> CircuitBreaker:
    """The circuit breaker of `provider` from settings, its state kept in the metric."""
    return CircuitBreaker(
        failure_threshold=settings.EMBEDDING_CIRCUIT_FAILURES,
        timeout_threshold=settings.EMBEDDING_CIRCUIT_TIMEOUTS,
        cooldown_s=settings.EMBEDDING_CIRCUIT_COOLDOWN_S,
        clock=clock,
        on_change=lambda state: _circuit_changed(provider, state),
    )


def _circuit_changed(provider: str, state: CircuitState) -> None:
    EMBEDDING_CIRCUIT_STATE.labels(provider).set(int(state))
    if state is CircuitState.OPEN:
        logger.warning("embedding circuit of %s open: writes skip it until a probe succeeds", provider)
    else:
        logger.info("embedding circuit of %s %s", provider, state.name.lower().replace("_", "-"))


def _cache_build() -> EmbeddingCache:
    ttl_s = settings.EMBEDDING_CACHE_TTL_S
    if ttl_s <= 0:
        return NoEmbeddingCache()
    if REDIS_CACHE_ALIAS in settings.CACHES:
        return RedisEmbeddingCache.from_django_cache(alias=REDIS_CACHE_ALIAS, ttl_s=ttl_s)
    return LocalMemoryEmbeddingCache(cache=caches[MEMORY_CACHE_ALIAS], ttl_s=ttl_s)


_runtime: EmbeddingRuntime | None = None
_runtime_lock = threading.Lock()
_local_providers: dict[tuple[int, str | None], LocalMiniLMProvider] = {}
_local_lock = threading.Lock()

#: Besides every EMBEDDING_* setting, what the runtime is built from. Derived rather than listed, so
#: a new EMBEDDING_* setting cannot be missed by the rebuild.
_RUNTIME_SETTINGS_BESIDES_EMBEDDING = frozenset({"CACHES", "REDIS_URL"})


@receiver(setting_changed)
def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    # Settings change at run time only in tests (override_settings); rebuild from the new ones.
    if setting.startswith("EMBEDDING_") or setting in _RUNTIME_SETTINGS_BESIDES_EMBEDDING:
        embedding_runtime_reset()


def _after_fork() -> None:
    # A lock held by another thread at fork time would stay held forever in the child.
    global _runtime_lock, _local_lock
    _runtime_lock = threading.Lock()
    _local_lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork)
