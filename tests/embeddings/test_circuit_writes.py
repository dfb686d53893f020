"""The circuit breaker on the write path: the real openai provider against the local
OpenAI-compatible server, the real local model as fallback, writes through the real API.

The breaker of the process's chain is rebuilt on a fake clock, so the cool-down passes when the
test says so.
"""

from __future__ import annotations

from typing import Any

import pytest

from audit.models import AuditKind
from embeddings.models import IncidentEmbedding
from embeddings.services import circuit_breaker_build, embedding_runtime
from tests.embeddings.test_circuit import FakeClock
from testutils.audit_rows import post_audit
from testutils.embedding_settings import LOCAL_MODEL, OPENAI_MODEL
from testutils.factories import VALID_BODIES
from testutils.metrics import MetricDelta, sample
from testutils.openai_server import OpenAICompatibleServer

pytestmark = pytest.mark.django_db

KIND = AuditKind.REMEDIATION
STATE = "kubernaut_embedding_circuit_state"
FALLBACKS = "kubernaut_embedding_fallbacks_total"
POD_IP_HOST = "10.244.1.17:8080"


@pytest.fixture
def clock(settings: Any, openai_primary: OpenAICompatibleServer) -> FakeClock:
    settings.EMBEDDING_CIRCUIT_FAILURES = 3
    settings.EMBEDDING_CIRCUIT_COOLDOWN_S = 10.0
    clock = FakeClock()
    embedding_runtime().chain.circuit = circuit_breaker_build(provider="openai", clock=clock)
    return clock


def write(api: Any) -> str:
    """POSTs a fresh record; the model of its stored embedding ("" when pending)."""
    response = post_audit(api, KIND, VALID_BODIES[KIND]())
    assert response.status_code == 201, response.content
    created = response.json()
    if created["embeddingStatus"] != "stored":
        return ""
    return IncidentEmbedding.objects.get(audit_type=KIND, audit_id=created["id"]).model


def probe_join() -> None:
    probe = embedding_runtime().chain.probe
    assert probe is not None
    probe.join(timeout=30)
    assert not probe.is_alive()


def readyz_circuit(client: Any) -> Any:
    response = client.get("/readyz", HTTP_HOST=POD_IP_HOST)
    assert response.status_code == 200, response.content
    return response.json()["embedding_circuit"]


def test_an_open_circuit_skips_the_primary_until_a_probe_finds_it_recovered(
    api: Any, client: Any, openai_primary: OpenAICompatibleServer, clock: FakeClock
) -> None:
    assert readyz_circuit(client) == {"provider": "openai", "state": "closed"}
    openai_primary.set_mode("error500")
    metrics = MetricDelta((FALLBACKS, {"reason": "circuit_open"}))

    assert write(api) == LOCAL_MODEL  # three failed calls open the circuit
    assert openai_primary.request_count == 3
    assert sample(STATE, provider="openai") == 2
    # Open: a hanging primary would hold each write for its timeout; these never reach it.
    openai_primary.set_mode("hang")
    assert [write(api) for _ in range(5)] == [LOCAL_MODEL] * 5
    assert openai_primary.request_count == 3
    assert metrics.of(FALLBACKS, reason="circuit_open") == 6  # the opening write's too
    # Open is a degraded state, not an unready one: writes succeed.
    assert readyz_circuit(client) == {"provider": "openai", "state": "open"}

    clock.now += 10  # cool-down over: one probe, still failing, opens it again
    openai_primary.set_mode("error500")
    assert readyz_circuit(client) == {"provider": "openai", "state": "half-open"}
    assert write(api) == LOCAL_MODEL  # answered at once; the probe runs in the background
    probe_join()
    assert openai_primary.request_count == 4
    assert write(api) == LOCAL_MODEL
    assert openai_primary.request_count == 4
    assert sample(STATE, provider="openai") == 2

    clock.now += 10  # the server recovered: the probe succeeds and closes the circuit
    openai_primary.set_mode("ok")
    assert write(api) == LOCAL_MODEL
    probe_join()
    assert openai_primary.request_count == 5
    assert sample(STATE, provider="openai") == 0
    assert readyz_circuit(client) == {"provider": "openai", "state": "closed"}
    assert write(api) == OPENAI_MODEL
    assert openai_primary.request_count == 6


def test_without_a_fallback_an_open_circuit_defers_without_calling_the_primary(
    api: Any, settings: Any, openai_primary: OpenAICompatibleServer
) -> None:
    settings.EMBEDDING_FALLBACK = "none"
    settings.EMBEDDING_CIRCUIT_FAILURES = 3
    embedding_runtime().chain.circuit = circuit_breaker_build(provider="openai", clock=FakeClock())
    openai_primary.set_mode("error500")

    assert write(api) == ""
    openai_primary.set_mode("hang")
    assert [write(api) for _ in range(3)] == [""] * 3

    assert openai_primary.request_count == 3
