"""An in-process C2SP tlog-witness on loopback, answering add-checkpoint as the protocol says.

    with TlogWitness(name="witness.test/w1", logs={"example.com/log": [log_verifier]}) as witness:
        witness.latest["example.com/log"] = (5, root_at_5)   # what it cosigned before, if anything
        ... witness_cosign(url=witness.url, ...) ...
        witness.answers   # the statuses it gave, in order

It checks, in the protocol's order: a known origin (404), a signature by a trusted log key
(403), old size at most the checkpoint's (400), old size equal to the size it last cosigned
(409 with that size as text/x.tlog.size), the same root when the sizes are equal (409), the
consistency proof (422); then it records the checkpoint and answers 200 with its cosignature.
Check and record happen under one lock, as the protocol requires.
"""

from __future__ import annotations

import base64
import binascii
import threading
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kubernaut_integrity.checkpoint import checkpoint_parse
from kubernaut_integrity.cosignature import CosignatureVerifier, Cosigner
from kubernaut_integrity.note import NoteError, Signature, Verifier, note_open, note_parse
from kubernaut_integrity.tlog import ProofError, consistency_verify
from kubernaut_integrity.witness import MAX_PROOF_LINES, SIZE_CONTENT_TYPE


class _RefusedError(Exception):
    def __init__(self, status: int, body: str, content_type: str = "text/plain; charset=utf-8") -> None:
        super().__init__(body)
        self.status, self.body, self.content_type = status, body, content_type


class TlogWitness:
    def __init__(self, *, name: str, logs: Mapping[str, Sequence[Verifier]]) -> None:
        self.cosigner = Cosigner(name=name, private_key=Ed25519PrivateKey.generate())
        self.logs = {origin: list(verifiers) for origin, verifiers in logs.items()}
        #: origin -> (size, root) of the latest checkpoint it cosigned.
        self.latest: dict[str, tuple[int, bytes]] = {}
        self.answers: list[int] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def verifier(self) -> CosignatureVerifier:
        return self.cosigner.verifier

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def add_checkpoint(self, request: bytes) -> Signature:
        """The protocol's checks on one request body; raises _RefusedError with the answer."""
        old_size, proof, note_bytes = _request_parse(request)
        try:
            note = note_parse(note_bytes)
            checkpoint = checkpoint_parse(note.text)
        except NoteError as error:
            raise _RefusedError(400, f"malformed checkpoint: {error}") from error
        trusted = self.logs.get(checkpoint.origin)
        if trusted is None:
            raise _RefusedError(404, f"unknown origin {checkpoint.origin}")
        try:
            note_open(note_bytes, trusted)
        except NoteError as error:
            raise _RefusedError(403, str(error)) from error
        if old_size > checkpoint.size:
            raise _RefusedError(400, f"old size {old_size} is beyond the checkpoint's {checkpoint.size}")
        with self._lock:
            size, root = self.latest.get(checkpoint.origin, (0, b""))
            if old_size != size:
                raise _RefusedError(409, f"{size}\n", SIZE_CONTENT_TYPE)
            if old_size == checkpoint.size and size and root != checkpoint.root:
                raise _RefusedError(409, f"{size}\n", SIZE_CONTENT_TYPE)
            try:
                consistency_verify(
                    old_size=old_size, old_root=root, new_size=checkpoint.size, new_root=checkpoint.root, proof=proof
                )
            except ProofError as error:
                raise _RefusedError(422, str(error)) from error
            self.latest[checkpoint.origin] = (checkpoint.size, checkpoint.root)
        text = note.text.encode()
        return Signature(name=self.cosigner.name, key_hash=self.cosigner.key_hash, signature=self.cosigner.sign(text))

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        witness = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                request = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.path != "/add-checkpoint":
                    self._answer(404, "not found\n", "text/plain; charset=utf-8")
                    return
                try:
                    cosignature = witness.add_checkpoint(request)
                except _RefusedError as refused:
                    self._answer(refused.status, refused.body, refused.content_type)
                    return
                self._answer(200, cosignature.line, "text/plain; charset=utf-8")

            def _answer(self, status: int, body: str, content_type: str) -> None:
                witness.answers.append(status)
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler

    def __enter__(self) -> TlogWitness:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _request_parse(request: bytes) -> tuple[int, list[bytes], bytes]:
    head, separator, note = request.partition(b"\n\n")
    lines = head.decode("utf-8", errors="replace").split("\n")
    if not separator or not lines[0].startswith("old "):
        raise _RefusedError(400, "a request starts with the old size line, then proof lines and a blank line")
    size_text = lines[0][len("old ") :]
    if not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
        raise _RefusedError(400, f"bad old size {size_text!r}")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise _RefusedError(400, "too many proof lines")
    try:
        proof = [base64.b64decode(line, validate=True) for line in lines[1:]]
    except binascii.Error as error:
        raise _RefusedError(400, "a proof line is one base64 hash") from error
    return int(size_text), proof, note
