"""The Prometheus endpoint on its own port (9090), served by gunicorn's master.

Workers write their samples to per-process files in PROMETHEUS_MULTIPROC_DIR; the master sums
them on every scrape with prometheus_client's MultiProcessCollector, so `/metrics` shows the
whole pod whichever worker served a request, and a worker's counts survive its restart. The
master serves no API traffic, so a scrape never competes with a write for a worker thread.

Optional bearer-token protection (METRICS_TOKEN): the metrics name endpoints and failure
rates, which an operator may not want readable by everything in the cluster network.
"""

from __future__ import annotations

import hmac
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from audit.integrity.metrics import SealCollector

logger = logging.getLogger(__name__)

METRICS_PATH = "/metrics"
# A scrape is one small request: a connection gets this long per read or write, and at most
# this many are served at once (more are closed on arrival). Without them 200 idle connections
# kept 202 threads in gunicorn's master.
SOCKET_TIMEOUT_S = 5.0
MAX_CONNECTIONS = 16
LISTEN_BACKLOG = 64


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a stuck scraper must not keep the master from exiting
    allow_reuse_address = True
    request_queue_size = LISTEN_BACKLOG

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._connections = threading.BoundedSemaphore(MAX_CONNECTIONS)
        super().__init__(*args, **kwargs)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._connections.acquire(blocking=False):
            self.shutdown_request(request)  # at capacity: a scraper retries on its next interval
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._connections.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver prints a raw traceback on stderr; the master logs JSON lines.
        logger.warning("metrics: connection from %s failed", client_address[0], exc_info=True)


class MetricsServer:
    """`GET /metrics` with the multiprocess registry of `multiproc_dir`, on a background thread."""

    def __init__(self, *, host: str, port: int, multiproc_dir: str, token: str | None) -> None:
        self.registry = CollectorRegistry()
        MultiProcessCollector(self.registry, path=multiproc_dir)
        # Read from the database at scrape time: the sealing Jobs are never scraped themselves.
        self.registry.register(SealCollector())
        self._token = token.encode() if token else None
        self._server = _Server((host, port), self._handler_class())
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics-server", daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
        self._server.server_close()

    def close_inherited(self) -> None:
        """In a forked child: close the copy of the listening socket, leave the master's alone."""
        self._server.socket.close()

    def authorized(self, header: str | None) -> bool:
        if self._token is None:
            return True
        scheme, _, credentials = (header or "").partition(" ")
        # Constant-time comparison: the answer's timing must not reveal the token's prefix.
        return scheme.lower() == "bearer" and hmac.compare_digest(credentials.strip().encode(), self._token)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        metrics = self

        class Handler(BaseHTTPRequestHandler):
            timeout = SOCKET_TIMEOUT_S  # applied to the connection's socket by StreamRequestHandler

            def do_GET(self) -> None:  # name fixed by BaseHTTPRequestHandler
                if self.path.split("?", 1)[0] != METRICS_PATH:
                    self._send(404, b"not found\n", "text/plain; charset=utf-8")
                    return
                if not metrics.authorized(self.headers.get("Authorization")):
                    self._send(401, b"unauthorized\n", "text/plain; charset=utf-8", bearer=True)
                    return
                try:
                    output = generate_latest(metrics.registry)
                except Exception:  # a torn sample file must cost one scrape, not the server
                    logger.exception("metrics: collection failed")
                    self._send(500, b"collection failed\n", "text/plain; charset=utf-8")
                    return
                self._send(200, output, CONTENT_TYPE_LATEST)

            def _send(self, status: int, body: bytes, content_type: str, *, bearer: bool = False) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                if bearer:
                    self.send_header("WWW-Authenticate", 'Bearer realm="metrics"')
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return  # one line per scrape every 15-30 s is noise; failures are logged above

        return Handler
