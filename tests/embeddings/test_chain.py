"""ProviderChain with the real openai provider (against a real local server) as primary.

The fallback is a tiny real provider defined here; sleeps and jitter are injected so the
backoff schedule is checked exactly without the tests actually waiting.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pytest

from embeddings.chain import ChainResult, EmbeddingUnavailable, ProviderChain
from embeddings.providers.base import EmbeddingProviderError, Vector
from embeddings.providers.openai import OpenAIEmbeddingProvider
from testutils.openai_server import OpenAICompatibleServer, deterministic_vector

MODEL = "text-embedding-3-small"


class RecordingLocalProvider:
    """A real in-process provider: deterministic 8-d vectors, records every call."""

    name = "local"
    model = "local-test-model"

    def __init__(self, *, fail: bool = False) -> None:
        self.fail = fail
        self.calls: list[list[str]] = []

    def embed(self, texts: Sequence[str]) -> list[Vector]:
        self.calls.append(list(texts))
        if self.fail:
            raise EmbeddingProviderError("local: model not loaded", retryable=False)
        return [self.vector(t) for t in texts]

    @staticmethod
    def vector(text: str) -> Vector:
        digest = hashlib.sha256(text.encode()).digest()[:32]
        return np.frombuffer(digest, dtype=np.uint8).astype(np.float32)[:8]


class Recorder:
    """Collects sleeps and events; stands in for time.sleep and the metrics hook."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []
        self.events: list[tuple[str, dict[str, Any]]] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def on_event(self, name: str, fields: dict[str, Any]) -> None:
        self.events.append((name, fields))

    def names(self) -> list[str]:
        return [name for name, _ in self.events]


# every provider made in a test, closed at teardown: the openai client's pooled keep-alive
# sockets would otherwise leak (ResourceWarning) until garbage collection
_opened: list[OpenAIEmbeddingProvider] = []


@pytest.fixture(autouse=True)
def _close_providers() -> Iterator[None]:
    yield
    while _opened:
        _opened.pop().close()


@pytest.fixture
def server() -> Iterator[OpenAICompatibleServer]:
    with OpenAICompatibleServer() as srv:
        yield srv


@pytest.fixture
def fallback() -> RecordingLocalProvider:
    return RecordingLocalProvider()


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


def primary_for(server: OpenAICompatibleServer, timeout_s: float = 5.0) -> OpenAIEmbeddingProvider:
    provider = OpenAIEmbeddingProvider(
        base_url=server.base_url,
        api_key="sk-test",
        model=MODEL,
        dimensions=None,
        timeout_s=timeout_s,
    )
    _opened.append(provider)
    return provider


def make_chain(
    server: OpenAICompatibleServer,
    fallback: RecordingLocalProvider | None,
    rec: Recorder,
    *,
    timeout_s: float = 5.0,
    rng: Callable[[], float] = lambda: 0.5,
    **kwargs: Any,
) -> ProviderChain:
    return ProviderChain(
        primary_for(server, timeout_s),
        fallback,
        sleep=rec.sleep,
        rng=rng,
        on_event=rec.on_event,
        **kwargs,
    )


def assert_primary_vectors(result: ChainResult, texts: list[str]) -> None:
    for text, vector in zip(texts, result.vectors, strict=True):
        np.testing.assert_array_equal(vector, deterministic_vector(MODEL, text))


def test_success_first_try(server: OpenAICompatibleServer, fallback: RecordingLocalProvider, rec: Recorder) -> None:
    result = make_chain(server, fallback, rec).embed(["a", "b"])

    assert (result.provider, result.model) == ("openai", MODEL)
    assert result.attempts == 1
    assert result.fell_back is False
    assert_primary_vectors(result, ["a", "b"])
    assert fallback.calls == []
    assert rec.sleeps == []
    assert rec.events == []


def test_two_500s_then_ok(server: OpenAICompatibleServer, fallback: RecordingLocalProvider, rec: Recorder) -> None:
    server.fail_next(2, "error500")

    result = make_chain(server, fallback, rec).embed(["a"])

    assert result.attempts == 3
    assert result.fell_back is False
    assert server.request_count == 3
    assert_primary_vectors(result, ["a"])
    assert fallback.calls == []
    assert rec.names() == ["retry", "retry"]
    assert [f["attempt"] for _, f in rec.events] == [1, 2]


def test_persistent_500_means_four_calls_then_fallback(
    server: OpenAICompatibleServer, fallback: RecordingLocalProvider, rec: Recorder
) -> None:
    server.set_mode("error500")

    result = make_chain(server, fallback, rec).embed(["a", "b"])

    assert server.request_count == 4  # 1 try + 3 retries
    assert result.attempts == 4
    assert result.fell_back is True
    assert (result.provider, result.model) == ("local", "local-test-model")
    assert fallback.calls == [["a", "b"]]
    for text, vector in zip(["a", "b"], result.vectors, strict=True):
        np.testing.assert_array_equal(vector, RecordingLocalProvider.vector(text))
    assert rec.names() == ["retry", "retry", "retry", "fallback"]
    assert rec.events[-1][1]["reason"] == "retries_exhausted"


def test_backoff_is_exponential_with_full_jitter(
    server: OpenAICompatibleServer, fallback: RecordingLocalProvider, rec: Recorder
) -> None:
    server.set_mode("error500")
    jitter = iter([0.5, 0.25, 1.0])

    make_chain(
        server,
        fallback,
        rec,
        rng=lambda: next(jitter),
        base_backoff_s=0.05,
        max_backoff_s=0.15,
    ).embed(["a"])

    # caps are 0.05, 0.1, then 0.2 clipped to max 0.15; each scaled by the jitter draw
    assert rec.sleeps == pytest.approx([0.025, 0.025, 0.15])
    assert [f["delay_s"] for _, f in rec.events[:3]] == pytest.approx(rec.sleeps)


def test_random_jitter_stays_within_the_caps(server: OpenAICompatibleServer, fallback: RecordingLocalProvider) -> None:
    server.set_mode("error500")
    for _ in range(5):
        rec = Recorder()
        chain = ProviderChain(
            primary_for(server), fallback, sleep=rec.sleep, base_backoff_s=0.05
        )  # default rng: random.random
        chain.embed(["a"])
        assert len(rec.sleeps) == 3
        for retry, slept in enumerate(rec.sleeps):
            assert 0 <= slept <= chain.backoff_cap(retry)


def test_budget_never_sleeps_past_the_deadline(
    server: OpenAICompatibleServer, fallback: RecordingLocalProvider, rec: Recorder
) -> None:
    """A fake clock advanced only by sleeps makes the budget arithmetic exact."""
    server.set_mode("error500")
    now = [100.0]

    def sleep(seconds: float) -> None:
        rec.sleep(seconds)
        now[0] += seconds

    chain = ProviderChain(
        primary_for(server),
        fallback,
        base_backoff_s=0.05,
        budget_s=0.1,
        sleep=sleep,
        clock=lambda: now[0],
        rng=lambda: 1.0,
        on_event=rec.on_event,
    )
    result = chain.embed(["a"])

    # sleep 0.05 fits (ends at 0.05 < 0.1); the next, 0.1, would end at 0.15: stop there
    assert rec.sleeps == pytest.approx([0.05])
    assert result.attempts == 2 == server.request_count
    assert result.fell_back is True
    name, fields = rec.events[-1]
    assert (name, fields["reason"], fields["attempts"]) == (
        "fallback",
        "budget_exhausted",
        2,
    )


def test_budget_stops_retries_against_a_slow_server(
    server: OpenAICompatibleServer, fallback: RecordingLocalProvider, rec: Recorder
) -> None:
    """Real clock: each call times out after 0.5 s, the budget (0.9 s) fits only two. The
    second starts if the first ends within 0.4 s of its timeout (a busy machine's slack); a
    third never could, however fast they are."""
    server.set_mode("slow", delay_s=3.0)

    result = make_chain(server, fallback, rec, timeout_s=0.5, budget_s=0.9, rng=lambda: 0.0).embed(["a"])

    assert result.attempts == 2 == server.request_count
    assert result.fell_back is True
    assert result.provider == "local"
    # Both calls ended at the client's timeout, not the server's 3 s answer.
    errors = [fields["error"] for name, fields in rec.events if name in ("retry", "fallback")]
    assert len(errors) == 2
    assert all("timed out after 0.5s" in error for error in errors)
    assert rec.events[-1][1]["reason"] == "budget_exhausted"


@pytest.mark.parametrize("mode", ["error400", "error401", "malformed"])
def test_non_retryable_goes_straight_to_fallback(
    server: OpenAICompatibleServer,
    fallback: RecordingLocalProvider,
    rec: Recorder,
    mode: Any,
) -> None:
    server.set_mode(mode)

    result = make_chain(server, fallback, rec).embed(["a"])

    assert result.attempts == 1 == server.request_count
    assert result.fell_back is True
    assert rec.sleeps == []
    assert rec.names() == ["fallback"]
    assert rec.events[0][1]["reason"] == "non_retryable"


def test_both_failing_raises_unavailable_with_causes(server: OpenAICompatibleServer, rec: Recorder) -> None:
    server.set_mode("error500")
    broken = RecordingLocalProvider(fail=True)

    with pytest.raises(EmbeddingUnavailable) as info:
        make_chain(server, broken, rec).embed(["a"])

    error = info.value
    assert len(error.causes) == 5  # four primary failures, then the fallback's
    assert all("HTTP 500" in str(c) for c in error.causes[:4])
    assert "model not loaded" in str(error.causes[4])
    assert error.retryable is True  # the 500s were transient: deferring makes sense
    assert isinstance(error, EmbeddingProviderError)
    assert broken.calls == [["a"]]
    assert rec.names()[-2:] == ["fallback", "unavailable"]


def test_no_fallback_raises_unavailable(server: OpenAICompatibleServer, rec: Recorder) -> None:
    server.set_mode("error400")

    with pytest.raises(EmbeddingUnavailable, match="HTTP 400") as info:
        make_chain(server, None, rec).embed(["a"])

    assert len(info.value.causes) == 1
    assert info.value.retryable is False
    assert server.request_count == 1


def test_broken_event_hook_does_not_fail_the_embedding(
    server: OpenAICompatibleServer, fallback: RecordingLocalProvider
) -> None:
    def hook(name: str, fields: dict[str, Any]) -> None:
        raise RuntimeError("metrics down")

    server.fail_next(1, "error500")
    chain = ProviderChain(primary_for(server), fallback, sleep=lambda s: None, on_event=hook)

    assert chain.embed(["a"]).attempts == 2


def test_empty_input_calls_nobody(
    server: OpenAICompatibleServer, fallback: RecordingLocalProvider, rec: Recorder
) -> None:
    result = make_chain(server, fallback, rec).embed([])

    assert result.vectors == []
    assert result.attempts == 0
    assert server.request_count == 0
    assert fallback.calls == []
