"""ProviderChain with a circuit breaker: an open circuit skips the primary, a probe is one call."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from embeddings.chain import EmbeddingUnavailable, ProviderChain
from embeddings.circuit import CircuitBreaker, CircuitState
from embeddings.providers.base import EmbeddingProviderError, Vector
from tests.embeddings.test_chain import Recorder, RecordingLocalProvider
from tests.embeddings.test_circuit import FakeClock


class OutageProvider(RecordingLocalProvider):
    """Fails every call with a retryable error (a 5xx, a timeout) while ``down``."""

    name = "primary"
    model = "primary-model"

    def __init__(self) -> None:
        super().__init__()
        self.down = True

    def embed(self, texts: Sequence[str]) -> list[Vector]:
        if self.down:
            self.calls.append(list(texts))
            raise EmbeddingProviderError("primary: 500", retryable=True)
        return super().embed(texts)


def chain_with_circuit(
    primary: OutageProvider, fallback: RecordingLocalProvider | None, clock: FakeClock, recorder: Recorder
) -> ProviderChain:
    circuit = CircuitBreaker(failure_threshold=5, cooldown_s=10.0, clock=clock)
    return ProviderChain(
        primary, fallback, retries=3, sleep=recorder.sleep, rng=lambda: 0.5, on_event=recorder.on_event, circuit=circuit
    )


def test_once_open_the_primary_is_not_called_and_the_fallback_answers() -> None:
    primary, fallback, clock, recorder = OutageProvider(), RecordingLocalProvider(), FakeClock(), Recorder()
    chain = chain_with_circuit(primary, fallback, clock, recorder)

    first = chain.embed(["a"])  # four calls: below the threshold of five
    second = chain.embed(["b"])  # its first call is the fifth failure: retries stop there
    assert chain.circuit is not None
    assert chain.circuit.state is CircuitState.OPEN
    third = chain.embed(["c"])

    assert len(primary.calls) == 5
    assert (first.attempts, second.attempts, third.attempts) == (4, 1, 0)
    assert [result.provider for result in (first, second, third)] == ["local"] * 3
    fallbacks = [fields["reason"] for name, fields in recorder.events if name == "fallback"]
    assert fallbacks == ["retries_exhausted", "circuit_open", "circuit_open"]


def test_after_the_cooldown_one_background_probe_and_its_success_closes_it() -> None:
    primary, fallback, clock, recorder = OutageProvider(), RecordingLocalProvider(), FakeClock(), Recorder()
    chain = chain_with_circuit(primary, fallback, clock, recorder)
    chain.embed(["a"])
    chain.embed(["b"])
    assert chain.circuit is not None
    clock.now += 10

    # still down: the write is answered by the fallback; its probe is one call, no retries
    assert chain.embed(["c"]).provider == "local"
    assert chain.probe is not None
    chain.probe.join()
    assert (len(primary.calls), chain.circuit.state) == (6, CircuitState.OPEN)
    clock.now += 10
    primary.down = False
    assert chain.embed(["d"]).provider == "local"  # the probe's caller never waits for it
    chain.probe.join()

    assert primary.calls[-1] == ["d"]
    assert chain.circuit.state is CircuitState.CLOSED
    recovered = chain.embed(["e"])
    assert (recovered.provider, recovered.attempts) == ("primary", 1)


# the bug itself surfaces through threading.excepthook, as any thread's does
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_probe_that_dies_of_a_bug_reopens_the_circuit() -> None:
    primary, clock = OutageProvider(), FakeClock()
    chain = chain_with_circuit(primary, RecordingLocalProvider(), clock, Recorder())
    chain.embed(["a"])
    chain.embed(["b"])
    clock.now += 10

    def broken(texts: Sequence[str]) -> list[Vector]:
        raise RuntimeError("bug")

    primary.embed = broken  # type: ignore[method-assign]
    chain.embed(["c"])
    assert chain.probe is not None
    chain.probe.join()

    assert chain.circuit is not None
    assert chain.circuit.state is CircuitState.OPEN


def test_without_a_fallback_an_open_circuit_is_unavailable_at_once_and_retryable() -> None:
    primary, clock, recorder = OutageProvider(), FakeClock(), Recorder()
    chain = chain_with_circuit(primary, None, clock, recorder)
    for text in ("a", "b"):
        with pytest.raises(EmbeddingUnavailable):
            chain.embed([text])
    calls = len(primary.calls)

    with pytest.raises(EmbeddingUnavailable, match="circuit open") as raised:
        chain.embed(["c"])

    assert len(primary.calls) == calls
    assert raised.value.retryable  # worth deferring: the backfill retries it later
    assert recorder.names()[-1] == "unavailable"


def test_a_non_retryable_failure_counts_toward_opening() -> None:
    primary, clock, recorder = RecordingLocalProvider(fail=True), FakeClock(), Recorder()
    circuit = CircuitBreaker(failure_threshold=2, cooldown_s=10.0, clock=clock)
    chain = ProviderChain(primary, RecordingLocalProvider(), circuit=circuit, on_event=recorder.on_event)

    chain.embed(["a"])
    chain.embed(["b"])
    chain.embed(["c"])

    assert len(primary.calls) == 2
    assert circuit.state is CircuitState.OPEN


class HangingProvider(OutageProvider):
    """Every call waits out its timeout: the failure that costs a write the most."""

    def embed(self, texts: Sequence[str]) -> list[Vector]:
        self.calls.append(list(texts))
        raise EmbeddingProviderError("primary: timed out after 2s", retryable=True, timed_out=True)


def test_timeouts_open_the_circuit_at_their_own_lower_threshold() -> None:
    primary, fallback, clock, recorder = HangingProvider(), RecordingLocalProvider(), FakeClock(), Recorder()
    circuit = CircuitBreaker(failure_threshold=5, timeout_threshold=2, cooldown_s=10.0, clock=clock)
    chain = ProviderChain(
        primary, fallback, retries=3, sleep=recorder.sleep, rng=lambda: 0.5, on_event=recorder.on_event, circuit=circuit
    )

    first = chain.embed(["a"])  # the second timeout opens it, and the retries stop there

    assert circuit.state is CircuitState.OPEN
    assert (first.attempts, first.provider, len(primary.calls)) == (2, "local", 2)
    assert chain.embed(["b"]).attempts == 0
