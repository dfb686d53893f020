"""Slow clients cannot hold gunicorn's threads: every read of a request ends by its deadline.

A real gunicorn with the repo's config (2 workers x 4 threads) and a 2 s read deadline. Each
attack opens more connections than the 8 threads, each sending part of a request and then
nothing: a head, an oversized head, a body that stops (by length, chunked, after
`Expect: 100-continue`), the start of a request pipelined behind a complete one. /healthz and a
valid write must still answer at once, and every attacking connection is closed by its deadline.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection

from audit.models import AuditKind
from testutils.factories import VALID_BODIES
from testutils.gunicorn import Gunicorn, database_url, running_gunicorn

READ_TIMEOUT_S = 2.0
# More than the 2 x 4 threads: were each to hold one, nothing else would be served.
ATTACKERS = 12
# The deadline, plus the worker loop's 1 s tick, plus slack for a busy machine.
CLOSED_BY_S = READ_TIMEOUT_S + 2.0
WRITE_PATH = "/api/v1/audit/remediation"
POST_HEAD = f"POST {WRITE_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n".encode()


@pytest.fixture(scope="module")
def gunicorn(django_db_setup: Any, django_db_blocker: Any) -> Iterator[Gunicorn]:
    with django_db_blocker.unblock():
        url = database_url(connection.settings_dict)
    with running_gunicorn(DATABASE_URL=url, GUNICORN_REQUEST_READ_TIMEOUT_SECONDS=str(READ_TIMEOUT_S)) as server:
        yield server


def _connections(port: int, count: int, first_bytes: bytes) -> list[socket.socket]:
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(first_bytes)
        sockets.append(sock)
    return sockets


def _read_until_closed(sock: socket.socket, *, within_s: float) -> bytes | None:
    """Everything the server sends until it closes the connection; None if it is still open."""
    received = b""
    deadline = time.monotonic() + within_s
    while (remaining := deadline - time.monotonic()) > 0:
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return received
        except TimeoutError:
            return None
        if not chunk:
            return received
        received += chunk
    return None


def _assert_served_while_attacked(gunicorn: Gunicorn) -> None:
    started = time.monotonic()
    assert gunicorn.request("GET", "/healthz").status == 200
    write = gunicorn.request("POST", WRITE_PATH, body=VALID_BODIES[AuditKind.REMEDIATION]())
    assert write.status == 201, write.body
    # Before any attacker's deadline could have freed a thread.
    assert time.monotonic() - started < READ_TIMEOUT_S * 0.75


def _assert_all_closed(sockets: list[socket.socket]) -> list[bytes]:
    answers = [_read_until_closed(sock, within_s=CLOSED_BY_S) for sock in sockets]
    assert None not in answers, "a connection outlived its deadline"
    return [answer for answer in answers if answer is not None]


@pytest.fixture
def attackers(gunicorn: Gunicorn, transactional_db: None) -> Iterator[list[socket.socket]]:
    # Both workers load the model before anything is timed (the rows go with the test's flush).
    for _ in range(4):
        gunicorn.request("POST", WRITE_PATH, body=VALID_BODIES[AuditKind.REMEDIATION]())
    sockets: list[socket.socket] = []
    yield sockets
    for sock in sockets:
        sock.close()


def test_slow_headers_do_not_take_the_port_down(gunicorn, attackers):
    attackers += _connections(gunicorn.port, ATTACKERS, b"GET /healthz HTTP/1.1\r\nHost: storage\r\n")
    _assert_served_while_attacked(gunicorn)
    assert _assert_all_closed(attackers) == [b""] * ATTACKERS  # closed without an answer


def test_a_head_over_the_cap_is_answered_431_and_closed_at_once(gunicorn, attackers):
    # 70 KB of one header line that never ends: the parser would wait for its end.
    attackers += _connections(gunicorn.port, ATTACKERS, b"GET /healthz HTTP/1.1\r\nX-Long: " + b"a" * 70_000)
    _assert_served_while_attacked(gunicorn)
    for sock in attackers:
        answer = _read_until_closed(sock, within_s=1.0)
        assert answer is not None
        assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")


@pytest.mark.real_clock
def test_a_request_pipelined_behind_a_complete_one_has_the_deadline(gunicorn, attackers):
    complete = b"GET /healthz HTTP/1.1\r\nHost: storage\r\n\r\n"
    attackers += _connections(gunicorn.port, ATTACKERS, complete + b"GET /healthz HTTP/1.1\r\nHost: storage\r\n")
    time.sleep(0.3)  # every first request answered, every second one waiting
    _assert_served_while_attacked(gunicorn)
    for answer in _assert_all_closed(attackers):
        assert answer.count(b"HTTP/1.1 200 OK") == 1  # the complete one, and nothing for the rest


@pytest.mark.real_clock
def test_clients_that_never_close_after_their_answer_do_not_stall_the_loop(gunicorn, attackers):
    # The server closes after the answer and reads what the client still sends until it
    # closes too; gthread did that in its event loop, 2 s per connection.
    attackers += _connections(
        gunicorn.port, ATTACKERS, b"GET /healthz HTTP/1.1\r\nHost: s\r\nConnection: close\r\n\r\n"
    )
    time.sleep(0.3)
    _assert_served_while_attacked(gunicorn)
    for answer in _assert_all_closed(attackers):
        assert answer.startswith(b"HTTP/1.1 200 OK")


BODIES_THAT_STOP = {
    "content-length": b"Content-Length: 1000\r\n\r\n" + b'{"a": "' + b"x" * 100,
    "chunked": b"Transfer-Encoding: chunked\r\n\r\n100\r\n" + b"x" * 100,
    "expect-100-continue": b"Expect: 100-continue\r\nContent-Length: 1000\r\n\r\n",
    "over-1-MiB": b"Content-Length: 3000000\r\n\r\n" + b"x" * 100_000,
}


@pytest.mark.parametrize("rest", BODIES_THAT_STOP.values(), ids=BODIES_THAT_STOP.keys())
def test_a_body_that_stops_arriving_holds_no_thread(gunicorn, attackers, rest):
    attackers += _connections(gunicorn.port, ATTACKERS, POST_HEAD + rest)
    _assert_served_while_attacked(gunicorn)
    for answer in _assert_all_closed(attackers):
        assert answer in (b"", b"HTTP/1.1 100 Continue\r\n\r\n")


def test_expect_100_continue_gets_one_interim_answer_then_the_write(gunicorn, transactional_db):
    body = json.dumps(VALID_BODIES[AuditKind.REMEDIATION]()).encode()
    (sock,) = _connections(
        gunicorn.port,
        1,
        POST_HEAD + b"Expect: 100-continue\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(body),
    )
    try:
        sock.settimeout(5)
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        answer = _read_until_closed(sock, within_s=10)
        assert answer is not None
        assert answer.startswith(b"HTTP/1.1 201 Created\r\n"), answer
        assert b"100 Continue" not in answer
    finally:
        sock.close()


def _response(sock: socket.socket) -> tuple[int, bytes]:
    answer = http.client.HTTPResponse(sock)
    answer.begin()
    return answer.status, answer.read()


def test_a_chunked_request_that_arrives_whole_is_answered_and_kept_alive(gunicorn):
    (sock,) = _connections(gunicorn.port, 1, POST_HEAD + b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
    try:
        sock.settimeout(5)
        status, _ = _response(sock)
        assert status == 400  # Django reads no chunked body: as before, an empty one
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: storage\r\n\r\n")
        assert _response(sock) == (200, b'{"status": "ok"}')
    finally:
        sock.close()


def test_a_body_over_the_limit_is_refused_from_its_first_mebibyte_and_closed(gunicorn):
    (sock,) = _connections(gunicorn.port, 1, POST_HEAD + b"Content-Length: 3000000\r\n\r\n" + b"x" * 1_100_000)
    try:
        answer = _read_until_closed(sock, within_s=READ_TIMEOUT_S / 2)
        assert answer is not None, "waited for the rest of the body"
        assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
        assert b"Connection: close" in answer
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


def test_requests_pipelined_whole_are_all_answered_in_order(gunicorn):
    requests = b"".join(b"GET /healthz?n=%d HTTP/1.1\r\nHost: storage\r\n\r\n" % n for n in range(3))
    (sock,) = _connections(gunicorn.port, 1, requests + b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n")
    try:
        answer = _read_until_closed(sock, within_s=5)
        assert answer is not None
        assert answer.count(b"HTTP/1.1 200 OK") == 4
    finally:
        sock.close()
