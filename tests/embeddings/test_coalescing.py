"""Concurrent embedding requests of a process share provider calls (embeddings/coalescing.py).

Driven through the real openai provider against the real OpenAI-compatible test server, which
records every call it answers: what the coalescer sends is what the server saw.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from embeddings.coalescing import CoalescingProvider
from embeddings.providers.base import EmbeddingProviderError, Vector
from embeddings.providers.openai import OpenAIEmbeddingProvider
from testutils.openai_server import OpenAICompatibleServer, deterministic_vector

MODEL = "text-embedding-3-small"
#: Long enough for the threads a test starts to queue behind the first call.
SLOW_S = 0.5


@pytest.fixture
def server() -> Iterator[OpenAICompatibleServer]:
    with OpenAICompatibleServer() as srv:
        yield srv


@pytest.fixture
def coalescing(server: OpenAICompatibleServer) -> Iterator[Callable[..., CoalescingProvider]]:
    opened: list[OpenAIEmbeddingProvider] = []

    def make(*, max_in_flight: int = 1, max_batch: int = 64, queue_timeout_s: float = 5.0) -> CoalescingProvider:
        inner = OpenAIEmbeddingProvider(
            base_url=server.base_url, api_key="sk-test", model=MODEL, dimensions=None, timeout_s=5.0
        )
        opened.append(inner)
        return CoalescingProvider(
            inner, max_in_flight=max_in_flight, max_batch=max_batch, queue_timeout_s=queue_timeout_s
        )

    yield make
    for inner in opened:
        inner.close()


def _in_threads(
    server: OpenAICompatibleServer, provider: CoalescingProvider, requests: list[list[str]]
) -> list[list[Vector] | BaseException]:
    """Each request from its own thread, started in order while the first one is in flight."""
    results: list[list[Vector] | BaseException] = [[] for _ in requests]

    def run(index: int) -> None:
        try:
            results[index] = provider.embed(requests[index])
        except BaseException as exc:  # handed to the test to assert on
            results[index] = exc

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(requests))]
    threads[0].start()
    while server.request_count < 1:  # the first call is on the wire; the others queue behind it
        time.sleep(0.005)
    for thread in threads[1:]:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    return results


def _inputs(server: OpenAICompatibleServer) -> list[list[str]]:
    return [list(body["input"]) for body in server.bodies if body is not None]


def test_a_request_on_a_quiet_provider_goes_out_at_once_alone(server, coalescing):
    provider = coalescing(max_in_flight=1)
    [vector] = provider.embed(["OOMKilled container restarted"])
    assert _inputs(server) == [["OOMKilled container restarted"]]
    np.testing.assert_array_equal(vector, deterministic_vector(MODEL, "OOMKilled container restarted"))


def test_requests_queued_behind_a_busy_slot_share_the_next_call(server, coalescing):
    server.set_mode("slow", delay_s=SLOW_S)
    provider = coalescing(max_in_flight=1)
    requests = [["first"], ["second"], ["third", "fourth"], ["fifth"]]
    results = _in_threads(server, provider, requests)
    # One call for the first, then one for everything that queued meanwhile (in which order
    # within it is not promised: the threads race to the lock).
    inputs = _inputs(server)
    assert inputs[0] == ["first"]
    assert len(inputs) == 2
    assert sorted(inputs[1]) == sorted(["second", "third", "fourth", "fifth"])
    for texts, vectors in zip(requests, results, strict=True):
        assert isinstance(vectors, list)
        assert len(vectors) == len(texts)
        for text, vector in zip(texts, vectors, strict=True):
            np.testing.assert_array_equal(vector, deterministic_vector(MODEL, text))


def test_the_same_text_from_concurrent_requests_is_asked_for_once(server, coalescing):
    server.set_mode("slow", delay_s=SLOW_S)
    provider = coalescing(max_in_flight=1)
    results = _in_threads(server, provider, [["warm"], ["crashloop on deploy"], ["crashloop on deploy"]])
    assert _inputs(server)[1] == ["crashloop on deploy"]
    assert isinstance(results[1], list)
    assert isinstance(results[2], list)
    np.testing.assert_array_equal(results[1][0], results[2][0])


def test_a_batch_holds_at_most_max_batch_texts_and_never_splits_a_request(server, coalescing):
    server.set_mode("slow", delay_s=SLOW_S)
    provider = coalescing(max_in_flight=1, max_batch=3)
    big = [f"big {index}" for index in range(5)]
    _in_threads(server, provider, [["warm"], big, ["a"], ["b"], ["c"]])
    inputs = _inputs(server)
    assert all(len(texts) <= 3 for texts in inputs if texts != big)
    assert big in inputs  # above max_batch, it went alone and whole
    assert sorted(text for texts in inputs for text in texts) == sorted(["warm", *big, "a", "b", "c"])


def test_every_caller_of_a_failed_batch_gets_its_error(server, coalescing):
    server.set_mode("slow", delay_s=SLOW_S)
    provider = coalescing(max_in_flight=1)

    def fail_after_first_call() -> None:
        while server.request_count < 1:
            time.sleep(0.01)
        server.set_mode("error500")

    threading.Thread(target=fail_after_first_call).start()
    results = _in_threads(server, provider, [["first"], ["second"], ["third"]])
    assert isinstance(results[0], list)  # answered before the server broke
    for error in results[1:]:
        assert isinstance(error, EmbeddingProviderError)
        assert error.retryable
        assert "HTTP 500" in str(error)
    assert server.request_count == 2  # the two queued requests failed together, in one call


def test_a_request_waits_for_a_call_slot_only_queue_timeout_s(server, coalescing):
    server.set_mode("slow", delay_s=2.0)
    provider = coalescing(max_in_flight=1, queue_timeout_s=0.2)
    first = threading.Thread(target=provider.embed, args=(["holds the only slot"],))
    first.start()
    while server.request_count < 1:
        time.sleep(0.01)
    with pytest.raises(EmbeddingProviderError, match="no free call slot") as raised:
        provider.embed(["waits"])
    # It gave up while the slot was still taken: the first call (2 s) has not returned yet.
    assert first.is_alive()
    assert raised.value.retryable  # the chain retries, then falls back
    assert raised.value.timed_out  # a wait as long as a timeout: the circuit counts it as one
    first.join(timeout=5)
    assert server.request_count == 1  # the timed-out request was never sent


def test_slots_free_up_after_failures(server, coalescing):
    provider = coalescing(max_in_flight=2)
    server.set_mode("error500")
    for _ in range(3):
        with pytest.raises(EmbeddingProviderError):
            provider.embed(["x"])
    server.set_mode("ok")
    [vector] = provider.embed(["x"])
    np.testing.assert_array_equal(vector, deterministic_vector(MODEL, "x"))
