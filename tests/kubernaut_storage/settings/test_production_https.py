"""Production's HTTPS settings: HSTS and the proxy's scheme header only when configured."""

from __future__ import annotations

import subprocess
import sys

from tests.kubernaut_storage.settings.test_production import GOOD
from testutils.gunicorn import REPO

CODE = "from django.conf import settings; print(settings.SECURE_HSTS_SECONDS, settings.SECURE_PROXY_SSL_HEADER)"


def _https_settings(**env: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", CODE], cwd=REPO, env={**GOOD, **env}, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_by_default_no_hsts_and_no_trusted_scheme_header():
    assert _https_settings() == "0 None"


def test_hsts_and_the_scheme_header_when_configured():
    assert (
        _https_settings(DJANGO_SECURE_HSTS_SECONDS="31536000", DJANGO_TRUST_X_FORWARDED_PROTO="true")
        == "31536000 ('HTTP_X_FORWARDED_PROTO', 'https')"
    )
