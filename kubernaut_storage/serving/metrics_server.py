"""The Prometheus endpoint on its own port (9090), served by gunicorn's master.

Workers write their samples to per-process files in PROMETHEUS_MULTIPROC_DIR; the master sums
them on every scrape with prometheus_client's MultiProcessCollector, so `/metrics` shows the
whole pod whichever worker served a request, and a worker's counts survive its restart. The
master serves no API traffic, so a scrape never competes with a write for a worker thread.
Collectors the apps register (kubernaut_storage/observability/metrics.py) are read at each
scrape too.

Idle connections cost no thread: one thread reads every request head with a deadline
(SOCKET_TIMEOUT_S) and hands complete ones to SCRAPE_THREADS threads. At MAX_CONNECTIONS the
connection idle longest is closed for each new one, so scrapes get in however many idle
connections others open (16 idle reopening connections used to refuse 17 of 20 scrapes).

Optional bearer-token protection (METRICS_TOKEN): the metrics name endpoints and failure
rates, which an operator may not want readable by everything in the cluster network.
"""

from __future__ import annotations

import contextlib
import hmac
import io
import logging
import selectors
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from kubernaut_storage.observability.metrics import scrape_collectors

logger = logging.getLogger(__name__)

METRICS_PATH = "/metrics"
# A scrape is one small request: its head must arrive, and each write of its answer complete,
# within this.
SOCKET_TIMEOUT_S = 5.0
# Connections open at once: a Prometheus or two scrape every 15-30 s.
MAX_CONNECTIONS = 64
# Scrapes answered at once; more wait for a thread (reading the sample files is CPU work).
SCRAPE_THREADS = 2
LISTEN_BACKLOG = 64
_MAX_HEAD_BYTES = 8192
_END_OF_HEAD = b"\r\n\r\n"


class MetricsServer:
    """`GET /metrics` with the multiprocess registry of `multiproc_dir`, on a background thread."""

    def __init__(self, *, host: str, port: int, multiproc_dir: str, token: str | None) -> None:
        self.registry = CollectorRegistry()
        MultiProcessCollector(self.registry, path=multiproc_dir)
        for collector in scrape_collectors():
            self.registry.register(collector)
        self._token = token.encode() if token else None
        self._handler = self._handler_class()
        self.socket = socket.create_server((host, port), backlog=LISTEN_BACKLOG)
        self.socket.setblocking(False)
        self._selector = selectors.DefaultSelector()
        # Connections whose request head is still arriving, oldest first, with what came so far.
        self._arriving: OrderedDict[socket.socket, tuple[float, bytearray]] = OrderedDict()
        # Connections handed to the pool, not answered yet.
        self._scraping: set[socket.socket] = set()
        self._scraping_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(SCRAPE_THREADS, thread_name_prefix="metrics-scrape")
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.socket.getsockname()[1])

    def start(self) -> None:
        self._selector.register(self.socket, selectors.EVENT_READ)
        self._thread = threading.Thread(target=self._serve, name="metrics-server", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)
        for sock in list(self._arriving):
            sock.close()
        self._selector.close()
        self.socket.close()

    def close_inherited(self) -> None:
        """In a forked child: close its copies of the server's sockets, leave the master's alone.

        A copy left open would keep a connection the master closes open for the worker's life.
        """
        # No lock: a scrape thread of the master may have held it when the fork happened, and
        # the child has no other thread to change these.
        for sock in [*self._arriving, *self._scraping, self.socket]:
            sock.close()
        self._selector.close()

    def authorized(self, header: str | None) -> bool:
        if self._token is None:
            return True
        scheme, _, credentials = (header or "").partition(" ")
        # Constant-time comparison: the answer's timing must not reveal the token's prefix.
        return scheme.lower() == "bearer" and hmac.compare_digest(credentials.strip().encode(), self._token)

    def _serve(self) -> None:
        while not self._stopping.is_set():
            for key, _ in self._selector.select(timeout=0.5):
                if key.fileobj is self.socket:
                    self._accept()
                else:
                    self._read(key.fileobj)  # type: ignore[arg-type]
            now = time.monotonic()
            while self._arriving:
                sock, (deadline, _) = next(iter(self._arriving.items()))
                if deadline > now:
                    break
                self._drop(sock)

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                logger.warning("metrics: accept failed", exc_info=True)
                return
            if len(self._arriving) + self._scrapes_under_way() >= MAX_CONNECTIONS:
                if not self._arriving:  # every slot is a scrape under way: this one waits its turn
                    sock.close()
                    continue
                self._drop(next(iter(self._arriving)))
            sock.setblocking(False)
            self._arriving[sock] = (time.monotonic() + SOCKET_TIMEOUT_S, bytearray())
            self._selector.register(sock, selectors.EVENT_READ)

    def _read(self, sock: socket.socket) -> None:
        try:
            chunk = sock.recv(_MAX_HEAD_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        head = self._arriving[sock][1]
        head += chunk
        if not chunk or len(head) > _MAX_HEAD_BYTES:
            self._drop(sock)
        elif _END_OF_HEAD in head:
            self._forget(sock)
            with self._scraping_lock:
                self._scraping.add(sock)
            self._pool.submit(self._answer, sock, bytes(head))

    def _scrapes_under_way(self) -> int:
        with self._scraping_lock:
            return len(self._scraping)

    def _forget(self, sock: socket.socket) -> None:
        del self._arriving[sock]
        self._selector.unregister(sock)

    def _drop(self, sock: socket.socket) -> None:
        self._forget(sock)
        sock.close()

    def _answer(self, sock: socket.socket, head: bytes) -> None:
        try:
            sock.settimeout(SOCKET_TIMEOUT_S)
            address = sock.getpeername()
            self._handler(head, sock, address, self)
        except Exception:  # a connection's failure must cost that connection, never the server
            logger.warning("metrics: connection from %s failed", _peer(sock), exc_info=True)
        finally:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_WR)
            with self._scraping_lock:
                self._scraping.discard(sock)
            sock.close()

    def _handler_class(self) -> Callable[[bytes, socket.socket, Any, MetricsServer], BaseHTTPRequestHandler]:
        metrics = self

        class Handler(BaseHTTPRequestHandler):
            def __init__(self, head: bytes, *args: Any) -> None:
                self._head = head
                super().__init__(*args)

            def setup(self) -> None:
                super().setup()
                self.rfile = io.BytesIO(self._head)  # the head the server loop read

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


def _peer(sock: socket.socket) -> str:
    try:
        return str(sock.getpeername()[0])
    except OSError:
        return "a client that left"
