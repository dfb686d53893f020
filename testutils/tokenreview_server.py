"""A fake Kubernetes API server that answers TokenReview requests.

It is a real HTTP(S) server on 127.0.0.1 (ephemeral port) running in a
background thread, so the client under test exercises its real network path:
sockets, timeouts, TLS verification, status codes and JSON parsing.

Usage::

    with FakeTokenReviewServer(caller_token="svc-token") as api:
        api.tokens[jwt_shaped("good")] = ("system:serviceaccount:ns:sa", ["system:serviceaccounts"], [])
        ... point the client at api.url ...
        api.fail_with_status = 500    # simulate an unhealthy API server
        api.stop()                    # simulate the API server being down

TLS: pass ``tls=make_self_signed_cert(tmp_dir)``; it shells out to the
``openssl`` CLI (the ``cryptography`` package is not installed in this venv and
we do not add dependencies). Tests should skip TLS cases when it returns None.
"""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

TOKENREVIEW_PATH = "/apis/authentication.k8s.io/v1/tokenreviews"
SUBJECT_ACCESS_REVIEW_PATH = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
# The header of an RS256 JWT, {"alg":"RS256"}: the service checks a token's shape before review.
JWT_HEADER = "eyJhbGciOiJSUzI1NiJ9"


def jwt_shaped(name: str) -> str:
    """A token shaped like a signed JWT (what the service accepts for review), named `name`."""
    return f"{JWT_HEADER}.{name}.c2lnbmF0dXJl"


# token -> (username, groups, audiences the token was issued for)
TokenSpec = tuple[str, Sequence[str], Sequence[str]]


@dataclass(frozen=True)
class TLSFiles:
    cert_file: str
    key_file: str


def make_self_signed_cert(directory: Path) -> TLSFiles | None:
    """Create a self-signed cert for 127.0.0.1 (valid as its own CA).

    Returns None when the ``openssl`` CLI is unavailable.
    """
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    cert = directory / "apiserver.crt"
    key = directory / "apiserver.key"
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "ec",
            "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "1",
            "-subj", "/CN=fake-kube-apiserver",
            "-addext", "subjectAltName=IP:127.0.0.1",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return TLSFiles(cert_file=str(cert), key_file=str(key))


class _Server(ThreadingHTTPServer):
    # The stdlib default listen backlog is 5: a burst of concurrent test
    # clients would overflow it and stall ~1s on SYN retransmits.
    request_queue_size = 128
    daemon_threads = True


class FakeTokenReviewServer:
    """Configurable fake for ``POST /apis/authentication.k8s.io/v1/tokenreviews`` (and
    SubjectAccessReviews: ``access`` lists what they allow).

    Attributes a test may set at any time:

    * ``tokens`` -- known tokens; unknown ones are answered as not authenticated.
    * ``fail_with_status`` -- when set, every request gets this HTTP status.
    * ``delay_s`` -- sleep before answering (to provoke client timeouts).
    * ``audiences_override`` -- when not None, authenticate known tokens while
      ignoring requested audiences and echo these audiences instead (mimics an
      authenticator that does not enforce audiences).
    """

    def __init__(self, caller_token: str = "reviewer-sa-token", tls: TLSFiles | None = None):
        self.caller_token = caller_token
        self.tokens: dict[str, TokenSpec] = {}
        self.fail_with_status: int | None = None
        self.delay_s: float = 0.0
        self.audiences_override: Sequence[str] | None = None
        #: (user, verb, namespace, "resource/name") a SubjectAccessReview allows; others are denied.
        self.access: set[tuple[str, str, str, str]] = set()
        #: SubjectAccessReview bodies received, oldest first.
        self.access_reviews: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._request_count = 0
        self._bodies: list[dict[str, Any]] = []
        self._tls = tls
        self._server = _Server(("127.0.0.1", 0), self._handler_class())
        if tls is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(tls.cert_file, tls.key_file)
            self._server.socket = ctx.wrap_socket(self._server.socket, server_side=True)
        self._thread: threading.Thread | None = None
        self.port: int = self._server.server_address[1]

    # -- lifecycle ----------------------------------------------------------

    @property
    def url(self) -> str:
        scheme = "https" if self._tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def start(self) -> Self:
        self._thread = threading.Thread(
            # A short poll interval keeps stop() (and so each test) fast.
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="fake-kube-apiserver",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Shut down and close the socket: afterwards connections are refused."""
        if self._thread is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- observation ------------------------------------------------------

    @property
    def request_count(self) -> int:
        """Number of TokenReview POSTs received (including refused ones)."""
        with self._lock:
            return self._request_count

    @property
    def bodies(self) -> list[dict[str, Any]]:
        """Parsed request bodies, oldest first (test-only: they hold tokens)."""
        with self._lock:
            return list(self._bodies)

    # -- request handling -------------------------------------------------

    def _admit(
        self, auth_header: str | None, body: dict[str, Any], received: list[dict[str, Any]]
    ) -> tuple[int, dict[str, Any]] | None:
        """What every review goes through first: counted and kept, the injected delay and failure,
        the caller's own token; the refusal to answer, or None to go on."""
        with self._lock:
            self._request_count += 1
            received.append(body)
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.fail_with_status is not None:
            return self.fail_with_status, _status_obj(self.fail_with_status, "injected failure")
        if auth_header != f"Bearer {self.caller_token}":
            return 401, _status_obj(401, "Unauthorized")
        return None

    def _access_answer(self, auth_header: str | None, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """A SubjectAccessReview: allowed when (user, verb, namespace, resource/name) is in `access`."""
        refusal = self._admit(auth_header, body, self.access_reviews)
        if refusal is not None:
            return refusal
        spec = body.get("spec") or {}
        attributes = spec.get("resourceAttributes") or {}
        asked = (
            spec.get("user"),
            attributes.get("verb"),
            attributes.get("namespace"),
            f"{attributes.get('resource')}/{attributes.get('name')}",
        )
        review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}
        review["status"] = {"allowed": asked in self.access}
        return 201, review

    def _answer(self, auth_header: str | None, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        refusal = self._admit(auth_header, body, self._bodies)
        if refusal is not None:
            return refusal
        spec = body.get("spec") or {}
        token = spec.get("token")
        requested = list(spec.get("audiences") or [])
        review: dict[str, Any] = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": spec,
        }
        known = self.tokens.get(token) if isinstance(token, str) else None
        if known is None:
            review["status"] = {"authenticated": False, "error": "invalid bearer token"}
            return 201, review
        username, groups, token_audiences = known
        if self.audiences_override is not None:
            echoed = list(self.audiences_override)
        elif requested:
            echoed = [a for a in requested if a in token_audiences]
            if not echoed:
                review["status"] = {
                    "authenticated": False,
                    "error": "token audiences are invalid for the target audiences",
                }
                return 201, review
        else:
            echoed = list(token_audiences)
        review["status"] = {
            "authenticated": True,
            "user": {"username": username, "uid": f"uid-{username}", "groups": list(groups)},
            "audiences": echoed,
        }
        return 201, review

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # name fixed by BaseHTTPRequestHandler
                if self.path not in (TOKENREVIEW_PATH, SUBJECT_ACCESS_REVIEW_PATH):
                    self._send(404, _status_obj(404, "not found"))
                    return
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    self._send(400, _status_obj(400, "bad json"))
                    return
                answer = fake._access_answer if self.path == SUBJECT_ACCESS_REVIEW_PATH else fake._answer
                status, payload = answer(self.headers.get("Authorization"), body)
                self._send(status, payload)

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    # The client may have timed out and gone away already.
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                # Silence the default stderr access log.
                return

        return Handler


def _status_obj(code: int, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "code": code,
    }
