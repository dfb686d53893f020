"""Production settings refuse to start when misconfigured (each case in a fresh interpreter:
settings are loaded once per process)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from testutils.gunicorn import REPO

GOOD = {
    "DJANGO_SETTINGS_MODULE": "kubernaut_storage.settings.production",
    "DJANGO_SECRET_KEY": "a-real-secret-from-a-kubernetes-secret",
    "DATABASE_URL": "postgres://app@db.invalid:5432/kubernaut",  # never connected to here
    "PATH": "/usr/bin:/bin",
}


def load_settings(**env: str) -> subprocess.CompletedProcess[str]:
    code = "from django.conf import settings; print(settings.AUTH_MODE, settings.DEBUG)"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env={**GOOD, **env}, capture_output=True, text=True, timeout=60
    )


def test_production_settings_load_when_configured():
    result = load_settings()
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["tokenreview", "False"]


@pytest.mark.parametrize("secret", ["", "local-development-only-not-secret"])
def test_production_refuses_a_missing_or_development_secret_key(secret):
    result = load_settings(DJANGO_SECRET_KEY=secret)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set in production" in result.stderr


def test_production_refuses_debug():
    result = load_settings(DJANGO_DEBUG="true")
    assert result.returncode != 0
    assert "DJANGO_DEBUG must be off in production" in result.stderr


def test_production_refuses_authentication_off():
    result = load_settings(AUTH_MODE="none")
    assert result.returncode != 0
    assert "production requires AUTH_MODE=tokenreview" in result.stderr


def test_an_unknown_auth_mode_is_refused_everywhere():
    result = load_settings(DJANGO_SETTINGS_MODULE="kubernaut_storage.settings.local", AUTH_MODE="off")
    assert result.returncode != 0
    assert "AUTH_MODE must be one of tokenreview, none" in result.stderr
