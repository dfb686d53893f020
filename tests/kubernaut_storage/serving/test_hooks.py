"""The gunicorn config refuses to run without authentication anywhere but loopback."""

from __future__ import annotations

import logging

import pytest

from kubernaut_storage.serving.hooks import auth_guard, is_loopback
from testutils.gunicorn import free_port, gunicorn_env, gunicorn_spawn


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        (("127.0.0.1", 8080), True),
        (("127.8.9.10", 8080), True),
        (("::1", 8080), True),
        (("localhost", 8080), True),
        ("/run/kubernaut/gunicorn.sock", True),
        (("0.0.0.0", 8080), False),
        (("::", 8080), False),
        (("10.0.0.5", 8080), False),
        (("storage.example.com", 8080), False),
    ],
)
def test_loopback_addresses(address, loopback):
    assert is_loopback(address) is loopback


def test_auth_off_on_loopback_starts_with_a_loud_warning(caplog):
    log = logging.getLogger("test.gunicorn")
    with caplog.at_level(logging.WARNING):
        auth_guard(auth_mode="none", addresses=[("127.0.0.1", 8080)], log=log)
    assert "AUTHENTICATION IS OFF" in caplog.text


def test_auth_on_may_bind_anywhere(caplog):
    auth_guard(auth_mode="tokenreview", addresses=[("0.0.0.0", 8080)], log=logging.getLogger("test.gunicorn"))
    assert not caplog.records


def test_gunicorn_refuses_auth_off_on_a_public_bind():
    env = gunicorn_env(
        AUTH_MODE="none",
        DATABASE_URL="postgres://nobody@db.invalid/none",  # refused before any connection
        GUNICORN_BIND=f"0.0.0.0:{free_port()}",
        METRICS_BIND=f"127.0.0.1:{free_port()}",
    )
    process = gunicorn_spawn(env)
    _, stderr = process.communicate(timeout=60)

    assert process.returncode == 1
    assert b"refusing to start: authentication is off (AUTH_MODE=none)" in stderr
    assert b"Booting worker" not in stderr
