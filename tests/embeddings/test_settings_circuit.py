"""The circuit breaker's settings, read from a real environment in a fresh interpreter."""

from __future__ import annotations

import pytest

from tests.embeddings.test_settings import settings_with

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
