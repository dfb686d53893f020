"""The circuit breaker's settings, read from a real environment in a fresh interpreter."""

from __future__ import annotations

from typing import Any

import pytest

from embeddings.services import embedding_runtime
from tests.embeddings.test_settings import settings_with
from testutils.openai_server import OpenAICompatibleServer

PRINT = """
import json
from django.conf import settings
print(json.dumps([
    settings.EMBEDDING_CIRCUIT_FAILURES, settings.EMBEDDING_CIRCUIT_TIMEOUTS, settings.EMBEDDING_CIRCUIT_COOLDOWN_S
]))
"""


def test_defaults_and_values_from_the_environment() -> None:
    defaults = settings_with(code=PRINT)
    assert defaults.returncode == 0, defaults.stderr[-2000:]
    assert defaults.stdout.strip().splitlines()[-1] == "[5, 2, 10.0]"

    chosen = settings_with(
        code=PRINT, EMBEDDING_CIRCUIT_FAILURES="2", EMBEDDING_CIRCUIT_TIMEOUTS="1", EMBEDDING_CIRCUIT_COOLDOWN_S="0.5"
    )
    assert chosen.returncode == 0, chosen.stderr[-2000:]
    assert chosen.stdout.strip().splitlines()[-1] == "[2, 1, 0.5]"


@pytest.mark.parametrize(
    "environment",
    [
        {"EMBEDDING_CIRCUIT_FAILURES": "0"},
        {"EMBEDDING_CIRCUIT_TIMEOUTS": "0"},
        {"EMBEDDING_CIRCUIT_COOLDOWN_S": "0"},
        {"EMBEDDING_CIRCUIT_COOLDOWN_S": "-3"},
    ],
)
def test_bad_values_stop_the_start(environment: dict[str, str]) -> None:
    result = settings_with(**environment)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr


@pytest.mark.parametrize("setting", ["EMBEDDING_CIRCUIT_FAILURES", "EMBEDDING_CIRCUIT_TIMEOUTS"])
def test_overriding_any_embedding_setting_rebuilds_the_runtime(
    settings: Any, openai_primary: OpenAICompatibleServer, setting: str
) -> None:
    """A test's override takes effect: the process's chain is rebuilt from the new value."""
    before = embedding_runtime()
    setattr(settings, setting, 1)
    after = embedding_runtime()
    assert after is not before
    breaker = after.chain.circuit
    assert breaker is not None
    threshold = breaker.failure_threshold if setting == "EMBEDDING_CIRCUIT_FAILURES" else breaker.timeout_threshold
    assert threshold == 1
