"""Primary provider with retries (exponential backoff, full jitter, time budget), then fallback.

A failing primary is "retried 3 times": one try plus ``retries=3`` retries,
so at most four primary calls. Retries stop early when

* the error is not retryable (400/401/..., malformed answer): asking again cannot help;
* the next backoff sleep would end at or past the budget deadline: we would wake with no
  time left for a call, so we fall back now instead of sleeping for nothing.

The budget bounds the time spent before *starting* another primary call; a call already in
flight is bounded by the provider's own timeout, so the worst case is about
``budget_s + timeout_s``. The fallback (normally the local model, no network) is always tried
once, even when the budget is spent: a late answer beats no answer.

With a circuit breaker (embeddings/circuit.py), a call the breaker refuses goes straight to the
fallback (reason ``circuit_open``) without touching the primary; the half-open probe is one
primary call without retries, made in the background while its caller is answered by the
fallback; retries stop as soon as the circuit opens.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from kubernaut_storage.database.retries import RetriesExhausted, RetryPolicy, call_with_retries

from .circuit import CircuitBreaker, CircuitState
from .providers.base import EmbeddingProvider, EmbeddingProviderError, Vector

logger = logging.getLogger(__name__)

EventHook = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True, slots=True)
class ChainResult:
    vectors: list[Vector]
    #: the model of the provider that answered: stored beside the vectors
    model: str
    #: ``name`` of the provider that answered ("openai", "local")
    provider: str
    fell_back: bool
    #: primary calls made (0 only for an empty input)
    attempts: int


class EmbeddingUnavailable(EmbeddingProviderError):  # noqa: N818 - the name the callers use
    """Neither the primary (after retries) nor the fallback could embed.

    ``causes`` holds every error in the order it happened (primary attempts, then fallback).
    ``retryable`` is True when any cause was, so the caller knows deferring is worthwhile.
    """

    def __init__(self, message: str, causes: Sequence[EmbeddingProviderError]) -> None:
        super().__init__(message, retryable=any(c.retryable for c in causes))
        self.causes: tuple[EmbeddingProviderError, ...] = tuple(causes)


class ProviderChain:
    """Embeds with ``primary``, retrying transient failures, then with ``fallback``.

    ``sleep``, ``clock`` and ``rng`` are injectable so tests control time and jitter.
    ``on_event(name, fields)`` is told about "retry", "fallback" and "unavailable" so the
    caller can count them (Prometheus, logs); a failing hook never fails an embedding.
    """

    def __init__(
        self,
        primary: EmbeddingProvider,
        fallback: EmbeddingProvider | None,
        *,
        retries: int = 3,
        base_backoff_s: float = 0.05,
        max_backoff_s: float = 1.0,
        budget_s: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
        on_event: EventHook | None = None,
        circuit: CircuitBreaker | None = None,
    ) -> None:
        self.policy = RetryPolicy(
            retries=retries, base_backoff_s=base_backoff_s, max_backoff_s=max_backoff_s, budget_s=budget_s
        )
        self.budget_s = budget_s
        self.primary = primary
        self.fallback = fallback
        self._sleep = sleep
        self._clock = clock
        self._rng = rng
        self._on_event = on_event
        self.circuit = circuit
        #: the last probe of the half-open circuit started (tests wait for it)
        self.probe: threading.Thread | None = None

    def backoff_cap(self, retry: int) -> float:
        """Upper bound of the sleep before retry number ``retry`` (0-based)."""
        return self.policy.backoff_cap(retry)

    def embed(self, texts: Sequence[str]) -> ChainResult:
        texts = list(texts)
        if not texts:
            return ChainResult([], self.primary.model, self.primary.name, False, 0)

        causes: list[EmbeddingProviderError] = []
        circuit = self.circuit
        if circuit is not None:
            if not circuit.allow():
                return self._fall_back(
                    texts, causes, reason="circuit_open", message=f"{self.primary.name} circuit open"
                )
            if circuit.state is not CircuitState.CLOSED:
                # This caller holds the half-open circuit's probe. It runs in the background:
                # no write waits on a primary the circuit distrusts (a hanging one would hold
                # it for a timeout), and this one is answered like the others meanwhile.
                self._probe_start(circuit, texts)
                message = f"{self.primary.name} circuit half-open, probing"
                return self._fall_back(texts, causes, reason="circuit_open", message=message)

        def primary_call() -> list[Vector]:
            try:
                vectors = _checked(self.primary, texts)
            except BaseException as exc:
                if circuit is not None:
                    circuit.record_failure(timed_out=isinstance(exc, EmbeddingProviderError) and exc.timed_out)
                if isinstance(exc, EmbeddingProviderError):
                    causes.append(exc)
                raise
            if circuit is not None:
                circuit.record_success()
            return vectors

        def retryable(error: Exception) -> bool:
            if not (isinstance(error, EmbeddingProviderError) and error.retryable):
                return False
            # opened by this call's failures or by other threads': stop waiting on the primary
            return circuit is None or circuit.state is CircuitState.CLOSED

        def on_retry(attempt: int, error: Exception, delay: float) -> None:
            self._emit("retry", provider=self.primary.name, attempt=attempt, delay_s=delay, error=str(error))

        # Only EmbeddingProviderError is retried or falls back: anything else is a bug in a
        # provider and must surface, not be papered over by the fallback.
        try:
            vectors = call_with_retries(
                primary_call,
                policy=self.policy,
                retryable=retryable,
                on_retry=on_retry,
                sleep=self._sleep,
                clock=self._clock,
                rng=self._rng,
            )
        except RetriesExhausted as spent:
            reason = f"{spent.reason}_exhausted"
        except EmbeddingProviderError as error:
            # a retryable error the retry loop let through: the circuit opened meanwhile
            reason = "circuit_open" if error.retryable and circuit is not None else "non_retryable"
        else:
            return ChainResult(vectors, self.primary.model, self.primary.name, False, len(causes) + 1)

        message = f"{self.primary.name} failed {len(causes)}x ({reason}): {causes[-1]}"
        return self._fall_back(texts, causes, reason=reason, message=message)

    def _probe_start(self, circuit: CircuitBreaker, texts: list[str]) -> None:
        """One call to the primary on a thread of its own; its outcome closes or reopens the
        circuit. The vectors are dropped: the caller was answered by the fallback."""

        def probe() -> None:
            succeeded = False
            try:
                _checked(self.primary, texts)
                succeeded = True
            except EmbeddingProviderError as exc:
                logger.info("embedding circuit probe of %s failed: %s", self.primary.name, exc)
            finally:
                # in `finally`: a probe that died of a bug must not leave the circuit half-open
                if succeeded:
                    circuit.record_success()
                else:
                    circuit.record_failure()

        self.probe = threading.Thread(target=probe, name=f"embedding-probe-{self.primary.name}", daemon=True)
        self.probe.start()

    def _fall_back(
        self, texts: list[str], causes: list[EmbeddingProviderError], *, reason: str, message: str
    ) -> ChainResult:
        """The fallback's answer after the primary failed ``len(causes)`` times (0: skipped)."""
        attempts = len(causes)
        if self.fallback is not None:
            self._emit(
                "fallback",
                provider=self.fallback.name,
                primary=self.primary.name,
                reason=reason,
                attempts=attempts,
                error=str(causes[-1]) if causes else message,
            )
            try:
                vectors = _checked(self.fallback, texts)
            except EmbeddingProviderError as exc:
                causes.append(exc)
                message += f"; fallback {self.fallback.name} failed: {exc}"
            else:
                return ChainResult(vectors, self.fallback.model, self.fallback.name, True, attempts)

        self._emit("unavailable", reason=reason, attempts=attempts, errors=len(causes))
        # A skipped primary is worth deferring for: the circuit closes again once it recovers.
        error = EmbeddingUnavailable(f"no embedding: {message}", causes or [EmbeddingProviderError(message)])
        raise error from (causes[-1] if causes else None)

    def embed_with_fallback(self, texts: Sequence[str]) -> ChainResult:
        """``texts`` by the fallback alone, once: for the rest of a batch whose previous call
        just fell back, which would otherwise wait out the primary's retries again.

        Raises EmbeddingUnavailable when there is no fallback or it fails.
        """
        texts = list(texts)
        if self.fallback is None:
            raise EmbeddingUnavailable("no embedding: no fallback provider", [])
        try:
            vectors = _checked(self.fallback, texts)
        except EmbeddingProviderError as exc:
            raise EmbeddingUnavailable(f"no embedding: fallback {self.fallback.name} failed: {exc}", [exc]) from exc
        return ChainResult(vectors, self.fallback.model, self.fallback.name, True, 0)

    def _emit(self, event: str, **fields: Any) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(event, fields)
        except Exception:
            # metrics are best effort: a broken hook must not turn a success into a failure
            logger.exception("embedding chain event hook failed on %r", event)


def _checked(provider: EmbeddingProvider, texts: list[str]) -> list[Vector]:
    vectors = provider.embed(texts)
    # vectors are stored against texts by position: a short answer would misfile them
    if len(vectors) != len(texts):
        raise EmbeddingProviderError(
            f"{provider.name}: {len(vectors)} vectors for {len(texts)} texts",
            retryable=False,
        )
    return vectors
