"""What a thread still reads from a client ends by the request's deadline too.

The worker reads up to 1 MiB of a body in its event loop. With AUDIT_MAX_BODY_BYTES above that,
the API's parser reads the rest from the socket in its thread: a client that stops sending
there used to hold the thread for as long as it kept the connection open. Now the read ends at
the request's deadline, answered 400 `body-incomplete` (not a 500), and the connection closes.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection

from testutils.gunicorn import Gunicorn, database_url, running_gunicorn

READ_TIMEOUT_S = 2.0
PATIENT_TIMEOUT_S = 60.0
ATTACKERS = 6  # more than the worker's 4 threads


@pytest.fixture(scope="module")
def gunicorn(django_db_setup: Any, django_db_blocker: Any) -> Iterator[Gunicorn]:
    with django_db_blocker.unblock():
        connection.ensure_connection()
        url = database_url(connection.settings_dict)
    with running_gunicorn(
        DATABASE_URL=url,
        GUNICORN_WORKERS="1",
        AUDIT_MAX_BODY_BYTES=str(4 * 1024 * 1024),
        GUNICORN_REQUEST_READ_TIMEOUT_SECONDS=str(READ_TIMEOUT_S),
    ) as server:
        yield server


def _answer_and_close(sock: socket.socket, *, within_s: float) -> bytes | None:
    received = b""
    deadline = time.monotonic() + within_s
    while (remaining := deadline - time.monotonic()) > 0:
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return None
        except ConnectionResetError:  # closed with bytes unread: the kernel resets
            return received
        if not chunk:
            return received
        received += chunk
    return None


def test_a_large_body_that_stops_is_answered_400_at_its_deadline(gunicorn):
    head = (
        b"POST /api/v1/audit/remediation HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: 3000000\r\n\r\n"
    )
    attackers = []
    try:
        for _ in range(ATTACKERS):
            sock = socket.create_connection(("127.0.0.1", gunicorn.port), timeout=10)
            sock.sendall(head + b" " * 1_500_000)  # past the loop's 1 MiB, then nothing
            attackers.append(sock)
        # Each thread waits at most until its request's deadline; the two left queued get the
        # socket only then, and their deadline has already passed.
        answers = [_answer_and_close(sock, within_s=READ_TIMEOUT_S * 2 + 2) for sock in attackers]
    finally:
        for sock in attackers:
            sock.close()
    for answer in answers:
        assert answer is not None, "the thread still waits for the body"
        status_line, _, rest = answer.partition(b"\r\n")
        assert status_line == b"HTTP/1.1 400 Bad Request", answer[:300]
        assert b"Connection: close" in rest
        assert json.loads(rest.split(b"\r\n\r\n", 1)[1])["type"] == "https://kubernaut.ai/problems/body-incomplete"
    assert gunicorn.request("GET", "/healthz").status == 200
    assert not [line for line in gunicorn.lines if "Traceback" in line or '"status":500' in line]


@pytest.fixture(scope="module")
def patient_gunicorn(django_db_setup: Any, django_db_blocker: Any) -> Iterator[Gunicorn]:
    with django_db_blocker.unblock():
        connection.ensure_connection()
        url = database_url(connection.settings_dict)
    with running_gunicorn(
        DATABASE_URL=url, GUNICORN_WORKERS="1", GUNICORN_REQUEST_READ_TIMEOUT_SECONDS=str(PATIENT_TIMEOUT_S)
    ) as server:
        yield server


def test_the_bytes_a_worker_buffers_are_bounded_by_dropping_the_largest(patient_gunicorn):
    # Each connection sends just under 1 MiB of a body it never finishes: the worker reads it
    # in its loop. Past MAX_BUFFERED_BYTES (64 MiB) it drops the requests holding the most.
    gunicorn = patient_gunicorn
    head = b"POST /api/v1/audit/remediation HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1048000\r\n\r\n"
    part = b" " * 1_000_000
    senders = []
    started = time.monotonic()
    try:
        for _ in range(80):
            sock = socket.create_connection(("127.0.0.1", gunicorn.port), timeout=10)
            with contextlib.suppress(OSError):  # dropped while sending: the bound at work
                sock.sendall(head + part)
            senders.append(sock)
        # ~67 requests of 1 MB fit in 64 MiB: the rest are dropped once the worker read them.
        closed: set[int] = set()
        while len(closed) < 10 and time.monotonic() - started < 20:
            for index, sock in enumerate(senders):
                if index not in closed and _answer_and_close(sock, within_s=0.01) is not None:
                    closed.add(index)
        assert time.monotonic() - started < PATIENT_TIMEOUT_S  # so no deadline closed any of them
        assert 10 <= len(closed) < 80
        assert gunicorn.request("GET", "/healthz").status == 200
    finally:
        for sock in senders:
            sock.close()
