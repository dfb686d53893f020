"""A real gunicorn, started with the repo's config as a subprocess, for tests that need the
whole serving stack: several worker processes, the master's metrics port, signals.

Its stderr (JSON lines) is collected on a thread so a test can read what the service logged.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parent.parent
GUNICORN = REPO / ".venv" / "bin" / "gunicorn"

# Variables the gunicorn config sets for its own workers; never inherit them from the tests.
_PRIVATE_ENV = ("KUBERNAUT_RUNTIME_DIR", "PROMETHEUS_MULTIPROC_DIR", "KUBERNAUT_DRAIN_FILE", "METRICS_TOKEN")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def database_url(settings_dict: Mapping[str, Any]) -> str:
    """A DATABASE_URL for the database Django is connected to (the embedded server's socket)."""
    return f"postgres://{settings_dict['USER']}@/{settings_dict['NAME']}?host={settings_dict['HOST']}"


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    port: int, method: str, path: str, *, body: Any = None, headers: Mapping[str, str] | None = None
) -> Response:
    """One request on a new connection (so concurrent requests spread over the workers)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        all_headers = {"Content-Type": "application/json"} if payload is not None else {}
        all_headers.update(headers or {})
        connection.request(method, path, body=payload, headers=all_headers)
        answer = connection.getresponse()
        return Response(answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read())
    finally:
        connection.close()


@dataclass
class Gunicorn:
    process: subprocess.Popen[bytes]
    port: int
    metrics_port: int
    lines: list[str] = field(default_factory=list)

    def request(self, method: str, path: str, **kwargs: Any) -> Response:
        return request(self.port, method, path, **kwargs)

    def scrape(self, *, token: str | None = None) -> Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return request(self.metrics_port, "GET", "/metrics", headers=headers)

    def samples(self, *, token: str | None = None) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample of the metrics endpoint, keyed by (name, sorted labels)."""
        scraped = self.scrape(token=token)
        assert scraped.status == 200, scraped.body
        result = {}
        for family in text_string_to_metric_families(scraped.body.decode()):
            for sample in family.samples:
                result[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return result

    def log_records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in list(self.lines) if line.startswith("{")]

    def wait_until(self, path: str, status: int, *, timeout_s: float = 60.0) -> Response:
        deadline = time.monotonic() + timeout_s
        last: Response | str = "no answer"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"gunicorn exited ({self.process.returncode}):\n" + "\n".join(self.lines))
            try:
                last = self.request("GET", path)
                if last.status == status:
                    return last
            except OSError as exc:
                last = repr(exc)
            time.sleep(0.2)
        raise AssertionError(f"{path} never answered {status}; last: {last}\n" + "\n".join(self.lines[-30:]))

    def stop(self, *, timeout_s: float = 60.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise


def gunicorn_env(**overrides: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in _PRIVATE_ENV}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "kubernaut_storage.settings.test",
            "AUTH_MODE": "none",
            "GUNICORN_WORKERS": "2",
            "GUNICORN_THREADS": "4",
            "GUNICORN_DRAIN_DELAY_SECONDS": "1",
            "GUNICORN_GRACEFUL_TIMEOUT": "10",
            "LOG_LEVEL": "INFO",
        }
    )
    env.update(overrides)
    return env


def gunicorn_spawn(env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(GUNICORN), "-c", "kubernaut_storage/gunicorn_config.py", "kubernaut_storage.wsgi"],
        cwd=REPO,
        env=dict(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@contextlib.contextmanager
def running_gunicorn(**env_overrides: str) -> Iterator[Gunicorn]:
    """gunicorn on free loopback ports, ready (healthz 200) when this yields; stopped after."""
    port, metrics_port = free_port(), free_port()
    env = gunicorn_env(
        GUNICORN_BIND=f"127.0.0.1:{port}",
        METRICS_BIND=f"127.0.0.1:{metrics_port}",
        **env_overrides,
    )
    server = Gunicorn(gunicorn_spawn(env), port, metrics_port)

    def collect() -> None:
        assert server.process.stderr is not None
        for raw in server.process.stderr:
            server.lines.append(raw.decode(errors="replace").rstrip("\n"))

    reader = threading.Thread(target=collect, daemon=True)
    reader.start()
    try:
        server.wait_until("/healthz", 200)
        yield server
    finally:
        if server.process.poll() is None:
            server.stop()
        reader.join(timeout=5)
