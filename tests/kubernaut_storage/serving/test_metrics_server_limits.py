"""The master's metrics server bounds what idle or broken connections can cost it.

200 idle connections used to keep 202 threads in gunicorn's master, and a connection error
printed a raw traceback on its stderr.
"""

from __future__ import annotations

import http.client
import logging
import socket
import threading
import time

import pytest

from kubernaut_storage.serving import metrics_server
from kubernaut_storage.serving.metrics_server import MAX_CONNECTIONS, MetricsServer

IDLE_CONNECTIONS = 60


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


def test_idle_connections_hold_bounded_threads_and_time_out(server):
    threads_before = threading.active_count()
    idle = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(IDLE_CONNECTIONS)]
    try:
        time.sleep(0.2)
        assert threading.active_count() - threads_before <= MAX_CONNECTIONS
        time.sleep(1.0)  # past the socket timeout: every idle connection is closed
        assert all(sock.recv(1) == b"" for sock in idle)
        assert _scrape(server.port) == 200
    finally:
        for sock in idle:
            sock.close()


def test_a_connection_error_is_logged_not_printed(server, caplog, capsys):
    with caplog.at_level(logging.WARNING, logger="kubernaut_storage.serving.metrics_server"):
        try:
            raise ConnectionResetError("peer went away")
        except ConnectionResetError:
            server._server.handle_error(None, ("10.0.0.9", 4242))
    assert capsys.readouterr().err == ""
    (record,) = caplog.records
    assert record.getMessage() == "metrics: connection from 10.0.0.9 failed"
    assert record.exc_info is not None
