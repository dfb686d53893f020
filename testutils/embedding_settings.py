"""Embedding settings for tests: the OpenAI-compatible server as the primary, the cache's backend, a record's text."""

from __future__ import annotations

from typing import Any

from audit.api.serializers import AUDIT_SERIALIZERS
from audit.models import AuditKind
from audit.write.texts import audit_text
from kubernaut_storage.settings.base import embedding_redis_cache
from testutils.openai_server import OpenAICompatibleServer

OPENAI_MODEL = "text-embedding-3-small"
OPENAI_KEY = "sk-test-embeddings"
LOCAL_MODEL = "all-MiniLM-L6-v2"


def openai_primary_configure(settings: Any, server: OpenAICompatibleServer) -> OpenAICompatibleServer:
    """The write path's primary is the openai provider talking to `server`.

    Changing these settings rebuilds the process's chain (embeddings.services listens).
    """
    settings.EMBEDDING_OPENAI_API_KEY = OPENAI_KEY
    settings.EMBEDDING_OPENAI_BASE_URL = server.base_url
    settings.EMBEDDING_OPENAI_MODEL = OPENAI_MODEL
    settings.EMBEDDING_OPENAI_TIMEOUT_S = 2.0
    settings.EMBEDDING_RETRY_BUDGET_S = 5.0
    return server


def use_redis(settings: Any, url: str, *, prefix: str) -> None:
    """Point the embedding cache at the Redis at `url`, under a key prefix of the test's own."""
    entry = embedding_redis_cache(url)
    entry["KEY_PREFIX"] = prefix
    settings.REDIS_URL = url
    settings.CACHES = {**settings.CACHES, "embeddings": entry}


def use_memory_cache(settings: Any) -> None:
    caches = dict(settings.CACHES)
    caches.pop("embeddings", None)
    settings.REDIS_URL = ""
    settings.CACHES = caches


def text_for(kind: AuditKind, body: dict[str, Any]) -> str:
    """The text the write path embeds for `body`."""
    serializer = AUDIT_SERIALIZERS[kind](data=body)
    serializer.is_valid(raise_exception=True)
    return audit_text(kind=kind, data=serializer.validated_data)
