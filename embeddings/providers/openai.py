"""The ``openai`` provider: OpenAI's embeddings API, or any server that speaks it."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence

import numpy as np
import openai
from openai.types import CreateEmbeddingResponse

from .base import EmbeddingProviderError, Vector

#: used when no base_url is configured. Passed explicitly because the client would otherwise
#: read OPENAI_BASE_URL from the environment, and our settings come only from the caller.
DEFAULT_BASE_URL = "https://api.openai.com/v1"

# 408/409 are documented by OpenAI as transient, 429 is rate limiting, 5xx is their side.
_RETRYABLE_STATUS = frozenset({408, 409, 429})

_MAX_MESSAGE = 200


def _short(text: str) -> str:
    # provider errors end up in logs and events: keep them one short line
    text = " ".join(text.split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"


class OpenAIEmbeddingProvider:
    """Embeds through the official ``openai`` client; one client (and connection pool) per instance."""

    name = "openai"

    def __init__(
        self,
        *,
        base_url: str | None,
        api_key: str,
        model: str,
        dimensions: int | None,
        timeout_s: float,
    ) -> None:
        if dimensions is not None and dimensions < 1:
            raise ValueError("dimensions must be positive when set")
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self.model = model
        self._dimensions = dimensions
        self._timeout_s = timeout_s
        self._client = openai.OpenAI(
            base_url=base_url or DEFAULT_BASE_URL,
            api_key=api_key,
            timeout=timeout_s,
            # the client retries twice by default; ProviderChain owns retries, backoff and the
            # time budget, so a hidden second layer would multiply calls and blow the budget
            max_retries=0,
        )

    def close(self) -> None:
        """Release the client's pooled connections (optional; garbage collection also does it)."""
        self._client.close()

    def embed(self, texts: Sequence[str]) -> list[Vector]:
        texts = list(texts)
        if not texts:
            return []  # OpenAI rejects an empty input list with a 400; nothing to ask anyway
        try:
            if self._dimensions is None:
                response = self._client.embeddings.create(input=texts, model=self.model, encoding_format="base64")
            else:
                response = self._client.embeddings.create(
                    input=texts,
                    model=self.model,
                    dimensions=self._dimensions,
                    encoding_format="base64",
                )
        # APITimeoutError subclasses APIConnectionError, so it must come first
        except openai.APITimeoutError as exc:
            raise EmbeddingProviderError(
                f"openai: timed out after {self._timeout_s}s", retryable=True, timed_out=True
            ) from exc
        except openai.APIConnectionError as exc:
            raise EmbeddingProviderError(f"openai: connection error: {_short(str(exc))}", retryable=True) from exc
        except openai.APIStatusError as exc:
            status = exc.status_code
            retryable = status in _RETRYABLE_STATUS or status >= 500
            raise EmbeddingProviderError(f"openai: HTTP {status}: {_short(exc.message)}", retryable=retryable) from exc
        except openai.OpenAIError as exc:
            # e.g. APIResponseValidationError: the answer did not parse; asking again will not help
            raise EmbeddingProviderError(f"openai: bad response: {_short(str(exc))}", retryable=False) from exc
        return self._decode(response, len(texts))

    def _decode(self, response: CreateEmbeddingResponse, expected: int) -> list[Vector]:
        """Turn the answer into float32 vectors in input order, or raise a non-retryable error."""
        try:
            # the client builds responses without validation, so a broken answer can leave any
            # field missing or of the wrong type: check everything, trust nothing
            data = response.data
            if not isinstance(data, list) or len(data) != expected:
                got = len(data) if isinstance(data, list) else type(data).__name__
                raise ValueError(f"expected {expected} embeddings, got {got}")
            vectors: list[Vector | None] = [None] * expected
            for item in data:
                index = item.index
                # ``index`` says which input this is; OpenAI does not promise answers in order
                if not isinstance(index, int) or not 0 <= index < expected or vectors[index] is not None:
                    raise ValueError(f"bad or duplicate index {index!r}")
                vectors[index] = self._to_vector(item.embedding)
        except (AttributeError, TypeError, ValueError, binascii.Error) as exc:
            raise EmbeddingProviderError(f"openai: malformed answer: {_short(str(exc))}", retryable=False) from exc

        result = [v for v in vectors if v is not None]  # all set: count and indices checked above
        width = result[0].shape[0]
        if width == 0 or any(v.shape[0] != width for v in result):
            raise EmbeddingProviderError("openai: malformed answer: inconsistent dimensions", retryable=False)
        if self._dimensions is not None and width != self._dimensions:
            raise EmbeddingProviderError(
                f"openai: malformed answer: {width} dimensions, asked for {self._dimensions}",
                retryable=False,
            )
        return result

    @staticmethod
    def _to_vector(embedding: object) -> Vector:
        if isinstance(embedding, str):
            # base64 of little-endian float32: decoding bytes is far cheaper than parsing JSON
            # floats. frombuffer views read-only bytes, so copy to own writable memory.
            raw = base64.b64decode(embedding, validate=True)
            if len(raw) % 4:
                raise ValueError("base64 embedding is not a whole number of float32s")
            vector: Vector = np.frombuffer(raw, dtype="<f4").astype(np.float32, copy=True)
        elif isinstance(embedding, list):
            # "compatible" servers may ignore encoding_format and answer float lists
            vector = np.asarray(embedding, dtype=np.float32)
            if vector.ndim != 1:
                raise ValueError("embedding is not a flat list of numbers")
        else:
            raise TypeError(f"embedding of type {type(embedding).__name__}")
        if not np.isfinite(vector).all():
            raise ValueError("embedding contains NaN or infinity")
        return vector
