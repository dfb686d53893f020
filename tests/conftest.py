"""Shared fixtures. Tests run against the real embedded PostgreSQL + pgvector and the real model."""

from __future__ import annotations

import copy
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import caches
from django.test import Client
from django.utils import timezone

from embeddings.services import MEMORY_CACHE_ALIAS, embedding_runtime_reset
from kubernaut_storage.database.partitioning import partitions_ensure
from testutils.embedding_settings import openai_primary_configure
from testutils.go_crosscheck import GoMissingError, crosscheck_build
from testutils.openai_server import OpenAICompatibleServer
from testutils.redis_server import RedisServer
from testutils.tsa import TimestampAuthority


@pytest.fixture(scope="session", autouse=True)
def _partitions_current(request: pytest.FixtureRequest, django_db_setup: Any, django_db_blocker: Any) -> None:
    # pytest-django sets up the test database only when a collected test uses it; without one
    # the connection would still point at the development database.
    if not any(item.get_closest_marker("django_db") for item in request.session.items):
        return
    # --reuse-db keeps a test database across months; its partitions must follow the calendar.
    with django_db_blocker.unblock():
        partitions_ensure(now=timezone.now(), months_ahead=2)


@pytest.fixture
def api() -> Client:
    return Client()


@pytest.fixture(autouse=True)
def _embedding_runtime_fresh(settings: Any) -> Iterator[None]:
    """Every test starts with a newly built provider chain and an empty embedding cache.

    Under scripts/test the cache is Redis (REDIS_URL); a key prefix of its own gives each test
    an empty namespace there, without flushing a Redis someone else may point us at.
    """
    if "embeddings" in settings.CACHES:
        configured = copy.deepcopy(settings.CACHES)
        configured["embeddings"]["KEY_PREFIX"] = f"test-{uuid.uuid4().hex}"
        settings.CACHES = configured
    caches[MEMORY_CACHE_ALIAS].clear()
    embedding_runtime_reset()
    yield
    embedding_runtime_reset()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real Redis: REDIS_URL (scripts/test starts one), else a redis-server of our own.

    Never a skip: without redis-server the tests that need it fail and say why.
    """
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    if shutil.which("redis-server") is None:
        pytest.fail("these tests need Redis: run scripts/test, or set REDIS_URL, or install redis-server")
    with RedisServer() as server:
        yield server.url


@pytest.fixture
def openai_server() -> Iterator[OpenAICompatibleServer]:
    with OpenAICompatibleServer() as server:
        yield server


@pytest.fixture
def openai_primary(settings: Any, openai_server: OpenAICompatibleServer) -> OpenAICompatibleServer:
    """The write path's primary is the openai provider talking to `openai_server`."""
    return openai_primary_configure(settings, openai_server)


@pytest.fixture(scope="session")
def time_stamp_authority(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TimestampAuthority]:
    """A real RFC 3161 authority (`openssl ts` under a throw-away CA) for the whole session."""
    with TimestampAuthority(tmp_path_factory.mktemp("tsa")) as authority:
        yield authority


@pytest.fixture(scope="session")
def go_crosscheck() -> Path:
    """Go's reference code, built into a program that checks our logs' outputs. Never skipped."""
    try:
        return crosscheck_build()
    except GoMissingError as error:
        pytest.fail(str(error))
