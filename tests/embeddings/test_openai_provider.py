"""The openai provider through the real ``openai`` client against a real local HTTP server.

The client speaks httpx2, which respx cannot intercept, so nothing here is mocked.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from embeddings.providers.base import EmbeddingProvider, EmbeddingProviderError
from embeddings.providers.openai import OpenAIEmbeddingProvider
from testutils.openai_server import (
    DEFAULT_DIMENSIONS,
    Mode,
    OpenAICompatibleServer,
    deterministic_vector,
)

MODEL = "text-embedding-3-small"
KEY = "sk-test-123"


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


def make_provider(
    server: OpenAICompatibleServer,
    *,
    dimensions: int | None = None,
    timeout_s: float = 5.0,
    base_url: str | None = None,
) -> OpenAIEmbeddingProvider:
    provider = OpenAIEmbeddingProvider(
        base_url=base_url or server.base_url,
        api_key=KEY,
        model=MODEL,
        dimensions=dimensions,
        timeout_s=timeout_s,
    )
    _opened.append(provider)
    return provider


def test_implements_the_protocol(server: OpenAICompatibleServer) -> None:
    provider: EmbeddingProvider = make_provider(server)
    assert provider.name == "openai"
    assert provider.model == MODEL


def test_vectors_are_the_servers_deterministic_vectors(
    server: OpenAICompatibleServer,
) -> None:
    [vector] = make_provider(server).embed(["pod crashlooping in payments"])

    assert vector.dtype == np.float32
    assert vector.shape == (DEFAULT_DIMENSIONS,)
    # base64 carries the exact float32 bits: equality, not closeness
    np.testing.assert_array_equal(vector, deterministic_vector(MODEL, "pod crashlooping in payments"))
    assert vector.flags.writeable  # copied out of the read-only base64 buffer


def test_batch_keeps_input_order_even_when_answers_come_reversed(
    server: OpenAICompatibleServer,
) -> None:
    server.reverse_order = True
    texts = ["first", "second", "third", "fourth"]

    vectors = make_provider(server).embed(texts)

    assert server.request_count == 1  # one request for the whole batch
    assert len(vectors) == len(texts)
    for text, vector in zip(texts, vectors, strict=True):
        np.testing.assert_array_equal(vector, deterministic_vector(MODEL, text))


def test_request_asks_for_base64_and_carries_the_key(
    server: OpenAICompatibleServer,
) -> None:
    make_provider(server).embed(["a", "b"])

    [request] = server.requests
    assert request.path == "/v1/embeddings"
    assert request.authorization == f"Bearer {KEY}"
    assert request.body == {
        "model": MODEL,
        "input": ["a", "b"],
        "encoding_format": "base64",
    }


def test_dimensions_honoured(server: OpenAICompatibleServer) -> None:
    vectors = make_provider(server, dimensions=256).embed(["x", "y"])

    assert server.bodies[0] is not None
    assert server.bodies[0]["dimensions"] == 256
    assert [v.shape for v in vectors] == [(256,), (256,)]
    np.testing.assert_array_equal(vectors[1], deterministic_vector(MODEL, "y", 256))


def test_float_answers_from_servers_that_ignore_encoding_format(
    server: OpenAICompatibleServer,
) -> None:
    server.ignore_encoding_format = True

    [vector] = make_provider(server).embed(["z"])

    assert vector.dtype == np.float32
    np.testing.assert_array_equal(vector, deterministic_vector(MODEL, "z"))


def test_empty_input_makes_no_request(server: OpenAICompatibleServer) -> None:
    assert make_provider(server).embed([]) == []
    assert server.request_count == 0


@pytest.mark.parametrize(
    ("mode", "retryable", "fragment"),
    [
        ("error500", True, "HTTP 500"),
        ("error429", True, "HTTP 429"),
        ("drop", True, "connection error"),
        ("error400", False, "HTTP 400"),
        ("error401", False, "HTTP 401"),
        ("malformed", False, "malformed answer"),
    ],
)
def test_failures_raise_provider_errors(
    server: OpenAICompatibleServer, mode: Mode, retryable: bool, fragment: str
) -> None:
    server.set_mode(mode)

    with pytest.raises(EmbeddingProviderError) as info:
        make_provider(server).embed(["a", "b"])

    assert info.value.retryable is retryable
    assert info.value.timed_out is False
    assert fragment in str(info.value)
    # the client's own retries are off (max_retries=0): retrying is the chain's job
    assert server.request_count == 1


def test_unknown_path_is_a_non_retryable_404(server: OpenAICompatibleServer) -> None:
    provider = make_provider(server, base_url=server.base_url + "/nowhere")

    with pytest.raises(EmbeddingProviderError, match="HTTP 404") as info:
        provider.embed(["a"])

    assert info.value.retryable is False


def test_slow_server_times_out_as_retryable(server: OpenAICompatibleServer) -> None:
    server.set_mode("slow", delay_s=3.0)
    provider = make_provider(server, timeout_s=0.2)

    started = time.monotonic()
    with pytest.raises(EmbeddingProviderError, match="timed out") as info:
        provider.embed(["a"])

    assert time.monotonic() - started < 1.5
    assert info.value.retryable is True
    assert info.value.timed_out is True
    assert server.request_count == 1


def test_recovers_after_a_failure_on_the_same_client(
    server: OpenAICompatibleServer,
) -> None:
    # a dropped keep-alive connection must not poison the client's pool
    server.fail_next(1, "drop")
    provider = make_provider(server)

    with pytest.raises(EmbeddingProviderError):
        provider.embed(["a"])
    [vector] = provider.embed(["a"])

    np.testing.assert_array_equal(vector, deterministic_vector(MODEL, "a"))
    assert server.request_count == 2


def test_server_float_and_base64_encodings_agree(
    server: OpenAICompatibleServer,
) -> None:
    def post(body: dict[str, object]) -> Any:
        request = urllib.request.Request(
            server.base_url + "/embeddings",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.load(response)

    [float_item] = post({"model": MODEL, "input": "q", "encoding_format": "float"})["data"]
    [b64_item] = post({"model": MODEL, "input": "q", "encoding_format": "base64"})["data"]

    floats = np.asarray(float_item["embedding"], dtype=np.float32)
    decoded = np.frombuffer(base64.b64decode(b64_item["embedding"]), dtype="<f4")
    np.testing.assert_array_equal(floats, decoded)
    np.testing.assert_array_equal(floats, deterministic_vector(MODEL, "q"))
    assert abs(float(np.linalg.norm(floats)) - 1.0) < 1e-5
