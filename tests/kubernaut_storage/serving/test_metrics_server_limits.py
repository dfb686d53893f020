"""The master's metrics server bounds what idle or broken connections can cost it, and scrapes
still get through them.

200 idle connections used to keep 202 threads in gunicorn's master; capped at 16 threads, 16
idle connections (reopened as they timed out) then refused 17 of 20 scrapes. A connection error
printed a raw traceback on its stderr.
"""

from __future__ import annotations

import http.client
import logging
import os
import signal
import socket
import threading
import time

import pytest

from kubernaut_storage.serving import metrics_server
from kubernaut_storage.serving.metrics_server import MAX_CONNECTIONS, SCRAPE_THREADS, MetricsServer

IDLE_CONNECTIONS = 2 * MAX_CONNECTIONS


@pytest.fixture
def server(tmp_path, monkeypatch):
    monkeypatch.setattr(metrics_server, "SOCKET_TIMEOUT_S", 0.5)
    metrics = MetricsServer(host="127.0.0.1", port=0, multiproc_dir=str(tmp_path), token=None)
    metrics.start()
    yield metrics
    metrics.close()


def _scrape(port: int) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/metrics")
        return connection.getresponse().status
    finally:
        connection.close()


def _closed_within(sock: socket.socket, *, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:  # closed with bytes unread: the kernel resets
        return True
    except TimeoutError:
        return False


@pytest.mark.real_clock
def test_idle_connections_hold_no_thread_and_time_out(server):
    threads_before = threading.active_count()
    idle = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(MAX_CONNECTIONS // 2)]
    try:
        assert _scrape(server.port) == 200  # starts the scrape threads
        assert threading.active_count() - threads_before <= SCRAPE_THREADS
        time.sleep(1.2)  # past the head's deadline: every idle connection is closed
        assert all(_closed_within(sock, seconds=0.05) for sock in idle)
    finally:
        for sock in idle:
            sock.close()


def test_scrapes_get_through_any_number_of_idle_connections(server, monkeypatch):
    monkeypatch.setattr(metrics_server, "SOCKET_TIMEOUT_S", 30.0)  # idle for the whole test
    idle: list[socket.socket] = []
    try:
        for _ in range(IDLE_CONNECTIONS):
            idle.append(socket.create_connection(("127.0.0.1", server.port), timeout=5))
        assert [_scrape(server.port) for _ in range(20)] == [200] * 20
        # Room was made by closing the connections idle longest.
        closed = [_closed_within(sock, seconds=0.05) for sock in idle]
        assert sum(closed) >= IDLE_CONNECTIONS - MAX_CONNECTIONS
        assert not any(closed[-10:])
    finally:
        for sock in idle:
            sock.close()


def test_a_head_that_never_ends_is_closed(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 20_000)
        assert _closed_within(sock, seconds=0.2)  # over 8 KiB: at once, not at the deadline


def test_a_connection_error_is_logged_not_printed(server, caplog, capsys, monkeypatch):
    def reset(header: str | None) -> bool:
        raise ConnectionResetError("peer went away")

    monkeypatch.setattr(server, "authorized", reset)
    with caplog.at_level(logging.WARNING, logger="kubernaut_storage.serving.metrics_server"):
        with pytest.raises(http.client.RemoteDisconnected):
            _scrape(server.port)
        time.sleep(0.1)  # the scrape thread logs after closing the connection
    assert capsys.readouterr().err == ""
    (record,) = caplog.records
    assert record.getMessage() == "metrics: connection from 127.0.0.1 failed"
    assert record.exc_info is not None
    monkeypatch.undo()
    assert _scrape(server.port) == 200  # the server is unharmed


@pytest.mark.real_clock
def test_a_forked_worker_holds_no_copy_of_the_masters_connections(server):
    # gunicorn forks workers from the master while it serves: a copy of a connection's socket
    # left open in a worker kept the connection open after the master closed it.
    idle = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    try:
        time.sleep(0.1)  # accepted by the master, waiting for its head
        child = os.fork()
        if child == 0:  # the worker
            server.close_inherited()
            time.sleep(5)
            os._exit(0)
        try:
            assert _closed_within(idle, seconds=2.0)  # the master's 0.5 s deadline, and nothing else holds it
        finally:
            os.kill(child, signal.SIGKILL)
            os.waitpid(child, 0)
    finally:
        idle.close()
