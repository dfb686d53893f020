"""The service's WSGI app with the embedding made by the `openai` provider against
openai_stub.py (BENCH_OPENAI_BASE_URL): an I/O-bound embedding call, for run.sh.

Benchmark-only: until the embedding chain reads its provider from settings, this swaps the
write path's `embedding_for_text` for a call through the real OpenAI client.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from kubernaut_storage.wsgi import application

__all__ = ["application"]


def _install() -> None:
    # Imported after the WSGI module has set Django up: these import models.
    import audit.write.single
    from embeddings.providers.base import Embedding
    from embeddings.providers.openai import OpenAIEmbeddingProvider

    local = threading.local()  # one client (and connection pool) per thread

    def embedding_over_http(*, text: str) -> Any:
        if not hasattr(local, "provider"):
            local.provider = OpenAIEmbeddingProvider(
                base_url=os.environ["BENCH_OPENAI_BASE_URL"],
                api_key="bench",
                model="text-embedding-3-small",
                dimensions=None,
                timeout_s=10.0,
            )
        [vector] = local.provider.embed([text])
        return Embedding(vector=vector, model=local.provider.model)

    audit.write.single.embedding_for_text = embedding_over_http  # type: ignore[assignment]


_install()
