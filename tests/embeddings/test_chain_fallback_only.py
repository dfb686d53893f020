"""ProviderChain.embed_with_fallback: the fallback alone, once, for the rest of a batch."""

from __future__ import annotations

import pytest

from embeddings.chain import EmbeddingUnavailable, ProviderChain
from tests.embeddings.test_chain import RecordingLocalProvider


def test_the_fallback_answers_and_the_primary_is_not_asked():
    primary, fallback = RecordingLocalProvider(), RecordingLocalProvider()
    chain = ProviderChain(primary, fallback)

    result = chain.embed_with_fallback(["a", "b"])

    assert (result.model, result.provider, result.fell_back, result.attempts) == (fallback.model, "local", True, 0)
    assert [list(vector) for vector in result.vectors] == [list(fallback.vector(t)) for t in ("a", "b")]
    assert (primary.calls, fallback.calls) == ([], [["a", "b"]])


def test_a_failing_fallback_is_unavailable_with_its_cause():
    chain = ProviderChain(RecordingLocalProvider(), RecordingLocalProvider(fail=True))
    with pytest.raises(EmbeddingUnavailable, match="model not loaded") as raised:
        chain.embed_with_fallback(["a"])
    assert len(raised.value.causes) == 1


def test_without_a_fallback_it_is_unavailable():
    primary = RecordingLocalProvider()
    with pytest.raises(EmbeddingUnavailable, match="no fallback"):
        ProviderChain(primary, None).embed_with_fallback(["a"])
    assert primary.calls == []
