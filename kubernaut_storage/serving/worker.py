"""gunicorn's gthread worker, with a deadline on delivering a request.

The stock gthread worker hands a connection to a thread as soon as its first bytes arrive;
the thread then reads the rest of the request head (and later the body) from a blocking
socket with no timeout. A client that sends a request line and one header, then nothing,
holds that thread until it disconnects: 72 such connections took a 3 x 24 pod's API down.

This worker reads the request head, and a body of up to SMALL_BODY_BYTES, in the worker's
event loop (non-blocking, no thread held) and hands the connection to a thread only when
they are complete. A connection that has not delivered them within the read timeout is
closed. A larger body, a chunked body or `Expect: 100-continue` are handed over with the
head: the application then reads the body itself (the audit API refuses anything over
AUDIT_MAX_BODY_BYTES, Django's form limits refuse large forms by their Content-Length), and
the ingress's own body-timeout bounds the rest (docs/SECURITY.md).

Plain HTTP/1.1 only: TLS ends at the ingress, so the worker refuses a TLS configuration.
"""

from __future__ import annotations

import contextlib
import errno
import selectors
import socket
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from gunicorn.workers.gthread import TConn, ThreadWorker

# Every audit record and batch fits (AUDIT_MAX_BODY_BYTES is 1 MiB by default).
SMALL_BODY_BYTES = 1024 * 1024
# Beyond this a head is handed over unfinished; gunicorn's parser answers it 431/400.
MAX_HEAD_BYTES = 64 * 1024
_RECV_BYTES = 64 * 1024


@dataclass
class _Delivery:
    """A connection whose request is still arriving, and when it must have arrived."""

    conn: TConn
    deadline: float
    data: bytearray = field(default_factory=bytearray)


def request_delivered(data: bytes) -> bool:
    """Whether `data` holds what a thread needs to serve the request without waiting.

    True for a complete head plus its whole small body, and for anything the thread must read
    on its own (a large, chunked or 100-continue body) or that the parser will refuse anyway.
    """
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return len(data) > MAX_HEAD_BYTES
    length = 0
    for line in data[:end].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name in (b"transfer-encoding", b"expect"):
            return True
        if name == b"content-length":
            try:
                length = int(value.strip())
            except ValueError:
                return True  # the parser refuses it
    if length > SMALL_BODY_BYTES:
        return True
    return len(data) >= end + 4 + length


class DeadlineThreadWorker(ThreadWorker):
    """gthread, reading each request's head and small body with a deadline before a thread."""

    read_timeout_s = 10.0  # set from GUNICORN_REQUEST_READ_TIMEOUT_SECONDS by the config

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.deliveries: dict[TConn, _Delivery] = {}

    @classmethod
    def check_config(cls, cfg: Any, log: Any) -> None:
        super().check_config(cfg, log)
        if cfg.is_ssl:
            raise RuntimeError("DeadlineThreadWorker serves plain HTTP; terminate TLS at the ingress")

    def accept(self, listener: socket.socket) -> None:
        try:
            client_sock, client_addr = listener.accept()
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        self._await_request(TConn(self.cfg, client_sock, client_addr, listener.getsockname()))

    def on_client_socket_readable(self, conn: TConn, client: socket.socket) -> None:
        """A kept-alive connection's next request: the same deadline as a new connection's."""
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._await_request(conn)

    def murder_pending(self) -> None:
        super().murder_pending()
        now = time.monotonic()
        for delivery in [d for d in self.deliveries.values() if d.deadline <= now]:
            self._drop(delivery)

    def _await_request(self, conn: TConn) -> None:
        conn.sock.setblocking(False)
        delivery = _Delivery(conn, time.monotonic() + self.read_timeout_s)
        self.deliveries[conn] = delivery
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_request_readable, delivery))

    def _on_request_readable(self, delivery: _Delivery, sock: socket.socket) -> None:
        try:
            chunk = sock.recv(_RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:  # the client went away
            self._drop(delivery)
            return
        delivery.data += chunk
        if request_delivered(bytes(delivery.data)):
            self._hand_over(delivery)

    def _forget(self, delivery: _Delivery) -> None:
        del self.deliveries[delivery.conn]
        with contextlib.suppress(OSError, KeyError, ValueError):  # already closed
            self.poller.unregister(delivery.conn.sock)

    def _drop(self, delivery: _Delivery) -> None:
        self._forget(delivery)
        self.nr_conns -= 1
        delivery.conn.close()

    def _hand_over(self, delivery: _Delivery) -> None:
        self._forget(delivery)
        conn = delivery.conn
        conn.sock.setblocking(True)
        conn.init()  # plain HTTP/1.x: only creates the parser (a kept-alive one has it)
        conn.parser.unreader.unread(bytes(delivery.data))
        conn.data_ready = True
        self.enqueue_req(conn)
