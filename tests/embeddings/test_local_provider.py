"""The local provider against the real int8 model: no mocks, no Django."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from embeddings.providers.base import EmbeddingProviderError, Vector
from embeddings.providers.local import (
    MAX_CHUNK_ATTENTION,
    MAX_SEQ_LENGTH,
    LocalMiniLMProvider,
    chunks_of,
    default_tokenizer_path,
)

TEXTS = [
    "pod OOMKilled in production deployment",
    "container killed for exceeding memory limit",
    "certificate expired on ingress",
    "node not ready after kubelet restart",
    "rollback of payments deployment approved by on-call engineer",
]


@pytest.fixture(scope="module")
def provider() -> LocalMiniLMProvider:
    return LocalMiniLMProvider()


def test_shape_dtype_and_unit_norm(provider: LocalMiniLMProvider) -> None:
    vectors = provider.embed(TEXTS)
    assert len(vectors) == len(TEXTS)
    for v in vectors:
        assert v.shape == (384,)
        assert v.dtype == np.float32
        assert np.linalg.norm(v) == pytest.approx(1.0, abs=1e-5)
    assert provider.name == "local"
    assert provider.model == "all-MiniLM-L6-v2"


def test_deterministic(provider: LocalMiniLMProvider) -> None:
    first = provider.embed(TEXTS)
    second = provider.embed(TEXTS)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)


def test_similar_closer_than_unrelated(provider: LocalMiniLMProvider) -> None:
    oom, memory_limit, certificate = provider.embed(TEXTS[:3])
    assert float(oom @ memory_limit) > float(oom @ certificate) + 0.2
    assert float(oom @ memory_limit) > float(memory_limit @ certificate) + 0.2


def test_batch_equals_one_by_one(provider: LocalMiniLMProvider) -> None:
    # Padding within a batch must not leak into the pooled vector.
    batched = provider.embed(TEXTS)
    for text, vector in zip(TEXTS, batched, strict=True):
        (alone,) = provider.embed([text])
        np.testing.assert_allclose(vector, alone, atol=1e-5)


def test_internal_chunking_preserves_order() -> None:
    small_batches = LocalMiniLMProvider(batch_size=2)
    expected = LocalMiniLMProvider().embed(TEXTS)
    got = small_batches.embed(TEXTS)
    for a, b in zip(expected, got, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_chunks_of_long_texts_are_small_enough_to_bound_an_inferences_memory() -> None:
    lengths = [10] * 40 + [64] * 40 + [128] * 10 + [MAX_SEQ_LENGTH] * 5
    chunks = chunks_of(range(len(lengths)), lengths=lengths, batch_size=32)

    assert sorted(index for chunk in chunks for index in chunk) == list(range(len(lengths)))
    for chunk in chunks:
        assert len(chunk) <= 32
        assert len(chunk) * max(lengths[index] for index in chunk) ** 2 <= MAX_CHUNK_ATTENTION
    assert [len(chunk) for chunk in chunks[-5:]] == [1, 1, 1, 1, 1]  # texts of 256 tokens: one at a time
    assert len(chunks[0]) == 32  # short texts still go 32 at a time


def test_long_texts_chunked_small_get_the_vectors_they_get_alone(provider: LocalMiniLMProvider) -> None:
    texts = [" ".join(f"word{i}-{n}" for i in range(300)) for n in range(5)]
    batched = provider.embed(texts)
    for text, vector in zip(texts, batched, strict=True):
        np.testing.assert_allclose(vector, provider.embed([text])[0], atol=1e-5)


def test_truncates_at_the_models_max_seq_length(provider: LocalMiniLMProvider) -> None:
    # tokenizer.json says 128; sentence-transformers uses its own config's 256.
    config = default_tokenizer_path().parent / "sentence_bert_config.json"
    assert json.loads(config.read_text())["max_seq_length"] == MAX_SEQ_LENGTH
    words = " ".join(f"word{i}" for i in range(400))
    long_a = provider.embed([words])[0]
    long_b = provider.embed([words + " and a different tail that is truncated away"])[0]
    np.testing.assert_array_equal(long_a, long_b)


def test_threads_get_the_same_vectors(provider: LocalMiniLMProvider) -> None:
    expected = provider.embed(TEXTS)
    results: list[list[Vector]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(6)

    def worker() -> None:
        try:
            start.wait()
            for _ in range(5):
                got = provider.embed(TEXTS)
                with lock:
                    results.append(got)
        except BaseException as exc:  # surfaced by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    assert len(results) == 30
    for got in results:
        for a, b in zip(expected, got, strict=True):
            np.testing.assert_allclose(a, b, atol=1e-6)


def test_empty_input_returns_empty_list(provider: LocalMiniLMProvider) -> None:
    assert provider.embed([]) == []


def test_bad_input_raises_provider_error(provider: LocalMiniLMProvider) -> None:
    with pytest.raises(EmbeddingProviderError):
        provider.embed("a bare string")
    with pytest.raises(EmbeddingProviderError):
        provider.embed(["ok", 3])  # type: ignore[list-item]


def test_load_failure_raises_provider_error(tmp_path: Path) -> None:
    broken = LocalMiniLMProvider(model_path=tmp_path / "missing.onnx")
    with pytest.raises(EmbeddingProviderError):
        broken.embed(["x"])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_forked_child_builds_its_own_session(provider: LocalMiniLMProvider) -> None:
    # As under gunicorn: the parent has already loaded the model, then forks.
    expected = provider.embed(TEXTS[:2])
    parent_runtime = provider._runtime
    assert parent_runtime is not None
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report through the pipe, never return into pytest
        status = 1
        try:
            got = provider.embed(TEXTS[:2])
            runtime = provider._runtime
            fresh = runtime is not None and runtime is not parent_runtime
            fresh = fresh and runtime.pid == os.getpid()  # type: ignore[union-attr]
            same = all(np.allclose(a, b, atol=1e-6) for a, b in zip(expected, got, strict=True))
            os.write(write_fd, b"ok" if fresh and same else b"bad")
            status = 0
        finally:
            os._exit(status)
    os.close(write_fd)
    _, status = os.waitpid(pid, 0)
    answer = os.read(read_fd, 16)
    os.close(read_fd)
    assert os.waitstatus_to_exitcode(status) == 0
    assert answer == b"ok"
