"""Idle connections beyond a worker's bound close the oldest idle one; new ones are always taken.

gunicorn's gthread stops accepting at `worker_connections`: new connections (the kubelet's
probes, writers) then waited in the listen queue until idle ones timed out. A real gunicorn of
2 workers bounded at 20 connections each, flooded with idle connections, must still answer a
probe at once, by closing the connections that have been idle longest.
"""

from __future__ import annotations

import http.client
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection

from testutils.gunicorn import Gunicorn, database_url, running_gunicorn

BOUND = 20
IDLE = 100  # 2.5 x what the two workers may hold
READ_TIMEOUT_S = 5.0


@pytest.fixture(scope="module")
def gunicorn(django_db_setup: Any, django_db_blocker: Any) -> Iterator[Gunicorn]:
    with django_db_blocker.unblock():
        connection.ensure_connection()  # the embedded server runs (for /readyz)
        url = database_url(connection.settings_dict)
    with running_gunicorn(
        DATABASE_URL=url,
        GUNICORN_WORKER_CONNECTIONS=str(BOUND),
        GUNICORN_REQUEST_READ_TIMEOUT_SECONDS=str(READ_TIMEOUT_S),
    ) as server:
        yield server


def _closed(sock: socket.socket) -> bool:
    sock.settimeout(0.05)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_idle_connections_beyond_the_bound_make_room_oldest_first(gunicorn, transactional_db):
    idle: list[socket.socket] = []
    try:
        for _ in range(IDLE):
            idle.append(socket.create_connection(("127.0.0.1", gunicorn.port), timeout=5))
            time.sleep(0.005)  # one after the other, so "oldest" means something
        for probe in ("/healthz", "/readyz"):
            started = time.monotonic()
            assert gunicorn.request("GET", probe).status == 200
            assert time.monotonic() - started < 1.0  # not left queued behind the idle ones
        closed = [_closed(sock) for sock in idle]
        # Each worker holds at most BOUND: the rest were closed, long before their deadline.
        assert sum(closed) >= IDLE - 2 * BOUND
        # The newest connections of each worker stay: the last few opened overall among them.
        assert not any(closed[-5:])
    finally:
        for sock in idle:
            sock.close()


def test_kept_alive_connections_are_idle_too(gunicorn):
    kept_alive: list[http.client.HTTPConnection] = []
    try:
        for _ in range(3 * BOUND):
            client = http.client.HTTPConnection("127.0.0.1", gunicorn.port, timeout=5)
            client.request("GET", "/healthz")
            answer = client.getresponse()
            assert (answer.status, answer.read()) == (200, b'{"status": "ok"}')
            kept_alive.append(client)
        started = time.monotonic()
        assert gunicorn.request("GET", "/healthz").status == 200
        assert time.monotonic() - started < 1.0
        closed = [client.sock is None or _closed(client.sock) for client in kept_alive]
        assert sum(closed) >= 3 * BOUND - 2 * BOUND
        assert not any(closed[-5:])
    finally:
        for client in kept_alive:
            client.close()
