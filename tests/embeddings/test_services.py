"""The write path's embedding: openai primary through the real client, local fallback, deferral.

Every test POSTs through the real API into the real database; the primary is the real openai
provider against the OpenAI-compatible server the test starts, the fallback the real local
model. Settings are overridden per test, which rebuilds the process's chain.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from audit.models import AUDIT_MODELS, AuditKind
from embeddings.models import EmbeddingBacklog, IncidentEmbedding
from embeddings.services import embedding_for_text, embedding_runtime
from testutils.audit_rows import post_audit
from testutils.embedding_settings import LOCAL_MODEL, OPENAI_KEY, OPENAI_MODEL, text_for
from testutils.factories import VALID_BODIES
from testutils.metrics import MetricDelta
from testutils.openai_server import OpenAICompatibleServer, deterministic_vector

pytestmark = pytest.mark.django_db

KIND = AuditKind.REMEDIATION

LATENCY = "kubernaut_embedding_duration_seconds_count"
RETRIES = "kubernaut_embedding_retries_total"
FALLBACKS = "kubernaut_embedding_fallbacks_total"
DEFERRALS = "kubernaut_embedding_deferrals_total"


def stored_embedding(audit_id: int) -> IncidentEmbedding:
    return IncidentEmbedding.objects.get(audit_type=KIND, audit_id=audit_id)


def test_without_a_key_the_local_model_is_the_only_provider(api: Any) -> None:
    chain = embedding_runtime().chain
    assert (chain.primary.name, chain.primary.model, chain.fallback) == ("local", LOCAL_MODEL, None)

    created = post_audit(api, KIND, VALID_BODIES[KIND]()).json()

    assert created["embeddingStatus"] == "stored"
    assert stored_embedding(created["id"]).model == LOCAL_MODEL


def test_openai_primary_stores_the_servers_vector_and_model(api: Any, openai_primary: OpenAICompatibleServer) -> None:
    metrics = MetricDelta((LATENCY, {"provider": "openai"}), (LATENCY, {"provider": "local"}))
    body = VALID_BODIES[KIND]()

    response = post_audit(api, KIND, body)

    assert response.status_code == 201
    created = response.json()
    assert created["embeddingStatus"] == "stored"
    row = stored_embedding(created["id"])
    assert row.id == created["embeddingId"]
    assert (row.model, row.dimensions) == (OPENAI_MODEL, 1536)
    # pgvector stores float32: read back as float32, the server's vector is there bit for bit
    stored = np.asarray(row.embedding, dtype=np.float32)
    np.testing.assert_array_equal(stored, deterministic_vector(OPENAI_MODEL, text_for(KIND, body)))
    assert openai_primary.request_count == 1
    assert openai_primary.authorization_headers == [f"Bearer {OPENAI_KEY}"]
    assert metrics.of(LATENCY, provider="openai") == 1
    assert metrics.of(LATENCY, provider="local") == 0


def test_openai_dimensions_setting_is_sent_and_stored(
    api: Any, settings: Any, openai_primary: OpenAICompatibleServer
) -> None:
    settings.EMBEDDING_OPENAI_DIMENSIONS = 256

    created = post_audit(api, KIND, VALID_BODIES[KIND]()).json()

    assert openai_primary.bodies[0] is not None
    assert openai_primary.bodies[0]["dimensions"] == 256
    assert stored_embedding(created["id"]).dimensions == 256


def test_primary_500s_are_retried_three_times_then_the_local_model_answers(
    api: Any, openai_primary: OpenAICompatibleServer
) -> None:
    openai_primary.set_mode("error500")
    metrics = MetricDelta(
        (RETRIES, {"provider": "openai"}),
        (FALLBACKS, {"reason": "retries_exhausted"}),
        (LATENCY, {"provider": "openai"}),
        (LATENCY, {"provider": "local"}),
    )

    response = post_audit(api, KIND, VALID_BODIES[KIND]())

    assert response.status_code == 201
    assert response.json()["embeddingStatus"] == "stored"
    row = stored_embedding(response.json()["id"])
    assert (row.model, row.dimensions) == (LOCAL_MODEL, 384)
    assert openai_primary.request_count == 4  # one try and three retries
    assert metrics.of(RETRIES, provider="openai") == 3
    assert metrics.of(FALLBACKS, reason="retries_exhausted") == 1
    # every call is timed, the failed ones too: they are what an outage costs a write
    assert metrics.of(LATENCY, provider="openai") == 4
    assert metrics.of(LATENCY, provider="local") == 1


def test_a_rejected_request_falls_back_at_once(api: Any, openai_primary: OpenAICompatibleServer) -> None:
    openai_primary.set_mode("error401")
    metrics = MetricDelta((RETRIES, {"provider": "openai"}), (FALLBACKS, {"reason": "non_retryable"}))

    created = post_audit(api, KIND, VALID_BODIES[KIND]()).json()

    assert stored_embedding(created["id"]).model == LOCAL_MODEL
    assert openai_primary.request_count == 1
    assert metrics.of(RETRIES, provider="openai") == 0
    assert metrics.of(FALLBACKS, reason="non_retryable") == 1


def test_a_fallback_vector_is_never_served_from_the_cache_as_the_primarys(
    api: Any, openai_primary: OpenAICompatibleServer
) -> None:
    body = VALID_BODIES[KIND]()
    openai_primary.fail_next(4, "error500")
    first = post_audit(api, KIND, body).json()
    assert stored_embedding(first["id"]).model == LOCAL_MODEL

    # Primary back: the same text must reach it, not be answered with the local vector.
    second = post_audit(api, KIND, VALID_BODIES[KIND]()).json()

    assert openai_primary.request_count == 5
    assert stored_embedding(second["id"]).model == OPENAI_MODEL


def test_primary_down_without_fallback_defers_and_still_writes_the_audit(
    api: Any, settings: Any, openai_primary: OpenAICompatibleServer
) -> None:
    settings.EMBEDDING_FALLBACK = "none"
    openai_primary.stop()  # connection refused: a real outage
    metrics = MetricDelta((DEFERRALS, {}), (RETRIES, {"provider": "openai"}))
    body = VALID_BODIES[KIND]()

    response = post_audit(api, KIND, body)

    assert response.status_code == 201
    created = response.json()
    assert created["embeddingStatus"] == "pending"
    assert created["embeddingId"] is None
    assert AUDIT_MODELS[KIND].objects.filter(id=created["id"], correlation_id=body["correlationId"]).exists()
    backlog = EmbeddingBacklog.objects.get(audit_type=KIND, audit_id=created["id"])
    assert "connection error" in backlog.reason
    assert not IncidentEmbedding.objects.filter(audit_type=KIND, audit_id=created["id"]).exists()
    assert metrics.of(DEFERRALS) == 1
    assert metrics.of(RETRIES, provider="openai") == 3


def test_both_providers_failing_defers(
    api: Any, settings: Any, tmp_path: Path, openai_primary: OpenAICompatibleServer
) -> None:
    # Primary answers 500s; the fallback's model file is corrupt (a broken install).
    corrupt = tmp_path / "model.onnx"
    corrupt.write_bytes(b"\x08\x07not an onnx model" * 64)
    settings.EMBEDDING_LOCAL_MODEL_PATH = str(corrupt)
    openai_primary.set_mode("error500")
    metrics = MetricDelta((DEFERRALS, {}), (FALLBACKS, {"reason": "retries_exhausted"}))

    response = post_audit(api, KIND, VALID_BODIES[KIND]())

    assert response.status_code == 201
    assert response.json()["embeddingStatus"] == "pending"
    reason = EmbeddingBacklog.objects.get(audit_type=KIND, audit_id=response.json()["id"]).reason
    assert "HTTP 500" in reason
    assert "cannot load the local model" in reason
    assert metrics.of(FALLBACKS, reason="retries_exhausted") == 1
    assert metrics.of(DEFERRALS) == 1


def test_the_runtime_is_built_once_per_process() -> None:
    assert embedding_runtime() is embedding_runtime()


def test_a_forked_child_builds_its_own_runtime(openai_primary: OpenAICompatibleServer) -> None:
    # As under gunicorn: the master built the chain, then forked a worker.
    parent = embedding_runtime()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report and leave without running pytest's teardown
        try:
            child = embedding_runtime()
            vector = embedding_for_text(text="forked").vector
            ok = child is not parent and child.pid == os.getpid() and vector.shape == (1536,)
            os.write(write_end, b"ok" if ok else b"shared")
        finally:
            os._exit(0)
    os.close(write_end)
    answer = os.read(read_end, 16)
    os.waitpid(pid, 0)
    os.close(read_end)
    assert answer == b"ok"
    assert embedding_runtime() is parent
