"""The one small interface every embedding provider implements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

Vector = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Embedding:
    """A vector and the model that made it: vectors of different models are never compared."""

    vector: Vector
    model: str

    @property
    def dimensions(self) -> int:
        return int(self.vector.shape[0])


class EmbeddingProviderError(Exception):
    """A provider could not embed: the caller may retry, fall back or defer.

    ``retryable`` says whether trying the same request again may succeed (timeouts, connection
    errors, 429, 5xx) or is pointless (400/401/403/404, malformed answers). ``timed_out``: the
    caller waited out a whole timeout for it, the costliest failure (the circuit breaker opens
    on fewer of them).
    """

    def __init__(self, message: str, *, retryable: bool = True, timed_out: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.timed_out = timed_out


class EmbeddingProvider(Protocol):
    #: short provider name used in metrics and logs: "openai" or "local"
    name: str
    #: the model name stored beside every vector this provider makes
    model: str

    def embed(self, texts: Sequence[str]) -> list[Vector]:
        """One float32 vector per text, in order. Raises EmbeddingProviderError on failure."""
        ...
