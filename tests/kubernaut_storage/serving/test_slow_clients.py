"""Slow clients cannot hold gunicorn's threads: a request must arrive within a deadline.

A real gunicorn with the repo's config (2 workers x 4 threads) and a 2 s read deadline: many
connections that send a request line and one header, then nothing, must not stop /healthz and
a valid write from answering, and are closed once the deadline passes.
"""

from __future__ import annotations

import http.client
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection

from audit.models import AuditKind
from kubernaut_storage.serving.worker import SMALL_BODY_BYTES, request_delivered
from testutils.factories import VALID_BODIES
from testutils.gunicorn import Gunicorn, database_url, running_gunicorn

READ_TIMEOUT_S = 2.0
SLOW_CONNECTIONS = 100


@pytest.fixture(scope="module")
def gunicorn(django_db_setup: Any, django_db_blocker: Any) -> Iterator[Gunicorn]:
    with django_db_blocker.unblock():
        url = database_url(connection.settings_dict)
    with running_gunicorn(DATABASE_URL=url, GUNICORN_REQUEST_READ_TIMEOUT_SECONDS=str(READ_TIMEOUT_S)) as server:
        yield server


def _slow_connections(port: int, count: int, first_bytes: bytes) -> list[socket.socket]:
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(first_bytes)
        sockets.append(sock)
    return sockets


def _closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(1024) == b""  # EOF: the server closed it without answering
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_slow_headers_do_not_take_the_port_down(gunicorn, transactional_db):
    slow = _slow_connections(gunicorn.port, SLOW_CONNECTIONS, b"GET /healthz HTTP/1.1\r\nHost: storage\r\n")
    try:
        started = time.monotonic()
        assert gunicorn.request("GET", "/healthz").status == 200
        write = gunicorn.request("POST", "/api/v1/audit/remediation", body=VALID_BODIES[AuditKind.REMEDIATION]())
        assert write.status == 201, write.body
        assert time.monotonic() - started < READ_TIMEOUT_S  # answered while every slow one still waits
        time.sleep(READ_TIMEOUT_S + 1.5)  # the deadline, plus the worker loop's 1 s tick
        assert all(_closed_by_server(sock) for sock in slow)
    finally:
        for sock in slow:
            sock.close()


def test_a_body_that_stops_arriving_is_closed(gunicorn):
    head = b"POST /api/v1/audit/remediation HTTP/1.1\r\nHost: storage\r\nContent-Type: application/json\r\n"
    (sock,) = _slow_connections(gunicorn.port, 1, head + b"Content-Length: 100\r\n\r\n{")
    try:
        assert gunicorn.request("GET", "/healthz").status == 200
        time.sleep(READ_TIMEOUT_S + 1.5)
        assert _closed_by_server(sock)
    finally:
        sock.close()


def test_keep_alive_requests_still_work(gunicorn):
    kept_alive = http.client.HTTPConnection("127.0.0.1", gunicorn.port, timeout=10)
    try:
        for _ in range(3):
            kept_alive.request("GET", "/healthz")
            answer = kept_alive.getresponse()
            assert (answer.status, answer.read()) == (200, b'{"status": "ok"}')
        assert kept_alive.sock is not None  # one connection served all three
    finally:
        kept_alive.close()


@pytest.mark.parametrize(
    ("data", "delivered"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\n", False),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", True),
        (b"POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\n{}", False),
        (b'POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\n{""}', True),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", True),
        (b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 9\r\n\r\n", True),
        (b"POST / HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % (SMALL_BODY_BYTES + 1), True),
        (b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n", True),
        (b"GET / HTTP/1.1\r\nX: " + b"a" * 70_000, True),
    ],
)
def test_request_delivered(data, delivered):
    assert request_delivered(data) is delivered
