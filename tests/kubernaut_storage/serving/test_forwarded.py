"""gunicorn believes no peer's X-Forwarded-* / SCRIPT_NAME unless GUNICORN_FORWARDED_ALLOW_IPS names it.

gunicorn's own default trusts loopback: any sidecar in the pod could then move the admin's
links under a prefix of its choosing.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from testutils.gunicorn import REPO

CODE = (
    "import runpy; from gunicorn.config import Config; config = Config(); "
    "config.set('forwarded_allow_ips', runpy.run_path('kubernaut_storage/gunicorn_config.py')['forwarded_allow_ips']); "
    "print(config.forwarded_allow_ips)"
)


@pytest.mark.parametrize(("configured", "trusted"), [(None, "[]"), ("10.0.0.5,10.0.0.6", "['10.0.0.5', '10.0.0.6']")])
def test_forwarded_headers_are_trusted_only_from_configured_peers(tmp_path, configured, trusted):
    env = {"PATH": "/usr/bin:/bin", "KUBERNAUT_RUNTIME_DIR": str(tmp_path)}
    if configured is not None:
        env["GUNICORN_FORWARDED_ALLOW_IPS"] = configured
    result = subprocess.run([sys.executable, "-c", CODE], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == trusted
