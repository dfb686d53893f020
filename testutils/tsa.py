"""A real RFC 3161 time-stamp authority on loopback: Debian's `openssl ts`, a throw-away CA.

`TimestampAuthority(directory)` makes a root CA and a time-stamping certificate under it
(extendedKeyUsage critical, timeStamping only, as RFC 3161 section 2.3 requires) with the
`openssl` command line, then serves HTTP POSTs of a TimeStampReq by running
`openssl ts -reply` on each. The answers carry the authority's certificate only: openssl
writes a SET OF several certificates unsorted, which strict DER readers (rfc3161-client)
refuse. `openssl_verify` runs `openssl ts -verify` on an answer: the
independent check that our answers are ordinary RFC 3161 tokens.
"""

from __future__ import annotations

import subprocess
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

_TS_CONFIG = """\
[ tsa ]
default_tsa = tsa_config

[ tsa_config ]
dir = {directory}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.pem
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.3.6.1.4.1.57264.99.1
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = no
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""

_TSA_EXTENSIONS = """\
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = critical, timeStamping
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


def _openssl(*arguments: str, data: bytes | None = None) -> bytes:
    done = subprocess.run(["openssl", *arguments], input=data, capture_output=True, check=False, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(arguments)}: {done.stderr.decode(errors='replace')}")
    return done.stdout


class TimestampAuthority:
    """Start with `with TimestampAuthority(directory) as tsa:`; `tsa.url` takes POSTs."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.ca_pem = directory / "ca.pem"
        self.tsa_pem = directory / "tsa.pem"
        self.config = directory / "ts.cnf"
        self.requests = 0
        self._lock = threading.Lock()
        self._certificates_make()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def _certificates_make(self) -> None:
        d = self.directory
        curve = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
        _openssl(
            "req", "-x509", *curve, "-keyout", str(d / "ca.key"), "-out", str(self.ca_pem), "-days", "3",
            "-subj", "/CN=kubernaut test time-stamp root",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        )  # fmt: skip
        _openssl("req", "-new", *curve, "-keyout", str(d / "tsa.key"), "-out", str(d / "tsa.csr"),
                 "-subj", "/CN=kubernaut test time-stamp authority")  # fmt: skip
        (d / "tsa.ext").write_text(_TSA_EXTENSIONS)
        _openssl(
            "x509", "-req", "-in", str(d / "tsa.csr"), "-CA", str(self.ca_pem), "-CAkey", str(d / "ca.key"),
            "-CAcreateserial", "-days", "2", "-extfile", str(d / "tsa.ext"), "-out", str(self.tsa_pem),
        )  # fmt: skip
        (d / "serial").write_text("01\n")
        self.config.write_text(_TS_CONFIG.format(directory=d))

    def reply(self, query: bytes) -> bytes:
        """`openssl ts -reply` to a DER TimeStampReq. One at a time: openssl bumps a serial file."""
        with self._lock, tempfile.TemporaryDirectory() as scratch:
            query_path, reply_path = Path(scratch) / "query.tsq", Path(scratch) / "reply.tsr"
            query_path.write_bytes(query)
            _openssl("ts", "-reply", "-config", str(self.config), "-queryfile", str(query_path),
                     "-out", str(reply_path))  # fmt: skip
            self.requests += 1
            return reply_path.read_bytes()

    def openssl_verify(self, response: bytes, data: bytes) -> subprocess.CompletedProcess[bytes]:
        """`openssl ts -verify` of an answer over `data` against the root: returncode 0 when it holds."""
        with tempfile.TemporaryDirectory() as scratch:
            response_path, data_path = Path(scratch) / "reply.tsr", Path(scratch) / "data"
            response_path.write_bytes(response)
            data_path.write_bytes(data)
            return subprocess.run(
                ["openssl", "ts", "-verify", "-in", str(response_path), "-data", str(data_path),
                 "-CAfile", str(self.ca_pem)],
                capture_output=True, check=False, timeout=60,
            )  # fmt: skip

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        authority = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                query = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get_content_type() != "application/timestamp-query":
                    self.send_error(415)
                    return
                try:
                    answer = authority.reply(query)
                except RuntimeError:
                    self.send_error(400)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/timestamp-reply")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/"

    def __enter__(self) -> TimestampAuthority:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
