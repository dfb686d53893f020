"""gunicorn's gthread worker, with one rule for client sockets: every read ends by a deadline.

The stock gthread worker hands a connection to a thread as soon as its first bytes arrive; the
thread then reads the rest of the request from a blocking socket with no timeout. A client that
sends part of a request and then nothing (a head, the start of a body, the start of a pipelined
second request) holds that thread until it disconnects: 72 such connections took a 3 x 24
pod's API down.

Here each request gets a deadline when it starts to arrive (a new connection, a kept-alive one
that sends again, the bytes pipelined behind the previous request): GUNICORN_REQUEST_READ_
TIMEOUT_SECONDS later. Until then the request is read in the worker's event loop, holding no
thread, until `ArrivingRequest` (kubernaut_storage/serving/arrival.py) says a thread can serve
it from memory or judge it from what is there; past the deadline the connection is closed.
Whatever a thread still reads from the socket (the rest of a body over 1 MiB that an endpoint
chooses to read) ends by the same deadline, and a request handed over before its body ended
closes its connection after the answer instead of draining the rest. A head over 64 KiB is
answered 431 and closed from the loop. A closing connection is drained (so the kernel does not
reset the answer away) in the loop too, for at most 2 s: gthread did it in its loop, blocking.

Connections are bounded per worker (gunicorn's `worker_connections`) without ever refusing a
new one: at the bound the longest-idle connection (kept alive, or silent since it opened) is
closed, else the one that has been arriving longest. Probes and writers therefore always get
in, however many idle connections others hold. The bytes buffered in the loop are bounded too
(MAX_BUFFERED_BYTES): past it the request with the most bytes buffered is dropped.

Plain HTTP/1.x only: TLS ends at the ingress, so the worker refuses a TLS or HTTP/2 configuration.
"""

from __future__ import annotations

import contextlib
import errno
import selectors
import socket
import time
from collections import OrderedDict
from functools import partial
from typing import Any

from gunicorn import util
from gunicorn.workers.gthread import TConn, ThreadWorker

from kubernaut_storage.serving.arrival import CONTINUE_RESPONSE, MAX_HEAD_BYTES, Arrival, ArrivingRequest

# Per worker: 1 MiB bodies arriving on 64 connections at once; a pod of 3 workers holds at most
# ~200 MB of them, within its memory limit beside the workers' ~400 MB each.
MAX_BUFFERED_BYTES = 64 * 1024 * 1024
_RECV_BYTES = 64 * 1024
# Connections taken from the listen queue per wake-up: a queue that filled while the loop was
# busy drains in a few iterations, not one connection per iteration.
_ACCEPTS_PER_WAKEUP = 64
# A closing connection reads what its client still sends, so the kernel does not reset the
# answer away (RFC 9112, 9.6), for at most this long and this much: gunicorn's own figures.
LINGER_S = 2.0
LINGER_DRAIN_BYTES = 64 * 1024


class DeadlineConn(TConn):
    """A client connection, with the deadline of the request it is delivering."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.deadline = 0.0
        self.waiting_since = 0.0
        #: False when the request was handed over before its body ended.
        self.whole_request_buffered = True

    def init(self) -> None:
        if self.initialized:
            return
        super().init()
        self.parser.unreader.sock = _DeadlineReads(self)


class _DeadlineReads:
    """The parser's side of a client socket: each read ends by the connection's deadline."""

    def __init__(self, conn: DeadlineConn) -> None:
        self._conn = conn

    def recv(self, size: int) -> bytes:
        sock = self._conn.sock
        remaining = self._conn.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the request did not arrive before its deadline")
        sock.settimeout(remaining)
        try:
            return sock.recv(size)
        finally:
            sock.settimeout(None)  # blocking again, as gunicorn writes the response


class DeadlineThreadWorker(ThreadWorker):
    """gthread, reading each request with a deadline, in the event loop before a thread takes it."""

    read_timeout_s = 10.0  # set from GUNICORN_REQUEST_READ_TIMEOUT_SECONDS by the config

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Requests being read in the loop, in deadline order (every deadline is now + the same
        # timeout), and those of them that have not sent a byte yet, in the same order.
        self.arriving: OrderedDict[DeadlineConn, ArrivingRequest] = OrderedDict()
        self.silent: OrderedDict[DeadlineConn, None] = OrderedDict()
        self.buffered_bytes = 0
        # Answered connections closing, in deadline order, with the bytes drained from each.
        self.lingering: OrderedDict[DeadlineConn, int] = OrderedDict()
        # gthread closes a connection after its answer once worker_connections - threads are
        # kept alive: the newest idle one, not the oldest. The bound on all connections decides.
        self.max_keepalived = self.worker_connections

    @classmethod
    def check_config(cls, cfg: Any, log: Any) -> None:
        super().check_config(cfg, log)
        if cfg.is_ssl:
            raise RuntimeError("DeadlineThreadWorker serves plain HTTP; terminate TLS at the ingress")
        if cfg.http2_cleartext != "off":
            raise RuntimeError("DeadlineThreadWorker serves HTTP/1.x only")

    def set_accept_enabled(self, enabled: bool) -> None:
        # gthread stops accepting at worker_connections, leaving new connections (probes
        # included) in the listen queue behind idle ones; this worker makes room instead.
        super().set_accept_enabled(enabled or self.alive)

    def accept(self, listener: socket.socket) -> None:
        for _ in range(_ACCEPTS_PER_WAKEUP):
            try:
                client_sock, client_addr = listener.accept()
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE):
                    if self._shed_idlest():
                        continue  # out of descriptors: an idle connection makes room
                    return  # every descriptor is in a thread: the queue waits for one
                if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                    raise
                return
            if self.nr_conns >= self.worker_connections:
                self._shed_idlest()
            self.nr_conns += 1
            conn = DeadlineConn(self.cfg, client_sock, client_addr, listener.getsockname())
            self._await_request(conn, b"")

    def on_client_socket_readable(self, conn: DeadlineConn, client: socket.socket) -> None:
        """A kept-alive connection's next request: a deadline of its own."""
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._await_request(conn, b"")

    def finish_request(self, conn: DeadlineConn, fs: Any) -> None:
        if fs.cancelled() or fs.exception() is not None or fs.result() is not True:
            # gthread lingers on a closing connection right here, blocking the loop for up to
            # 2 s per client that keeps its side open: 10 such clients stalled the port 20 s.
            self._linger(conn)
            return
        pipelined = conn.parser.unreader.take_buffered()
        if pipelined:  # the start of the next request came with the last one
            self._await_request(conn, pipelined)
            return
        super().finish_request(conn, fs)  # kept alive: back to the poller

    def handle_request(self, req: Any, conn: DeadlineConn) -> bool:
        if not conn.whole_request_buffered:
            # The rest of the body is still on the wire: the next request would start after
            # it, and reading it all is what a slow client would make a thread wait for.
            req.must_close = True
        return bool(super().handle_request(req, conn))

    def murder_pending(self) -> None:
        super().murder_pending()
        now = time.monotonic()
        for waiting, close in ((self.arriving, self._drop), (self.lingering, self._close_lingering)):
            while waiting:
                conn = next(iter(waiting))
                if conn.deadline > now:
                    break
                close(conn)

    def _await_request(self, conn: DeadlineConn, pipelined: bytes) -> None:
        conn.sock.setblocking(False)
        conn.waiting_since = time.monotonic()
        conn.deadline = conn.waiting_since + self.read_timeout_s
        request = ArrivingRequest()
        self.arriving[conn] = request
        if pipelined and not self._receive(conn, request, pipelined):
            return
        if not pipelined:
            self.silent[conn] = None
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, conn))

    def _on_readable(self, conn: DeadlineConn, sock: socket.socket) -> None:
        try:
            chunk = sock.recv(_RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:  # the client went away
            self._drop(conn)
            return
        self.silent.pop(conn, None)
        self._receive(conn, self.arriving[conn], chunk)

    def _receive(self, conn: DeadlineConn, request: ArrivingRequest, chunk: bytes) -> bool:
        """Take `chunk` in; True while the request is still arriving in the loop."""
        held = len(request.data)
        arrival = request.feed(chunk)
        self.buffered_bytes += len(request.data) - held
        if arrival is Arrival.HEAD_TOO_LARGE:
            self._refuse_head(conn)
            return False
        if arrival is not Arrival.WAITING:
            self._hand_over(conn, request, whole=arrival is Arrival.WHOLE)
            return False
        if request.continue_pending:
            request.continue_pending = False
            if not self._send_continue(conn):
                self._drop(conn)
                return False
        while self.buffered_bytes > MAX_BUFFERED_BYTES:
            largest = max(self.arriving, key=lambda arriving: len(self.arriving[arriving].data))
            self._drop(largest)
            if largest is conn:
                return False
        return True

    def _send_continue(self, conn: DeadlineConn) -> bool:
        try:
            return conn.sock.send(CONTINUE_RESPONSE) == len(CONTINUE_RESPONSE)
        except OSError:
            return False

    def _refuse_head(self, conn: DeadlineConn) -> None:
        # Handing it on gains nothing: the parser would refuse it, after reading more of it.
        self.log.warning("Invalid request from ip=%s: request head over %d bytes", conn.client[0], MAX_HEAD_BYTES)
        self._forget(conn)
        with contextlib.suppress(OSError):
            util.write_error(
                conn.sock, 431, "Request Header Fields Too Large", f"The request head exceeds {MAX_HEAD_BYTES} bytes."
            )
        self._linger(conn)

    def _linger(self, conn: DeadlineConn) -> None:
        """Close after the answer: FIN now, then drain in the loop until the client closes too."""
        try:
            conn.sock.shutdown(socket.SHUT_WR)
            conn.sock.setblocking(False)
        except OSError:
            self.nr_conns -= 1
            conn.close()
            return
        conn.deadline = time.monotonic() + LINGER_S
        self.lingering[conn] = 0
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_lingering_readable, conn))

    def _on_lingering_readable(self, conn: DeadlineConn, sock: socket.socket) -> None:
        try:
            drained = len(sock.recv(_RECV_BYTES))
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            drained = 0
        self.lingering[conn] += drained
        if not drained or self.lingering[conn] >= LINGER_DRAIN_BYTES:
            self._close_lingering(conn)

    def _close_lingering(self, conn: DeadlineConn) -> None:
        del self.lingering[conn]
        with contextlib.suppress(OSError, KeyError, ValueError):
            self.poller.unregister(conn.sock)
        self.nr_conns -= 1
        conn.close()

    def _shed_idlest(self) -> bool:
        """Close the connection idle longest (else the one arriving longest); False if none is.

        Connections lingering after their answer go first: they are done.
        """
        if self.lingering:
            self._close_lingering(next(iter(self.lingering)))
            return True
        kept_alive = self.keepalived_conns[0] if self.keepalived_conns else None
        silent = next(iter(self.silent), None)
        if kept_alive is not None and (
            silent is None or kept_alive.timeout - self.cfg.keepalive <= silent.waiting_since
        ):
            self.keepalived_conns.popleft()
            with contextlib.suppress(OSError, KeyError, ValueError):
                self.poller.unregister(kept_alive.sock)
            self.nr_conns -= 1
            kept_alive.close()
            return True
        oldest = silent if silent is not None else next(iter(self.arriving), None)
        if oldest is None:
            return False
        self._drop(oldest)
        return True

    def _forget(self, conn: DeadlineConn) -> None:
        request = self.arriving.pop(conn)
        self.silent.pop(conn, None)
        self.buffered_bytes -= len(request.data)
        with contextlib.suppress(OSError, KeyError, ValueError):  # not registered yet, or closed
            self.poller.unregister(conn.sock)

    def _drop(self, conn: DeadlineConn) -> None:
        self._forget(conn)
        self.nr_conns -= 1
        conn.close()

    def _hand_over(self, conn: DeadlineConn, request: ArrivingRequest, *, whole: bool) -> None:
        self._forget(conn)
        conn.sock.setblocking(True)
        conn.init()  # plain HTTP/1.x: only creates the parser (a kept-alive one has it)
        conn.parser.unreader.unread(bytes(request.data))
        conn.whole_request_buffered = whole
        conn.data_ready = True
        self.enqueue_req(conn)
