"""The Embeddings settings block, read from a real environment in a fresh interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRINT_SETTINGS = """
import json
from django.conf import settings
print(json.dumps({
    "key": settings.EMBEDDING_OPENAI_API_KEY,
    "model": settings.EMBEDDING_OPENAI_MODEL,
    "dimensions": settings.EMBEDDING_OPENAI_DIMENSIONS,
    "ttl": settings.EMBEDDING_CACHE_TTL_S,
    "caches": sorted(settings.CACHES),
    "location": settings.CACHES.get("embeddings", {}).get("LOCATION"),
}))
"""


def settings_with(*, code: str = PRINT_SETTINGS, **environment: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EMBEDDING_", "OPENAI_", "REDIS_URL"))}
    env.update(DJANGO_SETTINGS_MODULE="kubernaut_storage.settings.test")
    env.update(environment)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def read(**environment: str) -> dict[str, object]:
    result = settings_with(**environment)
    assert result.returncode == 0, result.stderr[-2000:]
    parsed: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return parsed


def test_defaults_are_local_only_with_the_memory_cache() -> None:
    assert read() == {
        "key": "",
        "model": "text-embedding-3-small",
        "dimensions": None,
        "ttl": 300.0,
        "caches": ["default", "embeddings_memory"],
        "location": None,
    }


def test_openai_api_key_is_the_fallback_for_the_key_and_redis_url_configures_the_cache() -> None:
    got = read(OPENAI_API_KEY="sk-from-openai-env", REDIS_URL="redis://cache:6379/2", EMBEDDING_OPENAI_DIMENSIONS="512")
    assert got["key"] == "sk-from-openai-env"
    assert got["dimensions"] == 512
    assert got["caches"] == ["default", "embeddings", "embeddings_memory"]
    assert got["location"] == "redis://cache:6379/2"
    assert read(OPENAI_API_KEY="sk-a", EMBEDDING_OPENAI_API_KEY="sk-b")["key"] == "sk-b"


@pytest.mark.parametrize(
    "environment",
    [{"EMBEDDING_FALLBACK": "openai"}, {"EMBEDDING_OPENAI_TIMEOUT_S": "0"}, {"EMBEDDING_CACHE_TTL_S": "-1"}],
)
def test_bad_values_stop_the_start(environment: dict[str, str]) -> None:
    result = settings_with(**environment)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
