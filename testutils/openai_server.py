"""A real, local, OpenAI-compatible ``POST /v1/embeddings`` server for tests and benchmarks.

The ``openai`` 3.x client talks through ``httpx2``, which respx cannot intercept, so tests
exercise the real client against this real HTTP server instead. Vectors are deterministic
(see :func:`deterministic_vector`) so a test can compute the expected answer itself.

Failure behaviour is switched at run time from the test thread::

    with OpenAICompatibleServer() as server:
        server.fail_next(2, "error500")   # two 500s, then back to the current mode
        server.set_mode("slow", delay_s=1.0)

Request handling runs on the server's own threads, so every piece of shared state is
guarded by one lock.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import socket
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, Self, cast, get_args

import numpy as np
import numpy.typing as npt

Mode = Literal["ok", "slow", "hang", "error400", "error401", "error429", "error500", "drop", "malformed"]
MODES: frozenset[str] = frozenset(get_args(Mode))

#: OpenAI's text-embedding-3-small default width, used when the request names no ``dimensions``
DEFAULT_DIMENSIONS = 1536


def deterministic_vector(model: str, text: str, dimensions: int = DEFAULT_DIMENSIONS) -> npt.NDArray[np.float32]:
    """The unit float32 vector the server answers for ``(model, text)``.

    SHA-256 seeds numpy's PCG64, whose stream is stable across platforms and numpy versions,
    so tests can recompute the expected vector exactly. The NUL separator keeps
    ``("a", "bc")`` and ``("ab", "c")`` apart.
    """
    digest = hashlib.sha256(f"{model}\x00{text}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest, "little"))
    vector = rng.standard_normal(dimensions)
    # normalise in float64, then cast once, so the float32 result is the same on every run
    return cast(npt.NDArray[np.float32], (vector / np.linalg.norm(vector)).astype(np.float32))


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    path: str
    #: the parsed JSON body, or None when it was not valid JSON
    body: dict[str, Any] | None
    authorization: str | None
    headers: dict[str, str]


class _Server(ThreadingHTTPServer):
    # daemon threads: a handler still sleeping in "slow" mode never blocks interpreter exit
    daemon_threads = True
    # the benchmark opens many concurrent connections; the default backlog of 5 would refuse some
    request_queue_size = 128
    owner: OpenAICompatibleServer


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 gives keep-alive, so the openai client reuses its pooled connections
    protocol_version = "HTTP/1.1"
    # headers and body are separate writes: without TCP_NODELAY, Nagle + delayed ACK can add
    # ~40 ms to every keep-alive response, which would distort the benchmark
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.owner._track(self.connection, opened=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner._track(self.connection, opened=False)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep pytest output clean

    def do_POST(self) -> None:
        owner = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body: dict[str, Any] | None
        try:
            parsed = json.loads(raw) if raw else None
            body = parsed if isinstance(parsed, dict) else None
        except ValueError:
            body = None
        mode, delay_s = owner._begin_request(
            RecordedRequest(
                path=self.path,
                body=body,
                authorization=self.headers.get("Authorization"),
                headers={k.lower(): v for k, v in self.headers.items()},
            )
        )
        try:
            self._answer(owner, mode, delay_s, body)
        except (BrokenPipeError, ConnectionResetError):
            # the client gave up (timeout) while we were sleeping: nothing left to tell it
            self.close_connection = True

    def _answer(
        self,
        owner: OpenAICompatibleServer,
        mode: str,
        delay_s: float,
        body: dict[str, Any] | None,
    ) -> None:
        if self.path.rstrip("/") != "/v1/embeddings":
            self._send_error(404, "invalid_request_error", f"Unknown path {self.path}")
            return
        if mode == "drop":
            # close without a status line: the client sees a connection error, as with a
            # proxy or load balancer that resets the connection mid-request
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if mode == "slow" and owner._stopping.wait(delay_s):
            self.close_connection = True  # server stopping: do not hold stop() up
            return
        if mode == "hang":
            # accept the request and never answer (until the server stops): a wedged API
            owner._stopping.wait()
            self.close_connection = True
            return
        if mode == "error500":
            self._send_error(
                500,
                "server_error",
                "The server had an error while processing your request.",
            )
            return
        if mode == "error429":
            self._send_error(
                429,
                "rate_limit_exceeded",
                "Rate limit reached.",
                extra_headers={"Retry-After": str(owner.retry_after_s)},
            )
            return
        if mode == "error400":
            self._send_error(400, "invalid_request_error", "Invalid request (forced by test).")
            return
        if mode == "error401":
            self._send_error(401, "invalid_request_error", "Incorrect API key provided.")
            return
        self._embed(owner, mode, body)

    def _embed(self, owner: OpenAICompatibleServer, mode: str, body: dict[str, Any] | None) -> None:
        if body is None:
            self._send_error(400, "invalid_request_error", "Body must be a JSON object.")
            return
        texts = body.get("input")
        if isinstance(texts, str):
            texts = [texts]
        model = body.get("model")
        if (
            not isinstance(texts, list)
            or not texts
            or not all(isinstance(t, str) and t for t in texts)
            or not isinstance(model, str)
        ):
            # mirrors OpenAI: empty input, empty strings and a missing model are 400s
            self._send_error(
                400,
                "invalid_request_error",
                "'input' and 'model' are required and non-empty.",
            )
            return
        dimensions = body.get("dimensions", DEFAULT_DIMENSIONS)
        if not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 1:
            self._send_error(400, "invalid_request_error", "'dimensions' must be a positive integer.")
            return
        encoding = body.get("encoding_format", "float")
        if encoding not in ("float", "base64"):
            self._send_error(
                400,
                "invalid_request_error",
                "'encoding_format' must be 'float' or 'base64'.",
            )
            return
        if owner.ignore_encoding_format:
            encoding = "float"  # some "compatible" servers only ever answer float lists

        data: list[dict[str, Any]] = []
        for index, text in enumerate(texts):
            vector = deterministic_vector(model, text, dimensions)
            embedding: str | list[float] = (
                base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
                if encoding == "base64"
                else vector.tolist()
            )
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        if owner.reverse_order:
            data.reverse()  # OpenAI does not promise order: clients must sort by index
        if mode == "malformed":
            data = data[:-1]  # a 200 with one embedding missing
        tokens = sum(len(t.split()) for t in texts)
        self._send_json(
            200,
            {
                "object": "list",
                "data": data,
                "model": model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )

    def _send_error(
        self,
        status: int,
        kind: str,
        message: str,
        *,
        extra_headers: dict[str, str] | None = None,
    ) -> None:
        self._send_json(
            status,
            {"error": {"message": message, "type": kind, "param": None, "code": None}},
            extra_headers=extra_headers,
        )

    def _send_json(
        self,
        status: int,
        payload: object,
        *,
        extra_headers: dict[str, str] | None = None,
    ) -> None:
        raw = json.dumps(payload, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        for name, value in (extra_headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(raw)


class OpenAICompatibleServer:
    """Runs the embeddings server on 127.0.0.1 (free port) in a background thread.

    Use as a context manager, or call :meth:`start` / :meth:`stop` (e.g. from a pytest fixture).
    ``mode="slow"`` with a small ``delay_s`` simulates network latency for benchmarks.
    ``max_recorded`` bounds the memory kept for recorded requests during long benchmarks.
    """

    def __init__(
        self,
        *,
        mode: Mode = "ok",
        delay_s: float = 0.0,
        retry_after_s: int = 1,
        max_recorded: int = 1000,
    ) -> None:
        self._check_mode(mode)
        self._lock = threading.Lock()
        self._mode: str = mode
        self._delay_s = delay_s
        self._pending: deque[str] = deque()
        self._request_count = 0
        self._requests: deque[RecordedRequest] = deque(maxlen=max_recorded)
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        #: 0 until the first start; a restart binds the same port, so clients keep their base_url
        self._bound_port = 0
        #: seconds announced in the Retry-After header of "error429" answers
        self.retry_after_s = retry_after_s
        #: answer ``data`` in reverse order, to prove clients sort by ``index``
        self.reverse_order = False
        #: always answer float lists, like compatible servers that ignore ``encoding_format``
        self.ignore_encoding_format = False

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        if self._httpd is not None:
            raise RuntimeError("server already started")
        self._stopping.clear()
        httpd = _Server(("127.0.0.1", self._bound_port), _Handler)
        self._bound_port = int(httpd.server_address[1])
        httpd.owner = self
        self._httpd = httpd
        # a short poll interval makes stop() return quickly
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="openai-test-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None:
            return
        self._stopping.set()  # wakes handlers sleeping in "slow" mode
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
        # keep-alive handler threads block reading the next request on idle connections;
        # shutting their sockets down lets them exit instead of leaking one thread per test
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):  # already closed by its handler
                conn.shutdown(socket.SHUT_RDWR)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """What the openai client takes as ``base_url``; it appends ``/embeddings``."""
        return f"http://127.0.0.1:{self.port}/v1"

    # -- behaviour switches (thread-safe) ----------------------------------------------------

    @property
    def mode(self) -> str:
        with self._lock:
            return self._mode

    @mode.setter
    def mode(self, mode: Mode) -> None:
        self.set_mode(mode)

    @property
    def delay_s(self) -> float:
        with self._lock:
            return self._delay_s

    @delay_s.setter
    def delay_s(self, delay_s: float) -> None:
        with self._lock:
            self._delay_s = delay_s

    def set_mode(self, mode: Mode, *, delay_s: float | None = None) -> None:
        """Switch the steady-state behaviour; pending :meth:`fail_next` failures still run first."""
        self._check_mode(mode)
        with self._lock:
            self._mode = mode
            if delay_s is not None:
                self._delay_s = delay_s

    def fail_next(self, count: int, mode: Mode = "error500") -> None:
        """Answer the next ``count`` requests with ``mode``, then fall back to the current mode."""
        self._check_mode(mode)
        with self._lock:
            self._pending.extend([mode] * count)

    def reset(self) -> None:
        """Back to "ok" with no pending failures and cleared counters and records."""
        with self._lock:
            self._mode = "ok"
            self._pending.clear()
            self._request_count = 0
            self._requests.clear()

    # -- observations ------------------------------------------------------------------------

    @property
    def request_count(self) -> int:
        with self._lock:
            return self._request_count

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the recorded requests, oldest first (at most ``max_recorded``)."""
        with self._lock:
            return list(self._requests)

    @property
    def bodies(self) -> list[dict[str, Any] | None]:
        return [r.body for r in self.requests]

    @property
    def authorization_headers(self) -> list[str | None]:
        return [r.authorization for r in self.requests]

    # -- used by the handler threads ---------------------------------------------------------

    def _begin_request(self, request: RecordedRequest) -> tuple[str, float]:
        """Count and record one request and pick how to answer it, atomically."""
        with self._lock:
            self._request_count += 1
            self._requests.append(request)
            mode = self._pending.popleft() if self._pending else self._mode
            return mode, self._delay_s

    def _track(self, conn: socket.socket, *, opened: bool) -> None:
        with self._lock:
            if opened:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    @staticmethod
    def _check_mode(mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {sorted(MODES)}")
